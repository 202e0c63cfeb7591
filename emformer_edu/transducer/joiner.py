"""The RNN-T joint network: combine every encoder frame with every predictor step.

``(B, T, D)`` and ``(B, U, D)`` broadcast-add to ``(B, T, U, D)``, then activation and a
Linear to ``(B, T, U, V)`` logits. Parameter names match torchaudio's ``_Joiner``.

In training (gradients on, ReLU) the same computation runs block by block with a hand-written
backward pass, :mod:`.joiner_fast`: the ``(B, T, U, D)`` tensors are the biggest of a training
step, and moving them through memory is what makes the joiner slow.
"""
from typing import Tuple

import torch

from ..checks import check_choice
from .joiner_fast import relu_join


class Joiner(torch.nn.Module):
    def __init__(self, input_dim: int, output_dim: int, activation: str = "relu") -> None:
        super().__init__()
        check_choice("activation", activation, ("relu", "tanh"))
        self.linear = torch.nn.Linear(input_dim, output_dim, bias=True)
        self.activation = torch.nn.ReLU() if activation == "relu" else torch.nn.Tanh()

    def forward(
        self, source_encodings: torch.Tensor, source_lengths: torch.Tensor,
        target_encodings: torch.Tensor, target_lengths: torch.Tensor,
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(B, T, D)``, ``(B,)``, ``(B, U, D)``, ``(B,)`` -> ``(logits (B, T, U, V), source_lengths, target_lengths)``."""
        if self._use_fast_path(source_encodings, target_encodings):
            logits = relu_join(source_encodings, target_encodings, self.linear.weight, self.linear.bias)
            return logits, source_lengths, target_lengths
        joint = source_encodings.unsqueeze(2).contiguous() + target_encodings.unsqueeze(1).contiguous()
        return self.linear(self.activation(joint)), source_lengths, target_lengths

    def _use_fast_path(self, source_encodings: torch.Tensor, target_encodings: torch.Tensor) -> bool:
        """Training: a ReLU joiner whose output needs gradients (same numbers, see :mod:`.joiner_fast`)."""
        needs_grad = torch.is_grad_enabled() and (
            source_encodings.requires_grad or target_encodings.requires_grad
            or any(p.requires_grad for p in self.linear.parameters()))
        return needs_grad and isinstance(self.activation, torch.nn.ReLU)
