"""Notebook 07 (loss and lattice): how many alignments, the alpha recursion (coding), a loss worked out by
hand, the total node occupancy.

Alignments are enumerated, the loss is the real RNN-T loss, the learner's alpha is compared with the
library's plain-loop :func:`~emformer_edu.rnnt.lattice.log_alpha`, and the occupancy is the sum of the
edge posteriors that the loss's own gradient hands back (the notebook reads the lattice tables).
"""
import torch

from ... import rnnt
from ._shared import Exercise


def _i32(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int32)


def _num_paths():
    return sum(1 for _ in rnnt.alignment_paths(6, 3))


def _log_alpha(log_probs: torch.Tensor, targets: torch.Tensor, blank: int) -> torch.Tensor:
    """The library's alpha of one utterance: log-probs (T, U+1, V), targets (U,) -> (T, U+1)."""
    blank_lp, emit_lp = rnnt.utterance_lattice(log_probs, targets, blank, fused_log_softmax=False)
    return rnnt.log_alpha(blank_lp, emit_lp)


def _log_alpha_cases():
    def case(T, U, V, blank, scale=1.5):
        log_probs = (scale * torch.randn(T, U + 1, V, dtype=torch.float64)).log_softmax(-1)
        tokens = [k for k in range(V) if k != blank]
        targets = torch.tensor(tokens, dtype=torch.long)[torch.randint(0, V - 1, (U,))]
        return dict(log_probs=log_probs, targets=targets, blank=blank)

    # Small first (one frame and no token; then a 2 x 2 grid), blank last and blank first, then random sizes.
    return [case(1, 0, 3, 2), case(2, 1, 3, 2), case(3, 2, 4, 0), case(6, 3, 6, 5), case(9, 5, 8, 0),
            case(12, 7, 5, 4, scale=3.0)]


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
    "07.log_alpha": Exercise("write log_alpha(log_probs, targets, blank): log-probs (T, U+1, V), targets (U,) "
                             "-> log alpha (T, U+1)", _log_alpha, _log_alpha_cases),
    "07.uniform_loss": Exercise("RNN-T loss (nats) for T=4, U=2 when blank and token each have probability 1/2",
                                _uniform_loss),
    "07.occupancy_sum": Exercise("sum of the node posteriors over a whole T=5, U=3 lattice", _occupancy_sum),
}
