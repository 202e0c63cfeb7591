"""Notebook 07's new figures and the gradient it derives: every panel's data is the library's.

* ``alpha_mass_figure``: alpha summed per anti-diagonal (it can only fall, and ends at log P) and alpha
  normalised per anti-diagonal, both from ``lattice_tables``;
* ``logit_gradient_figure``: dL/dz for blank, for the next target token (column U masked and hatched) and for
  every other token, on one symmetric scale;
* the gradient w.r.t. the logits, softmax * occupancy - edge posterior, equals autograd through the library's
  losses and torchaudio's ``rnnt_loss``.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torchaudio
from matplotlib.patches import Rectangle

from emformer_edu import viz
from emformer_edu.rnnt.lattice import lattice_tables, utterance_lattice, viterbi
from emformer_edu.rnnt.loss import rnnt_loss, rnnt_loss_bruteforce, rnnt_loss_reference


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _case(T=5, U=3, V=6, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(T, U + 1, V, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, V - 1, (U,), generator=g)  # blank = V - 1 is never a target
    return logits, tokens


def _image(ax):
    return np.ma.getdata(ax.images[0].get_array())


def _gradient_by_formula(logits, tokens, blank):
    """dL/dz = P(k | t, u) * gamma(t, u) - xi_blank [k = blank] - xi_emit [k = y_{u+1}] (notebook 07, section 3)."""
    lat = lattice_tables(*utterance_lattice(logits, tokens, blank))
    grad = torch.softmax(logits, -1) * lat.node_posterior[..., None]
    grad[..., blank] -= lat.blank_posterior
    for u, k in enumerate(tokens.tolist()):
        grad[:, u, k] -= lat.emit_posterior[:, u]
    return grad


def _lengths(T, U):
    return dict(logit_lengths=torch.tensor([T], dtype=torch.int32), target_lengths=torch.tensor([U], dtype=torch.int32))


# ----------------------------------------------------------------------------- the gradient
@pytest.mark.parametrize("T,U,V,blank", [(1, 0, 3, 2), (4, 2, 5, 4), (6, 4, 7, 0), (9, 5, 8, 7)])
def test_gradient_is_softmax_times_occupancy_minus_edge_posterior(T, U, V, blank):
    logits, tokens = _case(T, U, V, seed=T)
    tokens = torch.where(tokens >= blank, tokens + 1, tokens) if blank != V - 1 else tokens  # never the blank
    assert not (tokens == blank).any()
    grad = _gradient_by_formula(logits, tokens, blank)
    assert torch.allclose(grad.sum(-1), torch.zeros(T, U + 1, dtype=torch.float64), atol=1e-12)
    for loss_fn in (rnnt_loss, rnnt_loss_reference, rnnt_loss_bruteforce):
        z = logits[None].clone().requires_grad_(True)
        (by_autograd,) = torch.autograd.grad(
            loss_fn(z, tokens[None].int(), **_lengths(T, U), blank=blank, reduction="sum"), z)
        torch.testing.assert_close(by_autograd[0], grad, rtol=0, atol=1e-10)
    z32 = logits[None].float().requires_grad_(True)
    (by_torchaudio,) = torch.autograd.grad(
        torchaudio.functional.rnnt_loss(z32, tokens[None].int(), **_lengths(T, U), blank=blank, reduction="sum"), z32)
    assert float((by_torchaudio[0].double() - grad).abs().max()) < 1e-5


# ----------------------------------------------------------------------------- alpha's mass
def test_diagonal_normalised_sums_to_one_on_every_anti_diagonal():
    logits, tokens = _case(6, 3)
    lat = lattice_tables(*utterance_lattice(logits, tokens))
    shares = viz.diagonal_normalised(lat.log_alpha)
    n = torch.arange(6)[:, None] + torch.arange(4)[None, :]
    for k in range(6 + 3):
        assert float(shares[n == k].sum()) == pytest.approx(1.0, abs=1e-12)
    # The occupancy has the same property (each alignment crosses each anti-diagonal once) and is left alone by it.
    torch.testing.assert_close(viz.diagonal_normalised(lat.node_posterior.log()), lat.node_posterior)


def test_alpha_mass_figure_draws_the_lattice_tables():
    logits, tokens = _case(5, 3)
    lat = lattice_tables(*utterance_lattice(logits, tokens))
    fig = viz.alpha_mass_figure(lat, token_names=list("xyz"))
    line_ax, grid_ax = [a for a in fig.axes if a.get_title()]
    per_diagonal, final = line_ax.lines[0].get_ydata(), line_ax.lines[1].get_ydata()
    n = torch.arange(5)[:, None] + torch.arange(4)[None, :]
    want = [float(torch.logsumexp(lat.log_alpha[n == k], 0)) for k in range(5 + 3)]
    np.testing.assert_allclose(per_diagonal, want, rtol=1e-12)
    assert per_diagonal[0] == 0.0 and all(np.diff(per_diagonal) <= 1e-12)  # probability only leaves the lattice
    assert final[0] == pytest.approx(lat.log_prob) and final[0] <= per_diagonal[-1]
    np.testing.assert_allclose(_image(grid_ax), viz.diagonal_normalised(lat.log_alpha).T.numpy(), rtol=1e-6)
    assert [t.get_text() for t in grid_ax.get_yticklabels()] == ["0: ∅", "1: x", "2: y", "3: z"]


# ----------------------------------------------------------------------------- the gradient figure
def test_logit_gradient_figure_panels_come_from_the_gradient():
    T, U, V = 6, 3, 5
    logits, tokens = _case(T, U, V)
    grad = _gradient_by_formula(logits, tokens, V - 1)
    best = viterbi(*utterance_lattice(logits, tokens))
    fig = viz.logit_gradient_figure(grad, tokens, blank=-1, token_names=list("xyz"), alignment=best)
    panels = [a for a in fig.axes if a.images and a.get_title()]
    assert len(panels) == 3
    g_blank, g_next, g_other = (_image(a) for a in panels)
    np.testing.assert_allclose(g_blank, grad[..., -1].T.numpy(), rtol=1e-6)
    for u in range(U):
        np.testing.assert_allclose(g_next[u], grad[:, u, tokens[u]].numpy(), rtol=1e-6)
    np.testing.assert_allclose(g_blank + g_next + g_other, 0, atol=1e-6)  # the three add up to 0 at every node
    # One symmetric scale for the three panels.
    limits = {a.images[0].get_clim() for a in panels}
    assert len(limits) == 1
    low, high = limits.pop()
    assert low == -high and high == pytest.approx(float(np.abs(np.stack([g_blank, g_next, g_other])).max()), rel=1e-6)
    # Column U has no next token: masked, hatched, and named in a legend.
    masked = np.ma.getmaskarray(panels[1].images[0].get_array())
    assert masked[U].all() and not masked[:U].any()
    hatched = [p for p in panels[1].patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(hatched) == T
    assert "column U: no next token" in [t.get_text() for t in panels[1].get_legend().get_texts()]
    assert list(panels[0].lines[0].get_xdata())[:-1] == [t for t, _, _ in best.path]


def test_next_token_table_and_its_checks():
    values = torch.arange(2 * 3 * 4, dtype=torch.float64).view(2, 3, 4)
    table, masked = viz.next_token_table(values, [3, 1])
    assert table[:, 0].tolist() == [3.0, 15.0] and table[:, 1].tolist() == [5.0, 17.0]
    assert torch.isnan(table[:, 2]).all() and masked.tolist() == [[False, False, True]] * 2
    with pytest.raises(ValueError, match="expected U = 2 tokens"):
        viz.next_token_table(values, [1])


def test_plot_lattice_masked_cells_are_hatched_and_keep_the_path_legend():
    logits, tokens = _case(4, 2)
    blank_lp, emit_lp = utterance_lattice(logits, tokens)
    best = viterbi(blank_lp, emit_lp)
    ax = viz.plot_lattice(emit_lp.exp(), alignment=best, masked=torch.isinf(emit_lp), masked_label="no emit")
    assert len([p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]) == 4
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Viterbi path (▲ emit)", "no emit"]
    with pytest.raises(ValueError, match="masked must have the shape"):
        viz.plot_lattice(emit_lp.exp(), masked=torch.zeros(3, 3, dtype=torch.bool))
