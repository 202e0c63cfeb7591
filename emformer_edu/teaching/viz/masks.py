"""Notebook 02 (and 00, 04): the attention mask, drawn block by block, and attention probabilities on it.

Every mask figure draws allowed cells dark and masked cells in :data:`MASKED_COLOUR` (light grey),
with a legend saying so; every attention figure draws masked cells in the same grey, so a key the
mask forbids never looks like a key that merely got little probability. Axes are labelled by block
(``m<j>`` memory slot, ``rc<i>`` right-context copy of segment i, ``seg<i>`` frames of segment i,
``lc<i>`` cached left context, ``s<i>`` summary query).
"""
from typing import Optional, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

from ...encoder.masks import AttentionMask, Block, training_mask
from .heatmap import MASKED_COLOUR, block_kinds, heatmap

MASK_CMAP = "cividis_r"
ALLOWED_LABEL = "may attend"
MASKED_LABEL = "masked: score + (−∞), probability 0"


def _allowed_colour():
    return matplotlib.colormaps[MASK_CMAP](1.0)


def mask_legend_handles():
    """The two legend entries of every mask figure: allowed (dark) and masked (grey)."""
    return [Patch(color=_allowed_colour(), label=ALLOWED_LABEL),
            Patch(facecolor=MASKED_COLOUR, edgecolor="0.5", label=MASKED_LABEL)]


def _draw_mask(mask: AttentionMask, ax, title: str, xlabel: str, ylabel: str):
    ax = heatmap(mask.allowed.float(), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, title=title,
                 xlabel=xlabel, ylabel=ylabel, cmap=MASK_CMAP, vmin=0, vmax=1, colorbar=False,
                 masked=mask.blocked)
    legend = ax.get_legend()
    if legend is not None:  # one legend per figure, drawn by the caller
        legend.remove()
    return ax


def plot_mask(mask: AttentionMask, ax=None, title: str = "Emformer attention mask", legend: bool = True):
    """Allowed (dark) vs masked (grey) query-key pairs, with the block layout labelled on both axes."""
    ax = _draw_mask(mask, ax, title, xlabel="keys: " + " | ".join(block_kinds(mask.cols)),
                    ylabel="queries: " + " | ".join(block_kinds(mask.rows)))
    if legend:
        ax.legend(handles=mask_legend_handles(), loc="lower right", bbox_to_anchor=(1.0, 1.06), ncol=2,
                  fontsize=8, frameon=False)
    return ax


def plot_attention(layer_record, head: int = 0, batch: int = 0, ax=None, title: Optional[str] = None,
                   vmax: Optional[float] = None, colorbar: bool = True):
    """One head's attention probabilities from a recorded layer, with the mask's block labels.

    Masked keys (the mask, and the padding mask if any) are drawn grey, not as probability 0.
    Pass the same ``vmax`` to every head of a figure so that they share one colour scale.
    """
    mask = layer_record.attention_mask
    probs = layer_record.attention_probs[batch, head]
    blocked = mask.blocked.cpu().numpy().copy()
    if layer_record.padding_mask is not None:
        blocked |= layer_record.padding_mask[batch].cpu().numpy()[None, :]
    title = title or f"layer {layer_record.layer}, head {head}: attention probabilities"
    return heatmap(probs, row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, title=title,
                   cmap="viridis", vmin=0, vmax=vmax, colorbar=colorbar, colorbar_label="probability",
                   masked=blocked)


def attention_heads_figure(layer_record, batch: int = 0, title: Optional[str] = None):
    """Every head of one recorded layer side by side, on ONE colour scale (0 to the largest probability).

    Masked cells are grey (legend below); the colour bar is shared by all heads.
    """
    probs = layer_record.attention_probs[batch]
    num_heads = probs.size(0)
    vmax = float(probs.max())
    fig, axes = plt.subplots(1, num_heads, figsize=(5.2 * num_heads, 4.8), squeeze=False)
    for head, ax in enumerate(axes[0]):
        plot_attention(layer_record, head=head, batch=batch, ax=ax, vmax=vmax, colorbar=False,
                       title=f"head {head}")
        if ax.get_legend() is not None:
            ax.get_legend().remove()
        if head:
            ax.set_ylabel("")
    fig.colorbar(axes[0][0].images[0], ax=list(axes[0]), fraction=0.03, pad=0.02,
                 label="attention probability (one scale for all heads)")
    fig.legend(handles=[Patch(facecolor=MASKED_COLOUR, edgecolor="0.5", label="masked key (probability exactly 0)")],
               loc="lower left", fontsize=8, frameon=False)
    fig.suptitle(title or f"Layer {layer_record.layer}: attention probabilities of every head")
    return fig


def mask_figure(utterance_length: int = 12, segment_length: int = 4, right_context_length: int = 2,
                left_context_length: int = 4, max_memory_size: int = 2):
    """A figure of the training-mode mask for the given sizes (callback of ``widgets.mask_explorer``)."""
    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    fig, ax = plt.subplots(figsize=(7, 6.3))
    plot_mask(mask, ax=ax, title=f"T={utterance_length}, segment={segment_length}, R={right_context_length}, "
                                 f"L={left_context_length}, M={max_memory_size}")
    fig.tight_layout()
    return fig


def segment_rows(mask: AttentionMask, segment: int) -> AttentionMask:
    """The rows of one segment (its right-context rows, its frames, its summary), stacked, all keys kept.

    Rows are taken from ``mask`` (a :func:`training_mask`), not rebuilt: the result is a view of the
    library's mask with renumbered row blocks.
    """
    blocks = [b for b in mask.rows if b.segment == segment and len(b)]
    rows, index, start = [], [], 0
    for b in blocks:
        rows.append(Block(b.kind, b.segment, start, start + len(b), b.frame0))
        index += list(range(b.start, b.stop))
        start += len(b)
    return AttentionMask(mask.blocked[index], rows, mask.cols)


def segment_rows_figure(utterance_length: int, segment_length: int, right_context_length: int,
                        left_context_length: int = 0, max_memory_size: int = 0,
                        segments: Optional[Sequence[int]] = None):
    """One panel per segment i: the key rows of its queries (``rc_i``, ``seg_i``, ``s_i``) in the training mask.

    Each panel is :func:`segment_rows` of :func:`training_mask`, so it shows the index sets of
    segment i directly: memory ``[max(i-M,0), i)``, ``rc_i``, frames ``[max(i*seg-L,0), end of segment)``.
    """
    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    segments = list(segments) if segments is not None else sorted({b.segment for b in mask.rows})
    fig, axes = plt.subplots(len(segments), 1, figsize=(8, 1.0 + 0.32 * (mask.shape[1] // 6 + 4) * len(segments)),
                             squeeze=False)
    for ax, i in zip(axes[:, 0], segments):
        part = segment_rows(mask, i)
        keys = mask.visible_keys(mask.first_row("utterance", i))
        memory = [k for k in keys if k.startswith("m")]
        frames = [int(k.split()[1]) for k in keys if k.startswith("frame")]
        title = (f"segment {i}, frame rows: memory {', '.join(memory) or 'none'}"
                 + (f" | rc{i}" if right_context_length else "") + f" | frames {frames[0]}–{frames[-1]}"
                 + (f";  s{i}: the same without memory" if max_memory_size else ""))
        _draw_mask(part, ax, title=title, xlabel="", ylabel="queries")
    axes[-1, 0].set_xlabel("keys: " + " | ".join(block_kinds(mask.cols)))
    fig.legend(handles=mask_legend_handles(), loc="upper right", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Training mask, one segment's query rows at a time", x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


def mask_assembly_figure(utterance_length: int, segment_length: int, right_context_length: int,
                         left_context_length: int = 0, max_memory_size: int = 0, max_panels: int = 4):
    """The training mask built up segment by segment: panel i shows the rows of segments 0..i.

    Rows of later segments are left blank; the mask itself comes from :func:`training_mask`.
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
        heatmap(shown, row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, cmap=MASK_CMAP, vmin=0, vmax=1,
                colorbar=False, title=f"after segment {i}", xlabel="keys", ylabel="queries" if i == 0 else "")
    fig.suptitle("Training mask, one segment's rows (right context, frames, summary) at a time")
    fig.tight_layout()
    return fig


def mask_comparison_figure(base: dict, changes: dict, baseline: bool = True):
    """One panel per changed argument: ``plot_mask(training_mask(**{**base, name: value}))``.

    ``baseline=False`` leaves out the unchanged mask (when the notebook has drawn it already).
    """
    panels = ([("baseline", base)] if baseline else []) + [(f"{k}={v}", {**base, k: v}) for k, v in changes.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, kwargs) in zip(axes[0], panels):
        _draw_mask(training_mask(**kwargs), ax, title=title, xlabel="keys", ylabel="queries")
    fig.legend(handles=mask_legend_handles(), loc="upper right", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig
