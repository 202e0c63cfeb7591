"""Figures and widgets of notebooks 06 (transducer) and 07 (loss and lattice) draw library data."""
import dataclasses
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle

import emformer_edu
from emformer_edu import exercises, pretrained, viz
from emformer_edu.teaching import widgets
from emformer_edu.rnnt.lattice import forced_align, lattice_tables, path_log_probs, utterance_lattice, viterbi
from emformer_edu.teaching.recorder import predictor_trace
from emformer_edu.rnnt.loss import rnnt_loss
from emformer_edu.transducer.time_reduction import TimeReduction

SMALL = emformer_edu.EmformerRNNTConfig.tiny(num_symbols=6).replace(time_reduction_stride=4, symbol_embedding_dim=16)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def toy():
    return pretrained.toy()


def _tiny_lattice(T=4, U=2, V=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(T, U + 1, V, generator=g, dtype=torch.float64) * 1.5
    tokens = torch.randint(0, V - 1, (U,), generator=g)
    return logits, tokens


def _image(ax):
    return np.ma.getdata(ax.images[0].get_array())


# ----------------------------------------------------------------------------- notebook 06
def test_time_reduction_figure_shows_both_tensors():
    x = torch.arange(10, dtype=torch.float32).view(1, 10, 1).expand(1, 10, 3)
    y, lengths = TimeReduction(4)(x, torch.tensor([10]))
    fig = viz.time_reduction_figure(x[0], y[0], 4)
    ax_in, ax_out = fig.axes[:2]
    assert (_image(ax_in) == x[0].numpy()).all() and (_image(ax_out) == y[0].numpy()).all()
    assert _image(ax_out).shape == (2, 12) and int(lengths) == 2
    assert "T // 4 = 2" in ax_out.get_title()
    assert any(t.get_text() == "dropped" for t in ax_in.texts)  # frames 8 and 9 do not fill a group


def test_predictor_trace_records_real_steps_and_removes_hooks():
    torch.manual_seed(0)
    model = emformer_edu.emformer_rnnt_model(**dataclasses.asdict(SMALL)).eval()
    tokens = torch.tensor([[5, 0, 2, 1, 3], [5, 1, 1, 4, 0]])
    with torch.no_grad():
        expected, _, expected_state = model.predictor(tokens, torch.tensor([5, 5]), None)
    trace, (out, _, state) = predictor_trace(model.predictor, tokens, batch=1)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert len(trace) == 2
    for layer, (h, c) in zip(trace, state):
        assert layer["gates"].shape == (5, 64) and layer["cell"].shape == (5, 16) and layer["hidden"].shape == (5, 16)
        # The last step's captured h and c are the state the predictor hands back (batch element 1).
        torch.testing.assert_close(layer["hidden"][-1], h[1])
        torch.testing.assert_close(layer["cell"][-1], c[1])
    # The output is Linear + LayerNorm of the top layer's hidden states.
    top = model.predictor.output_layer_norm(model.predictor.linear(trace[-1]["hidden"]))
    torch.testing.assert_close(top.detach(), expected[1])
    for lstm in model.predictor.lstm_layers:
        assert not lstm._forward_hooks and not lstm.g_norm._forward_hooks and not lstm.c_norm._forward_hooks
    fig = viz.predictor_figure(trace, list("∅acbd"), layer=1)
    torch.testing.assert_close(torch.as_tensor(_image(fig.axes[0])), trace[1]["gates"].T)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list("∅acbd")


def test_joint_figure_panels_come_from_the_lattice():
    logits, tokens = _tiny_lattice(T=6, U=3, V=5)
    fig = viz.joint_figure(logits, tokens, 4, list("abcd∅"))
    blank_lp, emit_lp = utterance_lattice(logits, tokens, 4)
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert len(panels) == 3
    np.testing.assert_allclose(_image(panels[0]), blank_lp.exp().T.numpy(), rtol=1e-6)
    np.testing.assert_allclose(_image(panels[1]), emit_lp[:, :-1].exp().T.numpy(), rtol=1e-6)
    argmax = logits.argmax(-1)
    assert (_image(panels[2]) == (argmax == 4).T.numpy()).all()
    assert len(panels[2].texts) == 6 * 4  # one symbol per node


# ----------------------------------------------------------------------------- notebook 07
@pytest.mark.parametrize("T,U", [(1, 0), (4, 2), (3, 3)])
def test_path_log_probs_sum_to_minus_the_loss(T, U):
    logits, tokens = _tiny_lattice(T, U)
    paths = path_log_probs(*utterance_lattice(logits, tokens))
    assert len(paths) == math.comb(T - 1 + U, U)
    loss = rnnt_loss(logits[None], tokens[None], torch.tensor([T]), torch.tensor([U]), reduction="sum")
    assert -math.log(sum(math.exp(lp) for _, lp in paths)) == pytest.approx(float(loss), abs=1e-10)
    best = viterbi(*utterance_lattice(logits, tokens))
    assert max(paths, key=lambda p: p[1])[0] == best.path


def test_alignment_paths_figure_one_panel_per_path_sorted():
    logits, tokens = _tiny_lattice(4, 2)
    blank_lp, emit_lp = utterance_lattice(logits, tokens)
    fig = viz.alignment_paths_figure(blank_lp, emit_lp, token_names=["x", "y"])
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 10
    probs = [float(ax.get_title().split()[2]) for ax in titled]
    assert probs == sorted(probs, reverse=True)
    assert "P(tokens) = " in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="too many"):
        viz.alignment_paths_figure(*utterance_lattice(*_tiny_lattice(8, 4)))


def test_plot_lattice_draws_path_spans_and_table():
    logits, tokens = _tiny_lattice(6, 3)
    blank_lp, emit_lp = utterance_lattice(logits, tokens)
    lat, best = lattice_tables(blank_lp, emit_lp), viterbi(blank_lp, emit_lp)
    spans = [(0, 2), (2, 4), (4, 6)]
    ax = viz.plot_lattice(lat.node_posterior, alignment=best, true_spans=spans, token_names=list("xyz"))
    np.testing.assert_allclose(_image(ax), lat.node_posterior.T.numpy())
    path_line = ax.lines[0]
    assert list(path_line.get_xdata()) == [t for t, _, _ in best.path] + [6]
    assert list(path_line.get_ydata()) == [u for _, u, _ in best.path] + [3]
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert [(b.get_x() + 0.5, b.get_x() + 0.5 + b.get_width(), b.get_y()) for b in boxes] == \
        [(0, 2, 0), (2, 4, 1), (4, 6, 2)]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0: ∅", "1: x", "2: y", "3: z"]
    fig = viz.lattice_figure(lat, best, token_names=list("xyz"))
    titles = [a.get_title() for a in fig.axes if a.images]
    assert titles[0].startswith("log α") and titles[1].startswith("log β") and titles[2].startswith("posterior")


def test_encoder_spans_cover_the_true_span():
    al = emformer_edu.data.corpus.Alignment(torch.tensor([160 * 3, 160 * 8]), torch.tensor([160 * 8, 160 * 13]))
    assert al.encoder_spans(4) == [(0, 2), (2, 4)]  # frames [3, 8) -> encoder [0, 2); [8, 13) -> [2, 4)


def test_utterance_lattice_figure_matches_forced_align(toy):
    fig = viz.utterance_lattice_figure(toy, index=2, num_utterances=5)
    utt = toy.held_out(5)[2]
    feats = toy.features(utt.waveform)
    ali = forced_align(toy.model, feats, feats.shape[0] - toy.right_context_length, utt.tokens, toy.blank)
    ax = [a for a in fig.axes if a.get_title().startswith("posterior")][0]
    assert _image(ax).shape == (len(utt.tokens) + 1, ali.blank_lp.shape[0])
    assert list(ax.lines[0].get_xdata())[:-1] == [t for t, _, _ in ali.path]
    assert f"'{utt.text}'" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="index must be in"):
        viz.utterance_lattice_figure(toy, index=5, num_utterances=5)


def test_lattice_explorer_moves_through_utterances(toy):
    w = widgets.lattice_explorer(toy, num_utterances=4)
    assert w.controls["index"].max == 3 and w.values == {"index": 0}
    data = toy.held_out(4)

    def shown():
        ax = [a for a in w.figure.axes if a.get_title().startswith("posterior")][0]
        return w.figure.axes[0].get_title(), _image(ax).shape

    for i in (0, 3, 1):
        w.controls["index"].value = i
        title, shape = shown()
        assert title.startswith(f"held-out utterance {i}: '{data[i].text}'")
        assert shape[0] == len(data[i].tokens) + 1


def test_exercise_checks_06_07():
    assert exercises.is_correct("06.joint_shape", (2, 50, 8, 29))  # the spoken model: V = 28 characters + blank
    assert not exercises.is_correct("06.joint_shape", (2, 51, 8, 29))
    assert exercises.is_correct("06.predictor_state_numbers", 3 * 2 * 512)
    assert exercises.is_correct("07.num_paths", math.comb(8, 3))
    assert exercises.is_correct("07.uniform_loss", -math.log(10 / 64))
    assert exercises.is_correct("07.occupancy_sum", 8.0)
    assert not exercises.is_correct("07.occupancy_sum", 9.0)
