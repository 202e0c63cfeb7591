"""Record what Emformer computes, for the notebooks, without changing a single number.

Usage::

    with emformer_edu.record() as rec:
        model.transcribe(features, lengths)
    call = rec.calls[0]                       # one entry per Emformer forward/infer call
    call.layers[0].attention_probs            # (B, H, Q, K) per-head attention
    call.mask                                 # the labelled AttentionMask that was applied

How it works: the model calls parameter-free :class:`~emformer_edu.encoder.probe.Probe`
modules at the points worth seeing (each attention, and each Emformer call at its end).
While a recording is active, one global forward hook copies what the probes were called
with; nothing flows back into the computation, so outputs with and without recording are
identical (tests check this). :func:`trace_shapes` and :func:`predictor_trace` use forward
hooks too: one mechanism for all instrumentation, and the model never imports this module.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch

from ..encoder.probe import Probe
from ..encoder.segments import segment_spans

_STACK: List["Recording"] = []


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
        self._layers: List[LayerRecord] = []  # attention records of the call under way

    def _probed(self, context: dict) -> None:
        """A probe fired: an attention (one layer) or, at the end of a call, the Emformer."""
        if "attention_probs" in context:  # layers run in order, so the count is the layer index
            self._layers.append(LayerRecord(layer=len(self._layers), **{k: _copy(v) for k, v in context.items()}))
            return
        T, before = context["utterance_length"], context["frames_before"]
        spans = segment_spans(before + T, context["segment_length"], context["right_context_length"],
                              context["left_context_length"])
        state_before, state_after = context.get("state_before"), context.get("state_after")
        self.calls.append(CallRecord(
            mode=context["mode"], segment_length=context["segment_length"],
            right_context_length=context["right_context_length"],
            left_context_length=context["left_context_length"], max_memory_size=context["max_memory_size"],
            utterance_length=T, spans=[s for s in spans if s.segment[0] >= before], mask=context["attention_mask"],
            frames_before=before, state_before=None if state_before is None else clone_state(state_before),
            state_after=None if state_after is None else clone_state(state_after), layers=self._layers,
        ))
        self._layers = []


def _copy(x):
    return x.detach().clone() if isinstance(x, torch.Tensor) else x


def clone_state(state):
    """Detached copy of an Emformer streaming state (a list of per-layer named tuples)."""
    return [type(s)(*[_copy(t) for t in s]) for s in state]


def _probe_hook(module, args, kwargs, output) -> None:
    if isinstance(module, Probe) and _STACK:
        _STACK[-1]._probed(kwargs)


@contextmanager
def record():
    """Context manager that records every Emformer call made inside it; yields a :class:`Recording`.

    Recordings nest; the innermost one receives the calls.
    """
    rec = Recording()
    first = not _STACK  # one global hook serves every nested recording
    handle = torch.nn.modules.module.register_module_forward_hook(_probe_hook, with_kwargs=True) if first else None
    _STACK.append(rec)
    try:
        yield rec
    finally:
        _STACK.remove(rec)
        if handle is not None:
            handle.remove()


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
        if name and not isinstance(sub, Probe):  # probes are taps, not steps
            handles.append(sub.register_forward_hook(
                lambda m, inp, out, name=name: trace.append((name, shapes(inp), shapes(out)))))
    try:
        result = fn(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return result, trace


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
