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


# ============================================================================= notebooks 06 and 07
import math

from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle


# ----------------------------------------------------------------------------- the transducer (notebook 06)
def time_reduction_figure(input, output, stride: int, title: str = ""):
    """Input frames ``(T, D)`` beside the time-reduced output ``(T // stride, D * stride)``.

    Both come from a real :class:`~emformer_edu.time_reduction.TimeReduction` call; use an input
    whose values are the frame index (``x[t, :] = t``) so each colour names its source frame.
    Lines mark the groups of ``stride`` frames; dropped trailing frames are hatched.
    """
    x, y = _as_numpy(input), _as_numpy(output)
    T, D = x.shape
    kept = y.shape[0] * stride
    vmin, vmax = float(min(x.min(), y.min() if y.size else x.min())), float(x.max())
    fig, (ax_in, ax_out) = plt.subplots(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1, 2.2]})
    heatmap(x, ax=ax_in, title=f"input: T={T} frames x D={D}", xlabel="feature", ylabel="input frame",
            vmin=vmin, vmax=vmax, colorbar=False)
    for t in range(stride, kept + 1, stride):
        ax_in.axhline(t - 0.5, color="white", lw=2)
    if kept < T:
        ax_in.axhspan(kept - 0.5, T - 0.5, facecolor="none", edgecolor=OKABE_ITO["vermillion"], hatch="//", lw=0)
        ax_in.text(D / 2 - 0.5, (kept + T - 1) / 2, "dropped", ha="center", va="center", color="white",
                   fontsize=9, fontweight="bold")
    ax_in.set_yticks(range(T))
    ax_in.set_xticks(range(D))
    heatmap(y, ax=ax_out, title=f"output: T // {stride} = {y.shape[0]} frames x D * {stride} = {y.shape[1]}",
            xlabel=f"feature (input frame offset 0..{stride - 1}, {D} features each)", ylabel="reduced frame",
            vmin=vmin, vmax=vmax, colorbar_label="source input frame")
    for j in range(1, stride):
        ax_out.axvline(j * D - 0.5, color="white", lw=2)
    ax_out.set_yticks(range(y.shape[0]))
    ax_out.set_xticks([j * D + (D - 1) / 2 for j in range(stride)], [f"+{j}" for j in range(stride)])
    fig.suptitle(title or f"Time reduction, stride {stride}: {stride} consecutive frames side by side")
    fig.tight_layout()
    return fig


def predictor_trace(predictor, tokens, state=None, batch: int = 0):
    """Run ``predictor`` on ``tokens (B, U)`` and capture, per LSTM layer, what each step computed.

    Forward hooks on the real modules record (for batch element ``batch``): ``gates`` ``(U, 4H)``,
    the gate pre-activations after the gate LayerNorm (order input, forget, cell, output), ``cell``
    ``(U, H)`` the cell state after the cell LayerNorm, and ``hidden`` ``(U, H)`` the layer output.
    Returns ``(trace, (output, lengths, state))``: the list of per-layer dicts and what the
    predictor returned. Nothing is changed in the computation.
    """
    trace = [{"gates": [], "cell": []} for _ in predictor.lstm_layers]
    hooks = []
    for i, lstm in enumerate(predictor.lstm_layers):
        hooks.append(lstm.g_norm.register_forward_hook(lambda m, a, out, i=i: trace[i]["gates"].append(out[batch].detach())))
        hooks.append(lstm.c_norm.register_forward_hook(lambda m, a, out, i=i: trace[i]["cell"].append(out[batch].detach())))
        hooks.append(lstm.register_forward_hook(
            lambda m, a, out, i=i: trace[i].__setitem__("hidden", out[0][:, batch].detach())))
    lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.int32, device=tokens.device)
    try:
        with torch.no_grad():
            result = predictor(tokens, lengths, state)
    finally:
        for h in hooks:
            h.remove()
    for layer in trace:
        layer["gates"] = torch.stack(layer["gates"])
        layer["cell"] = torch.stack(layer["cell"])
    return trace, result


def predictor_figure(trace, token_names: Sequence[str], layer: int = 0, title: str = ""):
    """Gates, cell and hidden state of one predictor LSTM layer, step by step (from :func:`predictor_trace`)."""
    rec = trace[layer]
    gates, cell, hidden = rec["gates"], rec["cell"], rec["hidden"]
    U, H4 = gates.shape
    H = H4 // 4
    fig, axes = plt.subplots(1, 3, figsize=(11, 4.4), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    heatmap(gates.T, ax=axes[0], title="gate pre-activations (after LayerNorm)", xlabel="step: input token",
            ylabel="gate unit", cmap="cividis", colorbar_label="value")
    for j in range(1, 4):
        axes[0].axhline(j * H - 0.5, color="white", lw=2)
    axes[0].set_yticks([j * H + (H - 1) / 2 for j in range(4)], ["input i", "forget f", "cell g", "output o"])
    heatmap(cell.T, ax=axes[1], title="cell state c (after LayerNorm)", xlabel="step: input token",
            ylabel="unit", cmap="cividis", colorbar_label="value")
    heatmap(hidden.T, ax=axes[2], title="hidden state h = output", xlabel="step: input token",
            ylabel="unit", cmap="cividis", vmin=-1, vmax=1, colorbar_label="value")
    for ax in axes:
        ax.set_xticks(range(U), list(token_names), fontsize=8)
    fig.suptitle(title or f"Predictor LSTM layer {layer}: one column per step")
    fig.tight_layout()
    return fig


def joint_figure(joint, tokens, blank: int, token_names: Sequence[str], title: str = "", annotate: bool = True):
    """One utterance's joint output ``(T, U+1, V)`` on the T x (U+1) grid.

    Top: P(blank | t, u). Middle: P(next true token | t, u) (both from
    :func:`emformer_edu.lattice.utterance_lattice`). Bottom: the most probable symbol per node.
    ``token_names[v]`` names symbol v (blank included); ``tokens`` are the U true tokens.
    """
    from .lattice import utterance_lattice

    joint = joint.detach()
    tokens = [int(t) for t in torch.as_tensor(tokens).reshape(-1).tolist()]
    blank_lp, emit_lp = utterance_lattice(joint, tokens, blank)
    T, U1, V = joint.shape
    argmax = joint.argmax(-1).cpu()
    ylabels = ["∅"] + [token_names[t] for t in tokens]
    fig, axes = plt.subplots(3, 1, figsize=(11, 3 * (1.0 + 0.24 * U1)), sharex=True)
    panels = [(blank_lp.exp(), "P(blank | t, u): move on to the next frame", "probability"),
              (emit_lp[:, :-1].exp() if U1 > 1 else emit_lp.exp(), "P(next true token | t, u): emit it", "probability"),
              ((argmax == blank).float(), "most probable symbol (· = blank)", "")]
    for k, (ax, (values, name, label)) in enumerate(zip(axes, panels)):
        heatmap(values.T, ax=ax, title=name, xlabel="encoder frame t" if k == 2 else "",
                ylabel="tokens emitted so far u" if k != 1 else "next token", cmap="viridis" if k < 2 else "cividis",
                vmin=0, vmax=1, colorbar_label=label)
        ax.invert_yaxis()
    fig.axes[-1].set_yticks([0, 1], ["a token", "blank"])  # the last panel's colorbar
    axes[1].set_yticks(range(U1 - 1), [f"{ylabels[u]}→{ylabels[u + 1]}" for u in range(U1 - 1)], fontsize=7)
    for ax in (axes[0], axes[2]):
        ax.set_yticks(range(U1), [f"{u}: {ylabels[u]}" if u else "0: ∅" for u in range(U1)], fontsize=7)
    if annotate:
        for t in range(T):
            for u in range(U1):
                v = int(argmax[t, u])
                axes[2].text(t, u, "·" if v == blank else token_names[v], ha="center", va="center", fontsize=6,
                             color="black" if v == blank else "white")
    if T <= 30:
        axes[2].set_xticks(range(T))
    fig.suptitle(title or f"Joint output for one utterance: T={T} frames x U+1={U1} predictor steps x V={V}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- loss and lattice (notebook 07)
def _lattice_ylabels(U1: int, token_names: Optional[Sequence[str]] = None) -> List[str]:
    """Row labels of the T x (U+1) grid: ``u`` tokens emitted so far, with the last one's name."""
    if token_names is None:
        return [str(u) for u in range(U1)]
    return ["0: ∅"] + [f"{u}: {token_names[u - 1]}" for u in range(1, U1)]


def encoder_spans(alignment, stride: int) -> List[tuple]:
    """True token spans in encoder frames: ``[(start, end), ...]``, end exclusive.

    Encoder frame k covers input frames ``[k * stride, (k + 1) * stride)`` (see
    :mod:`emformer_edu.evaluation`), so token span ``[s, e)`` overlaps frames
    ``s // stride .. ceil(e / stride) - 1``.
    """
    return [(int(s) // stride, -(-int(e) // stride))
            for s, e in zip(alignment.start_frame.tolist(), alignment.end_frame.tolist())]


def _draw_path(ax, path, colour=OKABE_ITO["vermillion"], label="Viterbi path", lw=2.2, marker_size=7):
    """A lattice path on axes whose x is frame t and y is u: blank edges go right, emit edges up."""
    ts = [t for t, _, _ in path] + [path[-1][0] + 1]
    us = [u for _, u, _ in path] + [path[-1][1]]
    ax.plot(ts, us, color=colour, lw=lw, label=label, solid_capstyle="round")
    emits = [(t, u) for t, u, k in path if k == "emit"]
    if emits:
        ax.plot([t for t, _ in emits], [u + 0.5 for _, u in emits], ls="none", marker="^", color=colour,
                markersize=marker_size, markeredgecolor="white", markeredgewidth=0.6)


def _lattice_handles(path: bool, spans: bool) -> list:
    handles = []
    if spans:
        handles.append(Patch(facecolor="none", edgecolor=OKABE_ITO["sky"], lw=1.8, label="true token span"))
    if path:
        handles.append(Line2D([], [], color=OKABE_ITO["vermillion"], lw=2.2, marker="^", markeredgecolor="white",
                              label="Viterbi path (▲ emit)"))
    return handles


def plot_lattice(values, ax=None, title: str = "", colorbar_label: str = "", alignment=None,
                 true_spans=None, token_names: Optional[Sequence[str]] = None, cmap: str = "viridis",
                 vmin=None, vmax=None, colorbar: bool = True, legend: bool = True):
    """A ``(T, U+1)`` lattice table drawn with frame t on x and tokens emitted so far u upwards.

    ``alignment``: a :class:`~emformer_edu.lattice.LatticeAlignment` (or a list of edges) drawn as a
    path (blank = one step right, emit = one step up, marked ▲). ``true_spans``: per token, the
    encoder frames ``(start, end)`` where it was really spoken (see :func:`encoder_spans`), drawn
    as boxes on the row where that token is emitted. ``token_names``: the U true tokens' names.
    """
    values = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(values)
    T, U1 = values.shape
    ax = heatmap(values.T, ax=ax, title=title, xlabel="encoder frame t", ylabel="tokens emitted so far u",
                 cmap=cmap, vmin=vmin, vmax=vmax, colorbar=colorbar, colorbar_label=colorbar_label)
    ax.invert_yaxis()
    ax.set_yticks(range(U1), _lattice_ylabels(U1, token_names), fontsize=8 if U1 < 12 else 6)
    if T <= 30:
        ax.set_xticks(range(T))
    if true_spans is not None:
        for u, (s, e) in enumerate(true_spans):
            ax.add_patch(Rectangle((s - 0.5, u), e - s, 1, fill=False, edgecolor=OKABE_ITO["sky"], lw=1.8))
    if alignment is not None:
        _draw_path(ax, alignment.path if hasattr(alignment, "path") else alignment)
    ax.set_xlim(-0.5, T - 0.5 + (0.5 if alignment is not None else 0))
    handles = _lattice_handles(alignment is not None, true_spans is not None)
    if legend and handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    return ax


def path_log_probs(blank_lp, emit_lp) -> List[tuple]:
    """Every alignment of a ``(T, U+1)`` lattice with its log-probability: ``[(path, log_p), ...]``.

    Paths come from :func:`emformer_edu.loss.alignment_paths`; a path's log-probability is the sum
    of its edges' log-probabilities, ``blank_lp[t, u]`` or ``emit_lp[t, u]``.
    """
    from .loss import alignment_paths

    T, U1 = blank_lp.shape
    b, e = blank_lp.detach().double().cpu(), emit_lp.detach().double().cpu()
    return [(path, float(sum(b[t, u] if k == "blank" else e[t, u] for t, u, k in path)))
            for path in alignment_paths(T, U1 - 1)]


def alignment_paths_figure(blank_lp, emit_lp, token_names: Optional[Sequence[str]] = None, ncols: int = 5,
                           max_paths: int = 30):
    """Every alignment of a small lattice, one panel each, with its probability.

    Nodes are grey dots at (t, u); the path moves right on blank and up on emit (▲), and its last
    blank leaves the grid. Panels are sorted by probability, most probable first.
    """
    paths = sorted(path_log_probs(blank_lp, emit_lp), key=lambda p: -p[1])
    if len(paths) > max_paths:
        raise ValueError(f"{len(paths)} alignments is too many to draw (max_paths={max_paths}).")
    T, U1 = blank_lp.shape
    nrows = -(-len(paths) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.3 * ncols, 1.0 + (0.5 + 0.42 * U1) * nrows),
                             squeeze=False, sharex=True, sharey=True)
    total = sum(math.exp(lp) for _, lp in paths)
    grid_t, grid_u = np.meshgrid(np.arange(T), np.arange(U1))
    for k, ax in enumerate(axes.flat):
        if k >= len(paths):
            ax.axis("off")
            continue
        path, lp = paths[k]
        ax.scatter(grid_t.ravel(), grid_u.ravel(), s=12, color="0.7", zorder=1)
        _draw_path(ax, path, colour=OKABE_ITO["blue"], lw=1.8)
        ax.set_title(f"p = {math.exp(lp):.3g} ({100 * math.exp(lp) / total:.0f} %)", fontsize=9)
        ax.set_xlim(-0.5, T + 0.3)
        ax.set_ylim(-0.5, U1 - 0.5)
        ax.set_xticks(range(T))
        ax.set_yticks(range(U1), _lattice_ylabels(U1, token_names), fontsize=7)
        if k % ncols == 0:
            ax.set_ylabel("u")
        if k // ncols == nrows - 1 or k + ncols >= len(paths):
            ax.set_xlabel("frame t")
    fig.suptitle(f"All {len(paths)} alignments of T={T} frames and U={U1 - 1} tokens; "
                 f"their probabilities sum to P(tokens) = {total:.4g}")
    fig.tight_layout()
    return fig


def lattice_figure(lat, alignment=None, true_spans=None, token_names: Optional[Sequence[str]] = None,
                   title: str = ""):
    """log alpha, log beta and the node posterior of one :class:`~emformer_edu.lattice.Lattice`.

    The posterior panel carries ``alignment`` (e.g. :func:`emformer_edu.lattice.viterbi`) and the
    ``true_spans`` if given.
    """
    T, U1 = lat.log_alpha.shape
    wide = T > 16
    fig, axes = plt.subplots(3 if wide else 1, 1 if wide else 3, squeeze=False,
                             figsize=(11, 3 * (0.9 + 0.25 * U1)) if wide else (14, 2.2 + 0.5 * U1))
    axes = axes.ravel()
    finite = lambda x: x.masked_fill(~torch.isfinite(x), float("nan"))  # noqa: E731  (-inf: no path)
    plot_lattice(finite(lat.log_alpha), ax=axes[0], title="log α(t, u): all ways to reach (t, u)",
                 colorbar_label="log-probability", token_names=token_names)
    plot_lattice(finite(lat.log_beta), ax=axes[1], title="log β(t, u): all ways to finish from (t, u)",
                 colorbar_label="log-probability", token_names=token_names)
    plot_lattice(lat.node_posterior, ax=axes[2], title="posterior occupancy α·β / P", colorbar_label="probability",
                 alignment=alignment, true_spans=true_spans, token_names=token_names, vmin=0, vmax=1, legend=False)
    handles = _lattice_handles(alignment is not None, true_spans is not None)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if handles:
        fig.subplots_adjust(bottom=fig.subplotpars.bottom + (0.05 if wide else 0.09))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    return fig


def utterance_lattice_figure(pretrained, index: int = 0, num_utterances: int = 20, seed: Optional[int] = None):
    """The trained model's lattice of one held-out utterance, against the truth.

    ``pretrained``: a :class:`~emformer_edu.pretrained.Pretrained` (e.g. ``pretrained.toy()``).
    Takes utterance ``index`` of ``pretrained.held_out(num_utterances, seed)``, runs
    :func:`~emformer_edu.lattice.forced_align` on its true tokens and draws, above, the
    features with the true token spans and, below, the posterior occupancy with the Viterbi
    path and the true spans in encoder frames. Callback of ``widgets.lattice_explorer``.
    """
    from .evaluation import emission_delays
    from .lattice import forced_align, lattice_tables

    data = pretrained.held_out(num_utterances) if seed is None else pretrained.held_out(num_utterances, seed)
    if not 0 <= index < len(data):
        raise ValueError(f"index must be in [0, {len(data) - 1}] for {len(data)} utterances, got {index}.")
    utt = data[index]
    model = pretrained.model
    device = next(model.parameters()).device
    stride = model.transcriber.time_reduction.stride
    feats = pretrained.features(utt.waveform)
    T_in = feats.size(0) - pretrained.right_context_length
    ali = forced_align(model, feats.to(device), T_in, utt.tokens, pretrained.blank)
    lat = lattice_tables(ali.blank_lp, ali.emit_lp)
    spans = encoder_spans(utt.alignment, stride)
    names = [pretrained.vocab.name(int(t)) for t in utt.tokens]
    delays = emission_delays([ali.token_frames], [utt.alignment], stride)
    T, U1 = lat.node_posterior.shape
    fig, (ax_f, ax_l) = plt.subplots(2, 1, figsize=(10, 2.6 + 0.32 * U1), sharex=True,
                                     gridspec_kw={"height_ratios": [1, max(1.2, 0.16 * U1)]})
    x = _as_numpy(feats[:T_in])
    image = ax_f.imshow(x.T, origin="lower", aspect="auto", cmap="cividis",
                        extent=(-0.5, T_in / stride - 0.5, -0.5, x.shape[1] - 0.5))
    fig.colorbar(image, ax=ax_f, fraction=0.046, pad=0.04, label="normalised log-mel")
    for k, (s, e) in enumerate(spans):
        ax_f.axvspan(s - 0.5, e - 0.5, ymin=0.92, ymax=1.0, color=OKABE_ITO["sky"] if k % 2 else OKABE_ITO["orange"])
        ax_f.text((s + e - 1) / 2, 1.01, names[k], transform=ax_f.get_xaxis_transform(), ha="center", va="bottom",
                  fontsize=9)
    ax_f.set_ylabel("mel bin")
    ax_f.set_title(f"held-out utterance {index}: '{utt.text}' (features; true token spans on top)", pad=16)
    plot_lattice(lat.node_posterior, ax=ax_l, alignment=ali, true_spans=spans, token_names=names,
                 colorbar_label="probability", vmin=0, vmax=1,
                 title=f"posterior occupancy; Viterbi emits {int(delays.inside.sum())} of {len(names)} tokens "
                       f"inside their true span")
    ax_l.set_xlabel(f"encoder frame t ({stride} input frames = {stride * 10} ms each)")
    fig.tight_layout()
    return fig


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


def posterior_panels_figure(models: dict, utterance, extractor, blank: int, token_names, title: str = ""):
    """Node posterior with Viterbi path of one utterance under several models (e.g. training snapshots).

    ``models``: ``{panel title: RNNT}``; ``extractor``: the feature extractor to use (its
    statistics); the true token spans are drawn as boxes. Each panel comes from
    :func:`~emformer_edu.lattice.forced_align` and :func:`~emformer_edu.lattice.lattice_tables`.
    """
    from .lattice import forced_align, lattice_tables

    feats = extractor(utterance.waveform)[0]
    T_in = feats.size(0) - extractor.right_padding
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 1.0 + 1.9 * len(models)), squeeze=False)
    for ax, (name, model) in zip(axes[:, 0], models.items()):
        stride = model.transcriber.time_reduction.stride
        with torch.no_grad():
            ali = forced_align(model, feats, T_in, utterance.tokens, blank)
        lat = lattice_tables(ali.blank_lp, ali.emit_lp)
        plot_lattice(lat.node_posterior, ax=ax, alignment=ali, true_spans=encoder_spans(utterance.alignment, stride),
                     token_names=token_names, colorbar_label="probability", vmin=0, vmax=1,
                     title=f"{name}: log P(text) = {lat.log_prob:.3g}", legend=ax is axes[0, 0])
    fig.suptitle(title or "Node posterior of the true transcript, as training proceeds")
    fig.tight_layout()
    return fig
