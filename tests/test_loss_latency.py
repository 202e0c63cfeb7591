"""Latency regularisers of the RNN-T loss: FastEmit and k2's delay penalty, against independent definitions.

Oracles here enumerate the alignments themselves (``_paths``), so they share no code with the
library's lattice, recursion or posteriors.
"""
import itertools
import math

import pytest
import torch

from emformer_edu.rnnt.lattice import delay_penalty_offsets, expected_emission_frames, utterance_lattice
from emformer_edu.rnnt.loss import rnnt_loss_bruteforce, rnnt_loss_reference
from emformer_edu.rnnt.loss_fast import rnnt_loss

IMPLS = {"fast": rnnt_loss, "reference": rnnt_loss_reference, "bruteforce": rnnt_loss_bruteforce}

# (B, T, U, V, blank, seed): unequal lengths in every batch; blank first, last and in the middle.
CASES = [
    (1, 1, 2, 3, 0, 0),
    (2, 3, 2, 4, -1, 1),
    (3, 4, 3, 6, 0, 2),
    (2, 5, 1, 3, 1, 3),
    (3, 4, 2, 5, -1, 4),
]


def make_case(B, T, U, V, blank, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g, dtype=torch.float64).mul_(2).to(dtype)
    blank_idx = blank % V
    targets = torch.randint(0, V - 1, (B, U), generator=g)
    targets = targets + (targets >= blank_idx).long()
    logit_lengths = torch.randint(1, T + 1, (B,), generator=g)
    target_lengths = torch.randint(0, U + 1, (B,), generator=g)
    logit_lengths[0], target_lengths[-1] = T, U  # the padded sizes are used too
    return logits, targets, logit_lengths, target_lengths


def _paths(T, U):
    """Every alignment as (blank edges, emit edges), each a list of (t, u); the last blank leaves (T-1, U)."""
    for emit_at in itertools.combinations(range(T - 1 + U), U):
        t = u = 0
        blanks, emits = [], []
        for k in range(T - 1 + U):
            if k in emit_at:
                emits.append((t, u))
                u += 1
            else:
                blanks.append((t, u))
                t += 1
        blanks.append((t, u))
        yield blanks, emits


def _oracle_costs(blank_lp, emit_lp, targets, ll, tl, blank, delay_penalty=0.0):
    """(B,) -log sum over enumerated paths of exp(path log-prob + k2's delay offsets); autograd-able."""
    costs = []
    for b in range(blank_lp.shape[0]):
        T_b, U_b = int(ll[b]), int(tl[b])
        scores = []
        for blanks, emits in _paths(T_b, U_b):
            s = sum(blank_lp[b, t, u, blank] for t, u in blanks)
            s = s + sum(emit_lp[b, t, u, int(targets[b, u])] for t, u in emits)
            # k2: px += delay_penalty * ((T - 1) / 2 - t) on every emission at frame t.
            s = s + sum(delay_penalty * ((T_b - 1) / 2 - t) for t, _ in emits)
            scores.append(s)
        costs.append(-torch.logsumexp(torch.stack(scores), 0))
    return torch.stack(costs)


def _weights(B):
    # Distinct per-utterance upstream gradients, one negative: dy is applied per utterance.
    return torch.tensor([1.0, -0.5, 2.0, 0.25][:B], dtype=torch.float64)


def _impl_loss_and_grad(fn, logits, targets, ll, tl, blank, fused, **kw):
    x = logits.detach().clone().requires_grad_(True)
    loss = fn(x, targets, ll, tl, blank=blank, reduction="none", fused_log_softmax=fused, **kw)
    (grad,) = torch.autograd.grad((loss * _weights(len(loss))).sum(), x)
    return loss.detach(), grad


def _fastemit_oracle(logits, targets, ll, tl, blank, fused, lam, delay_penalty=0.0):
    """FastEmit from its definition: the cost -log P(b(x1), y(x2)) with blank edges read from one copy of
    the logits and emit edges from another, so autograd separates the two gradients; FastEmit is
    d/dx1 + (1 + lambda) d/dx2 at x1 = x2 = x."""
    x1 = logits.detach().clone().requires_grad_(True)
    x2 = logits.detach().clone().requires_grad_(True)
    lp1 = torch.log_softmax(x1, -1) if fused else x1
    lp2 = torch.log_softmax(x2, -1) if fused else x2
    costs = _oracle_costs(lp1, lp2, targets, ll, tl, blank % logits.shape[-1], delay_penalty)
    g1, g2 = torch.autograd.grad((costs * _weights(len(costs))).sum(), (x1, x2))
    return costs.detach(), g1 + (1 + lam) * g2


# ---------------------------------------------------------------------------
# Off means off: bit for bit
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_zero_is_bit_for_bit_the_plain_loss(impl, fused, dtype):
    logits, targets, ll, tl = make_case(3, 4, 3, 6, -1, 5, dtype=dtype)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    fn = IMPLS[impl]
    plain = _impl_loss_and_grad(fn, logits, targets, ll, tl, -1, fused)
    # 0, 0.0 and -0.0 all take the plain code path (the latency code runs only for a non-zero option).
    for zero in (0, 0.0, -0.0):
        for kw in (dict(fastemit_lambda=zero), dict(delay_penalty=zero),
                   dict(fastemit_lambda=zero, delay_penalty=zero)):
            loss, grad = _impl_loss_and_grad(fn, logits, targets, ll, tl, -1, fused, **kw)
            assert torch.equal(loss, plain[0]) and torch.equal(grad, plain[1]), (kw, zero)


# ---------------------------------------------------------------------------
# FastEmit
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_fastemit_matches_its_definition(case, fused, impl):
    B, T, U, V, blank, seed = case
    logits, targets, ll, tl = make_case(*case)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    lam = 0.37
    want_loss, want_grad = _fastemit_oracle(logits, targets, ll, tl, blank, fused, lam)
    loss, grad = _impl_loss_and_grad(IMPLS[impl], logits, targets, ll, tl, blank, fused, fastemit_lambda=lam)
    torch.testing.assert_close(loss, want_loss, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-10)
    # And it is not the plain gradient: lambda really acts.
    _, plain = _impl_loss_and_grad(IMPLS[impl], logits, targets, ll, tl, blank, fused)
    assert (grad - plain).abs().max() > 1e-3


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_fastemit_keeps_the_value_and_scales_only_the_emit_edges(impl):
    # On log-prob input (fused_log_softmax=False) the gradient IS the per-edge gradient:
    # blank entries bit for bit unchanged, target entries times (1 + lambda), the rest 0.
    B, T, U, V, blank = 3, 5, 3, 6, 0
    logits, targets, ll, tl = make_case(B, T, U, V, blank, seed=7)
    logp = torch.log_softmax(logits, -1)
    lam = 0.5
    loss0, g0 = _impl_loss_and_grad(IMPLS[impl], logp, targets, ll, tl, blank, False)
    loss1, g1 = _impl_loss_and_grad(IMPLS[impl], logp, targets, ll, tl, blank, False, fastemit_lambda=lam)
    assert torch.equal(loss1, loss0)
    assert torch.equal(g1[..., blank], g0[..., blank])
    tgt = torch.zeros_like(g0, dtype=torch.bool)
    for b in range(B):
        for u in range(int(tl[b])):
            tgt[b, :, u, int(targets[b, u])] = True
    torch.testing.assert_close(g1[tgt], (1 + lam) * g0[tgt], rtol=1e-12, atol=0)
    assert (g0[tgt] != 0).any()
    other = ~tgt
    other[..., blank] = False
    assert torch.equal(g1[other], torch.zeros_like(g1[other]))


def test_fastemit_gradient_is_affine_in_lambda():
    # grad(lambda) = grad(0) + lambda * (grad(1) - grad(0)): the emit-edge term is scaled, nothing else.
    logits, targets, ll, tl = make_case(3, 6, 3, 7, -1, seed=8)
    g = {lam: _impl_loss_and_grad(rnnt_loss, logits, targets, ll, tl, -1, True, fastemit_lambda=lam)[1]
         for lam in (0.0, 1.0, 0.01, 2.5)}
    for lam in (0.01, 2.5):
        torch.testing.assert_close(g[lam], g[0.0] + lam * (g[1.0] - g[0.0]), rtol=1e-9, atol=1e-12)


def test_fastemit_survives_a_second_backward():
    # The saved posteriors must not be scaled in place.
    logits, targets, ll, tl = make_case(2, 4, 2, 5, -1, seed=9)
    x = logits.clone().requires_grad_(True)
    loss = rnnt_loss(x, targets, ll, tl, fastemit_lambda=0.3, delay_penalty=0.2)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    assert torch.equal(g1, g2)


# ---------------------------------------------------------------------------
# Delay penalty
# ---------------------------------------------------------------------------

def test_delay_penalty_offsets_have_k2s_form():
    ll = torch.tensor([5, 2])
    off = delay_penalty_offsets(ll, 5, 0.5)
    want = torch.tensor([[0.5 * (2.0 - t) for t in range(5)], [0.5 * (0.5 - t) for t in range(5)]], dtype=torch.float64)
    assert off.shape == (2, 5) and off.dtype == torch.float64
    torch.testing.assert_close(off, want, rtol=0, atol=0)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_delay_penalty_matches_bruteforce(case, fused, impl):
    B, T, U, V, blank, seed = case
    logits, targets, ll, tl = make_case(*case)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    d = 0.6
    x = logits.clone().requires_grad_(True)
    lp = torch.log_softmax(x, -1) if fused else x
    want = _oracle_costs(lp, lp, targets, ll, tl, blank % V, delay_penalty=d)
    (want_grad,) = torch.autograd.grad((want * _weights(B)).sum(), x)
    loss, grad = _impl_loss_and_grad(IMPLS[impl], logits, targets, ll, tl, blank, fused, delay_penalty=d)
    torch.testing.assert_close(loss, want.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-10)
    # It changes the value (with T = 1 every offset is 0: the centre is frame 0).
    plain = IMPLS[impl](logits, targets, ll, tl, blank=blank, reduction="none", fused_log_softmax=fused)
    assert ((loss - plain).abs().max() > 1e-3) == (T > 1)


@pytest.mark.parametrize("case", CASES[1:3])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_fastemit_and_delay_penalty_together(case, impl):
    B, T, U, V, blank, seed = case
    logits, targets, ll, tl = make_case(*case)
    want_loss, want_grad = _fastemit_oracle(logits, targets, ll, tl, blank, True, 0.2, delay_penalty=0.3)
    loss, grad = _impl_loss_and_grad(IMPLS[impl], logits, targets, ll, tl, blank, True,
                                     fastemit_lambda=0.2, delay_penalty=0.3)
    torch.testing.assert_close(loss, want_loss, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad, want_grad, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("fused", [True, False])
def test_delay_penalty_gradcheck(impl, fused):
    logits, targets, ll, tl = make_case(2, 4, 2, 4, -1, seed=11)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    x = logits.clone().requires_grad_(True)

    def f(x):
        return IMPLS[impl](x, targets, ll, tl, reduction="sum", fused_log_softmax=fused, delay_penalty=0.4)

    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_delay_penalty_without_tokens_changes_nothing():
    # U_b = 0: no emission, no offset.
    logits, targets, ll, tl = make_case(2, 4, 2, 5, -1, seed=12)
    tl = torch.zeros_like(tl)
    plain = _impl_loss_and_grad(rnnt_loss, logits, targets, ll, tl, -1, True)
    pen = _impl_loss_and_grad(rnnt_loss, logits, targets, ll, tl, -1, True, delay_penalty=1.0)
    torch.testing.assert_close(pen[0], plain[0], rtol=0, atol=0)
    torch.testing.assert_close(pen[1], plain[1], rtol=0, atol=0)


# ---------------------------------------------------------------------------
# Readable == fast beyond brute-force sizes; other dtypes
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("B,T,U,V", [(3, 12, 6, 17), (4, 20, 8, 11)])
@pytest.mark.parametrize("fused,clamp", [(True, -1.0), (True, 0.05), (False, -1.0), (False, 0.05)])
@pytest.mark.parametrize("lam,d", [(0.01, 0.0), (0.0, 0.05), (0.5, 0.2)])
def test_fast_equals_reference(B, T, U, V, fused, clamp, lam, d):
    logits, targets, ll, tl = make_case(B, T, U, V, -1, seed=T + U)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    kw = dict(clamp=clamp, fastemit_lambda=lam, delay_penalty=d)
    fast = _impl_loss_and_grad(rnnt_loss, logits, targets, ll, tl, -1, fused, **kw)
    ref = _impl_loss_and_grad(rnnt_loss_reference, logits, targets, ll, tl, -1, fused, **kw)
    torch.testing.assert_close(fast[0], ref[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(fast[1], ref[1], rtol=1e-9, atol=1e-11)


def test_float32_and_float16_pass_the_options_through():
    logits, targets, ll, tl = make_case(2, 6, 3, 7, -1, seed=13)
    kw = dict(fastemit_lambda=0.3, delay_penalty=0.1)
    ref = _impl_loss_and_grad(rnnt_loss_reference, logits, targets, ll, tl, -1, True, **kw)
    f32 = _impl_loss_and_grad(rnnt_loss, logits.float(), targets, ll, tl, -1, True, **kw)
    torch.testing.assert_close(f32[0].double(), ref[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f32[1].double(), ref[1], rtol=1e-4, atol=1e-6)
    f16 = _impl_loss_and_grad(rnnt_loss, logits.half(), targets, ll, tl, -1, True, **kw)
    ref16 = _impl_loss_and_grad(rnnt_loss, logits.half().float(), targets, ll, tl, -1, True, **kw)
    torch.testing.assert_close(f16[0].float(), ref16[0], rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(f16[1].float(), ref16[1], rtol=1e-2, atol=1e-3)


# ---------------------------------------------------------------------------
# Expected emission frames
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("T,U,seed", [(1, 2, 0), (4, 3, 1), (6, 2, 2), (3, 0, 3)])
def test_expected_emission_frames_match_bruteforce(T, U, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, U + 1, 5, generator=g, dtype=torch.float64) * 2
    tokens = torch.randint(0, 4, (U,), generator=g)
    blank_lp, emit_lp = utterance_lattice(logits, tokens, blank=4)
    want = torch.zeros(U, dtype=torch.float64)
    total = []
    for blanks, emits in _paths(T, U):
        lp = sum(blank_lp[t, u] for t, u in blanks) + sum(emit_lp[t, u] for t, u in emits)
        total.append((float(lp), [t for t, _ in emits]))
    log_p = math.log(sum(math.exp(lp) for lp, _ in total))
    for lp, frames in total:
        want += math.exp(lp - log_p) * torch.tensor(frames, dtype=torch.float64)
    got = expected_emission_frames(blank_lp, emit_lp)
    assert got.shape == (U,)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_delay_penalty_moves_expected_emissions_earlier():
    # Tilting every path by exp(-d * sum of its emission frames) lowers the expected sum of frames.
    g = torch.Generator().manual_seed(14)
    logits = torch.randn(8, 4, 6, generator=g, dtype=torch.float64)
    blank_lp, emit_lp = utterance_lattice(logits, [0, 2, 1], blank=5)
    before = expected_emission_frames(blank_lp, emit_lp).sum()
    offsets = delay_penalty_offsets(torch.tensor([8]), 8, 0.5)[0]
    after = expected_emission_frames(blank_lp, emit_lp + offsets[:, None]).sum()
    assert after < before - 0.1


# ---------------------------------------------------------------------------
# Bad options
# ---------------------------------------------------------------------------

BAD = [-0.1, -1, float("nan"), float("inf"), float("-inf"), True, "0.1", None, torch.tensor(0.1)]


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", ["fastemit_lambda", "delay_penalty"])
@pytest.mark.parametrize("value", BAD, ids=repr)
def test_bad_options_raise(impl, name, value):
    logits, targets, ll, tl = make_case(2, 3, 2, 4, -1, seed=0)
    with pytest.raises(ValueError, match=name):
        IMPLS[impl](logits, targets, ll, tl, **{name: value})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("impl", list(IMPLS))
def test_options_on_cuda_match_cpu(impl):
    logits, targets, ll, tl = make_case(3, 4, 3, 6, -1, seed=15)
    kw = dict(fastemit_lambda=0.3, delay_penalty=0.2)
    cpu = _impl_loss_and_grad(IMPLS[impl], logits, targets, ll, tl, -1, True, **kw)
    x = logits.cuda().requires_grad_(True)
    loss = IMPLS[impl](x, targets.cuda(), ll.cuda(), tl.cuda(), reduction="none", **kw)
    (grad,) = torch.autograd.grad((loss * _weights(3).cuda()).sum(), x)
    torch.testing.assert_close(loss.cpu(), cpu[0], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(grad.cpu(), cpu[1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("args,match", [
    ((torch.tensor([3]), 3, -0.5), "delay_penalty"),
    ((torch.tensor([3]), 3, float("nan")), "delay_penalty"),
    ((torch.tensor([[3]]), 3, 0.5), "logit_lengths"),
    (([3], 3, 0.5), "logit_lengths"),
    ((torch.tensor([3]), 0, 0.5), "T must be"),
    ((torch.tensor([3]), 2.0, 0.5), "T must be"),
])
def test_delay_penalty_offsets_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        delay_penalty_offsets(*args)


def test_expected_emission_frames_bad_input():
    with pytest.raises(ValueError, match="blank_lp and emit_lp"):
        expected_emission_frames(torch.zeros(3, 2), torch.zeros(3, 3))
