"""Input checks shared by every RNN-T loss and the lattice: one clear ValueError instead of garbage.

Notation: B batch, T frames, U target length, V vocabulary. ``logits`` are (B, T, U+1, V),
``targets`` (B, U), ``logit_lengths`` and ``target_lengths`` (B,).
"""
import math
import numbers

import torch
from torch import Tensor

_REDUCTIONS = ("none", "mean", "sum")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.int32, torch.int64)


def check_inputs(logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
                  blank: int, reduction: str, check_nan: bool = True) -> int:
    """Validate the inputs of a batch of lattices; return ``blank`` as an index in [0, V)."""
    lengths = (("logit_lengths", logit_lengths), ("target_lengths", target_lengths))
    for name, x in (("logits", logits), ("targets", targets)) + lengths:
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if logits.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"logits must be a floating tensor (float32/float64/float16/bfloat16), got {logits.dtype}")
    for name, x in (("targets", targets),) + lengths:
        if x.dtype not in _INT_DTYPES:
            raise ValueError(f"{name} must be an integer tensor (int32 or int64), got {x.dtype}")
    if logits.dim() != 4:
        raise ValueError(f"logits must be 4-D (B, T, U+1, V), got shape {tuple(logits.shape)}")
    if targets.dim() != 2:
        raise ValueError(f"targets must be 2-D (B, U), got shape {tuple(targets.shape)}")
    B, T, U1, V = logits.shape
    if targets.shape[0] != B:
        raise ValueError(f"targets batch size must equal logits batch size B={B}, got {targets.shape[0]}")
    if U1 != targets.shape[1] + 1:
        raise ValueError(
            f"logits.shape[2] (U+1) must equal targets.shape[1] + 1 = {targets.shape[1] + 1}, got {U1}")
    for name, x in lengths:
        if x.shape != (B,):
            raise ValueError(f"{name} must have shape (B,) = ({B},), got {tuple(x.shape)}")
    if T == 0 or V == 0:
        raise ValueError(f"logits must have T >= 1 and V >= 1, got shape {tuple(logits.shape)}")
    if not -V <= blank < V:
        raise ValueError(f"blank must be in [-V, V) = [{-V}, {V}), got {blank}")
    blank = blank % V
    if B == 0:
        return blank
    U = U1 - 1
    for name, x, lo, hi, limit in (("logit_lengths", logit_lengths, 1, T, f"T={T} (logits.shape[1])"),
                                   ("target_lengths", target_lengths, 0, U, f"U={U} (targets.shape[1])")):
        if int(x.max()) > hi:
            raise ValueError(f"{name} must be <= {limit}, got max {int(x.max())}")
        if int(x.min()) < lo:
            raise ValueError(f"{name} must be >= {lo}, got min {int(x.min())}")
    if U > 0:
        # Only positions inside each target length are tokens; the rest is padding.
        valid = torch.arange(U, device=targets.device) < target_lengths.to(targets.device)[:, None]
        if bool((valid & (targets == blank)).any()):
            b, u = (valid & (targets == blank)).nonzero()[0].tolist()
            raise ValueError(f"targets must not contain the blank index {blank} (found at targets[{b}, {u}])")
        bad = valid & ((targets < 0) | (targets >= V))
        if bool(bad.any()):
            b, u = bad.nonzero()[0].tolist()
            raise ValueError(f"targets must be in [0, V={V}), got {int(targets[b, u])} at targets[{b}, {u}]")
    if check_nan and bool(torch.isnan(logits).any()):
        raise ValueError("logits contain NaN")
    return blank


def check_latency_options(fastemit_lambda: float, delay_penalty: float) -> None:
    """FastEmit's lambda and k2's delay penalty must be finite real numbers >= 0 (0 turns each off)."""
    for name, x in (("fastemit_lambda", fastemit_lambda), ("delay_penalty", delay_penalty)):
        # bool is an int subclass: True would silently mean 1.0.
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise ValueError(f"{name} must be a real number, got {type(x).__name__}")
        if not math.isfinite(x) or x < 0:
            raise ValueError(f"{name} must be finite and >= 0 (0 turns it off), got {x!r}")


def reduce(costs: Tensor, reduction: str) -> Tensor:
    """(B,) per-utterance costs -> the requested reduction (checked by :func:`check_inputs`)."""
    if reduction == "mean":
        return costs.mean()
    if reduction == "sum":
        return costs.sum()
    return costs
