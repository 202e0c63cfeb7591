"""Notebook 05: the receptive field over layers, with right-context hard copies and without them.

The reachability comes from :func:`emformer_edu.teaching.ablations.reachability` (propagated through
the library's per-layer attention masks); this module only draws it.
"""
from typing import Dict, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

import torch

from ..ablations import look_ahead
from .heatmap import MASKED_COLOUR, OKABE_ITO, REGION_COLOURS, _as_numpy, heatmap

# 0 not reachable, 1 past, 2 own segment, 3 future (look-ahead)
_COLOURS = [MASKED_COLOUR, REGION_COLOURS["left context"], REGION_COLOURS["segment"], OKABE_ITO["vermillion"]]
_NAMES = ["not reachable", "past frames", "the segment itself", "future frames (look-ahead)"]


def receptive_field_figure(reaches: Dict[str, Sequence], segment_length: int, segment: int = 1,
                           frame_ms: float = 40.0, model_layers: Optional[int] = None, title: str = ""):
    """One grid per design (layer × input frame) and the look-ahead against depth.

    ``reaches``: ``{design name: [reach after layer 0 (the input), 1, ...]}``, each reach ``(T, T + R)``
    bool (which input frames each utterance frame depends on). The grids show, for ``segment``'s
    frames, which input frames they can depend on after each of the first ``model_layers`` layers
    (default: all); the right panel plots each design's look-ahead (furthest input frame reached,
    counted from the segment's last frame) in ms of ``frame_ms`` per encoder frame, for every depth given.
    """
    names = list(reaches)
    depth = len(reaches[names[0]]) - 1
    shown = depth if model_layers is None else model_layers
    S = segment_length
    first, last = segment * S, (segment + 1) * S - 1
    grids, furthest = [], 0
    for name in names:
        rows = []
        for reach in reaches[name][: shown + 1]:
            r = _as_numpy(reach).astype(bool)
            seg_reach = r[first:last + 1].any(0)
            cols = np.arange(r.shape[1])
            code = np.where(cols < first, 1, np.where(cols <= last, 2, 3)) * seg_reach
            rows.append(code)
            if seg_reach.any():
                furthest = max(furthest, int(cols[seg_reach].max()))
        grids.append(np.array(rows))
    width = min(grids[0].shape[1], furthest + S + 1)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4.6 * len(names) + 3.4, 3.9),
                             gridspec_kw={"width_ratios": [3] * len(names) + [2.2]})
    cmap = ListedColormap(_COLOURS)
    for ax, name, grid in zip(axes, names, grids):
        ax.imshow(grid[:, :width], cmap=cmap, vmin=-0.5, vmax=3.5, aspect="auto", interpolation="nearest",
                  origin="lower")
        for b in range(0, width + 1, S):
            ax.axvline(b - 0.5, color="white", lw=1.2)
        ahead = [look_ahead(torch.as_tensor(r), S) for r in reaches[name][: shown + 1]]
        ax.set_yticks(range(shown + 1), ["input"] + [f"layer {n} (+{ahead[n]})" for n in range(1, shown + 1)])
        ticks = list(range(0, width, S))
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("input frame (encoder frames)")
        ax.set_title(f"{name}\nsegment {segment}'s receptive field (+k: look-ahead in frames)", fontsize=9)
    fig.legend(handles=[Patch(facecolor=c, edgecolor="0.5", label=n) for c, n in zip(_COLOURS, _NAMES)],
               loc="lower center", ncol=4, fontsize=8, frameon=False)
    ax = axes[-1]
    colours = [OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"]]
    for colour, name in zip(colours, names):
        ahead = [look_ahead(torch.as_tensor(r), S) * frame_ms for r in reaches[name][1:]]
        ax.plot(range(1, depth + 1), ahead, marker="o", ms=4, color=colour, label=name)
    if model_layers is not None and model_layers < depth:
        ax.axvline(model_layers, color="0.5", ls=":", lw=1)
        ax.text(model_layers, 0.5, " this model", transform=ax.get_xaxis_transform(), fontsize=7, va="center",
                color="0.4")
    ax.set_xticks(range(1, depth + 1), [str(n) for n in range(1, depth + 1)])
    ax.set_xlabel("layers")
    ax.set_ylabel("look-ahead (ms)")
    ax.set_title("look-ahead against depth", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig



def mask_rewiring_figure(masks: Dict[str, object], query_kind: str = "utterance", title: str = ""):
    """The query rows of kind ``query_kind`` of each :class:`~emformer_edu.encoder.masks.AttentionMask` in
    ``masks`` (``{name: mask}``, same layout), side by side. Allowed cells are blue, cells allowed here but
    not in the first mask vermillion, blocked cells grey: the first mask is the reference."""
    names = list(masks)
    reference = masks[names[0]].only_rows(query_kind)
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 3.4), squeeze=False)
    cmap = ListedColormap([OKABE_ITO["blue"], OKABE_ITO["vermillion"]])
    for ax, name in zip(axes[0], names):
        mask = masks[name].only_rows(query_kind)
        allowed = _as_numpy(mask.allowed).astype(bool)
        new = allowed & ~_as_numpy(reference.allowed).astype(bool)
        heatmap(np.where(new, 1.0, 0.0), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, cmap=cmap, vmin=-0.5,
                vmax=1.5, masked=~allowed, masked_label="blocked", colorbar=False, title=name,
                ylabel=f"{query_kind} queries", xlabel="keys")
        if ax.get_legend() is not None:  # one legend for the figure, below
            ax.get_legend().remove()
    handles = [Patch(facecolor=OKABE_ITO["blue"], label="allowed"),
               Patch(facecolor=OKABE_ITO["vermillion"], label=f"allowed here, not in '{names[0]}'"),
               Patch(facecolor=MASKED_COLOUR, edgecolor="0.5", label="blocked")]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def prefix_difference_figure(waits: Sequence[int], differences: Dict[str, Sequence[float]],
                             look_aheads: Optional[Dict[str, int]] = None, frame_ms: float = 40.0, title: str = ""):
    """Max |encodings from the input arrived so far − full-context encodings| against how many encoder
    frames after its segment's end a streaming recogniser waited (``waits``), one line per design
    (``differences``: ``{name: [max difference per wait]}``, from
    :func:`~emformer_edu.teaching.ablations.prefix_encodings`).
    Exact zeros are drawn at 1e-17; ``look_aheads`` (``{name: frames}``) marks each design's receptive field."""
    fig, ax = plt.subplots(figsize=(8, 3.3))
    colours = [OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"]]
    for colour, (name, diffs) in zip(colours, differences.items()):
        ax.semilogy(list(waits), np.maximum(np.asarray(diffs, dtype=float), 1e-17), marker="o", ms=4, color=colour,
                    label=name)
        if look_aheads and name in look_aheads:
            ax.axvline(look_aheads[name], color=colour, ls=":", lw=1)
    ax.set_xticks(list(waits), [f"{w}\n{w * frame_ms:.0f} ms" for w in waits], fontsize=7)
    ax.set_xlabel("encoder frames waited after the segment's end")
    ax.set_ylabel("max |difference|")
    ax.set_title(title or "Can a streaming recogniser reproduce the training pass?", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
