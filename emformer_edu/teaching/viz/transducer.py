"""Notebook 06: time reduction, the predictor LSTM step by step, and the joint output on the T x (U+1) grid."""
from typing import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ...rnnt.lattice import utterance_lattice
from .heatmap import OKABE_ITO, _as_numpy, heatmap


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


def greedy_path(timesteps: Sequence[int], num_frames: int):
    """The walk greedy search took over the T x (U+1) grid, from the frames at which it emitted.

    ``timesteps``: the encoder frame of each emitted token, as
    :func:`~emformer_edu.rnnt.greedy.greedy_search` returns them (non-decreasing). At frame t greedy
    emits the tokens stamped t (one step up each), then takes blank (one step right). Returns the
    ``T + U`` edges ``(t, u, "emit" | "blank")`` in the format of :mod:`emformer_edu.rnnt.lattice`,
    ending with the final blank out of ``(T-1, U)``.
    """
    timesteps = [int(t) for t in timesteps]
    if any(b < a for a, b in zip(timesteps, timesteps[1:])):
        raise ValueError(f"timesteps must be non-decreasing, got {timesteps}")
    if timesteps and not 0 <= timesteps[0] <= timesteps[-1] < num_frames:
        raise ValueError(f"timesteps must lie in [0, {num_frames}), got {timesteps}")
    path, u = [], 0
    for t in range(num_frames):
        while u < len(timesteps) and timesteps[u] == t:
            path.append((t, u, "emit"))
            u += 1
        path.append((t, u, "blank"))
    return path


def greedy_path_figure(joint, tokens, timesteps, blank: int, token_names: Sequence[str], word_spans=None,
                       words: Sequence[str] = (), title: str = ""):
    """Greedy search's walk on the grid of its own hypothesis, over P(blank | t, u) and the best symbol.

    ``joint``: ``(T, U+1, V)`` joiner output with the predictor fed ``[blank] + tokens`` (the greedy
    hypothesis), so row u is the node greedy reaches after emitting ``tokens[:u]``. ``tokens`` and
    ``timesteps``: what :func:`~emformer_edu.rnnt.greedy.greedy_search` returned (the path is
    :func:`greedy_path`). ``word_spans``: optional true ``(start, end)`` encoder frames per word, with
    ``words`` their names, shaded under the grid. The background is P(blank | t, u); each node is
    labelled with its most probable symbol (· for blank); ▲ marks an emission, labelled with its symbol.
    """
    joint = joint.detach().float().cpu()
    tokens = [int(t) for t in tokens]
    T, U1, V = joint.shape
    if U1 != len(tokens) + 1:
        raise ValueError(f"joint has U+1={U1} rows but {len(tokens)} tokens were emitted")
    path = greedy_path(timesteps, T)
    p_blank = joint.log_softmax(-1)[..., blank].exp()
    best = joint.argmax(-1)
    fig, ax = plt.subplots(figsize=(11, 1.6 + 0.32 * U1))
    heatmap(p_blank.T, ax=ax, title="", xlabel="encoder frame t", ylabel="tokens emitted so far u",
            cmap="cividis", vmin=0, vmax=1, colorbar_label="P(blank | t, u)")
    ax.invert_yaxis()
    names = ["∅"] + [token_names[t] for t in tokens]
    ax.set_yticks(range(U1), [f"{u}: {names[u]}" for u in range(U1)], fontsize=7)
    if T <= 40:
        ax.set_xticks(range(T))
        ax.tick_params(axis="x", labelsize=7)
    for t in range(T):
        for u in range(U1):
            v = int(best[t, u])
            ax.text(t, u, "·" if v == blank else token_names[v], ha="center", va="center", fontsize=6,
                    color="white" if float(p_blank[t, u]) < 0.5 else "black")
    colour = OKABE_ITO["vermillion"]
    ts = [t for t, _, _ in path] + [T]
    us = [u for _, u, _ in path] + [path[-1][1]]
    ax.plot(ts, us, color=colour, lw=2.2, alpha=0.9, solid_capstyle="round")  # blank: right, emit: up
    for t, u, kind in path:
        if kind == "emit":
            ax.plot(t, u + 0.5, marker="^", color=colour, markersize=7, markeredgecolor="white",
                    markeredgewidth=0.6, ls="none")
            ax.text(t - 0.3, u + 0.5, names[u + 1], ha="right", va="center", fontsize=9, fontweight="bold",
                    color=colour, bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.8))
    if word_spans is not None:  # a strip below row 0: where each word is really spoken
        for k, (s, e) in enumerate(word_spans):
            ax.add_patch(Rectangle((s - 0.5, -1.45), e - s, 0.8, facecolor=OKABE_ITO["sky"], edgecolor="white"))
            if k < len(words):
                ax.text((s + e - 1) / 2, -1.05, words[k], ha="center", va="center", fontsize=8, color="black")
    ax.set_xlim(-0.5, T + 0.1)
    ax.set_ylim(-0.5 if word_spans is None else -1.5, U1 - 0.5)  # u = 0 at the bottom
    handles = [Line2D([], [], color=colour, lw=2.2, marker="^", markeredgecolor="white",
                      label="greedy path (→ blank, ▲ emit)")]
    if word_spans is not None:
        handles.append(Patch(color=OKABE_ITO["sky"], label="true word span"))
    ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=8, frameon=False)
    ax.set_title(title or f"Greedy search on the grid: T={T} frames x U+1={U1} rows\n"
                          "cell text: most probable symbol at (t, u), · = blank", fontsize=10, loc="left")
    fig.tight_layout()
    return fig
