"""Notebook 07: the T x (U+1) lattice: every alignment of a tiny case, alpha, beta, the posterior
occupancy, where alpha's mass goes, the loss gradient w.r.t. the logits, Viterbi paths against the true
token spans."""
import math
from typing import List, Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ...rnnt.lattice import forced_align, lattice_tables, path_log_probs
from ...train.latency import emission_delays
from .heatmap import MASKED_COLOUR, OKABE_ITO, _as_numpy, heatmap


def _lattice_ylabels(U1: int, token_names: Optional[Sequence[str]] = None) -> List[str]:
    """Row labels of the T x (U+1) grid: ``u`` tokens emitted so far, with the last one's name."""
    if token_names is None:
        return [str(u) for u in range(U1)]
    return ["0: ∅"] + [f"{u}: {token_names[u - 1]}" for u in range(1, U1)]


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
                 vmin=None, vmax=None, colorbar: bool = True, legend: bool = True, masked=None,
                 masked_label: str = "no such edge"):
    """A ``(T, U+1)`` lattice table drawn with frame t on x and tokens emitted so far u upwards.

    ``alignment``: a :class:`~emformer_edu.lattice.LatticeAlignment` (or a list of edges) drawn as a
    path (blank = one step right, emit = one step up, marked ▲). ``true_spans``: per token, the
    encoder frames ``(start, end)`` where it was really spoken (see :meth:`Alignment.encoder_spans`), drawn
    as boxes on the row where that token is emitted. ``token_names``: the U true tokens' names.
    ``masked``: an optional ``(T, U+1)`` boolean table of cells that do not exist (e.g. the emit edge of
    column U), drawn in :data:`MASKED_COLOUR` with the legend entry ``masked_label``.
    """
    values = values.detach() if isinstance(values, torch.Tensor) else torch.as_tensor(values)
    T, U1 = values.shape
    hide = None
    if masked is not None:
        hide = torch.as_tensor(_as_numpy(masked)).bool()
        if tuple(hide.shape) != (T, U1):
            raise ValueError(f"masked must have the shape of values {(T, U1)}, got {tuple(hide.shape)}.")
    ax = heatmap(values.T, ax=ax, title=title, xlabel="encoder frame t", ylabel="tokens emitted so far u",
                 cmap=cmap, vmin=vmin, vmax=vmax, colorbar=colorbar, colorbar_label=colorbar_label,
                 masked=None if hide is None else hide.T, masked_label=masked_label)
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
    if hide is not None and bool(hide.any()):
        # Hatched as well as grey: on a diverging colour scale, light grey alone would read as "about 0".
        for t, u in hide.nonzero().tolist():
            ax.add_patch(Rectangle((t - 0.5, u - 0.5), 1, 1, facecolor=MASKED_COLOUR, edgecolor="0.45",
                                   hatch="//", lw=0))
        masked_patch = Patch(facecolor=MASKED_COLOUR, edgecolor="0.45", hatch="//", label=masked_label)
        if legend and handles:  # one legend per axes: the masked entry joins it
            handles.append(masked_patch)
        else:  # replaces heatmap's plain grey entry, at the same place under the axes
            ax.legend(handles=[masked_patch], loc="upper left", bbox_to_anchor=(0.0, -0.12), fontsize=7,
                      frameon=False)
    if legend and handles:
        ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    return ax


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


def _diagonal_logsumexp(log_values: torch.Tensor) -> torch.Tensor:
    """``out[n]`` = log of the sum of exp(``log_values[t, u]``) over the anti-diagonal t + u = n, n < T + U."""
    T, U1 = log_values.shape
    n = (torch.arange(T)[:, None] + torch.arange(U1)[None, :]).flatten()
    flat = log_values.flatten().double()
    return torch.stack([torch.logsumexp(flat[n == k], dim=0) for k in range(T + U1 - 1)])


def diagonal_normalised(log_values) -> torch.Tensor:
    """``exp(log_values)`` rescaled so that every anti-diagonal t + u = n sums to 1, (T, U+1).

    For ``log_values`` = log alpha: every alignment crosses each anti-diagonal exactly once (each edge
    moves one step along t + u), so this is where the partial alignments of n steps that are still on
    the target's lattice stand, whatever probability has already left it.
    """
    log_values = torch.as_tensor(log_values).detach().double().cpu()
    T, U1 = log_values.shape
    n = torch.arange(T)[:, None] + torch.arange(U1)[None, :]
    return torch.exp(log_values - _diagonal_logsumexp(log_values)[n])


def alpha_mass_figure(lat, token_names: Optional[Sequence[str]] = None, title: str = ""):
    """Where alpha's probability is, for one :class:`~emformer_edu.lattice.Lattice`.

    Left: log of alpha summed over each anti-diagonal t + u = n (every alignment crosses each exactly
    once), and log P after the final blank: it can only fall, as probability leaves the lattice through
    every token other than blank and the next target token. Right: alpha normalised per anti-diagonal
    (:func:`diagonal_normalised`): a forward-only view, it has seen the lattice's frames up to t only
    (compare it with ``lat.node_posterior``, which has seen them all).
    """
    alpha = lat.log_alpha.detach().double().cpu()
    T, U1 = alpha.shape
    per_diagonal = _diagonal_logsumexp(alpha)
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 2.4 + 0.45 * U1), gridspec_kw={"width_ratios": [1, 1.15]})
    ax = axes[0]
    ax.plot(np.arange(T + U1 - 1), per_diagonal.numpy(), marker="o", color=OKABE_ITO["blue"],
            label="log Σ α over t + u = n")
    ax.plot([T + U1 - 1], [lat.log_prob], marker="*", markersize=12, ls="none", color=OKABE_ITO["vermillion"],
            label="log P (after the final blank)")
    ax.set_xticks(range(T + U1))
    ax.set_xlabel("anti-diagonal n = t + u (edges taken)")
    ax.set_ylabel("log-probability")
    ax.set_title("α's total on each anti-diagonal")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    plot_lattice(diagonal_normalised(alpha), ax=axes[1], vmin=0, vmax=1, token_names=token_names,
                 colorbar_label="share of the diagonal's α",
                 title="α normalised per anti-diagonal (past frames only)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def next_token_table(values, tokens: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
    """``values[t, u, tokens[u]]`` as a (T, U+1) table, and the (T, U+1) mask of column U (no next token)."""
    values = torch.as_tensor(values).detach().cpu()
    T, U1, _ = values.shape
    tokens = [int(k) for k in torch.as_tensor(tokens).reshape(-1).tolist()]
    if len(tokens) != U1 - 1:
        raise ValueError(f"expected U = {U1 - 1} tokens for a (T, U+1, V) = {tuple(values.shape)} table, "
                         f"got {len(tokens)}.")
    table = torch.full((T, U1), float("nan"), dtype=values.dtype)
    for u, k in enumerate(tokens):
        table[:, u] = values[:, u, k]
    masked = torch.zeros(T, U1, dtype=torch.bool)
    masked[:, U1 - 1] = True
    return table, masked


def logit_gradient_figure(grad, tokens: Sequence[int], blank: int, token_names: Optional[Sequence[str]] = None,
                          alignment=None, title: str = ""):
    """The loss gradient w.r.t. the joiner logits of one utterance, ``grad`` (T, U+1, V), on the lattice.

    Three panels on one symmetric colour scale: dL/dz for blank, for the next target token (column U has
    none: drawn as masked) and for every other token summed. Negative (purple) means a gradient step
    raises that logit. At every node the three add up to 0 (the softmax's logits only matter relative to
    each other). ``alignment`` (e.g. the Viterbi path) is drawn on the first two panels.
    """
    grad = torch.as_tensor(grad).detach().double().cpu()
    T, U1, V = grad.shape
    blank = blank % V
    g_blank = grad[:, :, blank]
    g_next, no_next = next_token_table(grad, tokens)
    g_other = grad.sum(-1) - g_blank - torch.nan_to_num(g_next, nan=0.0)
    top = float(max(g_blank.abs().max(), torch.nan_to_num(g_next, nan=0.0).abs().max(), g_other.abs().max()))
    top = top if top > 0 else 1.0
    wide = T > 16
    fig, axes = plt.subplots(3 if wide else 1, 1 if wide else 3, squeeze=False,
                             figsize=(11, 3 * (1.0 + 0.25 * U1)) if wide else (15, 2.6 + 0.5 * U1))
    axes = axes.ravel()
    label = "∂L/∂z  (< 0: a step raises it)"
    common = dict(cmap="PuOr_r", vmin=-top, vmax=top, token_names=token_names, colorbar_label=label)
    plot_lattice(g_blank, ax=axes[0], title="∂L/∂z for blank ∅", alignment=alignment, legend=False, **common)
    plot_lattice(torch.nan_to_num(g_next, nan=0.0), ax=axes[1], title="∂L/∂z for the next target token $y_{u+1}$",
                 alignment=alignment, legend=False, masked=no_next, masked_label="column U: no next token",
                 **common)
    plot_lattice(g_other, ax=axes[2], title="∂L/∂z summed over every other token", **common)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def truth_lattice_figure(pretrained, utterance, features=None, spans=None, labels=None, title: str = "",
                         chunk_lines: bool = False):
    """The trained model's lattice of ``utterance``'s *true* text, against the truth.

    Above, the features (``pretrained.features(utterance.waveform)`` unless given) with labelled
    spans along the top: ``spans`` (encoder frames) and ``labels``, by default the true token spans;
    ``chunk_lines`` adds dashed lines at the streaming chunk boundaries. Below, the posterior
    occupancy from :func:`~emformer_edu.lattice.forced_align` with the Viterbi path and the true
    token spans. Shared by :func:`utterance_lattice_figure` and notebook 00's live recogniser.
    """
    model = pretrained.model
    device = next(model.parameters()).device
    stride = model.transcriber.time_reduction.stride
    feats = pretrained.features(utterance.waveform) if features is None else features
    T_in = feats.size(0) - pretrained.right_context_length
    with torch.no_grad():
        ali = forced_align(model, feats.to(device), T_in, utterance.tokens, pretrained.blank)
    lat = lattice_tables(ali.blank_lp, ali.emit_lp)
    token_spans = utterance.alignment.encoder_spans(stride)
    names = [pretrained.vocab.label(int(t)) for t in utterance.tokens]  # the space drawn as ␣
    spans, labels = (token_spans, names) if spans is None else (spans, labels)
    delays = emission_delays([ali.token_frames], [utterance.alignment], stride)
    T, U1 = lat.node_posterior.shape
    fig, (ax_f, ax_l) = plt.subplots(2, 1, figsize=(10, 2.6 + 0.32 * U1), sharex=True,
                                     gridspec_kw={"height_ratios": [1, max(1.2, 0.16 * U1)]})
    x = _as_numpy(feats[:T_in])
    image = ax_f.imshow(x.T, origin="lower", aspect="auto", cmap="cividis",
                        extent=(-0.5, T_in / stride - 0.5, -0.5, x.shape[1] - 0.5))
    fig.colorbar(image, ax=ax_f, fraction=0.046, pad=0.04, label="normalised log-mel")
    for k, ((s, e), label) in enumerate(zip(spans, labels)):
        ax_f.axvspan(s - 0.5, e - 0.5, ymin=0.92, ymax=1.0, color=OKABE_ITO["sky"] if k % 2 else OKABE_ITO["orange"])
        ax_f.text((s + e - 1) / 2, 1.01, label, transform=ax_f.get_xaxis_transform(), ha="center", va="bottom",
                  fontsize=9)
    if chunk_lines:
        per_chunk = pretrained.segment_length // stride
        for t in range(per_chunk, T, per_chunk):
            ax_f.axvline(t - 0.5, color="white", lw=0.8, ls="--")
    ax_f.set_ylabel("mel bin")
    ax_f.set_title(title or f"'{utterance.text}' (features; true token spans on top)", pad=16, fontsize=10)
    plot_lattice(lat.node_posterior, ax=ax_l, alignment=ali, true_spans=token_spans, token_names=names,
                 colorbar_label="probability", vmin=0, vmax=1,
                 title=f"posterior occupancy; Viterbi emits {int(delays.inside.sum())} of {len(names)} tokens "
                       f"inside their true span")
    ax_l.set_xlabel(f"encoder frame t ({stride} input frames = {stride * 10} ms each)")
    fig.tight_layout()
    return fig


def utterance_lattice_figure(pretrained, index: int = 0, num_utterances: int = 20, seed: Optional[int] = None):
    """The trained model's lattice of one held-out utterance, against the truth.

    ``pretrained``: a :class:`~emformer_edu.pretrained.Pretrained` (e.g. ``pretrained.toy()``).
    Takes utterance ``index`` of ``pretrained.held_out(num_utterances, seed)`` and draws
    :func:`truth_lattice_figure`: the features with the true token spans above, the posterior
    occupancy with the Viterbi path and the true spans in encoder frames below. Callback of
    ``widgets.lattice_explorer``.
    """
    data = pretrained.held_out(num_utterances) if seed is None else pretrained.held_out(num_utterances, seed)
    if not 0 <= index < len(data):
        raise ValueError(f"index must be in [0, {len(data) - 1}] for {len(data)} utterances, got {index}.")
    utt = data[index]
    return truth_lattice_figure(pretrained, utt,
                                title=f"held-out utterance {index}: '{utt.text}' (features; true token spans on top)")


def posterior_panels_figure(models: dict, utterance, extractor, blank: int, token_names, title: str = ""):
    """Node posterior with Viterbi path of one utterance under several models (e.g. training snapshots).

    ``models``: ``{panel title: RNNT}``; ``extractor``: the feature extractor to use (its
    statistics); the true token spans are drawn as boxes. Each panel comes from
    :func:`~emformer_edu.lattice.forced_align` and :func:`~emformer_edu.lattice.lattice_tables`.
    """
    feats = extractor(utterance.waveform)[0]
    T_in = feats.size(0) - extractor.right_padding
    rows = len(utterance.tokens) + 1  # U + 1 rows per panel: taller for a spoken sentence than for a few tones
    fig, axes = plt.subplots(len(models), 1, figsize=(10, 1.0 + max(1.9, 0.6 + 0.2 * rows) * len(models)),
                             squeeze=False)
    for ax, (name, model) in zip(axes[:, 0], models.items()):
        stride = model.transcriber.time_reduction.stride
        with torch.no_grad():
            ali = forced_align(model, feats, T_in, utterance.tokens, blank)
        lat = lattice_tables(ali.blank_lp, ali.emit_lp)
        plot_lattice(lat.node_posterior, ax=ax, alignment=ali, true_spans=utterance.alignment.encoder_spans(stride),
                     token_names=token_names, colorbar_label="probability", vmin=0, vmax=1,
                     title=f"{name}: log P(text) = {lat.log_prob:.3g}", legend=ax is axes[0, 0])
    fig.suptitle(title or "Node posterior of the true transcript, as training proceeds")
    fig.tight_layout()
    return fig
