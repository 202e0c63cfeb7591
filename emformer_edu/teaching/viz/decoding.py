"""Notebook 08: when tokens are spoken, emitted, and available to a streaming recognizer."""
import matplotlib.pyplot as plt
import numpy as np

from .heatmap import OKABE_ITO


def emission_figure(alignment, delays, token_names, frame_ms: float = 10.0, title: str = ""):
    """True token spans (bars) against where the decoder emitted each token and when a streaming
    recognizer could have emitted it.

    ``alignment``: the utterance's true :class:`~emformer_edu.synthetic.Alignment`; ``delays``: the
    :class:`~emformer_edu.evaluation.EmissionDelays` of that one utterance (with streaming geometry).
    Emission = true start + ``start_delay``; available = true end + ``latency``.
    """
    start = alignment.start_frame.double()
    end = alignment.end_frame.double()
    emitted = start + delays.start_delay
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(token_names) + 1.8))
    rows = np.arange(len(token_names))
    ax.barh(rows, (end - start).numpy() * frame_ms, left=start.numpy() * frame_ms, color=OKABE_ITO["sky"],
            alpha=0.6, label="true span")
    ax.plot(emitted.numpy() * frame_ms, rows, "D", color=OKABE_ITO["vermillion"], label="emitted at (audio time)")
    if delays.latency is not None:
        ready = end + delays.latency
        ax.plot(ready.numpy() * frame_ms, rows, ">", color=OKABE_ITO["green"], label="available when streaming")
    ax.set_yticks(rows, token_names)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("token")
    ax.set_title(title or "When tokens are spoken, emitted and available")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    return fig
