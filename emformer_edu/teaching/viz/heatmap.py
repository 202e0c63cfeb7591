"""One heatmap helper for every mask, attention, lattice and state picture, and the course's colours.

All figures use colour-blind-safe colormaps (viridis / cividis family) and Okabe-Ito colours,
carry titles and axis labels, and mark a mask's blocks (memory, right context, left context,
utterance, summary) with separators and labelled ticks so a learner can read the layout directly.
"""
from typing import List, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
import torch

from ...encoder.masks import Block

KIND_NAMES = {"memory": "memory", "right_context": "right context", "left_context": "left context",
              "utterance": "utterance", "summary": "summary"}

# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
MASKED_COLOUR = "#E8E8E8"  # light grey: far from every viridis / cividis colour, so "masked" reads as "absent"
REGION_COLOURS = {"left context": OKABE_ITO["sky"], "segment": OKABE_ITO["orange"], "right context": OKABE_ITO["green"]}


def _as_numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asanyarray(x)  # keeps masks


def _mark_blocks(ax, blocks: Sequence[Block], axis: str) -> None:
    """Ticks at block centres labelled with the block name; thin lines between blocks, thick between kinds."""
    blocks = [b for b in blocks if len(b)]
    centres = [(b.start + b.stop - 1) / 2 for b in blocks]
    labels = [b.label for b in blocks]
    line = ax.axhline if axis == "y" else ax.axvline
    for prev, b in zip(blocks, blocks[1:]):
        thick = prev.kind != b.kind
        line(b.start - 0.5, color="white" if thick else "0.75", lw=2.0 if thick else 0.6)
    if axis == "y":
        ax.set_yticks(centres, labels, fontsize=7)
    else:
        ax.set_xticks(centres, labels, fontsize=7, rotation=90)


def heatmap(
    values,
    *,
    row_blocks: Optional[Sequence[Block]] = None,
    col_blocks: Optional[Sequence[Block]] = None,
    ax=None,
    title: str = "",
    xlabel: str = "keys",
    ylabel: str = "queries",
    cmap: str = "viridis",
    vmin: Optional[float] = None,
    vmax: Optional[float] = None,
    colorbar: bool = True,
    colorbar_label: str = "",
    masked=None,
    masked_label: str = "masked (not allowed)",
):
    """Draw a 2-D array ``(rows, cols)`` as a heatmap; returns the axes.

    ``row_blocks``/``col_blocks`` (from an :class:`AttentionMask`) label and separate blocks.
    ``masked`` (a boolean array of the same shape, True = masked) draws those cells in
    :data:`MASKED_COLOUR` with a legend entry ``masked_label``, so a cell the mask forbids never
    looks like a cell whose probability is merely near zero (both are dark in viridis).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    data = _as_numpy(values)
    colours = plt.get_cmap(cmap)
    if masked is not None:
        hide = _as_numpy(masked).astype(bool)
        if hide.shape != data.shape:
            raise ValueError(f"masked must have the shape of values {data.shape}, got {hide.shape}.")
        data = np.ma.masked_array(data.astype(float), mask=hide)
        colours = colours.with_extremes(bad=MASKED_COLOUR)
        if hide.any():
            ax.legend(handles=[Patch(facecolor=MASKED_COLOUR, edgecolor="0.5", label=masked_label)],
                      loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=7, frameon=False)
    image = ax.imshow(data, cmap=colours, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    if row_blocks is not None:
        _mark_blocks(ax, row_blocks, "y")
    if col_blocks is not None:
        _mark_blocks(ax, col_blocks, "x")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=colorbar_label)
    return ax


def block_kinds(blocks: Sequence[Block]) -> List[str]:
    seen = []
    for b in blocks:
        if len(b) and KIND_NAMES[b.kind] not in seen:
            seen.append(KIND_NAMES[b.kind])
    return seen
