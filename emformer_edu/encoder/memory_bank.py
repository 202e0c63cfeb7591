"""The Emformer memory bank.

Each segment is summarised by one vector: the average of its (layer-normed) frames. That
summary is a query in attention; its attention output, squashed by ``tanh`` (or clamped to
[-10, 10]), becomes a memory slot that the *next* layer's segments can read. The bank keeps
at most ``max_memory_size`` (M) slots; memory is off when M is 0.

Shapes are time-major: summaries ``(S, B, D)``, memory ``(M, B, D)``.
"""
import functools

import torch
import torch.nn.functional as F

from .segments import num_segments

MEMORY_CLAMP = 10.0


def summarize_segments(utterance: torch.Tensor, segment_length: int) -> torch.Tensor:
    """Average-pool each segment: ``(T, B, D) -> (S, B, D)`` with ``S = ceil(T / segment_length)``.

    A partly filled last segment is averaged over the frames it has (ceil-mode pooling). The
    frames are added one after another and the sum divided by the count, which is exactly what
    ``avg_pool1d`` computes, without its transposes of the time-major tensor (5x faster here).
    """
    T, B, D = utterance.shape
    S = num_segments(T, segment_length)
    if S * segment_length > T:  # zero frames fill up the last segment; they add nothing to its sum
        utterance = F.pad(utterance, (0, 0, 0, 0, 0, S * segment_length - T))
    acc = torch.promote_types(utterance.dtype, torch.float32)  # half types add in float32, as avg_pool does
    frames = utterance.to(acc).view(S, segment_length, B, D).unbind(1)  # frame k of every segment, (S, B, D) each
    total = functools.reduce(torch.add, frames)
    counts = torch.tensor([min(segment_length, T - i * segment_length) for i in range(S)], dtype=acc,
                          device=total.device)
    return (total / counts.view(S, 1, 1)).to(utterance.dtype)


def squash_memory(memory: torch.Tensor, tanh_on_mem: bool) -> torch.Tensor:
    """Bound memory values so they cannot grow layer after layer: tanh, or a clamp to ±10."""
    if tanh_on_mem:
        return torch.tanh(memory)
    return torch.clamp(memory, min=-MEMORY_CLAMP, max=MEMORY_CLAMP)


def push_memory(bank: torch.Tensor, new: torch.Tensor, max_memory_size: int) -> torch.Tensor:
    """Append ``new`` ``(S, B, D)`` to ``bank`` ``(M, B, D)`` and keep the newest ``max_memory_size``."""
    if max_memory_size == 0:
        return bank[:0]
    return torch.cat([bank, new])[-max_memory_size:]


def empty_memory(like: torch.Tensor) -> torch.Tensor:
    """A ``(0, B, D)`` memory with ``like``'s batch, width, dtype and device (memory off)."""
    return like.new_zeros(0, like.size(1), like.size(2))
