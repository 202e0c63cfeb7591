"""Plot helpers draw labelled figures from library data (the exercise checks are tested in test_exercises.py)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import emformer_edu
from emformer_edu import viz


def test_plot_mask_labels_blocks():
    mask = emformer_edu.training_mask(7, 3, 2, left_context_length=2, max_memory_size=1)
    ax = viz.plot_mask(mask)
    assert [t.get_text() for t in ax.get_yticklabels()] == [b.label for b in mask.rows]
    assert [t.get_text() for t in ax.get_xticklabels()] == [b.label for b in mask.cols]
    assert "memory" in ax.get_xlabel() and "summary" in ax.get_ylabel()
    assert (ax.images[0].get_array() == mask.allowed.float().numpy()).all()
    plt.close("all")


def test_plot_attention_uses_recorded_probs():
    torch.manual_seed(0)
    model = emformer_edu.Emformer(8, 2, 8, 2, 4, right_context_length=1, max_memory_size=1).eval()
    with emformer_edu.record() as rec:
        model(torch.randn(1, 13, 8), torch.tensor([13]))
    layer = rec.calls[0].layers[1]
    ax = viz.plot_attention(layer, head=1)
    assert ax.images[0].get_array().shape == tuple(layer.attention_probs.shape[2:])
    torch.testing.assert_close(torch.as_tensor(ax.images[0].get_array().data), layer.attention_probs[0, 1], check_dtype=False)
    assert "layer 1, head 1" in ax.get_title()
    plt.close("all")


def test_mask_assembly_panels_show_growing_rows():
    fig = viz.mask_assembly_figure(8, 4, 2, 2, 1)
    shown = [ax.images[0].get_array() for ax in fig.axes]
    visible_rows = [int((~np.ma.getmaskarray(im).all(axis=1)).sum()) for im in shown]
    assert visible_rows == [2 + 4 + 1, 2 * (2 + 4 + 1)]
    plt.close("all")


def test_mask_comparison_one_panel_per_change():
    base = dict(utterance_length=8, segment_length=4, right_context_length=2, left_context_length=2, max_memory_size=1)
    fig = viz.mask_comparison_figure(base, {"right_context_length": 0, "max_memory_size": 0})
    assert [ax.get_title() for ax in fig.axes] == ["baseline", "right_context_length=0", "max_memory_size=0"]
    assert fig.axes[1].images[0].get_array().shape == (4 + 8 + 2 - 4, 1 + 8)
    plt.close("all")
