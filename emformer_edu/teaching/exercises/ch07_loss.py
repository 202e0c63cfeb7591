"""Notebook 07 (loss and lattice): how many alignments, a loss worked out by hand, the total node occupancy.

Alignments are enumerated, the loss is the real RNN-T loss, and the occupancy is the sum of the
edge posteriors that the loss's own gradient hands back (the notebook reads the lattice tables).
"""
import torch

from ... import rnnt
from ._shared import Exercise


def _i32(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


def _num_paths():
    return sum(1 for _ in rnnt.alignment_paths(6, 3))


def _uniform_loss():
    # V = 2 (token 0, blank 1) and all logits 0: blank and token have probability 1/2 at every node.
    logits = torch.zeros(1, 4, 3, 2, dtype=torch.float64)
    return float(rnnt.rnnt_loss(logits, _i32([0, 0]), _i32(4), _i32(2), blank=1))


def _occupancy_sum():
    # On log-probabilities (fused_log_softmax=False) the loss gradient is minus each edge's posterior.
    # Every path leaves each node it visits by exactly one edge, so the edges' total is the nodes'.
    generator = torch.Generator().manual_seed(0)
    log_probs = torch.randn(1, 5, 4, 6, generator=generator, dtype=torch.float64).log_softmax(-1)
    with torch.enable_grad():
        log_probs.requires_grad_(True)
        loss = rnnt.rnnt_loss(log_probs, _i32([1, 2, 3]), _i32(5), _i32(3), blank=5, reduction="sum",
                              fused_log_softmax=False)
        (grad,) = torch.autograd.grad(loss, log_probs)
    return float(-grad.sum())


EXERCISES = {
    "07.num_paths": Exercise("alignments through a lattice of T=6 frames and U=3 tokens", _num_paths),
    "07.uniform_loss": Exercise("RNN-T loss (nats) for T=4, U=2 when blank and token each have probability 1/2",
                                _uniform_loss),
    "07.occupancy_sum": Exercise("sum of the node posteriors over a whole T=5, U=3 lattice", _occupancy_sum),
}
