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


# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
OKABE_ITO = {"orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
REGION_COLOURS = {"left context": OKABE_ITO["sky"], "segment": OKABE_ITO["orange"], "right context": OKABE_ITO["green"]}


def mask_figure(utterance_length: int = 12, segment_length: int = 4, right_context_length: int = 2,
                left_context_length: int = 4, max_memory_size: int = 2):
    """A figure of the training-mode mask for the given sizes (callback of ``widgets.mask_explorer``)."""
    from .masks import training_mask

    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    fig, ax = plt.subplots(figsize=(7, 6))
    plot_mask(mask, ax=ax, title=f"T={utterance_length}, segment={segment_length}, R={right_context_length}, "
                                 f"L={left_context_length}, M={max_memory_size}")
    fig.tight_layout()
    return fig


def chunk_figure(num_frames: int, segment_length: int, right_context_length: int, left_context_length: int,
                 chunk_index: int = 0, log_mel=None, token_spans=None, token_names=None, frame_ms: float = 10.0):
    """Which input frames chunk ``chunk_index`` owns (segment), looks ahead to and looks back to.

    Frames are input frames (10 ms each). ``log_mel`` ``(T, F)`` is drawn underneath if given;
    ``token_spans`` (pairs of start/end frames) with ``token_names`` mark the true tokens.
    Callback of ``widgets.chunk_stepper``.
    """
    from .segments import segment_spans

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


def mask_assembly_figure(utterance_length: int, segment_length: int, right_context_length: int,
                         left_context_length: int = 0, max_memory_size: int = 0, max_panels: int = 4):
    """The training mask built up segment by segment: panel i shows the rows that segment i adds.

    Rows of other segments are left blank; the mask itself comes from :func:`training_mask`.
    """
    from .masks import training_mask

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
    from .masks import training_mask

    panels = [("baseline", base)] + [(f"{k}={v}", {**base, k: v}) for k, v in changes.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.0 * len(panels), 4.2), squeeze=False)
    for ax, (title, kwargs) in zip(axes[0], panels):
        mask = training_mask(**kwargs)
        heatmap(mask.allowed.float(), row_blocks=mask.rows, col_blocks=mask.cols, ax=ax, cmap="cividis_r",
                vmin=0, vmax=1, colorbar=False, title=title, xlabel="keys", ylabel="queries")
    fig.tight_layout()
    return fig


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


def memory_bank_figure(recording, layer: int = 0, title: str = ""):
    """Memory bank contents chunk by chunk: slot (rows, oldest first) vs streaming call (columns).

    Each cell names the chunk whose memory occupies that slot, found by matching the recorded
    vectors (:func:`emformer_edu.inspection.memory_provenance`); empty cells are slots not yet filled.
    """
    from .inspection import memory_provenance

    table = memory_provenance(recording, layer)
    M = max(len(r) for r in table) if table else 0
    grid = np.full((max(M, 1), len(table)), np.nan)
    for c, row in enumerate(table):
        for s, src in enumerate(row):
            grid[M - len(row) + s, c] = src  # newest slot at the bottom, as the bank is ordered
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(table) + 2), 1.2 + 0.6 * max(M, 1)))
    heatmap(np.ma.masked_invalid(grid), ax=ax, cmap="viridis", vmin=0, vmax=max(len(table) - 1, 1),
            colorbar=False, xlabel="streaming call (chunk)", ylabel="memory slot (oldest at top)",
            title=title or f"Memory bank read by layer {layer}: which chunk each slot came from")
    for (s, c), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(c, s, f"c{int(v)}", ha="center", va="center", fontsize=8,
                    color="white" if v < 0.6 * max(len(table) - 1, 1) else "black")
    ax.set_xticks(range(len(table)))
    ax.set_yticks(range(max(M, 1)))
    fig.tight_layout()
    return fig


def attention_mass_figure(call_record, query_kind: str = "utterance", title: str = ""):
    """Stacked bars: per layer, how the queries' attention splits over memory, context and segment."""
    from .inspection import attention_mass

    masses = [attention_mass(layer, query_kind) for layer in call_record.layers]
    kinds = [k for k in ["memory", "left_context", "right_context", "utterance"] if any(k in m for m in masses)]
    colours = {"memory": OKABE_ITO["purple"], "left_context": OKABE_ITO["sky"],
               "right_context": OKABE_ITO["green"], "utterance": OKABE_ITO["orange"]}
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(masses) + 1.6))
    left = np.zeros(len(masses))
    for kind in kinds:
        values = np.array([m.get(kind, 0.0) for m in masses])
        label = {"utterance": "own segment" if "left_context" in kinds else "utterance (segment + left context)"}.get(kind, KIND_NAMES[kind])
        ax.barh(range(len(masses)), values, left=left, color=colours[kind], label=label)
        left += values
    ax.set_yticks(range(len(masses)), [f"layer {i}" for i in range(len(masses))])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"share of attention of the {KIND_NAMES.get(query_kind, query_kind)} queries")
    ax.set_title(title or "Where does attention go?")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(masses) < 3 else -0.2), ncol=len(kinds), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def state_figure(states, batch: int = 0, title: str = "Streaming state"):
    """One row per layer: memory slots ``(M, D)`` and cached left-context keys ``(L, D)`` as heatmaps."""
    fig, axes = plt.subplots(len(states), 2, figsize=(10, 1.6 * len(states) + 1), squeeze=False)
    for i, s in enumerate(states):
        past = int(s.past_length[0][batch])
        for ax, name, tensor in [(axes[i, 0], "memory", s.memory), (axes[i, 1], "left-context keys", s.left_context_key)]:
            data = tensor[:, batch].detach().float().cpu()
            if data.numel() == 0:
                ax.text(0.5, 0.5, f"layer {i}: no {name} (size 0)", ha="center", va="center", transform=ax.transAxes)
                ax.set_axis_off()
                continue
            heatmap(data, ax=ax, cmap="cividis", colorbar=True, xlabel="dimension D" if i == len(states) - 1 else "",
                    ylabel="slot" if name == "memory" else "cached frame", title=f"layer {i} {name} (after {past} frames)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def difference_figure(reference, variants: dict, title: str = "", frame_label: str = "encoder frame"):
    """Per-frame max |variant - reference| on a log scale, one line per variant.

    ``reference`` and each variant are ``(T, D)`` (or ``(1, T, D)``); exact zeros are drawn at 1e-17.
    """
    ref = _as_numpy(reference).reshape(-1, _as_numpy(reference).shape[-1])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    colours = [OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["purple"]]
    for colour, (name, tensor) in zip(colours, variants.items()):
        diff = np.abs(_as_numpy(tensor).reshape(ref.shape) - ref).max(axis=1)
        ax.semilogy(np.arange(len(diff)), np.maximum(diff, 1e-17), marker="o", ms=3, color=colour, label=name)
    ax.set_xlabel(frame_label)
    ax.set_ylabel("max |difference|")
    ax.set_title(title or "Difference from the full-context output")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
