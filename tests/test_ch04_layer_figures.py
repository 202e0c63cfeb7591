"""Notebook 04's figures: the block diagram of one layer and the per-head attention on one colour scale."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from emformer_edu import record, viz  # noqa: E402
from emformer_edu.encoder import Emformer, EmformerLayer  # noqa: E402
from emformer_edu.teaching.viz.heatmap import MASKED_COLOUR  # noqa: E402
from emformer_edu.transducer import streaming_chunks  # noqa: E402


def test_layer_block_diagram_reads_the_layer():
    layer = EmformerLayer(16, 4, 48, 4, activation="silu", left_context_length=6, max_memory_size=3,
                          tanh_on_mem=False)
    fig = viz.layer_block_diagram(layer)
    text = " ".join(t.get_text() for t in fig.axes[0].texts) + fig.axes[0].get_title()
    for expected in ["layer_norm_input", "emb_to_query", "emb_to_key_value", "out_proj", "pos_ff",
                     "layer_norm_output", "Linear 16→48", "SiLU", "H=4", "d_h=4", "L = 6", "M = 3", "clamp ±10",
                     "residual"]:
        assert expected in text, expected
    plt.close(fig)


def test_heads_by_layer_figure_shares_one_scale_and_greys_blocked_cells():
    torch.manual_seed(0)
    model = Emformer(8, 2, 16, 2, 4, left_context_length=4, right_context_length=1, max_memory_size=2).double().eval()
    x = torch.randn(1, 4 * 4 + 1, 8, dtype=torch.float64)
    with torch.no_grad(), record() as rec:
        state = None
        for chunk, length in streaming_chunks(x, 4, 1):
            _, _, state = model.infer(chunk, length, state)
    layers = rec.calls[-1].layers
    fig = viz.heads_by_layer_figure(layers)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 4
    vmax = max(float(r.attention_probs.max()) for r in layers)
    assert all(im.get_clim()[0] == 0.0 and abs(im.get_clim()[1] - vmax) < 1e-6 for im in images)
    blocked = layers[0].attention_mask.blocked.numpy()
    assert blocked.any()
    for image in images:
        data = image.get_array()
        assert np.array_equal(np.ma.getmaskarray(data), blocked)
    assert any(h.get_label().startswith("blocked") for h in fig.legends[0].legend_handles)
    assert matplotlib.colors.same_color(images[0].get_cmap().get_bad(), MASKED_COLOUR)
    plt.close(fig)
