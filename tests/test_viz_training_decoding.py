"""Figures of notebooks 08 and 09 draw exactly what the library computed."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from emformer_edu import pretrained
from emformer_edu import viz
from emformer_edu.rnnt.greedy import greedy_decode
from emformer_edu.train.latency import emission_delays
from emformer_edu.rnnt.lattice import forced_align, lattice_tables


def test_emission_figure_places_markers_from_emission_delays():
    toy = pretrained.toy()
    utt = toy.held_out(3)[1]
    feats = toy.features(utt.waveform)
    tokens, timesteps = greedy_decode(toy.model, feats[None], torch.tensor([feats.size(0)]), toy.blank)
    delays = emission_delays(timesteps, [utt.alignment], 4, segment_length=16, right_context_length=4)
    fig = viz.emission_figure(utt.alignment, delays, list(utt.text))
    emitted, available = fig.axes[0].get_lines()
    np.testing.assert_allclose(emitted.get_xdata(), (utt.alignment.start_frame + delays.start_delay).numpy() * 10)
    np.testing.assert_allclose(available.get_xdata(), (utt.alignment.end_frame + delays.latency).numpy() * 10)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(utt.text)
    plt.close("all")


def test_posterior_panels_show_each_models_posterior():
    toy = pretrained.toy()
    utt = toy.held_out(3)[0]
    torch.manual_seed(0)
    untrained = pretrained.build_model(toy.model.config).eval()
    names = [toy.vocab.name(int(t)) for t in utt.tokens]
    fig = viz.posterior_panels_figure({"untrained": untrained, "toy": toy.model}, utt, toy.feature_extractor,
                                      toy.blank, names)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert [ax.get_title().split(":")[0] for ax in fig.axes if ax.images] == ["untrained", "toy"]
    feats = toy.feature_extractor(utt.waveform)[0]
    with torch.no_grad():
        ali = forced_align(toy.model, feats, feats.size(0) - 4, utt.tokens, toy.blank)
    expected = lattice_tables(ali.blank_lp, ali.emit_lp).node_posterior.T.numpy()
    np.testing.assert_allclose(images[1].get_array(), expected, atol=1e-6)
    assert not np.allclose(images[0].get_array(), images[1].get_array(), atol=1e-2)
    plt.close("all")
