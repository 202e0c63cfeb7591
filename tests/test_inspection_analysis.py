"""Analysis helpers computed from recordings: attention mass, memory provenance, shape traces."""
import torch

import emformer_edu
from emformer_edu.teaching.recorder import attention_mass, memory_provenance, trace_shapes


def _streamed(M=2, L=3, chunks=5):
    torch.manual_seed(0)
    model = emformer_edu.Emformer(8, 2, 8, 2, 4, left_context_length=L, right_context_length=1, max_memory_size=M).eval()
    x = torch.randn(1, chunks * 4 + 1, 8)
    state = None
    with emformer_edu.record() as rec:
        for i in range(chunks):
            _, _, state = model.infer(x[:, 4 * i: 4 * i + 5], torch.tensor([5]), state)
    return model, x, rec


def test_attention_mass_sums_to_one_and_splits_by_kind():
    _, _, rec = _streamed()
    mass = attention_mass(rec.calls[3].layers[1], "utterance")
    assert set(mass) == {"memory", "right_context", "left_context", "utterance"}
    assert abs(sum(mass.values()) - 1) < 1e-5
    summary = attention_mass(rec.calls[3].layers[1], "summary")
    assert summary["memory"] == 0.0  # summaries never read memory


def test_memory_bank_fills_then_slides():
    _, _, rec = _streamed(M=2, chunks=5)
    for layer in (0, 1):
        assert memory_provenance(rec, layer) == [[], [0], [0, 1], [1, 2], [2, 3]]


def test_trace_shapes_lists_submodules_in_call_order():
    model, x, _ = _streamed()
    out, trace = trace_shapes(model, model, x[:, :13], torch.tensor([13]))
    names = [t[0] for t in trace]
    assert names[0] == "emformer_layers.0.layer_norm_input"
    # a container is listed when it finishes, after its children
    assert "emformer_layers.0.attention.emb_to_query" in names and names[-2:] == ["emformer_layers.1.layer_norm_output", "emformer_layers.1"]
    q = next(t for t in trace if t[0] == "emformer_layers.0.attention.emb_to_query")
    assert q[2] == (1 * 3 + 12 + 3, 1, 8)  # [rc blocks, utterance, summaries] queries
    assert not model.emformer_layers[0]._forward_hooks


def test_figures_from_recordings():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from emformer_edu import viz

    model, x, rec = _streamed(M=2, chunks=5)
    fig = viz.memory_bank_figure(rec, layer=1)
    texts = sorted(t.get_text() for t in fig.axes[0].texts)
    assert texts == ["c0", "c0", "c1", "c1", "c2", "c2", "c3"]
    fig = viz.attention_mass_figure(rec.calls[4])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["layer 0", "layer 1"]
    widths = np.array([[p.get_width() for p in c.patches] for c in fig.axes[0].containers])
    np.testing.assert_allclose(widths.sum(0), 1.0, atol=1e-5)
    state = model.infer(x[:, :5], torch.tensor([5]))[2]
    fig = viz.state_figure(state)
    assert "layer 1 left-context keys (after 4 frames)" in [a.get_title() for a in fig.axes]
    fig = viz.difference_figure(torch.zeros(4, 3), {"a": torch.ones(4, 3), "b": torch.zeros(4, 3)})
    lines = fig.axes[0].get_lines()
    assert list(lines[0].get_ydata()) == [1.0] * 4 and list(lines[1].get_ydata()) == [1e-17] * 4
    plt.close("all")
