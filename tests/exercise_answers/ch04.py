"""Chapter 04's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import torch


def compose_keys(weight, bias, memory, rows, left_context_key, right_context_length):
    D = rows.shape[1]
    projected = (torch.cat([memory, rows]) @ weight.T + bias)[:, :D]  # keys: the first half of W_kv
    split = memory.shape[0] + right_context_length
    return torch.cat([projected[:split], left_context_key, projected[split:]])


def compose_keys_lc_first(weight, bias, memory, rows, left_context_key, right_context_length):
    # Bug: the cached left context goes before the right context, not after it.
    D = rows.shape[1]
    projected = (torch.cat([memory, rows]) @ weight.T + bias)[:, :D]
    M = memory.shape[0]
    return torch.cat([projected[:M], left_context_key, projected[M:]])


def attention_step(query, key, value, blocked, num_heads):
    Q, D = query.shape
    d = D // num_heads
    q = query.view(Q, num_heads, d).transpose(0, 1)  # (H, Q, d)
    k = key.view(-1, num_heads, d).transpose(0, 1)
    v = value.view(-1, num_heads, d).transpose(0, 1)
    scores = (q @ k.transpose(1, 2)) / d ** 0.5
    probs = scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)
    return (probs @ v).transpose(0, 1).reshape(Q, D)


def attention_step_model_dim_scale(query, key, value, blocked, num_heads):
    # Bug: scales by sqrt(D), the model width, instead of sqrt(d_h), each head's width.
    Q, D = query.shape
    d = D // num_heads
    q = query.view(Q, num_heads, d).transpose(0, 1)
    k = key.view(-1, num_heads, d).transpose(0, 1)
    v = value.view(-1, num_heads, d).transpose(0, 1)
    scores = (q @ k.transpose(1, 2)) / D ** 0.5
    probs = scores.masked_fill(blocked, float("-inf")).softmax(dim=-1)
    return (probs @ v).transpose(0, 1).reshape(Q, D)


ANSWERS = {
    "04.infer_mask_shape": ((6, 17), (5, 17)),  # forgot the summary query
    "04.compose_keys": (compose_keys, compose_keys_lc_first),
    "04.attention_step": (attention_step, attention_step_model_dim_scale),
}
