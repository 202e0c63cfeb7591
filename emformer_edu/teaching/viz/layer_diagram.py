"""Notebooks 03 and 04: diagrams of the memory dataflow (layer x segment) and of one Emformer layer,
and the per-head attention of a recorded layer on one shared colour scale.

The diagrams are drawn from the library's own objects: the memory dataflow from a recorded
training-mode call (its mask says which memory slot each segment reads; its recorded memories say
which layer wrote them), the block diagram from a real :class:`~emformer_edu.encoder.EmformerLayer`
(its sub-module names, sizes and activation), the heads from recorded attention probabilities.
"""
from typing import List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import FancyBboxPatch, Patch

from .heatmap import MASKED_COLOUR, OKABE_ITO, heatmap


# ----------------------------------------------------------------------------- memory dataflow
def memory_reads(call_record) -> List[List[int]]:
    """For each segment n of a training-mode recording: the segments j whose memory slot ``m_j`` its
    frames may read, taken from the recorded mask (the same for every layer)."""
    mask = call_record.mask
    allowed = mask.allowed
    memory_cols = [b for b in mask.cols if b.kind == "memory"]
    reads = []
    for block in [b for b in mask.rows if b.kind == "utterance"]:
        row = allowed[block.start]
        reads.append([b.segment for b in memory_cols if bool(row[b.start:b.stop].all())])
    return reads


def _check_memory_comes_from_below(call_record) -> None:
    """Layer l reads exactly what layer l-1 wrote (its summary outputs, the last one dropped)."""
    layers = call_record.layers
    for lower, upper in zip(layers, layers[1:]):
        if not torch.equal(upper.memory_in, lower.memory_out[:-1]):
            raise ValueError(f"layer {upper.layer}'s memory is not layer {lower.layer}'s summary output")


def memory_dataflow_figure(call_record, highlight: Optional[int] = None, compare_am_trf: bool = True):
    """Memory dataflow over layers (rows, bottom to top) and segments (columns).

    Node (segment n, layer l) is layer l's work on segment n: its frames read memory, its summary query
    writes the memory vector ``m_n^l`` (the summary itself reads no memory); the bottom row is layer 0's
    memory, the plain segment averages of the input. An arrow from (j, l-1) to (n, l) means segment n's
    frames at layer l read ``m_j^{l-1}``;
    the pairs come from the recorded mask and the recorded memories (checked: layer l's memory equals
    layer l-1's summary outputs). Arrows into segment ``highlight`` (default: the last) are coloured.
    With ``compare_am_trf`` a second panel shows the AM-TRF design (Wu et al. 2020) as a schematic:
    memory read from the *same* layer, so segment n at layer l must wait for segment n-1 at layer l.
    """
    if call_record.mode != "forward":
        raise ValueError("memory_dataflow_figure needs a training-mode (Emformer.forward) recording")
    if not call_record.layers or call_record.layers[0].memory_in.size(0) == 0:
        raise ValueError("this recording has no memory (max_memory_size=0)")
    _check_memory_comes_from_below(call_record)
    reads = memory_reads(call_record)
    N, L, M = len(reads), len(call_record.layers), call_record.max_memory_size
    highlight = N - 1 if highlight is None else highlight
    panels = 2 if compare_am_trf else 1
    fig, axes = plt.subplots(1, panels, figsize=(max(6.0, 0.9 * N + 2.4) * panels, 1.1 * (L + 1) + 1.6),
                             squeeze=False)

    def grid(ax, title, row_names, first_row=0):
        for l in range(first_row, len(row_names)):
            for n in range(N):
                unread = n == N - 1
                ax.scatter(n, l, s=260, color="white" if unread else OKABE_ITO["purple"], edgecolor="0.3", zorder=3)
        ax.set_xticks(range(N), [f"seg {n}" for n in range(N)], fontsize=8)
        ax.set_yticks(range(len(row_names)), row_names, fontsize=8)
        ax.set_xlim(-0.7, N - 0.3)
        ax.set_ylim(-0.6, len(row_names) - 0.4)
        ax.set_title(title, fontsize=10)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    def arrow(ax, start, end, coloured, rad=0.0):
        ax.annotate("", xy=end, xytext=start, zorder=2,
                    arrowprops=dict(arrowstyle="-|>", lw=1.6 if coloured else 0.6, shrinkA=8, shrinkB=8,
                                    color=OKABE_ITO["vermillion"] if coloured else "0.75",
                                    connectionstyle=f"arc3,rad={rad}"))

    rows = ["input averages x̄\n(layer 0's memory)"] + [f"layer {l}" for l in range(L)]
    ax = axes[0, 0]
    grid(ax, f"Emformer: segment n at layer l reads the slots layer l−1 wrote (M={M})", rows)
    for l in range(L):  # layer l (row l + 1) reads the row below it (row 0: the input averages)
        for n, sources in enumerate(reads):
            for j in sources:
                arrow(ax, (j, l), (n, l + 1), n == highlight)
    ax.set_xlabel(f"segment; an arrow j → n: segment n's frames read memory slot m_j (coloured: segment {highlight})")

    if compare_am_trf:
        ax = axes[0, 1]
        grid(ax, "AM-TRF (schematic): memory from the same layer", [""] + [f"layer {l}" for l in range(L)], 1)
        for l in range(1, L + 1):
            for n, sources in enumerate(reads):
                for j in sources:
                    arrow(ax, (j, l), (n, l), n == highlight, rad=-0.35)
        ax.set_xlabel("segment n at layer l waits for segments n−M … n−1 at layer l: one segment at a time")
    fig.legend(handles=[Patch(facecolor=OKABE_ITO["purple"], edgecolor="0.3",
                              label="segment n at layer l: its summary writes memory slot m_n"),
                        Patch(facecolor="white", edgecolor="0.3", label="its memory vector is never read (last segment)")],
               loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def sequential_steps(num_layers: int, num_segments: int) -> Tuple[int, int]:
    """Attention calls that must run one after another for one utterance: ``(Emformer, AM-TRF)``.

    Emformer: one masked pass per layer. AM-TRF: memory from the same layer makes every
    (segment, layer) step wait for the previous segment's, so all steps are sequential.
    """
    return num_layers, num_layers * num_segments


# ----------------------------------------------------------------------------- one layer
def _box(ax, x, y, text, colour, width=3.0, height=0.55, fontsize=8):
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.06",
                                facecolor=colour, edgecolor="0.3", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, text="", colour="0.25", rad=0.0):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.0,
                                                          connectionstyle=f"arc3,rad={rad}"))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=7, color="0.3",
                va="center")


def layer_block_diagram(layer, title: str = ""):
    """Block diagram of one :class:`~emformer_edu.encoder.EmformerLayer`, bottom (input) to top (output).

    Box names are the layer's sub-modules (``layer_norm_input``, ``attention.emb_to_query``, ...) and
    the sizes are read from the layer itself: D, the feed-forward width, the heads, the activation,
    L cached frames and M memory slots.
    """
    att = layer.attention
    D, H, d = att.input_dim, att.num_heads, att.head_dim
    F = layer.pos_ff[1].out_features
    act = type(layer.pos_ff[2]).__name__
    M, L = layer.max_memory_size, layer.left_context_length
    squash = "tanh" if att.tanh_on_mem else "clamp ±10"
    fig, ax = plt.subplots(figsize=(10.5, 9.6))
    blue, sky, orange, green, grey = "#cfe3f3", "#dcefd9", "#fbe3b8", "#e4d7ec", "#eeeeee"
    x = 4.5
    y = {"in": 0.3, "ln": 1.3, "s": 2.2, "q": 3.2, "att": 4.4, "out": 5.4, "res1": 6.4, "ffn": 7.6, "res2": 8.7,
         "lnout": 9.6, "top": 10.4}
    _box(ax, x, y["in"], "input rows [right context R; segment C]   (R + C, B, D)", grey, width=4.4)
    _box(ax, x, y["ln"], "layer_norm_input", blue)
    _box(ax, 1.0, y["s"], "summary s = mean of the\nnormed segment frames", green, width=2.2, height=0.6, fontsize=7)
    _box(ax, 2.6, y["q"], "attention.emb_to_query  W_q (D→D)\nqueries [rc; seg; s]", orange, width=3.4, height=0.7)
    _box(ax, 6.4, y["q"], "attention.emb_to_key_value  W_kv (D→2D)\nkeys, values of [memory; rc; seg]", orange,
         width=3.6, height=0.7)
    _box(ax, x, y["att"], f"masked softmax(QKᵀ/√d_h) V per head\nH={H} heads, d_h={d}; keys [m | rc | lc | seg]",
         orange, width=4.0, height=0.7)
    _box(ax, x, y["out"], "attention.out_proj  W_o (D→D)", orange)
    _box(ax, x, y["res1"], "dropout, ⊕ residual: z = rows + attention", sky, width=3.4)
    _box(ax, x, y["ffn"], f"pos_ff: LayerNorm → Linear {D}→{F} → {act}\n→ Dropout → Linear {F}→{D} → Dropout", blue,
         width=4.2, height=0.7)
    _box(ax, x, y["res2"], "⊕ residual: z + pos_ff(z)", sky)
    _box(ax, x, y["lnout"], "layer_norm_output", blue)
    ax.text(x, y["top"], "output rows [rc; seg] → the next layer", ha="center", fontsize=8)
    _box(ax, 8.7, y["s"], f"memory: up to M = {M} slots\nfrom the layer below", green, width=2.6, height=0.6)
    _box(ax, 1.1, y["att"], f"cached K, V of the\nlast L = {L} frames", grey, width=2.0, height=0.7)
    ax.text(1.1, y["att"] + 0.55, "(streaming; in training they\nare keys of the segment rows)", ha="center",
            fontsize=6.5, color="0.35")
    _box(ax, 8.7, y["res1"], f"summary row → {squash}\n→ memory of the layer above", green, width=2.8, height=0.7)
    # the main path
    for a, b in [("in", "ln"), ("att", "out"), ("res1", "ffn"), ("ffn", "res2"), ("res2", "lnout")]:
        half_a = 0.37 if a in ("att", "ffn") else 0.3
        half_b = 0.37 if b in ("att", "ffn") else 0.3
        _arrow(ax, (x, y[a] + half_a), (x, y[b] - half_b))
    _arrow(ax, (x, y["out"] + 0.3), (x, y["res1"] - 0.3), "rc, seg rows")
    _arrow(ax, (x, y["lnout"] + 0.3), (x, y["top"] - 0.15))
    _arrow(ax, (x - 0.6, y["ln"] + 0.3), (3.0, y["q"] - 0.37))
    _arrow(ax, (x - 1.2, y["ln"] + 0.2), (1.4, y["s"] - 0.3))
    _arrow(ax, (1.4, y["s"] + 0.3), (1.7, y["q"] - 0.37))
    _arrow(ax, (x + 0.6, y["ln"] + 0.3), (5.9, y["q"] - 0.37))
    _arrow(ax, (8.7, y["s"] + 0.3), (7.7, y["q"] - 0.37), colour=OKABE_ITO["purple"])
    _arrow(ax, (2.6, y["q"] + 0.37), (3.4, y["att"] - 0.37), "Q")
    _arrow(ax, (6.4, y["q"] + 0.37), (5.6, y["att"] - 0.37), "K, V")
    _arrow(ax, (2.1, y["att"]), (x - 2.0, y["att"]))
    _arrow(ax, (x + 1.55, y["out"] + 0.1), (7.6, y["res1"] - 0.37), "summary row", colour=OKABE_ITO["purple"])
    # residual 1: the un-normalised input rows, around the left
    ax.plot([x - 2.2, -0.45, -0.45], [y["in"], y["in"], y["res1"]], color=OKABE_ITO["blue"], lw=1.2)
    _arrow(ax, (-0.45, y["res1"]), (x - 1.7, y["res1"]), colour=OKABE_ITO["blue"])
    ax.text(-0.35, 3.0, "residual:\nthe input rows\n(not normalised)", fontsize=7, color=OKABE_ITO["blue"])
    # residual 2: z around the right of the feed-forward block
    ax.plot([x, 6.95, 6.95], [y["res1"] + 0.45, y["res1"] + 0.45, y["res2"]], color=OKABE_ITO["blue"], lw=1.2)
    _arrow(ax, (6.95, y["res2"]), (x + 1.5, y["res2"]), colour=OKABE_ITO["blue"])
    ax.text(7.05, y["ffn"], "residual z", fontsize=7, color=OKABE_ITO["blue"])
    ax.set_xlim(-0.8, 10.2)
    ax.set_ylim(-0.2, 10.7)
    ax.set_axis_off()
    ax.set_title(title or f"One Emformer layer (D={D}, H={H}, feed-forward {F}); no positional encoding anywhere")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- heads
def heads_by_layer_figure(layer_records: Sequence, heads: Optional[Sequence[int]] = None, batch: int = 0,
                           title: str = ""):
    """Per-head attention probabilities, one row per recorded layer, one column per head.

    All panels share one colour scale (0 to the largest probability shown); cells the mask (or the
    key padding) blocks are drawn in :data:`MASKED_COLOUR`, so they never look like a near-zero
    probability. Rows and columns are labelled by block (``rc``, ``seg``, ``s``; ``m``, ``lc``, ...).
    """
    heads = list(range(layer_records[0].attention_probs.size(1))) if heads is None else list(heads)
    probs = [[r.attention_probs[batch, h].detach().float().cpu() for h in heads] for r in layer_records]
    vmax = max(float(p.max()) for row in probs for p in row)
    fig, axes = plt.subplots(len(layer_records), len(heads), squeeze=False, gridspec_kw=dict(hspace=0.5),
                             figsize=(3.6 * len(heads) + 1.0, 3.4 * len(layer_records) + 0.6))
    image = None
    for i, record in enumerate(layer_records):
        blocked = record.attention_mask.blocked.cpu()
        if record.padding_mask is not None:
            blocked = blocked | record.padding_mask[batch].cpu().unsqueeze(0)
        for j, h in enumerate(heads):
            ax = axes[i, j]
            heatmap(probs[i][j], row_blocks=record.attention_mask.rows, col_blocks=record.attention_mask.cols, ax=ax,
                    vmin=0.0, vmax=vmax, colorbar=False, masked=blocked,
                    title=f"layer {record.layer}, head {h}", xlabel="keys" if i == len(layer_records) - 1 else "",
                    ylabel="queries" if j == 0 else "")
            if ax.get_legend() is not None:  # one legend for the figure, not one per panel
                ax.get_legend().remove()
            image = ax.images[0]
    fig.colorbar(image, ax=axes, fraction=0.02, pad=0.02, label="attention probability (one scale for all heads)")
    fig.legend(handles=[Patch(facecolor=MASKED_COLOUR, edgecolor="0.5", label="blocked by the mask (no probability)")],
               loc="lower left", fontsize=8, frameon=False)
    fig.suptitle(title or "Per-head attention (grey: blocked by the mask)")
    return fig
