"""Dropout that can draw a whole global batch's mask: how N processes drop exactly what one process drops.

One process training a batch of B utterances calls ``F.dropout`` on tensors that hold all B of them;
the mask is one draw of the random stream for the whole tensor. Under ``torchrun`` each process holds
only its b = B / N utterances, so a plain ``F.dropout`` draws a smaller mask from the same stream: the
N-process run drops other units than the one-process run, a different random draw, not the same numbers.

:func:`dropout` is ``F.dropout`` bit for bit (on the CPU: ``noise = empty_like(x).bernoulli_(1 - p)``,
``noise / (1 - p)``, ``x * noise``) unless the distributed trainer has said, with :func:`global_batch`,
which rows of the global batch this process holds. Then it draws the mask of the *global* tensor, as
one process would, and keeps this process's rows. Every process draws the same masks from the same
stream, so the streams also stay in step. :class:`Dropout` is the module form, a ``torch.nn.Dropout``
(no parameters), so the ``state_dict`` keys stay torchaudio's.

On CUDA, ``F.dropout`` runs a fused kernel with its own way of drawing, so there the global draw is
another draw than the one-process run's (still the same on every process); the CPU path is exact.

Notation: B the global batch, b' this process's rows (its b utterances, perhaps a phantom row).
"""
import contextlib
from typing import Iterator, Optional, Tuple

import torch

__all__ = ["Dropout", "dropout", "global_batch"]

# (B: rows of the global batch, positions (b',): where this process's rows sit in it, -1 for a phantom row)
_GLOBAL: Optional[Tuple[int, torch.Tensor]] = None


@contextlib.contextmanager
def global_batch(rows: int, positions: torch.Tensor) -> Iterator[None]:
    """Inside, every :func:`dropout` draws the mask of a batch of ``rows`` and keeps the rows ``positions``
    (row i of this process's tensors is row ``positions[i]`` of the global batch; -1: a phantom row that
    is in no global batch, kept whole)."""
    global _GLOBAL
    positions = torch.as_tensor(positions, dtype=torch.int64)
    if positions.dim() != 1 or positions.numel() == 0 or int(positions.max()) >= rows or int(positions.min()) < -1:
        raise ValueError(f"positions must be a non-empty 1-D tensor of rows in [0, {rows}) or -1, got {positions.tolist()}.")
    previous, _GLOBAL = _GLOBAL, (rows, positions)
    try:
        yield
    finally:
        _GLOBAL = previous


def dropout(x: torch.Tensor, p: float, training: bool, batch_dim: int = 1, heads: int = 1) -> torch.Tensor:
    """``F.dropout(x, p, training)``; inside :func:`global_batch`, this process's rows of the global batch's
    mask. ``batch_dim``: the dimension of ``x`` that indexes the batch; ``heads``: rows per utterance along
    it (attention probabilities are ``(B * H, Q, K)``, utterance b's heads at rows ``b * H ... b * H + H - 1``)."""
    if _GLOBAL is None or not training or p == 0 or p == 1 or x.numel() == 0:
        return torch.nn.functional.dropout(x, p, training)  # also p = 1: zeros, no draw
    rows, positions = _GLOBAL
    shape = list(x.shape)
    if shape[batch_dim] != positions.numel() * heads:
        raise ValueError(f"dropout of a tensor with {shape[batch_dim]} rows along dim {batch_dim}, but this process "
                         f"holds {positions.numel()} utterances x {heads} heads of the global batch.")
    shape[batch_dim] = rows * heads
    # The global batch's mask as F.dropout draws it: into empty_like(input), whose memory layout (the order
    # of the dimensions in memory) the draw follows; the global input would have x's layout.
    order = sorted(range(x.dim()), key=lambda d: x.stride(d), reverse=True)  # outermost dimension first
    noise = x.new_empty([shape[d] for d in order]).permute(*[order.index(d) for d in range(x.dim())])
    noise = noise.bernoulli_(1 - p).div_(1 - p)
    index = (positions[:, None] * heads + torch.arange(heads)).flatten()  # (b' * H,)
    phantom = index < 0
    keep = noise.index_select(batch_dim, index.clamp(min=0).to(x.device))
    if bool(phantom.any()):  # a phantom row belongs to no global row: nothing is dropped from it
        keep.index_fill_(batch_dim, phantom.nonzero().flatten().to(x.device), 1.0)
    return x * keep


class Dropout(torch.nn.Dropout):
    """``torch.nn.Dropout`` through :func:`dropout`: ``batch_dim`` says which dimension holds the batch."""

    def __init__(self, p: float = 0.5, batch_dim: int = 1):
        super().__init__(p)
        self.batch_dim = batch_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.batch_dim)
