"""Notebook 03's figures: the memory dataflow diagram and the attention shares averaged over chunks.

Each figure draws, and its data is the library's: the slots the diagram connects are the ones the
recorded attention actually used, and the averaged shares are averages of ``recorder.attention_mass``.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emformer_edu import record, viz  # noqa: E402
from emformer_edu.encoder import Emformer  # noqa: E402
from emformer_edu.teaching.recorder import attention_mass  # noqa: E402
from emformer_edu.teaching.viz.layer_diagram import sequential_steps  # noqa: E402
from emformer_edu.transducer import streaming_chunks  # noqa: E402


def _model(num_layers=3, memory=2):
    torch.manual_seed(0)
    return Emformer(8, 2, 16, num_layers, 4, left_context_length=4, right_context_length=1,
                    max_memory_size=memory, tanh_on_mem=True).double().eval()


def _forward_call(model, T=24):
    with torch.no_grad(), record() as rec:
        model(torch.randn(1, T + 1, 8, dtype=torch.float64), torch.tensor([T + 1]))
    return rec.calls[0]


def test_memory_reads_are_the_slots_attention_used():
    call = _forward_call(_model())
    reads = viz.memory_reads(call)
    assert reads == [list(range(max(0, n - 2), n)) for n in range(6)]
    probs = call.layers[1].attention_probs[0, 0]
    for block in [b for b in call.mask.rows if b.kind == "utterance"]:
        used = [b.segment for b in call.mask.cols if b.kind == "memory" and probs[block.start, b.start] > 0]
        assert used == reads[block.segment]


def test_memory_dataflow_figure_draws_one_arrow_per_read():
    call = _forward_call(_model())
    fig = viz.memory_dataflow_figure(call, compare_am_trf=False)
    arrows = [t for t in fig.axes[0].texts if t.arrow_patch is not None]
    assert len(arrows) == 3 * sum(len(r) for r in viz.memory_reads(call))  # every layer reads once per slot
    plt.close(fig)
    fig = viz.memory_dataflow_figure(call, highlight=2)
    assert len(fig.axes) == 2
    plt.close(fig)


def test_memory_dataflow_figure_refuses_streaming_and_memoryless_records():
    model = _model()
    x = torch.randn(1, 9, 8, dtype=torch.float64)
    with torch.no_grad(), record() as rec:
        state = None
        for chunk, length in streaming_chunks(x, 4, 1):
            _, _, state = model.infer(chunk, length, state)
    with pytest.raises(ValueError, match="training-mode"):
        viz.memory_dataflow_figure(rec.calls[0])
    with pytest.raises(ValueError, match="no memory"):
        viz.memory_dataflow_figure(_forward_call(_model(memory=0)))


def test_sequential_steps():
    assert sequential_steps(4, 16) == (4, 64)


def test_mean_attention_mass_averages_the_recorder():
    model = _model(num_layers=2)
    x = torch.randn(1, 8 * 4 + 1, 8, dtype=torch.float64)
    with torch.no_grad(), record() as rec:
        state = None
        for chunk, length in streaming_chunks(x, 4, 1):
            _, _, state = model.infer(chunk, length, state)
    full = [c for c in rec.calls if c.layers[0].memory_in.size(0) == 2 and c.layers[0].left_context_key.size(0) == 4]
    assert len(full) >= 3
    stats = viz.mean_attention_mass(full)
    assert stats["kinds"] == ["memory", "right_context", "left_context", "utterance"]
    assert stats["calls"] == len(full)
    np.testing.assert_allclose(stats["mean"].sum(axis=1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(stats["uniform"], np.array([2, 1, 4, 4]) / 11)
    by_hand = np.mean([attention_mass(c.layers[1])["memory"] for c in full])
    assert stats["mean"][1, 0] == pytest.approx(by_hand)
    fig = viz.attention_mass_average_figure(full)
    assert len(fig.axes[0].patches) == 2 * 4  # one bar per layer and key kind
    plt.close(fig)
    with pytest.raises(ValueError):
        viz.mean_attention_mass([])
