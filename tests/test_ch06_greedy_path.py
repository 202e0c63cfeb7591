"""Notebook 06's greedy-path figure: the walk comes from the library's greedy search, and each of its
moves is the joiner's argmax at the node it leaves; the background is P(blank) of the same joint."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from emformer_edu import pretrained, viz
from emformer_edu.rnnt.greedy import greedy_search
from emformer_edu.rnnt.lattice import utterance_lattice


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def greedy_on_toy():
    """The shipped toy model's greedy search on one held-out utterance, and the joint of its hypothesis."""
    shipped = pretrained.toy()
    utt = shipped.held_out(1)[0]
    feats = shipped.features(utt.waveform)
    T_in = feats.shape[0] - shipped.right_context_length
    with torch.no_grad():
        enc, enc_lengths = shipped.model.transcribe(feats[None], torch.tensor([T_in]))
        state = greedy_search(shipped.model, enc, enc_lengths, shipped.blank)
        tokens, frames = state.tokens[0], state.timesteps[0]
        hyp = torch.tensor([[shipped.blank] + tokens])
        pred, pred_lengths, _ = shipped.model.predict(hyp, torch.tensor([hyp.shape[1]]), None)
        joint = shipped.model.join(enc, enc_lengths, pred, pred_lengths)[0][0]
    names = list(shipped.vocab.tokens) + ["∅"]
    return shipped, utt, joint, tokens, frames, names


def test_greedy_path_from_timesteps():
    path = viz.greedy_path([1, 1, 3], 5)
    assert path == [(0, 0, "blank"), (1, 0, "emit"), (1, 1, "emit"), (1, 2, "blank"), (2, 2, "blank"),
                    (3, 2, "emit"), (3, 3, "blank"), (4, 3, "blank")]
    assert viz.greedy_path([], 3) == [(0, 0, "blank"), (1, 0, "blank"), (2, 0, "blank")]
    with pytest.raises(ValueError, match="non-decreasing"):
        viz.greedy_path([2, 1], 4)
    with pytest.raises(ValueError, match="lie in"):
        viz.greedy_path([0, 4], 4)


def test_every_greedy_move_is_the_argmax_at_its_node(greedy_on_toy):
    shipped, _, joint, tokens, frames, _ = greedy_on_toy
    T, U1, _ = joint.shape
    assert U1 == len(tokens) + 1 and len(tokens) > 0
    path = viz.greedy_path(frames, T)
    assert len(path) == T + len(tokens) and path[-1] == (T - 1, len(tokens), "blank")
    best = joint.argmax(-1)
    for t, u, kind in path:
        assert int(best[t, u]) == (shipped.blank if kind == "blank" else tokens[u]), (t, u, kind)


def test_greedy_path_figure_draws_the_library_data(greedy_on_toy):
    shipped, utt, joint, tokens, frames, names = greedy_on_toy
    spans = utt.alignment.encoder_spans(shipped.model.transcriber.time_reduction.stride)  # per token here
    fig = viz.greedy_path_figure(joint, tokens, frames, shipped.blank, names, word_spans=spans)
    ax = fig.axes[0]
    image = np.ma.getdata(ax.images[0].get_array())
    blank_lp, _ = utterance_lattice(joint, tokens, shipped.blank)
    np.testing.assert_allclose(image, blank_lp.exp().T.numpy(), rtol=1e-5, atol=1e-7)
    T, U1, _ = joint.shape
    # The drawn walk: x and y of the line are the path's nodes, ending one step right of (T-1, U).
    line = ax.lines[0]
    path = viz.greedy_path(frames, T)
    assert list(line.get_xdata()) == [t for t, _, _ in path] + [T]
    assert list(line.get_ydata()) == [u for _, u, _ in path] + [U1 - 1]
    emitted_labels = [t.get_text() for t in ax.texts if t.get_fontweight() == "bold"]
    assert emitted_labels == [names[k] for k in tokens]
    with pytest.raises(ValueError, match="rows"):
        viz.greedy_path_figure(joint, tokens[:-1], frames[:-1], shipped.blank, names)
