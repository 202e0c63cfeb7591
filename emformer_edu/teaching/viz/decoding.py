"""Notebook 08: when tokens are spoken, emitted, and available to a streaming recognizer."""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from .heatmap import MASKED_COLOUR, OKABE_ITO


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


def beam_hypotheses_figure(trace, vocab, frames=None, max_chars: int = 14, title: str = ""):
    """The beam after every encoder frame: one row per frame, one column per rank (best left).

    ``trace``: a :class:`~emformer_edu.teaching.beam_trace.BeamTrace` recorded from the library's
    ``RNNTBeamSearch``. Each cell shows a kept hypothesis (its text without the start blank, the space
    drawn as ␣, the last ``max_chars`` characters) and its score log P, coloured by that score; the
    cells the final best hypothesis grew from are outlined. Right of the grid, per frame: |B| (distinct token
    sequences that ended the frame with a blank, before pruning), how many arrivals in B were merged into a
    sequence B already held, and how many tokens the frame emitted (passes of the A loop that extended A).
    ``frames``: a range of frame indices (positions in ``trace.frames``) to draw; default all.
    """
    chosen = list(range(len(trace.frames))) if frames is None else list(frames)
    rows = [trace.frames[i] for i in chosen]
    path = trace.best_path()
    path = [path[i] for i in chosen]
    W = trace.beam_width
    scores = np.full((len(rows), W), np.nan)
    for r, f in enumerate(rows):
        for c, h in enumerate(f.kept):
            scores[r, c] = h.score
    finite = scores[np.isfinite(scores)]
    vmin = float(max(finite.min(), -15.0)) if finite.size else -1.0
    fig, ax = plt.subplots(figsize=(2.1 * W + 2.4, 0.26 * len(rows) + 1.6))
    cmap = plt.get_cmap("viridis").with_extremes(bad=MASKED_COLOUR)  # no hypothesis: grey
    image = ax.imshow(np.ma.masked_invalid(scores), aspect="auto", cmap=cmap, vmin=vmin, vmax=0.0,
                      interpolation="nearest")
    for r, (f, ancestor) in enumerate(zip(rows, path)):
        for c, h in enumerate(f.kept):
            text = "".join(vocab.label(int(t)) for t in h.tokens[1:])
            if len(text) > max_chars:
                text = "…" + text[-(max_chars - 1):]
            best = ancestor is not None and list(h.tokens) == list(ancestor.tokens)
            dark = h.score < vmin + 0.6 * (0.0 - vmin)
            ax.text(c, r, f"{text or '∅'}  {h.score + 0.0:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if dark else "black", fontweight="bold" if best else "normal")
            if best:
                ax.add_patch(plt.Rectangle((c - 0.48, r - 0.45), 0.96, 0.9, fill=False,
                                           edgecolor=OKABE_ITO["vermillion"], linewidth=2.0))
        ax.text(W - 0.4, r, f"{len(f.candidates):>3}{f.merges:>7}{f.tokens_emitted:>7}", ha="left", va="center",
                fontsize=7, family="monospace")
    ax.set_xticks(range(W), [f"rank {c}" for c in range(W)])
    ax.text(W - 0.4, -0.9, "|B| merged tokens", ha="left", va="center", fontsize=7, family="monospace")
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(rows)), [str(f.frame) for f in rows])
    ax.set_ylabel("encoder frame t")
    ax.set_xlim(-0.5, W + 0.6)
    for side in ("right", "bottom"):
        ax.spines[side].set_visible(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("score log P(hypothesis)")
    handle = plt.Rectangle((0, 0), 1, 1, fill=False, edgecolor=OKABE_ITO["vermillion"], linewidth=2.0)
    ax.legend([handle], ["grows into the final best hypothesis"], loc="upper center", bbox_to_anchor=(0.45, -0.01),
              fontsize=8, frameon=False)
    ax.set_title(title or f"Beam search, width {W}: the beam after each frame (ranked by score / (len(tokens) + 1))",
                 fontsize=9)
    fig.tight_layout()
    return fig


def delay_histogram_figure(panels, bin_ms: float = 20.0, title: str = ""):
    """Histograms of signed delays in milliseconds, one panel per entry of ``panels``.

    ``panels``: ``[(panel title, {series label: delays_ms (1-D tensor or array)}), ...]``; the series of a
    panel are drawn as outlined histograms on shared bins, with the 10th, 50th and 90th percentiles
    marked on each. The dashed line at 0 is the true time (negative: emitted before it).
    """
    colours = [OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["blue"], OKABE_ITO["orange"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.2), squeeze=False)
    for ax, (name, series) in zip(axes[0], panels):
        values = {k: np.asarray(v.tolist() if hasattr(v, "tolist") else v, dtype=float) for k, v in series.items()}
        everything = np.concatenate([v for v in values.values() if v.size]) if values else np.zeros(0)
        if everything.size:
            low = np.floor(everything.min() / bin_ms) * bin_ms
            high = np.ceil(everything.max() / bin_ms) * bin_ms + bin_ms
            bins = np.arange(low, high + bin_ms / 2, bin_ms)
        else:
            bins = np.arange(-bin_ms, 2 * bin_ms, bin_ms)
        for (label, v), colour in zip(values.items(), colours):
            if not v.size:
                continue
            q10, q50, q90 = np.quantile(v, [0.1, 0.5, 0.9])
            ax.hist(v, bins=bins, histtype="step", linewidth=1.8, color=colour,
                    label=f"{label} (n={v.size}): 10/50/90 % at {q10:.0f} / {q50:.0f} / {q90:.0f} ms")
            for q in (q10, q50, q90):
                ax.axvline(q, color=colour, linewidth=0.9, linestyle=":")
        ax.axvline(0.0, color="black", linewidth=1.0, linestyle="--", label="0: the true time")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts
        ax.set_xlabel("delay (ms); < 0: before the true time")
        ax.set_ylabel("count")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.22), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
