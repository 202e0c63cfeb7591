"""The pruned RNN-T loss (emformer_edu.rnnt.pruned) against the full loss and brute force."""
import pytest
import torch

from emformer_edu import alignment_paths, lattice_log_probs, log_alpha, rnnt_loss, rnnt_loss_bruteforce
from emformer_edu.rnnt import pruned as P

DT = torch.float64


def _case(seed=0, B=3, T=7, U=4, V=6, D=5, ll=(7, 5, 6), tl=(4, 2, 3)):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, V - 1, (B, U), generator=g)  # blank = V - 1 never a target
    am = torch.randn(B, T, V, dtype=DT, generator=g)
    lm = torch.randn(B, U + 1, V, dtype=DT, generator=g)
    enc = torch.randn(B, T, D, dtype=DT, generator=g)
    pred = torch.randn(B, U + 1, D, dtype=DT, generator=g)
    lin = torch.nn.Linear(D, V).double()
    with torch.no_grad():
        lin.weight.copy_(torch.randn(V, D, dtype=DT, generator=g))
        lin.bias.copy_(torch.randn(V, dtype=DT, generator=g))
    joiner = lambda e, p: lin(torch.tanh(e + p))  # noqa: E731
    return dict(am=am, lm=lm, enc=enc, pred=pred, joiner=joiner, targets=targets,
                ll=torch.tensor(ll, dtype=torch.int32), tl=torch.tensor(tl, dtype=torch.int32))


def _full_logits(c):
    return c["joiner"](c["enc"][:, :, None], c["pred"][:, None])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_simple_loss_equals_full_loss_of_materialised_additive_joiner(seed):
    c = _case(seed)
    am, lm = c["am"].requires_grad_(True), c["lm"].requires_grad_(True)
    simple = P.simple_rnnt_loss(am, lm, c["targets"], c["ll"], c["tl"], reduction="none")
    brute = rnnt_loss_bruteforce(am[:, :, None] + lm[:, None], c["targets"], c["ll"], c["tl"], reduction="none")
    torch.testing.assert_close(simple, brute, rtol=1e-10, atol=1e-10)
    g_simple = torch.autograd.grad(simple.sum(), (am, lm))
    g_brute = torch.autograd.grad(brute.sum(), (am, lm))
    for a, b in zip(g_simple, g_brute):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_simple_loss_survives_logits_whose_exp_would_overflow():
    c = _case(3)
    am, lm = c["am"] * 40 + 500, c["lm"] * 40 - 300  # exp(500) overflows float32 and float64 alike here
    simple = P.simple_rnnt_loss(am.float(), lm.float(), c["targets"], c["ll"], c["tl"], reduction="none")
    full = rnnt_loss(am[:, :, None] + lm[:, None], c["targets"], c["ll"], c["tl"], reduction="none")
    assert torch.isfinite(simple).all()
    torch.testing.assert_close(simple.double(), full, rtol=1e-4, atol=1e-3)


def test_occupancy_is_minus_the_gradient_of_the_simple_loss():
    c = _case(4)
    blank_lp, emit_lp = P.simple_lattice(c["am"], c["lm"], c["targets"], c["tl"], blank=5)
    blank_lp.requires_grad_(True)
    emit_lp.requires_grad_(True)
    P.lattice_loss(blank_lp, emit_lp, c["ll"], c["tl"]).sum().backward()
    _, (occ_blank, occ_emit) = P.simple_rnnt_loss(c["am"], c["lm"], c["targets"], c["ll"], c["tl"],
                                                  return_occupancy=True)
    torch.testing.assert_close(-blank_lp.grad, occ_blank)
    torch.testing.assert_close(-emit_lp.grad, occ_emit)
    # Every path leaves each of its frames by exactly one blank.
    for b in range(3):
        torch.testing.assert_close(occ_blank[b, : int(c["ll"][b])].sum(1), torch.ones(int(c["ll"][b]), dtype=DT))


@pytest.mark.parametrize("S", [5, 6, 9])
def test_band_at_least_u_plus_one_equals_full_loss(S):
    c = _case(5)
    enc, pred = c["enc"].requires_grad_(True), c["pred"].requires_grad_(True)
    full = rnnt_loss(_full_logits(c), c["targets"], c["ll"], c["tl"], reduction="none")
    out = P.pruned_rnnt_loss(enc, pred, c["am"], c["lm"], c["targets"], c["ll"], c["tl"], c["joiner"], S,
                             reduction="none")
    torch.testing.assert_close(out.pruned, full, rtol=1e-10, atol=1e-10)
    g_pruned = torch.autograd.grad(out.pruned.sum(), (enc, pred))
    g_full = torch.autograd.grad(full.sum(), (enc, pred))
    for a, b in zip(g_pruned, g_full):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("S", [2, 3])
def test_narrow_band_loses_paths_never_gains(S):
    c = _case(6, B=4, T=9, U=6, ll=(9, 8, 9, 5), tl=(6, 6, 2, 4))
    full = rnnt_loss(_full_logits(c), c["targets"], c["ll"], c["tl"], reduction="none")
    out = P.pruned_rnnt_loss(c["enc"], c["pred"], c["am"], c["lm"], c["targets"], c["ll"], c["tl"], c["joiner"],
                             S, reduction="none")
    assert torch.isfinite(out.pruned).all()  # the band always holds a path
    assert (out.pruned >= full - 1e-12).all()  # the band's paths are a subset of all paths
    assert (out.pruned > full + 1e-6).any()  # and here a strict one: pruning did something


@pytest.mark.parametrize("S", [2, 3])
def test_pruned_loss_is_the_sum_over_the_paths_inside_the_band(S):
    # Oracle: enumerate every alignment, keep those whose nodes all lie in their frame's band,
    # score them with the FULL joiner's log-probs.
    c = _case(12, B=3, T=6, U=4, ll=(6, 5, 6), tl=(4, 3, 2))
    out = P.pruned_rnnt_loss(c["enc"], c["pred"], c["am"], c["lm"], c["targets"], c["ll"], c["tl"], c["joiner"],
                             S, reduction="none")
    with torch.no_grad():
        blank_lp, emit_lp = lattice_log_probs(_full_logits(c), c["targets"], c["ll"], c["tl"])
    for b in range(3):
        T_b, U_b, s = int(c["ll"][b]), int(c["tl"][b]), out.starts[b].tolist()
        kept = []
        for path in alignment_paths(T_b, U_b):
            if all(s[t] <= u < s[t] + S for t, u, _ in path):
                kept.append(sum(float((blank_lp if k == "blank" else emit_lp)[b, t, u]) for t, u, k in path))
        assert kept, "the band holds no path"
        torch.testing.assert_close(out.pruned[b], -torch.logsumexp(torch.tensor(kept, dtype=DT), 0))


def _bounds_ok(starts, ll, tl, S):
    for b in range(starts.shape[0]):
        T_b, U_b = int(ll[b]), int(tl[b])
        s = starts[b, :T_b]
        assert int(s[0]) == 0
        assert (s[1:] >= s[:-1]).all() and (s[1:] - s[:-1] <= S - 1).all()
        assert (s >= 0).all() and (s <= max(U_b + 1 - S, 0)).all()
        assert int(s[-1]) <= U_b < int(s[-1]) + S  # the last node (T_b - 1, U_b) is in the band


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("S", [2, 3, 4])
def test_bounds_are_monotone_and_in_range(seed, S):
    g = torch.Generator().manual_seed(seed)
    B, T, U = 4, 12, 9
    ll = torch.tensor([12, 10, 7, 12])
    tl = torch.tensor([9, 5, 7, 0])
    occ_blank, occ_emit = torch.rand(B, T, U + 1, generator=g), torch.rand(B, T, U + 1, generator=g)
    starts = P.prune_ranges(occ_blank, occ_emit, ll, tl, S)
    assert starts.shape == (B, T) and starts.dtype == torch.long
    _bounds_ok(starts, ll, tl, S)


def test_bounds_follow_a_sharp_alignment():
    # Occupancy of one path: frame t leaves by its blank at u = t // 2, so on even frames t > 0 it
    # covers [t/2 - 1, t/2], on odd ones only t // 2 (a tie between two windows: the lower wins).
    T, U = 10, 4
    occ_blank, occ_emit = torch.zeros(1, T, U + 1), torch.zeros(1, T, U + 1)
    for t in range(T):
        occ_blank[0, t, t // 2] = 1
        if t % 2 == 0 and t > 0:
            occ_emit[0, t, t // 2 - 1] = 1
    starts = P.prune_ranges(occ_blank, occ_emit, torch.tensor([T]), torch.tensor([U]), 2)
    assert starts[0].tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 3, 3]
    _bounds_ok(starts, torch.tensor([T]), torch.tensor([U]), 2)


def test_band_gather_matches_full_joiner_on_the_band():
    c = _case(7)
    starts = torch.tensor([[0, 0, 1, 1, 2, 2, 2]] * 3)
    enc_band, pred_band = P.do_rnnt_pruning(c["enc"], c["pred"], starts, 3)
    band = c["joiner"](enc_band, pred_band)
    full = _full_logits(c)
    for t in range(7):
        torch.testing.assert_close(band[:, t], full[:, t, int(starts[0, t]):int(starts[0, t]) + 3])


def test_band_alpha_loop_equals_grid_recursion():
    c = _case(8)
    S, b = 3, 0
    T_b, U_b = int(c["ll"][b]), int(c["tl"][b])
    _, (ob, oe) = P.simple_rnnt_loss(c["am"], c["lm"], c["targets"], c["ll"], c["tl"], return_occupancy=True)
    starts = P.prune_ranges(ob, oe, c["ll"], c["tl"], S)
    band_logits = c["joiner"](*P.do_rnnt_pruning(c["enc"], c["pred"], starts, S))
    bb, be = P.band_lattice(band_logits, c["targets"], c["tl"], starts, blank=5)
    alpha, log_p = P.band_log_alpha(bb[b, :T_b], be[b, :T_b], starts[b, :T_b], U_b)
    grid_b = P.band_to_grid(bb, starts, 5)[b, :T_b, : U_b + 1]
    grid_e = P.band_to_grid(be, starts, 5)[b, :T_b, : U_b + 1].clone()
    grid_e[:, U_b] = float("-inf")
    grid_alpha = log_alpha(grid_b, grid_e)
    for t in range(T_b):
        for j in range(S):
            u = int(starts[b, t]) + j
            if u <= U_b:
                torch.testing.assert_close(alpha[t, j], grid_alpha[t, u])
    loss = P.pruned_loss(band_logits, c["targets"], c["ll"], c["tl"], starts, reduction="none")
    torch.testing.assert_close(-log_p, loss[b])


def test_gradcheck_pruned_loss_wrt_band_logits():
    c = _case(9, B=2, T=5, U=3, V=4, ll=(5, 4), tl=(3, 2))
    starts = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 1, 1, 1]])
    x = torch.randn(2, 5, 2, 4, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda z: P.pruned_loss(z, c["targets"], c["ll"], c["tl"], starts, reduction="sum"), (x,))


def test_gradcheck_simple_loss_wrt_am_and_lm():
    c = _case(10, B=2, T=5, U=3, V=4, ll=(5, 4), tl=(3, 2))
    am, lm = c["am"].requires_grad_(True), c["lm"].requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, m: P.simple_rnnt_loss(a, m, c["targets"], c["ll"], c["tl"], reduction="mean"), (am, lm))


def test_min_prune_range():
    assert P.min_prune_range(torch.tensor([10, 4]), torch.tensor([3, 4])) == 2
    assert P.min_prune_range(torch.tensor([10, 4]), torch.tensor([3, 5])) == 3  # ceil(5/4) + 1


def test_bad_prune_range_and_shapes_raise():
    c = _case(11)
    args = (c["enc"], c["pred"], c["am"], c["lm"], c["targets"], c["ll"], c["tl"], c["joiner"])
    with pytest.raises(ValueError, match="prune_range must be >= 2"):
        P.pruned_rnnt_loss(*args, 1)
    with pytest.raises(ValueError, match="must be an int"):
        P.pruned_rnnt_loss(*args, 2.5)
    with pytest.raises(ValueError, match="too narrow"):  # U = 9 tokens in T = 3 frames needs S >= 4
        P.prune_ranges(torch.rand(1, 3, 10), torch.rand(1, 3, 10), torch.tensor([3]), torch.tensor([9]), 3)
    with pytest.raises(ValueError, match="am .* must agree"):
        P.simple_rnnt_loss(c["am"], c["lm"][..., :4], c["targets"], c["ll"], c["tl"])
    with pytest.raises(ValueError, match="3-D"):
        P.simple_rnnt_loss(c["am"][0], c["lm"], c["targets"], c["ll"], c["tl"])
    with pytest.raises(ValueError, match="U\\+1"):
        P.simple_rnnt_loss(c["am"], c["lm"][:, :3], c["targets"], c["ll"], c["tl"])
    with pytest.raises(ValueError, match="occ_blank and occ_emit"):
        P.prune_ranges(torch.rand(3, 7, 5), torch.rand(3, 7, 4), c["ll"], c["tl"], 2)
    with pytest.raises(ValueError, match="starts must be"):
        P.do_rnnt_pruning(c["enc"], c["pred"], torch.zeros(3, 6, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="runs past"):
        P.do_rnnt_pruning(c["enc"], c["pred"], torch.full((3, 7), 4), 2)
    with pytest.raises(ValueError, match="4-D"):
        P.pruned_loss(torch.zeros(3, 7, 2), c["targets"], c["ll"], c["tl"], torch.zeros(3, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="band width"):
        P.pruned_loss(torch.zeros(3, 7, 6, 6), c["targets"], c["ll"], c["tl"], torch.zeros(3, 7, dtype=torch.long))
    with pytest.raises(ValueError, match="starts must lie"):
        P.pruned_loss(torch.zeros(3, 7, 2, 6), c["targets"], c["ll"], c["tl"], torch.full((3, 7), 4))
    with pytest.raises(ValueError, match="encoder_out .* must match"):
        P.pruned_rnnt_loss(c["enc"][:, :6], *args[1:], 3)


@pytest.fixture(scope="module")
def spoken_batches():
    from emformer_edu.data import SpokenDataset
    from emformer_edu import pretrained
    from emformer_edu.teaching.viz.pruned import model_outputs
    torch.manual_seed(0)
    p = pretrained.spoken()
    train = SpokenDataset(48, "train", 123, p.spoken_config)
    fit = model_outputs(p, [train[i] for i in range(48)])
    test_items = p.held_out(16)
    return p, fit, model_outputs(p, [test_items[i] for i in range(16)])


def test_small_band_stays_close_on_the_trained_model(spoken_batches):
    # Measured on these 16 held-out sentences (11-31 characters each): with the fitted
    # simple projections, S = 6 is off by at most 1.6 % per utterance and 0.2 % of the batch total, where S = 2
    # is off by ~400x. (S = 5 misses most of one sentence's probability, +78 %: notebook 11 shows such a
    # sentence.) 2 % per utterance and 0.5 % of the batch total leave room for float32 summation order, no
    # more: a band drawn from bad bounds misses by tens of percent.
    p, fit, (enc, pred, tg, ll, tl) = spoken_batches
    torch.set_num_threads(1)
    am_fn, lm_fn = P.fit_simple_projections(*fit, joiner=p.model.joiner, blank=p.blank)
    with torch.no_grad():
        logits, _, _ = p.model.join(enc, ll, pred, tl + 1)
        full = rnnt_loss(logits, tg, ll, tl, blank=p.blank, reduction="none")
        band = P.joiner_on_band(p.model.joiner)
        rel = {}
        for S in (2, 6):
            out = P.pruned_rnnt_loss(enc, pred, am_fn(enc), lm_fn(pred), tg, ll, tl, band, S, blank=p.blank,
                                     reduction="none")
            assert (out.pruned >= full * (1 - 1e-5)).all()
            rel[S] = ((out.pruned - full) / full, out.pruned.sum() / full.sum() - 1)
    assert float(rel[2][0].max()) > 1.0  # a band too narrow for these sentences misses most paths
    for S in (6,):
        assert float(rel[S][0].max()) < 0.02, (S, rel[S])
        assert float(rel[S][1]) < 0.005, (S, rel[S])
