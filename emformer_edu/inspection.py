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
