"""Notebook 02 (and 00): the attention mask, drawn block by block, and attention probabilities on it."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from typing import Optional

from ...encoder.masks import AttentionMask, training_mask
from .heatmap import block_kinds, heatmap


def plot_mask(mask: AttentionMask, ax=None, title: str = "Emformer attention mask"):
    """Allowed (dark) vs blocked (light) query-key pairs, with the block layout labelled."""
    ax = heatmap(mask.allowed.float(), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, title=title,
                 xlabel="keys: " + " | ".join(block_kinds(mask.cols)),
                 ylabel="queries: " + " | ".join(block_kinds(mask.rows)),
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


def mask_figure(utterance_length: int = 12, segment_length: int = 4, right_context_length: int = 2,
                left_context_length: int = 4, max_memory_size: int = 2):
    """A figure of the training-mode mask for the given sizes (callback of ``widgets.mask_explorer``)."""
    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    fig, ax = plt.subplots(figsize=(7, 6))
    plot_mask(mask, ax=ax, title=f"T={utterance_length}, segment={segment_length}, R={right_context_length}, "
                                 f"L={left_context_length}, M={max_memory_size}")
    fig.tight_layout()
    return fig


def mask_assembly_figure(utterance_length: int, segment_length: int, right_context_length: int,
                         left_context_length: int = 0, max_memory_size: int = 0, max_panels: int = 4):
    """The training mask built up segment by segment: panel i shows the rows that segment i adds.

    Rows of other segments are left blank; the mask itself comes from :func:`training_mask`.
    """
    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    segments = sorted({b.segment for b in mask.rows})[:max_panels]
    fig, axes = plt.subplots(1, len(segments), figsize=(4.2 * len(segments), 4.4), squeeze=False)
    allowed = mask.allowed.float().numpy()
    for ax, i in zip(axes[0], segments):
        rows = np.zeros(mask.shape[0], dtype=bool)
        for b in mask.rows:
            if b.segment <= i:
                rows[b.start:b.stop] = True
        shown = np.ma.masked_array(allowed, mask=~rows[:, None].repeat(allowed.shape[1], 1))
        heatmap(shown, row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, cmap="cividis_r", vmin=0, vmax=1,
                colorbar=False, title=f"after segment {i}", xlabel="keys", ylabel="queries" if i == 0 else "")
    fig.suptitle("Training mask, one segment's rows (right context, frames, summary) at a time")
    fig.tight_layout()
    return fig


def mask_comparison_figure(base: dict, changes: dict):
    """One panel per changed argument: ``plot_mask(training_mask(**{**base, name: value}))``."""
    panels = [("baseline", base)] + [(f"{k}={v}", {**base, k: v}) for k, v in changes.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 4.2), squeeze=False)
    for ax, (title, kwargs) in zip(axes[0], panels):
        mask = training_mask(**kwargs)
        heatmap(mask.allowed.float(), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, cmap="cividis_r",
                vmin=0, vmax=1, colorbar=False, title=title, xlabel="keys", ylabel="queries")
    fig.tight_layout()
    return fig
