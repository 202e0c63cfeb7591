"""Notebook 01's figures: each draws, and what it draws is the library's own numbers."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from emformer_edu import viz  # noqa: E402
from emformer_edu.data.features import FeatureExtractor, GlobalStats, compute_global_stats  # noqa: E402
from emformer_edu.transducer.streaming import latency_ms, streaming_chunks  # noqa: E402


@pytest.mark.parametrize("C, R", [(16, 4), (8, 2), (4, 0), (1, 3)])
def test_frame_waits_agree_with_latency_ms(C, R):
    waits = viz.frame_waits_ms(3, C, R)
    lat = latency_ms(C, R)
    assert waits.shape == (3 * C,)
    assert float(waits.max()) == lat["worst"] and float(waits.min()) == lat["best"]
    assert float(waits.mean()) == pytest.approx(lat["average"])
    # The first frame of every segment waits longest, the last one shortest (the look-ahead only).
    assert waits[::C].tolist() == [lat["worst"]] * 3 and waits[C - 1::C].tolist() == [lat["best"]] * 3


def test_frame_waits_follow_the_chunker():
    # Frame t of chunk i waits for the last frame the chunker puts into chunk i.
    C, R = 5, 2
    frames = torch.arange(3 * C + R, dtype=torch.float64).unsqueeze(1)
    last = [int(chunk[0, int(length[0]) - 1, 0]) for chunk, length in streaming_chunks(frames, C, R)[:2]]
    waits = viz.frame_waits_ms(2, C, R, frame_ms=20.0)
    assert waits.tolist() == [(last[t // C] - t) * 20.0 for t in range(2 * C)]


def test_latency_figure_draws_the_waits():
    fig = viz.latency_figure(16, 4, num_segments=2)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches[:32]]
    assert heights == viz.frame_waits_ms(2, 16, 4).tolist()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "worst: 190 ms" in labels and "average: 115 ms" in labels and "best: 40 ms" in labels
    plt.close(fig)


def _log_mel(T=70, F=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    # A quiet start, then louder frames: the first chunk's own mean is far from the utterance's.
    x = torch.randn(T, F, generator=g) + 10.0
    x[:12] -= 6.0
    return x


def test_running_normalisation_error_per_utterance_moves_global_does_not():
    log_mel, C = _log_mel(), 16
    stats = GlobalStats(torch.full((80,), 9.0), torch.full((80,), 0.5))
    arrived, per_utterance, global_ = viz.running_normalisation_error(log_mel, C, stats)
    assert arrived.tolist() == [16, 32, 48, 64, 70]
    assert float(per_utterance[0]) > 1.0 and float(per_utterance[-1]) == 0.0
    assert global_.abs().max() == 0
    # The first entry is the library's per-utterance normalisation of 16 frames against that of all 70.
    early = FeatureExtractor(compute_global_stats([log_mel[:C]], kind="features")).normalize(log_mel[:C])
    final = FeatureExtractor(compute_global_stats([log_mel], kind="features")).normalize(log_mel)[:C]
    assert float(per_utterance[0]) == pytest.approx(float((early - final).abs().max()))


def test_normalisation_figure_draws_the_library_statistics():
    log_mel, C = _log_mel(), 16
    stats = GlobalStats(torch.full((80,), 9.0), torch.full((80,), 0.5))
    fig = viz.normalisation_figure(log_mel, C, stats)
    ax_means, ax_error = fig.axes
    first, whole, corpus = (line.get_ydata() for line in ax_means.get_lines())
    assert torch.allclose(torch.as_tensor(first), compute_global_stats([log_mel[:C]], kind="features").mean)
    assert torch.allclose(torch.as_tensor(whole), compute_global_stats([log_mel], kind="features").mean)
    assert torch.allclose(torch.as_tensor(corpus), stats.mean)
    _, per_utterance, _ = viz.running_normalisation_error(log_mel, C, stats)
    assert torch.allclose(torch.as_tensor(ax_error.get_lines()[0].get_ydata(), dtype=torch.float32), per_utterance)
    plt.close(fig)
