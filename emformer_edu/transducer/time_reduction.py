"""Time reduction: stack ``stride`` consecutive frames into one, shortening the sequence.

``(B, T, D) -> (B, T // stride, D * stride)``. Trailing frames that do not fill a group are
dropped, and lengths are divided (rounding down) the same way.
"""
from typing import Tuple

import torch

from ..checks import check_positive


class TimeReduction(torch.nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        check_positive("time_reduction_stride", stride)
        self.stride = stride

    def forward(self, input: torch.Tensor, lengths: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``input (B, T, D)``, ``lengths (B,)`` -> ``(B, T // stride, D * stride)``, ``lengths // stride``."""
        B, T, D = input.shape
        kept = T - T % self.stride
        output = input[:, :kept].reshape(B, kept // self.stride, D * self.stride).contiguous()
        return output, lengths.div(self.stride, rounding_mode="trunc")
