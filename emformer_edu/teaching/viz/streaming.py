"""Notebook 05: a streaming timeline: audio arriving, each chunk encoded once its segment and look-ahead are
in, and the tokens the decoder emits from it.

The tokens and their encoder frames come from the library's streaming decoder
(:func:`emformer_edu.rnnt.recognize.decode_streaming`); the times follow from the chunk layout of
:func:`emformer_edu.transducer.streaming.streaming_chunks`.
"""
from typing import List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from .heatmap import OKABE_ITO, REGION_COLOURS, _as_numpy


def chunk_ready_ms(chunk: int, segment_length: int, right_context_length: int, frame_ms: float = 10.0) -> float:
    """When chunk ``chunk`` can be encoded: the end of its last input frame (segment + R look-ahead), in ms
    after the audio started. ``segment_length`` and ``right_context_length`` in input frames."""
    return ((chunk + 1) * segment_length + right_context_length) * frame_ms


def streaming_timeline_figure(waveform, tokens: Sequence[int], timesteps: Sequence[int], token_names: Sequence[str],
                              segment_length: int, right_context_length: int, time_reduction_stride: int,
                              words: Optional[List[Tuple[str, int, int]]] = None, sample_rate: int = 16000,
                              hop_length: int = 160, title: str = ""):
    """Three rows over one time axis (seconds): the waveform (with the true word spans ``words``,
    ``[(word, start_sample, end_sample), ...]``), the chunks (segment and look-ahead, a dot when the chunk
    can be encoded), and the emitted tokens, one line each in the order they come out, placed at the time
    their chunk was encoded and joined by a thin line to the time of the encoder frame they were emitted on.

    ``tokens`` / ``timesteps``: the streaming decoder's output (token ids, encoder frame of each).
    ``segment_length``, ``right_context_length``: input frames; an encoder frame is
    ``time_reduction_stride`` input frames of ``hop_length / sample_rate`` seconds.
    """
    wave = _as_numpy(waveform).reshape(-1)
    frame_s = hop_length / sample_rate
    S, R = segment_length, right_context_length
    enc_per_chunk = S // time_reduction_stride
    num_frames = wave.size // hop_length + 1
    num_chunks = -(-num_frames // S)
    fig, (ax_w, ax_c, ax_t) = plt.subplots(3, 1, figsize=(10, 7.6), sharex=True,
                                           gridspec_kw={"height_ratios": [1.1, 1.5, 2.4]})
    ax_w.plot(np.arange(wave.size) / sample_rate, wave, color=OKABE_ITO["blue"], lw=0.4)
    ax_w.set_ylabel("audio")
    ax_w.set_yticks([])
    for k, (word, a, b) in enumerate(words or []):
        ax_w.axvspan(a / sample_rate, b / sample_rate, color=OKABE_ITO["orange"] if k % 2 else OKABE_ITO["sky"],
                     alpha=0.2, lw=0)
        ax_w.text((a + b) / 2 / sample_rate, 1.02, word, transform=ax_w.get_xaxis_transform(), ha="center",
                  va="bottom", fontsize=8)
    for c in range(num_chunks):
        start = c * S * frame_s
        ax_c.barh(c, S * frame_s, left=start, height=0.7, color=REGION_COLOURS["segment"], lw=0)
        ax_c.barh(c, R * frame_s, left=start + S * frame_s, height=0.7, color=REGION_COLOURS["right context"], lw=0)
        ax_c.plot(chunk_ready_ms(c, S, R, frame_s * 1000) / 1000, c, "o",
                  color=OKABE_ITO["black"], ms=3)
    ax_c.set_ylabel("chunk")
    ax_c.invert_yaxis()
    ax_c.legend(handles=[Patch(color=REGION_COLOURS["segment"], label="segment"),
                         Patch(color=REGION_COLOURS["right context"], label="look-ahead (R)"),
                         plt.Line2D([], [], marker="o", color=OKABE_ITO["black"], lw=0, ms=3,
                                    label="chunk encoded")],
                fontsize=7, loc="upper right", ncol=3)
    # Tokens, one row each in the order they come out: at the time their chunk is encoded, with a line back
    # to the time of the encoder frame they were emitted on.
    for row, (token, t) in enumerate(zip(tokens, timesteps)):
        emitted = chunk_ready_ms(int(t) // enc_per_chunk, S, R, frame_s * 1000) / 1000
        frame_time = (int(t) + 0.5) * time_reduction_stride * frame_s
        ax_t.plot([frame_time, emitted], [row, row], color="0.7", lw=0.7)
        ax_t.plot(frame_time, row, "|", color="0.5", ms=4)
        name = token_names[int(token)]
        ax_t.text(emitted, row, " ␣" if name == " " else " " + name, ha="left", va="center", fontsize=7,
                  color=OKABE_ITO["vermillion"])
    ax_t.set_ylim(len(tokens) - 0.3, -0.9)
    ax_t.set_yticks([])
    ax_t.set_ylabel("tokens out")
    ax_t.set_xlabel("time since the audio started (s)")
    ax_t.legend(handles=[plt.Line2D([], [], color="0.5", marker="|", lw=0.7, label="encoder frame it was emitted on"),
                         plt.Line2D([], [], color=OKABE_ITO["vermillion"], marker="$a$", lw=0,
                                    label="token, when its chunk is encoded")],
                fontsize=7, loc="lower left")
    ax_w.set_title(title or "Streaming: audio arrives, chunks are encoded, tokens come out", pad=16)
    fig.tight_layout()
    return fig
