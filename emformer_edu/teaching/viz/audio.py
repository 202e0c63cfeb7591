"""Notebook 01: an utterance's waveform and features with its true tokens, and the frames one chunk sees."""
import matplotlib.pyplot as plt
import numpy as np

from ...encoder.segments import segment_spans
from .heatmap import OKABE_ITO, REGION_COLOURS, _as_numpy


def utterance_figure(waveform, log_mel, token_spans, token_names, sample_rate: int = 16000, hop_length: int = 160,
                     title: str = "A synthetic utterance with its true token boundaries"):
    """Waveform (top) and log-mel spectrogram (bottom) with token spans ``[(start_frame, end_frame), ...]``."""
    wave = _as_numpy(waveform).reshape(-1)
    mel = _as_numpy(log_mel)
    fig, (ax_w, ax_m) = plt.subplots(2, 1, figsize=(9, 4.8), sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    seconds_per_frame = hop_length / sample_rate
    ax_w.plot(np.arange(wave.size) / sample_rate, wave, color=OKABE_ITO["blue"], lw=0.4)
    ax_w.set_ylabel("amplitude")
    ax_m.imshow(mel.T, origin="lower", aspect="auto", cmap="cividis",
                extent=(0, mel.shape[0] * seconds_per_frame, -0.5, mel.shape[1] - 0.5))
    ax_m.set_ylabel("mel bin")
    ax_m.set_xlabel("time (s)")
    for k, (a, b) in enumerate(token_spans):
        for ax in (ax_w, ax_m):
            ax.axvspan(a * seconds_per_frame, b * seconds_per_frame, color=OKABE_ITO["orange"] if k % 2 else OKABE_ITO["sky"],
                       alpha=0.18, lw=0)
        ax_w.text((a + b) / 2 * seconds_per_frame, 1.02, token_names[k], transform=ax_w.get_xaxis_transform(),
                  ha="center", va="bottom", fontsize=9)
    ax_w.set_title(title, pad=16)
    fig.tight_layout()
    return fig


def chunk_figure(num_frames: int, segment_length: int, right_context_length: int, left_context_length: int,
                 chunk_index: int = 0, log_mel=None, token_spans=None, token_names=None, frame_ms: float = 10.0):
    """Which input frames chunk ``chunk_index`` owns (segment), looks ahead to and looks back to.

    Frames are input frames (10 ms each). ``log_mel`` ``(T, F)`` is drawn underneath if given;
    ``token_spans`` (pairs of start/end frames) with ``token_names`` mark the true tokens.
    Callback of ``widgets.chunk_stepper``.
    """
    T = num_frames - right_context_length
    spans = segment_spans(T, segment_length, right_context_length, left_context_length)
    if not 0 <= chunk_index < len(spans):
        raise ValueError(f"chunk_index must be in [0, {len(spans) - 1}] for {len(spans)} chunks, got {chunk_index}.")
    span = spans[chunk_index]
    fig, (ax_top, ax_bar) = plt.subplots(2, 1, figsize=(9, 4.2), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    if log_mel is not None:
        ax_top.imshow(_as_numpy(log_mel).T, origin="lower", aspect="auto", cmap="cividis",
                      extent=(-0.5, _as_numpy(log_mel).shape[0] - 0.5, -0.5, _as_numpy(log_mel).shape[1] - 0.5))
        ax_top.set_ylabel("mel bin")
    else:
        ax_top.set_yticks([])
    regions = [("left context", span.left_context), ("segment", span.segment), ("right context", span.right_context)]
    for name, (a, b) in regions:
        if b > a:
            ax_top.axvspan(a - 0.5, b - 0.5, color=REGION_COLOURS[name], alpha=0.45, label=f"{name} [{a}, {b})")
    if token_spans is not None:
        for k, (a, b) in enumerate(token_spans):
            ax_top.axvline(a - 0.5, color="white", lw=0.8, ls=":")
            if token_names is not None:
                ax_top.text((a + b) / 2, 1.01, token_names[k], transform=ax_top.get_xaxis_transform(),
                            ha="center", va="bottom", fontsize=8)
    ax_top.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax_top.set_title(f"chunk {chunk_index}: {span.segment[1] - span.segment[0]}-frame segment + "
                     f"{right_context_length} look-ahead frames ({right_context_length * frame_ms:.0f} ms)", pad=14)
    for s in spans:
        colour = REGION_COLOURS["segment"] if s.index == chunk_index else "0.85"
        ax_bar.barh(0, s.segment[1] - s.segment[0], left=s.segment[0] - 0.5, color=colour, edgecolor="0.3")
        ax_bar.text((s.segment[0] + s.segment[1] - 1) / 2, 0, str(s.index), ha="center", va="center", fontsize=8)
    ax_bar.barh(0, right_context_length, left=T - 0.5, color="none", edgecolor="0.3", hatch="//")
    ax_bar.set_yticks([])
    ax_bar.set_xlabel(f"input frame ({frame_ms:.0f} ms each)")
    ax_bar.set_xlim(-0.5, num_frames - 0.5)
    ax_bar.set_title("all segments (hatched: trailing right context of the utterance)", fontsize=9)
    fig.tight_layout()
    return fig
