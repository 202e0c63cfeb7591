"""One Emformer layer: pre-norm attention with memory, then a pre-norm feed-forward block.

``forward`` runs all segments at once with the training mask; ``infer`` runs one streaming
chunk against a :class:`LayerState` cache. Parameter names match torchaudio's
``_EmformerLayer``. Shapes are time-major: utterance ``(T, B, D)``, right context
``(R, B, D)``, memory ``(M, B, D)``.
"""
import math
from typing import List, NamedTuple, Optional, Tuple

import torch

from ..dropout import Dropout
from .attention import EmformerAttention
from .masks import inference_mask
from .memory_bank import empty_memory, push_memory, summarize_segments


class LayerState(NamedTuple):
    """Streaming cache of one layer (same four tensors, in the same order, as torchaudio's list).

    memory: ``(M, B, D)`` memory slots from the layer below, oldest first; only the newest
        ``min(M, segments seen)`` are real, the rest are zeros.
    left_context_key, left_context_val: ``(L, B, D)`` keys/values of the last L frames.
    past_length: ``(1, B)`` int32, frames (after time reduction) processed so far.
    """

    memory: torch.Tensor
    left_context_key: torch.Tensor
    left_context_val: torch.Tensor
    past_length: torch.Tensor


def make_activation(activation: str) -> torch.nn.Module:
    return {"relu": torch.nn.ReLU, "gelu": torch.nn.GELU, "silu": torch.nn.SiLU}[activation]()


def weight_init_gains(weight_init_scale_strategy: Optional[str], num_layers: int) -> List[Optional[float]]:
    """Per-layer Xavier gains for the query/key/value projections.

    ``depthwise``: 1/sqrt(layer index + 1), deeper layers start smaller; ``constant``:
    1/sqrt(2); ``None``: PyTorch's default Linear initialisation.
    """
    if weight_init_scale_strategy is None:
        return [None] * num_layers
    if weight_init_scale_strategy == "depthwise":
        return [1.0 / math.sqrt(i + 1) for i in range(num_layers)]
    return [1.0 / math.sqrt(2)] * num_layers


class EmformerLayer(torch.nn.Module):
    def __init__(
        self,
        input_dim: int,
        num_heads: int,
        ffn_dim: int,
        segment_length: int,
        dropout: float = 0.0,
        activation: str = "relu",
        left_context_length: int = 0,
        max_memory_size: int = 0,
        weight_init_gain: Optional[float] = None,
        tanh_on_mem: bool = False,
        negative_inf: float = -1e8,
    ):
        super().__init__()
        self.attention = EmformerAttention(input_dim, num_heads, dropout, weight_init_gain, tanh_on_mem, negative_inf)
        self.dropout = Dropout(dropout)
        self.pos_ff = torch.nn.Sequential(
            torch.nn.LayerNorm(input_dim),
            torch.nn.Linear(input_dim, ffn_dim),
            make_activation(activation),
            Dropout(dropout),
            torch.nn.Linear(ffn_dim, input_dim),
            Dropout(dropout),
        )
        self.layer_norm_input = torch.nn.LayerNorm(input_dim)
        self.layer_norm_output = torch.nn.LayerNorm(input_dim)
        self.input_dim = input_dim
        self.segment_length = segment_length
        self.left_context_length = left_context_length
        self.max_memory_size = max_memory_size
        self.use_mem = max_memory_size > 0

    def _summary(self, utterance: torch.Tensor) -> torch.Tensor:
        return summarize_segments(utterance, self.segment_length) if self.use_mem else empty_memory(utterance)

    def _feed_forward(self, attention_out: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Residual, feed-forward with its own residual, output LayerNorm (on ``[right context; utterance]``)."""
        x = self.dropout(attention_out) + rows
        x = self.pos_ff(x) + x
        return self.layer_norm_output(x)

    def forward(
        self, utterance: torch.Tensor, lengths: torch.Tensor, right_context: torch.Tensor,
        memory: torch.Tensor, attention_mask, utterance_only: bool = False,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training / full-context pass over all segments.

        Returns ``(utterance, right_context, next_memory)``; next_memory ``(N-1, B, D)``:
        the last segment's summary is dropped because no later segment reads it.

        ``utterance_only``: compute the utterance's outputs only; the right-context and memory
        outputs come back empty. The right context and memory still serve as keys but ask no
        queries: ``Emformer.forward`` uses it in training for the last layer, whose right-context
        and memory outputs nobody reads (a third fewer queries, a fifth fewer feed-forward rows).
        """
        R = right_context.size(0)
        rows = torch.cat([right_context, utterance])  # every step below runs on all rows at once
        normed = self.layer_norm_input(rows)
        if utterance_only:
            queries = normed[R:]
            out, _, _, _ = self.attention.attend(normed, R, lengths, empty_memory(queries), memory,
                                                 attention_mask.only_rows("utterance"), queries=queries)
            return self._feed_forward(out, utterance), right_context[:0], memory[:0]
        summary = self._summary(normed[R:])
        out, next_memory, _, _ = self.attention.attend(normed, R, lengths, summary, memory, attention_mask)
        right_context, utterance = self._feed_forward(out, rows).split([R, utterance.size(0)])
        return utterance, right_context, next_memory[:-1]

    def init_state(self, batch_size: int, like: torch.Tensor) -> LayerState:
        zeros = lambda n: like.new_zeros(n, batch_size, self.input_dim)
        past = torch.zeros(1, batch_size, dtype=torch.int32, device=like.device)
        return LayerState(zeros(self.max_memory_size), zeros(self.left_context_length), zeros(self.left_context_length), past)

    def cache_sizes(self, past_length: int) -> Tuple[int, int]:
        """Filled memory slots and left-context frames after ``past_length`` frames: ``(m, l)``."""
        return (min(self.max_memory_size, math.ceil(past_length / self.segment_length)),
                min(self.left_context_length, past_length))

    def inference_mask(self, past_length: int, right_context_length: int, device=None):
        """The mask of a streaming chunk after ``past_length`` frames (the same for every layer)."""
        n_mem, n_lc = self.cache_sizes(past_length)
        return inference_mask(self.segment_length, right_context_length, n_mem, n_lc, self.use_mem,
                              segment_index=past_length // self.segment_length, device=device)

    def _read_state(self, state: LayerState):
        """The filled part of the cache: memory ``(m, B, D)`` and left context ``(l, B, D)``."""
        n_mem, n_lc = self.cache_sizes(int(state.past_length[0][0]))
        return (
            state.memory[self.max_memory_size - n_mem:],
            state.left_context_key[self.left_context_length - n_lc:],
            state.left_context_val[self.left_context_length - n_lc:],
        )

    def infer(
        self, utterance: torch.Tensor, lengths: torch.Tensor, right_context: torch.Tensor,
        state: Optional[LayerState], memory: torch.Tensor, attention_mask=None,
    ) -> Tuple[torch.Tensor, torch.Tensor, LayerState, torch.Tensor]:
        """One streaming chunk: utterance ``(segment_length, B, D)``, right context ``(R, B, D)``.

        ``memory`` is this chunk's memory from the layer below; it goes into the cache for
        the *next* chunk. ``attention_mask``: :meth:`inference_mask` for this chunk, built here
        if not given (``Emformer.infer`` builds it once for all layers). Returns
        ``(utterance, right_context, new_state, next_memory)``.
        """
        if state is None:
            state = self.init_state(utterance.size(1), utterance)
        R = right_context.size(0)
        rows = torch.cat([right_context, utterance])
        normed = self.layer_norm_input(rows)
        mem, lc_key, lc_val = self._read_state(state)
        summary = self._summary(normed[R:])[:1]
        mask = attention_mask
        if mask is None:
            mask = self.inference_mask(int(state.past_length[0][0]), R, utterance.device)
        out, next_memory, key, value = self.attention.attend(normed, R, lengths, summary, mem, mask, lc_key, lc_val)
        # Keys/values of [left context, utterance] become the next chunk's left context.
        start = mem.size(0) + R
        new_key = torch.cat([state.left_context_key, key[start:]])
        new_val = torch.cat([state.left_context_val, value[start:]])
        L = self.left_context_length
        new_state = LayerState(
            push_memory(state.memory, memory, self.max_memory_size),
            new_key[new_key.size(0) - L:],
            new_val[new_val.size(0) - L:],
            state.past_length + utterance.size(0),
        )
        rows = self._feed_forward(out, rows)
        return rows[R:], rows[:R], new_state, next_memory
