"""Argument checks shared by every module: one clear ``ValueError`` instead of a wrong answer.

Messages always name the parameter, the allowed values and what was given, because a
learner reading a traceback should not need to open the source to see what went wrong.
"""
from typing import Iterable

import torch

ACTIVATIONS = ("relu", "gelu", "silu")
WEIGHT_INIT_SCALE_STRATEGIES = ("depthwise", "constant", None)


def check_choice(name: str, value, allowed: Iterable) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}.")


def check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def check_non_negative(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0 (a length in frames), got {value!r}.")


def check_lengths(lengths: torch.Tensor, batch_size: int, max_length: int, what: str = "lengths") -> None:
    """Lengths must be a 1-D tensor of B values in [0, max_length]."""
    if lengths.dim() != 1 or lengths.size(0) != batch_size:
        raise ValueError(
            f"{what} must have shape (B,) = ({batch_size},), got {tuple(lengths.shape)}."
        )
    if lengths.numel() == 0:
        return
    if bool((lengths < 0).any()):
        raise ValueError(f"{what} must be >= 0, got {lengths.tolist()}.")
    if int(lengths.max()) > max_length:
        raise ValueError(
            f"{what} must not exceed the tensor's time dimension ({max_length} frames), "
            f"got max {int(lengths.max())}."
        )


def check_features(input: torch.Tensor, input_dim: int, name: str = "input") -> None:
    """Input must be (B, T, input_dim)."""
    if input.dim() != 3:
        raise ValueError(f"{name} must have shape (B, T, {input_dim}), got {tuple(input.shape)}.")
    if input.size(2) != input_dim:
        raise ValueError(
            f"{name} feature dimension must equal input_dim={input_dim}, got {input.size(2)} "
            f"(shape {tuple(input.shape)})."
        )


def check_probability(name: str, value: float) -> None:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}.")


def check_chunk_length(input: torch.Tensor, segment_length: int, right_context_length: int, unit: str = "frames") -> None:
    """A streaming chunk must hold one segment plus its look-ahead: ``(B, segment_length + R, ...)``."""
    expected = segment_length + right_context_length
    if input.dim() == 3 and input.size(1) != expected:
        raise ValueError(
            f"A streaming chunk must have segment_length + right_context_length = "
            f"{segment_length} + {right_context_length} = {expected} {unit} in dimension 1, "
            f"got {input.size(1)} (shape {tuple(input.shape)})."
        )


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """NaN or inf in the input would give a confident wrong answer: refuse it and say where it is.

    Called on every model and decoder input, so the common case is one reduction: a finite sum means
    every value is finite; only a non-finite sum (NaN/inf inside, or finite values overflowing) looks closer.
    """
    if not x.is_floating_point() or x.numel() == 0 or bool(torch.isfinite(x.sum())):
        return
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).nonzero()
        first = tuple(bad[0].tolist())
        kind = "NaN" if bool(torch.isnan(x[first])) else "inf"
        raise ValueError(
            f"{name} holds {bad.size(0)} non-finite value(s) (first: {kind} at index {first} of shape "
            f"{tuple(x.shape)}); clean the audio or features first."
        )
