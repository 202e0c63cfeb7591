"""Record what Emformer computes, for the notebooks, without changing a single number.

Usage::

    with emformer_edu.record() as rec:
        model.transcribe(features, lengths)
    call = rec.calls[0]                       # one entry per Emformer forward/infer call
    call.layers[0].attention_probs            # (B, H, Q, K) per-head attention
    call.mask                                 # the labelled AttentionMask that was applied

The library's modules ask :func:`current` whether a recording is active and, if so, hand it
detached copies of tensors they have already computed. Nothing recorded flows back into the
computation, so outputs with and without recording are identical (tests check this).
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import torch

_STACK: List["Recording"] = []


def _copy(x):
    return None if x is None else x.detach().clone()


@dataclass
class LayerRecord:
    """What one Emformer layer saw and produced during one call.

    ``attention_probs`` ``(B, H, Q, K)`` before dropout; ``attention_mask`` the labelled mask
    (rows = queries, cols = keys); ``padding_mask`` ``(B, K)`` or None; ``memory_in``
    ``(M, B, D)`` the memory this layer's queries read; ``memory_out`` ``(S, B, D)`` the
    memory it hands to the layer above; ``left_context_key``/``_val`` ``(L, B, D)`` the cache
    read in streaming (None in training mode).
    """

    layer: int
    attention_probs: torch.Tensor
    attention_mask: Any
    padding_mask: Optional[torch.Tensor]
    memory_in: torch.Tensor
    memory_out: torch.Tensor
    left_context_key: Optional[torch.Tensor] = None
    left_context_val: Optional[torch.Tensor] = None


@dataclass
class CallRecord:
    """One ``Emformer.forward`` (``mode="forward"``) or ``Emformer.infer`` (``mode="infer"``) call.

    ``spans`` lists the segments with their right and left context, in utterance frames of
    this call; ``frames_before`` is how many frames earlier chunks consumed (streaming).
    """

    mode: str
    segment_length: int
    right_context_length: int
    left_context_length: int
    max_memory_size: int
    utterance_length: int
    spans: list
    mask: Any
    frames_before: int = 0
    state_before: Any = None
    state_after: Any = None
    layers: List[LayerRecord] = field(default_factory=list)


class Recording:
    """Collects :class:`CallRecord` objects; ``calls`` is in call order."""

    def __init__(self):
        self.calls: List[CallRecord] = []
        self._layer = 0

    def begin_call(self, call: CallRecord) -> None:
        self.calls.append(call)

    def set_layer(self, index: int) -> None:
        self._layer = index

    def add_layer(self, **tensors: Dict[str, Any]) -> None:
        copied = {k: (_copy(v) if isinstance(v, torch.Tensor) else v) for k, v in tensors.items()}
        self.calls[-1].layers.append(LayerRecord(layer=self._layer, **copied))

    def end_call(self, state_after=None) -> None:
        if state_after is not None:
            self.calls[-1].state_after = clone_state(state_after)


def clone_state(state):
    """Detached copy of an Emformer streaming state (a list of per-layer named tuples)."""
    return [type(s)(*[_copy(t) for t in s]) for s in state]


def current() -> Optional[Recording]:
    """The innermost active recording, or None (the fast path: one list lookup)."""
    return _STACK[-1] if _STACK else None


@contextmanager
def record():
    """Context manager that records every Emformer call made inside it; yields a :class:`Recording`."""
    rec = Recording()
    _STACK.append(rec)
    try:
        yield rec
    finally:
        _STACK.remove(rec)


def attention_mass(layer: LayerRecord, query_kind: str = "utterance", batch: int = 0) -> dict:
    """Average attention probability that queries of ``query_kind`` put on each kind of key.

    Returns ``{key kind: mass}`` (masses sum to 1), averaged over heads and over the rows of
    ``query_kind`` ("utterance", "right_context" or "summary"). In streaming records the
    left context is its own kind; in training records it is part of "utterance".
    """
    mask = layer.attention_mask
    rows = [r for b in mask.rows if b.kind == query_kind for r in range(b.start, b.stop)]
    if not rows:
        raise ValueError(f"no {query_kind!r} queries in this record; kinds: {sorted({b.kind for b in mask.rows})}")
    probs = layer.attention_probs[batch][:, rows].mean(dim=(0, 1))  # (K,)
    mass = {}
    for b in mask.cols:
        mass[b.kind] = mass.get(b.kind, 0.0) + float(probs[b.start:b.stop].sum())
    return mass


def memory_provenance(recording: Recording, layer: int = 0, atol: float = 1e-6) -> List[List[int]]:
    """For each streaming call and memory slot read by ``layer``: which chunk produced it.

    Found from the data, not from a formula: slot vectors are matched against the memory each
    earlier chunk handed to this layer (the layer below's summary outputs; for layer 0 the
    input's segment averages, taken from the next layer's cache). Returns one list per call,
    oldest slot first; -1 marks a slot that matches nothing.
    """
    calls = [c for c in recording.calls if c.mode == "infer"]
    produced = []  # produced[j]: the memory vector chunk j wrote into `layer`'s cache, (B, D)
    for j, call in enumerate(calls):
        after = call.state_after[layer].memory
        produced.append(after[-1] if after.size(0) else None)
    table = []
    for call in calls:
        row = []
        for slot in call.layers[layer].memory_in:
            match = [j for j, v in enumerate(produced) if v is not None and torch.allclose(slot, v, atol=atol)]
            row.append(match[0] if match else -1)
        table.append(row)
    return table


def trace_shapes(module: torch.nn.Module, fn, *args, **kwargs):
    """Run ``fn(*args, **kwargs)`` and list ``(submodule name, input shapes, output shapes)`` in call order.

    Uses forward hooks on every submodule of ``module`` (removed afterwards); returns
    ``(result, trace)``; a container is listed when it finishes, after its children. Handy for
    "shapes at every step" tables.
    """
    trace, handles = [], []

    def shapes(x):
        if isinstance(x, torch.Tensor):
            return tuple(x.shape)
        if isinstance(x, (list, tuple)):
            return [shapes(v) for v in x if isinstance(v, (torch.Tensor, list, tuple))]
        return None

    for name, sub in module.named_modules():
        if name:
            handles.append(sub.register_forward_hook(
                lambda m, inp, out, name=name: trace.append((name, shapes(inp), shapes(out)))))
    try:
        result = fn(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return result, trace
