"""Plotting helpers. One heatmap helper draws every mask and attention picture.

All figures use colour-blind-safe colormaps (viridis / cividis family), carry titles and
axis labels, and mark the mask's blocks (memory, right context, left context, utterance,
summary) with separators and labelled ticks so a learner can read the layout directly.
"""
from typing import List, Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

from .masks import AttentionMask, Block

KIND_NAMES = {"memory": "memory", "right_context": "right context", "left_context": "left context",
              "utterance": "utterance", "summary": "summary"}


def _as_numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


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
):
    """Draw a 2-D array ``(rows, cols)`` as a heatmap; returns the axes.

    ``row_blocks``/``col_blocks`` (from an :class:`AttentionMask`) label and separate blocks.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(_as_numpy(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
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


def plot_mask(mask: AttentionMask, ax=None, title: str = "Emformer attention mask"):
    """Allowed (dark) vs blocked (light) query-key pairs, with the block layout labelled."""
    ax = heatmap(mask.allowed.float(), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, title=title,
                 xlabel="keys: " + " | ".join(_kinds(mask.cols)),
                 ylabel="queries: " + " | ".join(_kinds(mask.rows)),
                 cmap="cividis_r", vmin=0, vmax=1, colorbar=False)
    cmap = matplotlib.colormaps["cividis_r"]
    ax.legend(handles=[Patch(color=cmap(1.0), label="may attend"), Patch(color=cmap(0.0), label="blocked", ec="0.5")],
              loc="upper right", bbox_to_anchor=(1.0, 1.16), ncol=2, fontsize=8, frameon=False)
    return ax


def plot_attention(layer_record, head: int = 0, batch: int = 0, ax=None, title: Optional[str] = None):
    """One head's attention probabilities from a recorded layer, with the mask's block labels."""
    mask = layer_record.attention_mask
    probs = layer_record.attention_probs[batch, head]
    title = title or f"layer {layer_record.layer}, head {head}: attention probabilities"
    return heatmap(probs, row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, title=title,
                   cmap="viridis", vmin=0, colorbar_label="probability")


def _kinds(blocks: Sequence[Block]) -> List[str]:
    seen = []
    for b in blocks:
        if len(b) and KIND_NAMES[b.kind] not in seen:
            seen.append(KIND_NAMES[b.kind])
    return seen
