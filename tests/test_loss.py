"""RNN-T loss: the three implementations agree, and match torchaudio 2.11 (loss and gradient)."""
import importlib
import itertools

import pytest
import torch
import torchaudio.functional as taF

import emformer_edu.rnnt
import emformer_edu.rnnt.loss
from emformer_edu.rnnt.lattice import alignment_paths, lattice_log_probs
from emformer_edu.rnnt.loss import rnnt_loss_bruteforce, rnnt_loss_reference
from emformer_edu.rnnt.loss_fast import rnnt_loss

IMPLS = {"fast": rnnt_loss, "reference": rnnt_loss_reference, "bruteforce": rnnt_loss_bruteforce}


def make_case(B, T, U, V, blank, seed, full=True, dtype=torch.float32):
    """Random inputs. With ``full`` the longest lengths equal the padded sizes (torchaudio needs that)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, U + 1, V, generator=g, dtype=torch.float64).mul_(2).to(dtype)
    blank_idx = blank % V
    # Tokens from [0, V) without blank; padding past the lengths is arbitrary, even blank.
    targets = torch.randint(0, V - 1, (B, U), generator=g, dtype=torch.int32)
    targets = targets + (targets >= blank_idx).int()
    logit_lengths = torch.randint(1, T + 1, (B,), generator=g, dtype=torch.int32)
    target_lengths = torch.randint(0, U + 1, (B,), generator=g, dtype=torch.int32)
    if full:
        logit_lengths[0], target_lengths[-1] = T, U
    pad = torch.arange(U)[None, :] >= target_lengths[:, None]
    targets[pad] = blank_idx
    return logits, targets, logit_lengths, target_lengths


def loss_and_grad(fn, logits, targets, ll, tl, weights=None, **kw):
    x = logits.detach().clone().requires_grad_(True)
    loss = fn(x, targets, ll, tl, **kw)
    if loss.dim() == 0:
        out = loss
    else:
        # Distinct per-utterance weights check that dy is applied per utterance.
        if weights is None:
            weights = torch.arange(1.0, loss.numel() + 1, dtype=loss.dtype, device=loss.device)
        out = (loss * weights).sum()
    (grad,) = torch.autograd.grad(out, x)
    return loss.detach(), grad


# ---------------------------------------------------------------------------
# The three implementations agree
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("B,T,U,V,blank,seed", [
    (1, 1, 0, 2, -1, 0),
    (1, 1, 3, 5, 0, 1),
    (2, 3, 2, 4, -1, 2),
    (3, 4, 3, 6, 2, 3),
    (2, 5, 1, 3, 1, 4),
])
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("clamp", [-1.0, 0.08])
def test_three_implementations_agree(B, T, U, V, blank, seed, fused, clamp):
    logits, targets, ll, tl = make_case(B, T, U, V, blank, seed, full=False, dtype=torch.float64)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    results = {name: loss_and_grad(fn, logits, targets, ll, tl, blank=blank, clamp=clamp,
                                   reduction="none", fused_log_softmax=fused)
               for name, fn in IMPLS.items()}
    loss0, grad0 = results["bruteforce"]
    for name in ("fast", "reference"):
        loss, grad = results[name]
        torch.testing.assert_close(loss, loss0, rtol=1e-10, atol=1e-10, msg=name)
        torch.testing.assert_close(grad, grad0, rtol=1e-9, atol=1e-10, msg=name)


@pytest.mark.parametrize("B,T,U,V", [(3, 12, 6, 17), (4, 30, 10, 40)])
@pytest.mark.parametrize("fused,clamp", [(True, -1.0), (True, 0.05), (False, -1.0)])
def test_fast_equals_reference_equals_torchaudio_beyond_bruteforce_sizes(B, T, U, V, fused, clamp):
    # Too many paths for the oracle (C(39, 10) ~ 6e8): the readable loops are the reference here.
    logits, targets, ll, tl = make_case(B, T, U, V, -1, seed=T + U)
    if not fused:
        logits = torch.log_softmax(logits, -1)
    kw = dict(clamp=clamp, reduction="none", fused_log_softmax=fused)
    loss64, grad64 = loss_and_grad(rnnt_loss, logits.double(), targets, ll, tl, **kw)
    ref64, ref_grad64 = loss_and_grad(rnnt_loss_reference, logits.double(), targets, ll, tl, **kw)
    torch.testing.assert_close(loss64, ref64, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(grad64, ref_grad64, rtol=1e-9, atol=1e-12)
    ta_loss, ta_grad = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl, **kw)
    ref, ref_grad = loss_and_grad(rnnt_loss_reference, logits, targets, ll, tl, **kw)
    torch.testing.assert_close(ref, ta_loss, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(ref_grad, ta_grad, rtol=1e-4, atol=2e-6 * max(1.0, float(ta_loss.abs().max())))


def test_reference_reuses_the_readable_lattice_tables(monkeypatch):
    # rnnt_loss_reference has no recursion of its own: it runs lattice.lattice_tables once per utterance.
    calls = []
    real = emformer_edu.rnnt.loss.lattice_tables

    def spy(blank_lp, emit_lp):
        calls.append(tuple(blank_lp.shape))
        return real(blank_lp, emit_lp)

    monkeypatch.setattr(emformer_edu.rnnt.loss, "lattice_tables", spy)
    logits, targets, ll, tl = make_case(3, 5, 3, 6, -1, 0, full=False, dtype=torch.float64)
    loss = rnnt_loss_reference(logits, targets, ll, tl, reduction="none")
    assert calls == [(int(t), int(u) + 1) for t, u in zip(ll, tl)]
    torch.testing.assert_close(loss, rnnt_loss(logits, targets, ll, tl, reduction="none"))


PUBLIC = {  # name: home module; every one is also importable from emformer_edu.rnnt
    "lattice": ["alignment_paths", "delay_penalty_offsets", "expected_emission_frames", "lattice_log_probs", "Lattice",
                "LatticeAlignment", "forced_align", "lattice_tables", "log_alpha", "log_beta", "token_frames", "utterance_lattice", "viterbi", "path_log_probs"],
    "loss": ["rnnt_loss_bruteforce", "rnnt_loss_reference"],
    "loss_fast": ["alpha_beta", "edge_posteriors", "rnnt_loss"],
}


@pytest.mark.parametrize("module", list(PUBLIC))
def test_public_names_import_from_their_module_and_the_package(module):
    home = importlib.import_module(f"emformer_edu.rnnt.{module}")
    for name in PUBLIC[module]:
        assert name in home.__all__, name
        assert getattr(emformer_edu.rnnt, name) is getattr(home, name), name
    # emformer_edu.rnnt.loss still offers every loss name (the old import path).
    for name in ("rnnt_loss", "alpha_beta", "edge_posteriors", "lattice_log_probs", "alignment_paths"):
        assert name in emformer_edu.rnnt.loss.__all__
        assert getattr(emformer_edu.rnnt.loss, name) is getattr(emformer_edu.rnnt, name)


def test_alignment_paths_count_and_shape():
    for T, U in [(1, 0), (1, 3), (4, 0), (3, 2), (4, 3)]:
        paths = list(alignment_paths(T, U))
        assert len(paths) == len(list(itertools.combinations(range(T - 1 + U), U)))
        for p in paths:
            assert len(p) == T + U and p[-1] == (T - 1, U, "blank")
            assert sum(k == "emit" for _, _, k in p) == U


def test_bruteforce_refuses_large_lattices():
    logits, targets, ll, tl = make_case(1, 30, 12, 4, -1, 0)
    with pytest.raises(ValueError, match="too many alignments"):
        rnnt_loss_bruteforce(logits, targets, ll, tl)


def test_lattice_log_probs_shapes_and_mask():
    logits, targets, ll, tl = make_case(3, 5, 4, 6, 0, 7, full=False)
    blank_lp, emit_lp = lattice_log_probs(logits, targets, ll, tl, blank=0)
    assert blank_lp.shape == emit_lp.shape == (3, 5, 5)
    lp = torch.log_softmax(logits, -1)
    for b in range(3):
        T_b, U_b = int(ll[b]), int(tl[b])
        torch.testing.assert_close(blank_lp[b, :T_b, :U_b + 1], lp[b, :T_b, :U_b + 1, 0])
        for u in range(U_b):
            torch.testing.assert_close(emit_lp[b, :T_b, u], lp[b, :T_b, u, int(targets[b, u])])
        assert torch.isneginf(blank_lp[b, T_b:]).all() and torch.isneginf(blank_lp[b, :, U_b + 1:]).all()
        assert torch.isneginf(emit_lp[b, T_b:]).all() and torch.isneginf(emit_lp[b, :, U_b:]).all()


# ---------------------------------------------------------------------------
# Parity with torchaudio 2.11 (its CPU kernel takes float32 or float16 logits,
# int32 targets and lengths, and needs max lengths == padded sizes)
# ---------------------------------------------------------------------------

def test_torchaudio_cpu_kernel_dtypes():
    # Why the parity tests run in float32: torchaudio's CPU kernel takes only float32 and
    # float16 logits (and int32 targets/lengths); ours also takes float64 and int64.
    logits, targets, ll, tl = make_case(2, 4, 2, 5, -1, 0)
    taF.rnnt_loss(logits, targets, ll, tl)
    taF.rnnt_loss(logits.half(), targets, ll, tl)
    for bad in (dict(logits=logits.double()), dict(targets=targets.long())):
        args = {**dict(logits=logits, targets=targets, logit_lengths=ll, target_lengths=tl), **bad}
        with pytest.raises(RuntimeError):
            taF.rnnt_loss(**args)
        rnnt_loss(**args)


SIZES = [  # B, T, U, V
    (1, 1, 0, 3),    # T = 1, U = 0: a single blank
    (2, 1, 4, 5),    # T = 1: all tokens in the first frame
    (3, 6, 0, 4),    # U = 0
    (4, 7, 5, 9),
    (3, 12, 6, 17),
    (5, 20, 9, 33),
]


@pytest.mark.parametrize("B,T,U,V", SIZES)
@pytest.mark.parametrize("blank", ["first", "last", "middle"])
def test_matches_torchaudio(B, T, U, V, blank):
    blank = {"first": 0, "last": -1, "middle": V // 2}[blank]
    seed = hash((B, T, U, V)) % 1000
    logits, targets, ll, tl = make_case(B, T, U, V, blank, seed)
    combos = [("none", -1.0, True), ("mean", -1.0, True), ("sum", 0.3, True), ("none", 0.05, True),
              ("none", -1.0, False), ("mean", 0.05, False)]
    for reduction, clamp, fused in combos:
        x = logits if fused else torch.log_softmax(logits, -1)
        kw = dict(blank=blank, clamp=clamp, reduction=reduction, fused_log_softmax=fused)
        loss, grad = loss_and_grad(rnnt_loss, x, targets, ll, tl, **kw)
        ref_loss, ref_grad = loss_and_grad(taF.rnnt_loss, x, targets, ll, tl, **kw)
        msg = f"{kw}"
        # float32 posteriors carry ~1e-7 * |loss| absolute error, in both implementations.
        atol = 2e-6 * max(1.0, float(ref_loss.abs().max()))
        torch.testing.assert_close(loss, ref_loss, rtol=2e-5, atol=2e-5, msg=msg)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=atol, msg=msg)
        # ... and ours is no less accurate than torchaudio's, against float64.
        _, grad64 = loss_and_grad(rnnt_loss, x.double(), targets, ll, tl, **kw)
        err, ref_err = (grad.double() - grad64).abs().max(), (ref_grad.double() - grad64).abs().max()
        assert err <= 2 * ref_err + 1e-6, (msg, float(err), float(ref_err))


def test_matches_torchaudio_with_negative_upstream_gradient():
    # dy < 0 takes the unfolded gradient path.
    logits, targets, ll, tl = make_case(3, 8, 4, 7, -1, 11)
    w = torch.tensor([-1.0, 2.0, -0.5])
    for clamp in (-1.0, 0.1):
        loss, grad = loss_and_grad(rnnt_loss, logits, targets, ll, tl, weights=w, clamp=clamp, reduction="none")
        ref_loss, ref_grad = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl, weights=w, clamp=clamp,
                                           reduction="none")
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=2e-6)


def test_zero_upstream_gradient_gives_exact_zeros():
    logits, targets, ll, tl = make_case(3, 8, 4, 7, -1, 12)
    w = torch.tensor([0.0, 1.5, 0.0])
    for clamp in (-1.0, 0.2):
        _, grad = loss_and_grad(rnnt_loss, logits, targets, ll, tl, weights=w, clamp=clamp, reduction="none")
        assert (grad[0] == 0).all() and (grad[2] == 0).all() and (grad[1] != 0).any()


@pytest.mark.parametrize("scale", [30.0, 200.0])
def test_matches_torchaudio_with_extreme_logits(scale):
    # Log-probs far below log(smallest float32) on most entries.
    logits, targets, ll, tl = make_case(3, 10, 5, 11, 0, 13)
    logits = logits * scale
    for clamp in (-1.0, 0.5):
        loss, grad = loss_and_grad(rnnt_loss, logits, targets, ll, tl, blank=0, clamp=clamp, reduction="none")
        ref_loss, ref_grad = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl, blank=0, clamp=clamp,
                                           reduction="none")
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-3)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-3, atol=1e-3)
        # Losses in the thousands leave float32 ~1e-4 of slack; ours is at least as accurate.
        loss64, grad64 = loss_and_grad(rnnt_loss, logits.double(), targets, ll, tl, blank=0, clamp=clamp,
                                       reduction="none")
        assert (grad.double() - grad64).abs().max() <= 2 * (ref_grad.double() - grad64).abs().max() + 1e-6


def test_padding_beyond_lengths_is_ignored():
    # torchaudio needs max lengths == padded sizes; ours also accepts extra padding.
    logits, targets, ll, tl = make_case(3, 9, 5, 6, -1, 5)
    padded = torch.nn.functional.pad(logits, (0, 0, 0, 3, 0, 4), value=7.0)  # U+1 -> U+4, T -> T+4
    padded_targets = torch.nn.functional.pad(targets, (0, 3), value=2)
    loss, grad = loss_and_grad(rnnt_loss, padded, padded_targets, ll, tl, reduction="sum")
    ref_loss, ref_grad = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl, reduction="sum")
    torch.testing.assert_close(loss, ref_loss, rtol=2e-5, atol=2e-5)
    torch.testing.assert_close(grad[:, :9, :6], ref_grad, rtol=1e-4, atol=2e-6)
    assert grad[:, 9:].abs().max() == 0 and grad[:, :, 6:].abs().max() == 0


def test_float64_and_int64_inputs():
    logits, targets, ll, tl = make_case(2, 6, 3, 5, -1, 9)
    loss32, grad32 = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl)
    loss64, grad64 = loss_and_grad(rnnt_loss, logits.double(), targets.long(), ll.long(), tl.long())
    assert loss64.dtype == grad64.dtype == torch.float64
    torch.testing.assert_close(loss64.float(), loss32, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad64.float(), grad32, rtol=1e-4, atol=1e-6)


def test_float16_is_computed_in_float32():
    logits, targets, ll, tl = make_case(2, 5, 3, 6, -1, 3)
    half = logits.half()
    loss, grad = loss_and_grad(rnnt_loss, half, targets, ll, tl)
    ref_loss, ref_grad = loss_and_grad(rnnt_loss, half.float(), targets, ll, tl)
    assert loss.dtype == grad.dtype == torch.float16
    torch.testing.assert_close(loss.float(), ref_loss, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(grad.float(), ref_grad, rtol=1e-3, atol=1e-3)


def test_second_backward_with_retain_graph():
    logits, targets, ll, tl = make_case(2, 6, 3, 5, 0, 2)
    x = logits.clone().requires_grad_(True)
    loss = rnnt_loss(x, targets, ll, tl, blank=0)
    (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
    (g2,) = torch.autograd.grad(loss, x)
    torch.testing.assert_close(g1, g2)


def test_no_grad_forward():
    logits, targets, ll, tl = make_case(2, 6, 3, 5, -1, 2)
    with torch.no_grad():
        loss = rnnt_loss(logits, targets, ll, tl, reduction="none")
    torch.testing.assert_close(loss, taF.rnnt_loss(logits, targets, ll, tl, reduction="none"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_matches_torchaudio_on_cuda():
    for seed, (B, T, U, V) in enumerate([(3, 12, 6, 17), (4, 30, 10, 40)]):
        logits, targets, ll, tl = [t.cuda() for t in make_case(B, T, U, V, -1, seed)]
        for clamp in (-1.0, 0.1):
            loss, grad = loss_and_grad(rnnt_loss, logits, targets, ll, tl, clamp=clamp,
                                       weights=torch.arange(1.0, B + 1, device="cuda"), reduction="none")
            ref_loss, ref_grad = loss_and_grad(taF.rnnt_loss, logits, targets, ll, tl, clamp=clamp,
                                               weights=torch.arange(1.0, B + 1, device="cuda"), reduction="none")
            torch.testing.assert_close(loss, ref_loss, rtol=2e-5, atol=2e-5)
            torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=2e-6)
        cpu_loss, cpu_grad = loss_and_grad(rnnt_loss, logits.cpu().double(), targets.cpu(), ll.cpu(), tl.cpu())
        gpu_loss, gpu_grad = loss_and_grad(rnnt_loss, logits.double(), targets, ll, tl)
        torch.testing.assert_close(gpu_loss.cpu(), cpu_loss)
        torch.testing.assert_close(gpu_grad.cpu(), cpu_grad)


# ---------------------------------------------------------------------------
# torchaudio's published reference values
# (test/torchaudio_unittest/common_utils/rnnt_utils.py in pytorch/audio)
# ---------------------------------------------------------------------------

B1_T2_U3_D5_LOGITS = [
    0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.2, 0.8, 0.1,
    0.1, 0.6, 0.1, 0.1, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0.7, 0.1, 0.2, 0.1, 0.1,
]
B1_T2_U3_D5_GRADS = [
    0.17703132, -0.39992708, 0.17703132, 0.17703132, -0.13116692,
    0.12247062, 0.12247062, -0.181684, 0.12247062, -0.1857276,
    0.06269141, 0.06269141, 0.06928471, 0.12624498, -0.32091248,
    0.05456069, -0.2182428, 0.05456069, 0.05456069, 0.05456069,
    0.12073967, 0.12073967, -0.48295838, 0.12073967, 0.12073967,
    0.30741188, 0.16871123, 0.18645471, 0.16871123, -0.83128875,
]
B2_T4_U3_D3_LOGITS = [
    0.065357, 0.787530, 0.081592, 0.529716, 0.750675, 0.754135, 0.609764, 0.868140, 0.622532,
    0.668522, 0.858039, 0.164539, 0.989780, 0.944298, 0.603168, 0.946783, 0.666203, 0.286882,
    0.094184, 0.366674, 0.736168, 0.166680, 0.714154, 0.399400, 0.535982, 0.291821, 0.612642,
    0.324241, 0.800764, 0.524106, 0.779195, 0.183314, 0.113745, 0.240222, 0.339470, 0.134160,
    0.505562, 0.051597, 0.640290, 0.430733, 0.829473, 0.177467, 0.320700, 0.042883, 0.302803,
    0.675178, 0.569537, 0.558474, 0.083132, 0.060165, 0.107958, 0.748615, 0.943918, 0.486356,
    0.418199, 0.652408, 0.024243, 0.134582, 0.366342, 0.295830, 0.923670, 0.689929, 0.741898,
    0.250005, 0.603430, 0.987289, 0.592606, 0.884672, 0.543450, 0.660770, 0.377128, 0.358021,
]
B2_T4_U3_D3_GRADS = [
    -0.186844, -0.062555, 0.249399, -0.203377, 0.202399, 0.000977, -0.141016, 0.079123, 0.061893,
    -0.011552, -0.081280, 0.092832, -0.154257, 0.229433, -0.075176, -0.246593, 0.146405, 0.100188,
    -0.012918, -0.061593, 0.074512, -0.055986, 0.219831, -0.163845, -0.497627, 0.209240, 0.288387,
    0.013605, -0.030220, 0.016615, 0.113925, 0.062781, -0.176706, -0.667078, 0.367659, 0.299419,
    -0.356344, -0.055347, 0.411691, -0.096922, 0.029459, 0.067463, -0.063518, 0.027654, 0.035863,
    -0.154499, -0.073942, 0.228441, -0.166790, -0.000088, 0.166878, -0.172370, 0.105565, 0.066804,
    0.023875, -0.118256, 0.094381, -0.104707, -0.108934, 0.213642, -0.369844, 0.180118, 0.189726,
    0.025714, -0.079462, 0.053748, 0.122328, -0.238789, 0.116460, -0.598687, 0.302203, 0.296484,
]
REFERENCE_CASES = {
    "B1_T2_U3_D5": dict(logits=B1_T2_U3_D5_LOGITS, shape=(1, 2, 3, 5), targets=[[1, 2]], logit_lengths=[2],
                        target_lengths=[2], blank=-1, costs=[5.09566688538], grads=B1_T2_U3_D5_GRADS),
    "B2_T4_U3_D3": dict(logits=B2_T4_U3_D3_LOGITS, shape=(2, 4, 3, 3), targets=[[1, 2], [1, 1]],
                        logit_lengths=[4, 4], target_lengths=[2, 2], blank=0,
                        costs=[4.2806528590890736, 3.9384369822503591], grads=B2_T4_U3_D3_GRADS),
}


@pytest.mark.parametrize("case", list(REFERENCE_CASES))
@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torchaudio_reference_values(case, impl, dtype):
    c = REFERENCE_CASES[case]
    logits = torch.tensor(c["logits"], dtype=dtype).reshape(c["shape"])
    as_i32 = lambda v: torch.tensor(v, dtype=torch.int32)  # noqa: E731
    # Summed loss, as torchaudio's test does, so the gradient is the per-utterance one.
    loss, grad = loss_and_grad(IMPLS[impl], logits, as_i32(c["targets"]), as_i32(c["logit_lengths"]),
                               as_i32(c["target_lengths"]), weights=torch.ones(c["shape"][0], dtype=dtype),
                               blank=c["blank"], reduction="none")
    torch.testing.assert_close(loss, torch.tensor(c["costs"], dtype=dtype), rtol=1e-6, atol=1e-6)
    # The published gradients carry 6 to 8 digits.
    torch.testing.assert_close(grad, torch.tensor(c["grads"], dtype=dtype).reshape(c["shape"]),
                               rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------
# Bad input: clear ValueErrors, for every implementation
# ---------------------------------------------------------------------------

def _good():
    """Valid inputs: B=2, T=4, U=2, V=5, blank -1 (= 4)."""
    logits = torch.randn(2, 4, 3, 5)
    targets = torch.tensor([[1, 2], [3, 0]], dtype=torch.int32)
    return logits, targets, torch.tensor([4, 3], dtype=torch.int32), torch.tensor([2, 1], dtype=torch.int32)


def _with(logits=None, targets=None, logit_lengths=None, target_lengths=None):
    """_good() with some inputs replaced."""
    given = (logits, targets, logit_lengths, target_lengths)
    return tuple(g if x is None else x for x, g in zip(given, _good()))


def _nan_logits():
    logits = _good()[0]
    logits[1, 3, 2, 4] = float("nan")  # in the padding of utterance 1, even
    return _with(logits=logits)


i32 = lambda *v: torch.tensor(v, dtype=torch.int32)  # noqa: E731

BAD_INPUTS = {  # name: (inputs, extra kwargs, expected message)
    "blank in targets": (lambda: _with(targets=torch.tensor([[1, 4], [3, 0]], dtype=torch.int32)), {},
                         r"must not contain the blank index 4 \(found at targets\[0, 1\]\)"),
    "target length over U": (lambda: _with(target_lengths=i32(3, 1)), {},
                             r"target_lengths must be <= U=2 .* got max 3"),
    "negative target length": (lambda: _with(target_lengths=i32(2, -1)), {},
                               r"target_lengths must be >= 0, got min -1"),
    "logit length over T": (lambda: _with(logit_lengths=i32(5, 3)), {},
                            r"logit_lengths must be <= T=4 .* got max 5"),
    "logit length zero": (lambda: _with(logit_lengths=i32(4, 0)), {},
                          r"logit_lengths must be >= 1, got min 0"),
    "U+1 mismatch": (lambda: _with(logits=torch.randn(2, 4, 4, 5)), {},
                     r"logits.shape\[2\] \(U\+1\) must equal targets.shape\[1\] \+ 1 = 3, got 4"),
    "float targets": (lambda: _with(targets=_good()[1].float()), {},
                      r"targets must be an integer tensor \(int32 or int64\), got torch.float32"),
    "float lengths": (lambda: _with(logit_lengths=_good()[2].float()), {},
                      r"logit_lengths must be an integer tensor .* got torch.float32"),
    "int logits": (lambda: _with(logits=_good()[0].long()), {},
                   r"logits must be a floating tensor .* got torch.int64"),
    "3-D logits": (lambda: _with(logits=_good()[0][0]), {},
                   r"logits must be 4-D \(B, T, U\+1, V\), got shape \(4, 3, 5\)"),
    "batch mismatch": (lambda: _with(targets=_good()[1][:1]), {},
                       r"targets batch size must equal logits batch size B=2, got 1"),
    "lengths shape": (lambda: _with(target_lengths=i32(2, 1, 1)), {},
                      r"target_lengths must have shape \(B,\) = \(2,\), got \(3,\)"),
    "target out of range": (lambda: _with(targets=_good()[1] + 5), {},
                            r"targets must be in \[0, V=5\), got 6"),
    "blank out of range": (_good, {"blank": 5}, r"blank must be in \[-V, V\) = \[-5, 5\), got 5"),
    "NaN in logits": (_nan_logits, {}, r"logits contain NaN"),
    "unknown reduction": (_good, {"reduction": "avg"},
                          r"reduction must be one of .*'none', 'mean', 'sum'.*, got 'avg'"),
}


@pytest.mark.parametrize("what", list(BAD_INPUTS))
@pytest.mark.parametrize("impl", list(IMPLS))
def test_bad_input_raises(what, impl):
    make, kw, match = BAD_INPUTS[what]
    with pytest.raises(ValueError, match=match):
        IMPLS[impl](*make(), **kw)


@pytest.mark.parametrize("fused", [True, False])
def test_nan_is_caught_on_both_paths(fused):
    logits, targets, ll, tl = _nan_logits()
    with pytest.raises(ValueError, match="logits contain NaN"):
        rnnt_loss(logits, targets, ll, tl, fused_log_softmax=fused)
