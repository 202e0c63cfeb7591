"""Notebook 05's figures draw the library's data: the receptive field from the masks' reachability, the
rewired mask, the prefix differences, and the streaming timeline from the library's streaming decoder."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from emformer_edu import pretrained, viz
from emformer_edu.encoder.masks import training_mask
from emformer_edu.rnnt.recognize import decode_streaming
from emformer_edu.teaching import ablations
from emformer_edu.transducer.streaming import streaming_chunks


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _reaches(S=4, R=1, L=8, M=4, depth=5):
    mask = training_mask(15 * S, S, R, L, M)
    return {"hard copies": ablations.reachability(mask, depth, S, R),
            "next segment": ablations.reachability(ablations.next_segment_mask(mask, S, R), depth, S, R)}


def test_receptive_field_figure_draws_the_reachability():
    reaches = _reaches()
    fig = viz.receptive_field_figure(reaches, 4, segment=1, frame_ms=40, model_layers=4)
    grid_axes, line_ax = fig.axes[:2], fig.axes[2]
    for ax, reach in zip(grid_axes, reaches.values()):
        shown = ax.images[0].get_array()
        assert shown.shape[0] == 5  # the input and 4 layers
        width = shown.shape[1]
        for layer in range(5):  # coloured cells are exactly segment 1's reachable frames
            want = reach[layer][4:8].any(0).numpy()[:width]
            assert np.array_equal(np.asarray(shown[layer]) > 0, want)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels[0] == "input" and labels[1:] == [f"layer {n} (+{ablations.look_ahead(reach[n], 4)})"
                                                       for n in range(1, 5)]
    lines = line_ax.get_lines()
    hard = [ablations.look_ahead(r, 4) * 40 for r in reaches["hard copies"][1:]]
    nxt = [ablations.look_ahead(r, 4) * 40 for r in reaches["next segment"][1:]]
    assert list(lines[0].get_ydata()) == hard == [40] * 5
    assert list(lines[1].get_ydata()) == nxt == [40, 200, 360, 520, 680]


def test_mask_rewiring_figure_marks_the_new_keys():
    mask = training_mask(12, 4, 2, left_context_length=4)
    rewired = ablations.next_segment_mask(mask, 4, 2)
    fig = viz.mask_rewiring_figure({"hard copies": mask, "next segment": rewired})
    ref_img, new_img = fig.axes[0].images[0].get_array(), fig.axes[1].images[0].get_array()
    utt = rewired.only_rows("utterance")
    assert np.array_equal(np.ma.getmaskarray(new_img), utt.blocked.numpy())
    new = utt.allowed & ~mask.only_rows("utterance").allowed
    assert np.array_equal(np.asarray(new_img.filled(0)) == 1, new.numpy()) and new.any()
    assert not (np.asarray(ref_img.filled(0)) == 1).any()


def test_prefix_difference_figure_plots_the_given_differences():
    waits, diffs = [1, 2, 3], {"hard copies": [0.0, 1e-15, 0.0], "next segment": [0.5, 0.1, 0.0]}
    fig = viz.prefix_difference_figure(waits, diffs, {"hard copies": 1, "next segment": 3})
    lines = [l for l in fig.axes[0].get_lines() if len(l.get_xdata()) == 3]
    assert list(lines[0].get_ydata()) == [1e-17, 1e-15, 1e-17]
    assert list(lines[1].get_ydata()) == [0.5, 0.1, 1e-17]


def test_chunk_ready_time_is_the_end_of_the_chunks_last_frame():
    features = torch.arange(60 + 4, dtype=torch.float64).unsqueeze(1)
    for c, (chunk, length) in enumerate(streaming_chunks(features, 16, 4)):
        last_frame = float(chunk[0, int(length[0]) - 1, 0])
        if int(length[0]) == 20:  # full chunks: ready when their last frame has ended
            assert viz.chunk_ready_ms(c, 16, 4) == (last_frame + 1) * 10.0


def test_streaming_timeline_figure_places_the_decoders_tokens():
    spoken = pretrained.spoken()
    utt = spoken.held_out(1)[0]
    tokens, timesteps = decode_streaming(spoken.model, spoken.features(utt.waveform), spoken.blank)
    names = [spoken.vocab.name(i) for i in range(spoken.vocab.num_symbols)]
    fig = viz.streaming_timeline_figure(utt.waveform, tokens, timesteps, names, 16, 4, 4, words=utt.words.as_list())
    ax_t = fig.axes[2]
    texts = [t.get_text().strip() for t in ax_t.texts]
    assert texts == [("␣" if names[k] == " " else names[k]) for k in tokens]
    for text, t in zip(ax_t.texts, timesteps):
        assert text.get_position()[0] == pytest.approx(viz.chunk_ready_ms(t // 4, 16, 4) / 1000)
    assert [t.get_text() for t in fig.axes[0].texts] == list(utt.words.labels)
