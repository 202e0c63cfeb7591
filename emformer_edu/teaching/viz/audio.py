"""Notebook 01: an utterance's waveform and features with its true spans, the frames one chunk sees,
how long each frame waits for its chunk, and why normalisation statistics must be global.

Every number drawn comes from the library: frames from the feature extractor, chunks from
:func:`~emformer_edu.transducer.streaming.streaming_chunks`, latencies from
:func:`~emformer_edu.transducer.streaming.latency_ms`, statistics from
:func:`~emformer_edu.data.features.compute_global_stats`.
"""
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

from ...data.features import FeatureExtractor, GlobalStats, compute_global_stats
from ...encoder.segments import segment_spans
from ...transducer.streaming import latency_ms, streaming_chunks
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


def frame_waits_ms(num_segments: int, segment_length: int, right_context_length: int, frame_ms: float = 10.0):
    """How long each of the first ``num_segments * segment_length`` frames of an ongoing stream waits, in ms,
    from when it has arrived until its chunk can be encoded: ``(num_segments * C,)`` float64.

    Read off the library's chunker: the frames hold their own index, and a chunk can be encoded once its
    last frame (the end of its look-ahead) has arrived. The stream goes on past the frames drawn, so the
    last segment drawn has real look-ahead frames, not the utterance's right padding.
    """
    C, R = segment_length, right_context_length
    T = (num_segments + 1) * C
    frames = torch.arange(T + R, dtype=torch.float64).unsqueeze(1)  # frame i holds the value i
    waits = []
    for chunk, length in streaming_chunks(frames, C, R)[:num_segments]:
        held = chunk[0, : int(length[0]), 0]
        waits.append((held[-1] - held[:C]) * frame_ms)
    return torch.cat(waits)


def latency_figure(segment_length: int, right_context_length: int, num_segments: int = 3, frame_ms: float = 10.0):
    """Bars: each frame's wait (:func:`frame_waits_ms`) over ``num_segments`` segments; lines: the worst,
    average and best case of :func:`~emformer_edu.transducer.streaming.latency_ms`, and the look-ahead's share."""
    C, R = segment_length, right_context_length
    waits = frame_waits_ms(num_segments, C, R, frame_ms).numpy()
    lat = latency_ms(C, R, frame_ms=frame_ms)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    frames = np.arange(waits.size)
    colours = [OKABE_ITO["orange"] if (t // C) % 2 == 0 else OKABE_ITO["sky"] for t in frames]
    ax.bar(frames, waits, width=0.85, color=colours, edgecolor="none")
    ax.bar(frames, np.full(waits.size, R * frame_ms), width=0.85, color="none", edgecolor="0.25", hatch="///", lw=0)
    for name, colour, style in (("worst", OKABE_ITO["vermillion"], "-"), ("average", OKABE_ITO["black"], "--"),
                                ("best", OKABE_ITO["green"], ":")):
        ax.axhline(lat[name], color=colour, ls=style, lw=1.4, label=f"{name}: {lat[name]:.4g} ms")
    for i in range(1, num_segments):
        ax.axvline(i * C - 0.5, color="0.4", lw=0.8)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(facecolor="white", edgecolor="0.25", hatch="///",
                         label=f"look-ahead share: {R * frame_ms:.4g} ms"))
    ax.set_xlim(-0.6, waits.size - 0.4)
    ax.set_ylim(0, lat["worst"] * 1.25)
    ax.set_xlabel(f"input frame t ({frame_ms:.4g} ms each); segments alternate in colour")
    ax.set_ylabel("wait until its chunk\ncan be encoded (ms)")
    ax.set_title(f"Segment C = {C} frames + look-ahead R = {R}: the first frame of a segment waits longest")
    ax.legend(handles=handles, loc="upper right", fontsize=8, ncol=2, framealpha=0.95)
    fig.tight_layout()
    return fig


def running_normalisation_error(log_mel, segment_length: int, global_stats: GlobalStats):
    """How far the first chunk's features are from their final values when they are normalised with the
    statistics known after each chunk has arrived: per-utterance statistics of the audio so far
    (:func:`compute_global_stats` over frames ``[0, k C)``) versus global statistics (fixed).

    Returns ``(arrived_frames (K,), per_utterance (K,), global_ (K,))``: the max absolute difference over the
    first chunk's ``C x F`` features, after ``k = 1 .. K`` chunks (the last entry: the whole utterance).
    """
    log_mel = torch.as_tensor(log_mel)
    T, C = log_mel.shape[0], segment_length
    arrived = list(range(C, T, C)) + [T]
    final_own = FeatureExtractor(compute_global_stats([log_mel], kind="features")).normalize(log_mel[:C])
    global_extractor = FeatureExtractor(global_stats)
    final_global = global_extractor.normalize(log_mel)[:C]
    per_utterance, global_ = [], []
    for k in arrived:
        own = FeatureExtractor(compute_global_stats([log_mel[:k]], kind="features"))
        per_utterance.append(float((own.normalize(log_mel[:C]) - final_own).abs().max()))
        global_.append(float((global_extractor.normalize(log_mel[:k])[:C] - final_global).abs().max()))
    return torch.tensor(arrived), torch.tensor(per_utterance), torch.tensor(global_)


def normalisation_figure(log_mel, segment_length: int, global_stats: GlobalStats, frame_ms: float = 10.0):
    """Left: the per-bin mean of the first chunk, of the whole utterance and of the corpus (the global
    statistics). Right: :func:`running_normalisation_error` after each chunk, per-utterance against global."""
    log_mel = torch.as_tensor(log_mel)
    C = segment_length
    first = compute_global_stats([log_mel[:C]], kind="features")
    whole = compute_global_stats([log_mel], kind="features")
    arrived, per_utterance, global_ = running_normalisation_error(log_mel, C, global_stats)
    fig, (ax_m, ax_e) = plt.subplots(1, 2, figsize=(10, 3.8), gridspec_kw={"width_ratios": [1, 1.2]})
    bins = np.arange(log_mel.shape[1])
    ax_m.plot(bins, _as_numpy(first.mean), color=OKABE_ITO["vermillion"],
              label=f"first chunk only ({C * frame_ms:.4g} ms)")
    ax_m.plot(bins, _as_numpy(whole.mean), color=OKABE_ITO["blue"], label="whole utterance")
    ax_m.plot(bins, _as_numpy(global_stats.mean), color=OKABE_ITO["black"], ls="--", label="corpus (global)")
    ax_m.set_xlabel("mel bin f")
    ax_m.set_ylabel(r"mean log-mel $\mu_f$")
    ax_m.set_title("The mean depends on how much audio you have", fontsize=10)
    ax_m.legend(fontsize=8)
    seconds = _as_numpy(arrived) * frame_ms / 1000
    ax_e.plot(seconds, _as_numpy(per_utterance), "o-", color=OKABE_ITO["vermillion"],
              label="per-utterance stats of the audio so far")
    ax_e.plot(seconds, _as_numpy(global_), "s-", color=OKABE_ITO["black"], ms=4, label="global stats")
    ax_e.set_xlabel("audio arrived (s)")
    ax_e.set_ylabel("max |first chunk now - final|")
    ax_e.set_title("The first chunk's features, renormalised as audio arrives", fontsize=10)
    ax_e.set_ylim(bottom=-0.05 * max(1e-9, float(per_utterance.max())))
    ax_e.legend(fontsize=8)
    fig.tight_layout()
    return fig
