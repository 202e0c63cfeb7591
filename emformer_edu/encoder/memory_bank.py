"""The Emformer memory bank.

Each segment is summarised by one vector: the average of its (layer-normed) frames. That
summary is a query in attention; its attention output, squashed by ``tanh`` (or clamped to
[-10, 10]), becomes a memory slot that the *next* layer's segments can read. The bank keeps
at most ``max_memory_size`` (M) slots; memory is off when M is 0.

Shapes are time-major: summaries ``(S, B, D)``, memory ``(M, B, D)``.
"""
import torch
import torch.nn.functional as F

MEMORY_CLAMP = 10.0


def summarize_segments(utterance: torch.Tensor, segment_length: int) -> torch.Tensor:
    """Average-pool each segment: ``(T, B, D) -> (S, B, D)`` with ``S = ceil(T / segment_length)``.

    A partly filled last segment is averaged over the frames it has (ceil-mode pooling).
    """
    pooled = F.avg_pool1d(utterance.permute(1, 2, 0), segment_length, segment_length, ceil_mode=True)
    return pooled.permute(2, 0, 1)


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
