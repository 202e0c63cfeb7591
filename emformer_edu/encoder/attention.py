"""Emformer multi-head attention over ``[memory, right context, left context, utterance]``.

Queries come from ``[right context, utterance, summary]``; keys and values from
``[memory, right context, (cached left context), utterance]``. The summary queries' outputs
become the next layer's memory. Parameter names match torchaudio's ``_EmformerAttention``
so that checkpoints load with ``strict=True``.

Shapes (time-major): utterance ``(T, B, D)``, right context ``(R, B, D)`` (all blocks),
summary ``(S, B, D)``, memory ``(M, B, D)``, left context ``(L, B, D)``; H heads.
"""
from typing import Optional, Tuple

import torch

from ..dropout import dropout
from .masks import key_padding_mask
from .memory_bank import squash_memory
from .probe import Probe


class EmformerAttention(torch.nn.Module):
    """Scaled dot-product attention with heads, a block mask, key padding and dropout.

    Softmax precision: torchaudio computes the softmax after ``.float()``. For float16 that is
    an upcast; for float64 it is a *downcast* to float32, which limits float64 results to
    ~1e-7. By default this module computes the softmax in ``promote(dtype, float32)``, which
    is bit-identical to torchaudio for float32 (and half types) and keeps float64 exact.
    Set ``softmax_in_float32 = True`` (see :func:`match_torchaudio_softmax`) to reproduce
    torchaudio's float64 numbers exactly.
    """

    def __init__(
        self,
        input_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        weight_init_gain: Optional[float] = None,
        tanh_on_mem: bool = False,
        negative_inf: float = -1e8,
    ):
        super().__init__()
        self.input_dim, self.num_heads = input_dim, num_heads
        self.head_dim = input_dim // num_heads
        self.dropout = dropout
        self.tanh_on_mem = tanh_on_mem
        self.negative_inf = negative_inf
        self.scaling = self.head_dim ** -0.5
        self.softmax_in_float32 = False
        # Creation order matches torchaudio, so the same seed gives the same initial weights.
        self.emb_to_key_value = torch.nn.Linear(input_dim, 2 * input_dim, bias=True)
        self.emb_to_query = torch.nn.Linear(input_dim, input_dim, bias=True)
        self.out_proj = torch.nn.Linear(input_dim, input_dim, bias=True)
        if weight_init_gain:
            torch.nn.init.xavier_uniform_(self.emb_to_key_value.weight, gain=weight_init_gain)
            torch.nn.init.xavier_uniform_(self.emb_to_query.weight, gain=weight_init_gain)
        self.probe = Probe()  # no parameters: the state_dict keys stay torchaudio's

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        """``(Q, B, D) -> (B*H, Q, D/H)``."""
        B = x.size(1)
        return x.contiguous().view(-1, B * self.num_heads, self.head_dim).transpose(0, 1)

    def _probs(self, weights: torch.Tensor, mask: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Masked softmax over keys: ``(B*H, Q, K) -> (B*H, Q, K)``.

        The block mask ``(Q, K)`` and the padding mask ``(B, K)`` are combined first (a small
        boolean OR, repeated for the H heads) and written with one in-place fill; torchaudio
        fills twice, each time into a new copy of the logits. Same numbers: a blocked logit is
        ``negative_inf`` either way. In place is safe for autograd: the logits are a fresh tensor
        (not a view) and the bmm that made them does not need them for its backward pass.
        """
        dtype = torch.float32 if self.softmax_in_float32 else torch.promote_types(weights.dtype, torch.float32)
        BH, Q, K = weights.shape
        blocked = mask if padding_mask is None else mask | padding_mask.unsqueeze(1)  # (Q, K) or (B, Q, K)
        blocked = blocked.unsqueeze(-3).expand(BH // self.num_heads, self.num_heads, Q, K).reshape(BH, Q, K)
        w = weights.to(dtype).masked_fill_(blocked, self.negative_inf)
        return torch.nn.functional.softmax(w, dim=-1).type_as(weights)

    def attend(
        self,
        rows: torch.Tensor,
        num_right_context: int,
        lengths: torch.Tensor,
        summary: torch.Tensor,
        memory: torch.Tensor,
        attention_mask,
        left_context_key: Optional[torch.Tensor] = None,
        left_context_val: Optional[torch.Tensor] = None,
        queries: Optional[torch.Tensor] = None,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run attention; ``attention_mask`` is an :class:`~emformer_edu.masks.AttentionMask`.

        ``rows`` is ``[right context; utterance]`` in one tensor ``(R + T, B, D)``, its first
        ``num_right_context`` rows the right context (the layers keep the two together).
        Returns ``(output, next_memory, key, value)``: output ``(R + T, B, D)`` for the right
        context and utterance queries, next_memory ``(S, B, D)`` squashed summary outputs, and
        the keys/values ``(M + R + L + T, B, D)`` so streaming can cache the utterance part.
        ``queries``: other query inputs than ``[rows; summary]`` (with a mask for those rows);
        the output then has one row per query and ``summary`` must be empty.
        """
        B = rows.size(1)
        R, M, S = num_right_context, memory.size(0), summary.size(0)
        if queries is None:
            queries = torch.cat([rows, summary])  # [right context, utterance, summary]
        query = self.emb_to_query(queries)
        key, value = self.emb_to_key_value(torch.cat([memory, rows])).chunk(2, dim=2)  # [memory, rc, utterance]
        if left_context_key is not None:
            # Cached keys/values of past frames go between right context and utterance.
            key = torch.cat([key[: M + R], left_context_key, key[M + R:]])
            value = torch.cat([value[: M + R], left_context_val, value[M + R:]])
        q, k, v = self._split_heads(query), self._split_heads(key), self._split_heads(value)
        weights = torch.bmm(q * self.scaling, k.transpose(1, 2))  # (B*H, Q, K)
        padding_mask = key_padding_mask(lengths, key.size(0))
        probs = self._probs(weights, attention_mask.blocked, padding_mask)
        attention = torch.bmm(dropout(probs, float(self.dropout), self.training, batch_dim=0, heads=self.num_heads), v)
        attention = attention.transpose(0, 1).contiguous().view(-1, B, self.input_dim)  # (Q, B, D)
        output, summary_out = self.out_proj(attention).split([attention.size(0) - S, S])
        next_memory = squash_memory(summary_out, self.tanh_on_mem)
        self.probe(attention_probs=probs.view(B, self.num_heads, probs.size(1), probs.size(2)),
                   attention_mask=attention_mask, padding_mask=padding_mask, memory_in=memory,
                   memory_out=next_memory, left_context_key=left_context_key, left_context_val=left_context_val)
        return output, next_memory, key, value


def match_torchaudio_softmax(module: torch.nn.Module, enabled: bool = True) -> torch.nn.Module:
    """Make every Emformer attention in ``module`` compute its softmax in float32, as torchaudio does.

    Only float64 results change (float32 and half types are identical either way). Returns
    ``module`` for chaining.
    """
    for m in module.modules():
        if isinstance(m, EmformerAttention):
            m.softmax_in_float32 = enabled
    return module
