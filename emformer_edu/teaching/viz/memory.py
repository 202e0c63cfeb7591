"""Notebooks 03 to 05: the memory bank over chunks, where attention goes (one chunk, or averaged over many),
the streaming state, differences."""
import matplotlib.pyplot as plt
import numpy as np
import torch

from ..recorder import attention_mass, memory_provenance
from .heatmap import KIND_NAMES, OKABE_ITO, heatmap


def memory_bank_figure(recording, layer: int = 0, title: str = ""):
    """Memory bank contents chunk by chunk: slot (rows, oldest first) vs streaming call (columns).

    Each cell names the chunk whose memory occupies that slot, found by matching the recorded
    vectors (:func:`emformer_edu.inspection.memory_provenance`); empty cells are slots not yet filled.
    """
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


KEY_KINDS = ("memory", "right_context", "left_context", "utterance")


def mean_attention_mass(calls, query_kind: str = "utterance") -> dict:
    """Attention mass per layer and key kind, averaged over many recorded calls (e.g. every full chunk of
    several utterances), with the uniform share for comparison.

    Returns ``{"mean": (layers, kinds), "std": (layers, kinds), "uniform": (kinds,), "kinds": [...],
    "calls": n}``: ``mean``/``std`` over calls of :func:`~emformer_edu.teaching.recorder.attention_mass`
    (itself averaged over heads and query rows); ``uniform`` is each kind's share of the keys, what a
    query that ignored content would give it. All calls must have the same key layout.
    """
    calls = list(calls)
    if not calls:
        raise ValueError("no calls to average")
    kinds = [k for k in KEY_KINDS if any(b.kind == k for b in calls[0].mask.cols)]
    shares = np.array([[[attention_mass(layer, query_kind).get(k, 0.0) for k in kinds] for layer in call.layers]
                       for call in calls])  # (calls, layers, kinds)
    sizes = np.array([sum(len(b) for b in calls[0].mask.cols if b.kind == k) for k in kinds], dtype=float)
    return {"mean": shares.mean(axis=0), "std": shares.std(axis=0), "uniform": sizes / sizes.sum(),
            "kinds": kinds, "calls": len(calls)}


def attention_mass_average_figure(calls, query_kind: str = "utterance", title: str = ""):
    """Grouped bars: per layer and key kind, the mean share of attention over ``calls`` (error bar: one
    standard deviation over calls), with a black tick at the kind's uniform share of the keys."""
    stats = mean_attention_mass(calls, query_kind)
    mean, std, uniform, kinds = stats["mean"], stats["std"], stats["uniform"], stats["kinds"]
    colours = {"memory": OKABE_ITO["purple"], "left_context": OKABE_ITO["sky"],
               "right_context": OKABE_ITO["green"], "utterance": OKABE_ITO["orange"]}
    names = {"utterance": "own segment"}
    layers, width = mean.shape[0], 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for k, kind in enumerate(kinds):
        xs = np.arange(layers) + (k - (len(kinds) - 1) / 2) * width
        ax.bar(xs, mean[:, k], width * 0.92, yerr=std[:, k], capsize=2, color=colours[kind],
               label=names.get(kind, KIND_NAMES[kind]), error_kw=dict(lw=0.8))
        ax.hlines(np.full(layers, uniform[k]), xs - width * 0.46, xs + width * 0.46, color="black", lw=1.5)
    ax.plot([], [], color="black", lw=1.5, label="uniform share (fraction of keys)")
    ax.set_xticks(range(layers), [f"layer {i}" for i in range(layers)])
    ax.set_ylabel("share of attention")
    ax.set_ylim(0, 1)
    ax.set_title(title or f"Mean attention of the {KIND_NAMES.get(query_kind, query_kind)} queries "
                          f"over {stats['calls']} chunks (bars: ±1 std)")
    ax.legend(fontsize=8, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
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
    # Subtract in the inputs' own precision: float64 differences of 1e-15 must not round to 0 in float32.
    exact = lambda x: x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, float)  # noqa: E731
    ref = exact(reference).reshape(-1, exact(reference).shape[-1])
    fig, ax = plt.subplots(figsize=(8, 3.2))
    colours = [OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["green"], OKABE_ITO["purple"]]
    for colour, (name, tensor) in zip(colours, variants.items()):
        diff = np.abs(exact(tensor).reshape(ref.shape) - ref).max(axis=1)
        ax.semilogy(np.arange(len(diff)), np.maximum(diff, 1e-17), marker="o", ms=3, color=colour, label=name)
    ax.set_xlabel(frame_label)
    ax.set_ylabel("max |difference|")
    ax.set_title(title or "Difference from the full-context output")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
