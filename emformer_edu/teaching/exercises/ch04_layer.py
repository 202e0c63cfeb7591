"""Notebook 04 (inside one layer): a streaming chunk's attention shape, composing the keys, the attention step.

The shape is that of the attention a real streaming chunk computed once the cache is full. The two
coding exercises are checked against a real :class:`~emformer_edu.encoder.EmformerAttention`: its
``attend`` returns the keys it composed (``04.compose_keys``), and with identity projections its
output is the attention step alone (``04.attention_step``), on masks made by ``inference_mask``.
"""
from types import SimpleNamespace

import torch

from ...encoder import EmformerAttention
from ...encoder.masks import inference_mask
from ...transducer import streaming_chunks
from ..recorder import record
from ._shared import Exercise, small_emformer


def _infer_mask_shape():
    # Segment 4, R=1, M=4, L=8: after 4 chunks both caches are full, so chunk 4 is a "full" chunk.
    model = small_emformer(4, 1, left_context_length=8, max_memory_size=4)
    x = torch.randn(1, 5 * 4 + 1, model.input_dim, dtype=torch.float64)
    state = None
    with record() as rec:
        for chunk, length in streaming_chunks(x, 4, 1):
            _, _, state = model.infer(chunk, length, state)
    return tuple(rec.calls[-1].layers[0].attention_probs.shape[-2:])


def _compose_keys(weight, bias, memory, rows, left_context_key, right_context_length):
    """The keys a real EmformerAttention builds for one streaming chunk: ``(M + R + L + C, D)``."""
    D = rows.size(1)
    attention = EmformerAttention(D, 2).double().requires_grad_(False)
    attention.emb_to_key_value.weight.copy_(weight)
    attention.emb_to_key_value.bias.copy_(bias)
    R, M, L = right_context_length, memory.size(0), left_context_key.size(0)
    C = rows.size(0) - R
    mask = inference_mask(C, R, M, L, use_memory=False)  # no summary query: keys are all this asks for
    _, _, key, _ = attention.attend(rows.unsqueeze(1), R, torch.tensor([C]), rows[:0].unsqueeze(1),
                                    memory.unsqueeze(1), mask, left_context_key.unsqueeze(1),
                                    torch.zeros_like(left_context_key).unsqueeze(1))
    return key[:, 0]


def _compose_keys_cases():
    cases = []
    for D, M, R, L, C in [(4, 1, 1, 2, 2), (6, 2, 1, 3, 4), (8, 4, 2, 8, 4), (8, 0, 1, 4, 4), (6, 3, 0, 5, 3)]:
        cases.append(dict(weight=torch.randn(2 * D, D, dtype=torch.float64), bias=torch.randn(2 * D, dtype=torch.float64),
                          memory=torch.randn(M, D, dtype=torch.float64), rows=torch.randn(R + C, D, dtype=torch.float64),
                          left_context_key=torch.randn(L, D, dtype=torch.float64), right_context_length=R))
    return cases


def _attention_step(query, key, value, blocked, num_heads):
    """Multi-head masked attention of a real EmformerAttention whose projections are the identity:
    ``query (Q, D)``, ``key``/``value`` ``(K, D)`` (passed as its cached left context), ``blocked (Q, K)``."""
    D = query.size(1)
    attention = EmformerAttention(D, num_heads).double().requires_grad_(False)
    for linear in (attention.emb_to_query, attention.out_proj):
        linear.weight.copy_(torch.eye(D, dtype=torch.float64))
        linear.bias.zero_()
    empty = query[:0].unsqueeze(1)
    mask = SimpleNamespace(blocked=blocked)
    out, _, _, _ = attention.attend(empty, 0, torch.tensor([0]), empty, empty, mask, key.unsqueeze(1),
                                    value.unsqueeze(1), queries=query.unsqueeze(1))
    return out[:, 0]


def _attention_step_cases():
    cases = []
    # (heads, head width, segment C, R, memory slots, left context): queries [rc; seg; summary]
    for H, d, C, R, M, L in [(2, 2, 2, 1, 1, 2), (2, 4, 4, 1, 4, 8), (4, 3, 4, 2, 2, 4), (3, 2, 3, 0, 3, 5)]:
        blocked = inference_mask(C, R, M, L, use_memory=True).blocked
        Q, K = blocked.shape
        cases.append(dict(query=torch.randn(Q, H * d, dtype=torch.float64),
                          key=torch.randn(K, H * d, dtype=torch.float64),
                          value=torch.randn(K, H * d, dtype=torch.float64), blocked=blocked, num_heads=H))
    return cases


EXERCISES = {
    "04.infer_mask_shape": Exercise("(queries, keys) of a full streaming chunk: segment 4, R=1, M=4, L=8",
                                    _infer_mask_shape),
    "04.compose_keys": Exercise("compose_keys(weight, bias, memory, rows, left_context_key, right_context_length) "
                                "-> the keys [memory | rc | left context | segment] (K, D)", _compose_keys,
                                _compose_keys_cases),
    "04.attention_step": Exercise("attention_step(query, key, value, blocked, num_heads) -> (Q, D): masked "
                                  "multi-head scaled dot-product attention", _attention_step, _attention_step_cases),
}
