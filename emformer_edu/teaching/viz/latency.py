"""Notebook 10 (latency): the variants' table, CER against latency, and each variant's emissions
against the true word spans.

Every number drawn comes from the library: the table from ``train.variants.load_results()`` (what
``python -m emformer_edu.train.variants`` measured), the emissions from the library's streaming greedy
decoder (:func:`~emformer_edu.train.metrics.evaluate` with ``streaming=True``), the lattice from
:func:`~emformer_edu.rnnt.lattice.forced_align`.

Times: input frame ``t`` is 10 ms. A character emitted at encoder frame ``k`` is placed at the end of
that frame's audio, ``(k + 1) * stride`` input frames (where in the audio the model decided), and is
*available* once the chunk holding the frame and its look-ahead has arrived,
``((k * stride // S) + 1) * S + R`` input frames: the same conventions as
:func:`~emformer_edu.train.latency.word_end_delays`.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib import transforms
import numpy as np
import torch

from ...rnnt.lattice import forced_align, lattice_tables
from ...train.latency import FRAME_MS
from ...train.metrics import evaluate
from .heatmap import OKABE_ITO
from .lattice import plot_lattice

__all__ = ["cer_standard_error", "latency_table", "cer_latency_figure", "VariantEmissions", "variant_emissions",
           "emissions_figure", "variant_figure"]

_COLOURS = [OKABE_ITO[c] for c in ("black", "vermillion", "blue", "green", "purple", "orange", "sky")]


def cer_standard_error(char_errors: Sequence[float], ref_chars: Sequence[float],
                       num_sentences: Optional[int] = None, baseline_errors: Optional[Sequence[float]] = None) -> float:
    """A rough standard error of a CER ``sum(e) / sum(n)`` pooled over sentences.

    Sentences, not characters, are the independent draws (a confused sentence makes several errors),
    so this is the ratio estimator's error: ``sd(e_i - CER * n_i) / (mean(n) * sqrt(N))``, with the spread
    estimated from the sentences given and ``N = num_sentences`` (default: as many as given), e.g. the
    spread of 10 sentences scaled to the 100 a CER was measured on.

    ``baseline_errors``: another model's errors on the *same* sentences; then the standard error of the
    CER difference (this minus baseline), paired sentence by sentence: ``e_i`` becomes ``e_i - b_i``.
    Pairing removes what the two models share (hard sentences are hard for both), so it is smaller.
    """
    e = torch.as_tensor(char_errors, dtype=torch.float64).flatten()
    n = torch.as_tensor(ref_chars, dtype=torch.float64).flatten()
    if e.numel() != n.numel():
        raise ValueError(f"char_errors and ref_chars need one entry per sentence, got {e.numel()} and {n.numel()}.")
    if e.numel() < 2:
        raise ValueError(f"a spread needs at least 2 sentences, got {e.numel()}.")
    if bool((n <= 0).any()) or bool((e < 0).any()):
        raise ValueError("ref_chars must be positive and char_errors non-negative.")
    if baseline_errors is not None:
        b = torch.as_tensor(baseline_errors, dtype=torch.float64).flatten()
        if b.numel() != e.numel() or bool((b < 0).any()):
            raise ValueError(f"baseline_errors needs {e.numel()} non-negative entries, one per sentence, "
                             f"got {b.numel()}.")
        e = e - b
    N = e.numel() if num_sentences is None else num_sentences
    if N < 1:
        raise ValueError(f"num_sentences must be positive, got {N}.")
    ratio = e.sum() / n.sum()
    return float((e - ratio * n).std() / (n.mean() * math.sqrt(N)))


def _fmt(x: float, digits: int = 0) -> str:
    return f"{x:.{digits}f}"


def latency_table(results: Mapping[str, Mapping], standard_errors: Optional[Mapping[str, float]] = None) -> str:
    """The variants' table as text, one row per entry of ``results`` (``load_results()``), in its order.

    Columns: the geometry (S, R, M in input frames / slots), CER and WER in %, the algorithmic latency
    (worst and average, ms), and the word-end delays (emitted and available: mean and 90th percentile, ms).
    ``standard_errors``: optional ``{variant: standard error of the CER}`` printed as ``± x``.
    """
    if not results:
        raise ValueError("results holds no variant.")
    head = (f"{'variant':15s} {'S':>3s} {'R':>2s} {'M':>2s} | {'CER %':>11s} {'WER %':>6s} | "
            f"{'worst':>5s} {'avg':>5s} | {'emitted mean/p90':>16s} | {'available mean/p90':>18s} | words right")
    lines = [" " * 30 + "| error rates        | algorithmic | word-end delay (ms), measured", head, "-" * len(head)]
    for name, row in results.items():
        lat = row["latency_ms"]
        se = "" if not standard_errors or name not in standard_errors else f"±{100 * standard_errors[name]:.1f}"
        cer = f"{100 * row['cer']:.1f}{se}"
        em, av = row["emitted_ms"], row["available_ms"]
        lines.append(
            f"{name:15s} {row['segment_length']:3d} {row['right_context_length']:2d} {row['max_memory_size']:2d} | "
            f"{cer:>11s} {100 * row['wer']:6.1f} | {_fmt(lat['worst']):>5s} {_fmt(lat['average']):>5s} | "
            f"{_fmt(em['mean']):>7s} / {_fmt(em['p90']):>6s} | {_fmt(av['mean']):>8s} / {_fmt(av['p90']):>7s} | "
            f"{row['words_right']} / {row['words']}")
    return "\n".join(lines)


def cer_latency_figure(results: Mapping[str, Mapping], standard_errors: Optional[Mapping[str, float]] = None,
                       title: str = ""):
    """CER against latency, one labelled point per variant, in two panels: against the algorithmic
    average latency (what the geometry promises) and against the measured mean word-end delay of a
    streaming recogniser (what a listener waits). Error bars: ``standard_errors`` (CER), if given."""
    if not results:
        raise ValueError("results holds no variant.")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    panels = [("algorithmic latency, average over a segment (ms)", lambda r: r["latency_ms"]["average"]),
              ("measured: word end to available, mean (ms)", lambda r: r["available_ms"]["mean"])]
    for ax, (xlabel, x_of) in zip(axes, panels):
        placed: List[float] = []
        for i, (name, row) in enumerate(results.items()):
            colour = _COLOURS[i % len(_COLOURS)]
            # Variants at (nearly) the same latency: each drawn 8 points right of the one before (the data stay
            # where they are, only the marker moves), so error bars and labels do not cover each other.
            j = sum(abs(x - x_of(row)) < 2.0 for x in placed)
            placed.append(x_of(row))
            dodge = transforms.offset_copy(ax.transData, fig=fig, x=8 * j, y=0, units="points")
            se = None if not standard_errors or name not in standard_errors else 100 * standard_errors[name]
            y, half = 100 * row["cer"], se or 0.0
            ax.plot([x_of(row)] * 2, [y - half, y + half], alpha=0)  # the autoscaling ignores the moved marker
            ax.errorbar([x_of(row)], [y], yerr=None if se is None else [se], fmt="o", color=colour, capsize=3, ms=7,
                        transform=dodge)
            ax.annotate(name, (x_of(row), 100 * row["cer"]), textcoords="offset points", xytext=(6 + 8 * j, 5),
                        fontsize=8, color=colour)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
        lo, hi = ax.get_xlim()
        ax.set_xlim(lo, hi + 0.2 * (hi - lo))  # room for the labels
    axes[0].set_ylabel("CER (%), streaming greedy")
    fig.suptitle(title or "Accuracy against latency, one point per variant (lower left is better)")
    fig.tight_layout()
    return fig


@dataclass
class VariantEmissions:
    """One variant's streaming greedy output on one utterance: ``labels`` (one per emitted token, the
    space as ␣), ``frames`` (the encoder frame of each), and the geometry in input frames."""

    name: str
    text: str
    labels: List[str]
    frames: List[int]
    stride: int
    segment_length: int
    right_context_length: int

    @property
    def emitted_ms(self) -> np.ndarray:
        """Audio time of each emission: the end of its encoder frame."""
        return (np.asarray(self.frames, dtype=np.float64) + 1) * self.stride * FRAME_MS

    @property
    def available_ms(self) -> np.ndarray:
        """When a streaming recogniser holds each emitting frame's segment and look-ahead."""
        k = np.asarray(self.frames, dtype=np.int64)
        S, R = self.segment_length, self.right_context_length
        return ((k * self.stride // S + 1) * S + R) * FRAME_MS


def variant_emissions(pretrained, utterance, name: str = "") -> VariantEmissions:
    """Decode ``utterance`` chunk by chunk with ``pretrained``'s model (greedy) and keep each token's frame."""
    model = pretrained.model
    with torch.no_grad():
        result = evaluate(model, [utterance], pretrained.feature_extractor, pretrained.blank, beam_width=None,
                          streaming=True, vocab=pretrained.vocab)
    tr = model.transcriber
    tokens = [int(t) for t in result.hyps[0]]
    return VariantEmissions(name, result.hyp_texts[0], [pretrained.vocab.label(t) for t in tokens],
                            [int(k) for k in result.timesteps[0]], tr.time_reduction.stride, tr.segment_length,
                            tr.right_context_length)


def _word_boxes(ax, utterance, y_label: float) -> None:
    words = utterance.words
    for i, (w, s, e) in enumerate(words.as_list()):
        s_ms, e_ms = 1000.0 * s / 16000, 1000.0 * e / 16000
        ax.axvspan(s_ms, e_ms, ymin=0, ymax=1, color=OKABE_ITO["sky"] if i % 2 == 0 else OKABE_ITO["yellow"],
                   alpha=0.25, lw=0)
        ax.axvline(e_ms, color=OKABE_ITO["blue"], lw=0.8, ls="--")
        ax.text((s_ms + e_ms) / 2, y_label, w, ha="center", va="bottom", fontsize=9, color=OKABE_ITO["blue"])


def _draw_row(ax, em: VariantEmissions, y: float, colour: str, chunk_ticks: bool = True) -> None:
    # Characters at their emission time; a small dot at the time they become available, joined by a line.
    # Several characters of one frame share its time: spread their letters side by side to stay legible.
    counts = {k: em.frames.count(k) for k in set(em.frames)}
    seen: Dict[int, int] = {}
    gap = 0.012 * (ax.get_xlim()[1] - ax.get_xlim()[0])  # about one letter's width
    for k, label, t_em, t_av in zip(em.frames, em.labels, em.emitted_ms, em.available_ms):
        j = seen[k] = seen.get(k, -1) + 1
        x = t_em + (j - (counts[k] - 1) / 2) * gap
        ax.plot([x, t_av], [y, y - 0.28], color=colour, lw=0.6, alpha=0.6)
        ax.plot([t_av], [y - 0.28], ".", color=colour, ms=4)
        ax.text(x, y, label, ha="center", va="center", fontsize=9, color=colour, fontweight="bold")
    if chunk_ticks:
        step = em.segment_length * FRAME_MS
        end = ax.get_xlim()[1]
        for c in np.arange(step, end, step):
            ax.plot([c, c], [y + 0.25, y + 0.4], color="0.4", lw=0.8)


def emissions_figure(emissions: Sequence[VariantEmissions], utterance, title: str = ""):
    """One row per variant: each emitted character at the audio time of its encoder frame (bold letter),
    joined to the moment a streaming recogniser holds it (dot); grey ticks above a row mark that variant's
    segment ends; the true word spans (eSpeak NG's) are the shaded boxes, each word's end a dashed line."""
    if not emissions:
        raise ValueError("emissions holds no variant.")
    duration_ms = 1000.0 * utterance.waveform.numel() / 16000
    n = len(emissions)
    fig, ax = plt.subplots(figsize=(11, 0.75 * n + 1.6))
    ax.set_xlim(0, duration_ms + 250)
    ax.set_ylim(-0.6, n - 0.2)
    _word_boxes(ax, utterance, n - 0.35)
    for i, em in enumerate(emissions):
        y = n - 1 - i
        _draw_row(ax, em, y, _COLOURS[i % len(_COLOURS)])
    ax.set_yticks([n - 1 - i for i in range(n)],
                  [f"{em.name}\n(S {em.segment_length}, R {em.right_context_length})" for em in emissions], fontsize=8)
    ax.set_xlabel("audio time (ms): letter = emitted at its frame's end, dot = available to a streaming recogniser")
    ax.set_title(title or f"'{utterance.text}': streaming greedy emissions against the true word spans", fontsize=10)
    fig.tight_layout()
    return fig


def variant_figure(variant: str, variants: Mapping, utterance):
    """Callback of ``widgets.variant_explorer``: variant ``variant`` (a key of ``variants``, ``{name:
    Pretrained}``) on one utterance. Top: its streaming greedy emissions against the true word spans, with
    its chunk boundaries (segment ends, dotted). Bottom: the posterior occupancy of the true transcript's
    lattice (notebook 07) with the Viterbi path, the true character spans as boxes and the same chunk
    boundaries, in encoder frames."""
    if variant not in variants:
        raise ValueError(f"unknown variant {variant!r}; variants: {list(variants)}.")
    pre = variants[variant]
    em = variant_emissions(pre, utterance, variant)
    S, stride = em.segment_length, em.stride
    duration_ms = 1000.0 * utterance.waveform.numel() / 16000
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.4), gridspec_kw={"height_ratios": [1, 2.6]})
    top.set_xlim(0, duration_ms + 250)
    top.set_ylim(-0.6, 0.9)
    _word_boxes(top, utterance, 0.55)
    for c in np.arange(S * FRAME_MS, duration_ms + 250, S * FRAME_MS):
        top.axvline(c, color="0.5", lw=0.7, ls=":")
    _draw_row(top, em, 0.0, OKABE_ITO["vermillion"], chunk_ticks=False)
    top.set_yticks([])
    top.set_xlabel("audio time (ms); dotted: segment ends (a chunk is ready once R more frames have arrived)",
                   fontsize=8)
    top.set_title(f"{variant} (S {S}, R {em.right_context_length} input frames): heard {em.text!r}", fontsize=10)

    feats = pre.features(utterance.waveform)  # (T + R, F)
    T_in = feats.size(0) - pre.right_context_length
    with torch.no_grad():
        ali = forced_align(pre.model, feats, T_in, utterance.tokens, pre.blank)
    lat = lattice_tables(ali.blank_lp, ali.emit_lp)
    names = [pre.vocab.label(int(t)) for t in utterance.tokens]
    plot_lattice(lat.node_posterior, ax=bottom, alignment=ali, true_spans=utterance.alignment.encoder_spans(stride),
                 token_names=names, colorbar_label="probability", vmin=0, vmax=1,
                 title="posterior occupancy of the true transcript, Viterbi path, true character spans")
    per_chunk = S // stride
    for c in range(per_chunk, lat.node_posterior.shape[0], per_chunk):
        bottom.axvline(c - 0.5, color="white", lw=0.8, ls=":")
    fig.tight_layout()
    return fig
