"""RNN-T loss to read: the brute-force oracle and the plain-loop reference.

Notation: B batch, T frames (joiner time steps), U target length, V vocabulary.

The loss of one utterance is -log P(targets | logits), where P sums the
probabilities of every alignment through its T x (U+1) lattice (see
:mod:`.lattice`). Three implementations, one lattice definition
(:func:`~.lattice.lattice_log_probs`):

* :func:`rnnt_loss_bruteforce` - enumerates every path (tiny sizes only);
  gradient by autograd.
* :func:`rnnt_loss_reference` - per utterance, the plain alpha/beta loops of
  :func:`~.lattice.lattice_tables` and the analytic gradient from its
  posteriors, to read beside the notebook.
* :func:`rnnt_loss` - the fast one used for training, in :mod:`.loss_fast`
  (re-exported here): a wavefront over anti-diagonals vectorised over the batch.

All three take logits (B, T, U+1, V), targets (B, U), logit_lengths and
target_lengths (B,), and have the signature and semantics of
``torchaudio.functional.rnnt_loss`` (torchaudio 2.11), including its
conventions for ``clamp`` (the per-utterance gradient w.r.t. logits is clipped
to [-clamp, clamp] *before* the incoming gradient of the reduction is applied;
``clamp <= 0`` disables it) and ``fused_log_softmax=False`` (the input is used
as log-probabilities as given, and the gradient is the exact gradient w.r.t.
that input: non-zero only on blank and target entries).

Two latency regularisers, keyword-only and off at 0 (then every result is bit
for bit what it was without them):

* ``fastemit_lambda`` - FastEmit (Yu et al. 2021, arXiv:2010.11148): same
  loss value, the gradient through every emit edge scaled by (1 + lambda);
* ``delay_penalty`` - k2's symbol-delay penalty (k2-fsa/k2 #955): a log-weight
  ``delay_penalty * ((T_b - 1) / 2 - t)`` on every emit edge at frame t.

The equations are in :func:`rnnt_loss_reference`.

Differences from torchaudio, all in the permissive direction: logits may be
padded beyond ``max(logit_lengths)`` / ``max(target_lengths) + 1``; int64
targets/lengths are accepted; float64 is supported; and bad input raises
``ValueError`` instead of computing garbage (e.g. a blank inside a target).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .inputs import check_inputs, check_latency_options, reduce
from .lattice import BLANK, EMIT, _lattice, alignment_paths, delay_penalty_offsets, lattice_log_probs, lattice_tables
from .loss_fast import alpha_beta, edge_posteriors, rnnt_loss

__all__ = [
    "rnnt_loss_bruteforce",
    "rnnt_loss_reference",
    # Re-exported, so ``from emformer_edu.rnnt.loss import ...`` finds every loss name:
    "rnnt_loss", "alpha_beta", "edge_posteriors", "lattice_log_probs", "alignment_paths",
]


class _PrecomputedGrad(torch.autograd.Function):
    """Return ``costs``; backward is ``grads * dy`` per utterance (as torchaudio does)."""

    @staticmethod
    def forward(ctx, logits, costs, grads):
        ctx.save_for_backward(grads)
        return costs.clone()

    @staticmethod
    def backward(ctx, dy):
        (grads,) = ctx.saved_tensors
        return grads * dy.view(-1, 1, 1, 1), None, None


def _clamp_grad(grads: Tensor, clamp: float) -> Tensor:
    return grads.clamp(-clamp, clamp) if clamp > 0 else grads


def rnnt_loss_bruteforce(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
    max_paths: int = 20000,
    *,
    fastemit_lambda: float = 0.0,
    delay_penalty: float = 0.0,
) -> Tensor:
    """RNN-T loss by summing the probability of every alignment (an oracle).

    Same arguments and result as :func:`rnnt_loss`; the gradient comes from
    autograd through the lattice. Raises ``ValueError`` when an utterance has
    more than ``max_paths`` alignments (C(T_b-1+U_b, U_b)).

    The latency options act on each path's score, edge by edge:

    * ``delay_penalty``: every emit at frame t adds
      ``delay_penalty * ((T_b - 1) / 2 - t)`` to the path's log-prob;
    * ``fastemit_lambda``: every emit log-prob e enters as
      ``e + lambda * (e - stopgrad(e))`` - the same value, but autograd sends
      (1 + lambda) times the gradient through it.
    """
    blank = check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction)
    check_latency_options(fastemit_lambda, delay_penalty)
    B = logits.shape[0]
    sizes = [(int(logit_lengths[b]), int(target_lengths[b])) for b in range(B)]
    for b, (T_b, U_b) in enumerate(sizes):
        n = math.comb(T_b - 1 + U_b, U_b)
        if n > max_paths:
            raise ValueError(
                f"too many alignments to enumerate for utterance {b}: T={T_b}, U={U_b} gives "
                f"C({T_b - 1 + U_b}, {U_b}) = {n} > max_paths={max_paths}")
    with torch.enable_grad():
        x = logits.detach().requires_grad_(True)
        edges, _ = _lattice(x, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
        blank_lp, emit_lp = edges[..., BLANK], edges[..., EMIT]
        if delay_penalty:
            offsets = delay_penalty_offsets(logit_lengths.to(x.device), logits.shape[1], delay_penalty,
                                            emit_lp.dtype)
        costs = []
        for b, (T_b, U_b) in enumerate(sizes):
            # One row per path: the log-probs of its T_b + U_b edges, summed.
            rows = []
            for path in alignment_paths(T_b, U_b):
                tb = [t for t, u, k in path if k == "blank"]
                ub = [u for t, u, k in path if k == "blank"]
                te = [t for t, u, k in path if k == "emit"]
                ue = [u for t, u, k in path if k == "emit"]
                emits = emit_lp[b, te, ue]
                if fastemit_lambda:
                    emits = emits + fastemit_lambda * (emits - emits.detach())
                if delay_penalty:
                    emits = emits + offsets[b, te]
                rows.append(blank_lp[b, tb, ub].sum() + emits.sum())
            costs.append(-torch.logsumexp(torch.stack(rows), dim=0))
        costs = torch.stack(costs) if costs else x.new_zeros(0)
        # Utterances are independent, so d(sum)/dx stacks per-utterance gradients.
        (grads,) = torch.autograd.grad(costs.sum(), x) if B else (torch.zeros_like(x),)
    costs = _PrecomputedGrad.apply(logits, costs.detach(), _clamp_grad(grads, clamp))
    return reduce(costs, reduction)


def rnnt_loss_reference(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
    *,
    fastemit_lambda: float = 0.0,
    delay_penalty: float = 0.0,
) -> Tensor:
    """RNN-T loss and its analytic gradient, one utterance at a time (float64 math).

    Same arguments and result as :func:`rnnt_loss`. Per utterance b, cut to its
    (T_b, U_b+1) lattice, :func:`~.lattice.lattice_tables` runs the plain
    alpha and beta loops and gives:

    * ``log P = beta[0, 0]``, so the cost is ``-beta[0, 0]``;
    * the edge posteriors alpha(source) * edge * beta(destination) / P, and
      the node posterior = blank-edge + emit-edge posterior out of the node.

    The gradient of -log P w.r.t. the log-prob of an edge is minus its
    posterior. Through the log-softmax (fused case) that becomes
    d(-log P)/d logit[t, u, v] = softmax_v * node_post - blank_post * [v == blank]
    - emit_post * [v == target_u]; otherwise only the two edge terms remain,
    since the input *is* the log-prob.

    **Delay penalty** (k2's ``rnnt_loss(..., delay_penalty=d)``,
    k2/python/k2/rnnt_loss.py; k2-fsa/k2 #955). The recursion runs on
    penalised emit scores

        emit_lp'[t, u] = emit_lp[t, u] + d * ((T_b - 1) / 2 - t),

    so the cost is -log sum_paths exp(log p(path) + d * sum over its emits of
    ((T_b - 1) / 2 - t)). The offsets are constants, so the gradient has the
    same form as above with every posterior taken in the penalised lattice;
    the softmax term still uses the model's own probabilities.

    **FastEmit** (Yu et al. 2021, arXiv:2010.11148). Write the
    lattice's emit probability y(t, u) = P(target_u | t, u) and blank
    probability b(t, u). FastEmit keeps the loss value -log P and replaces
    its gradient w.r.t. these probabilities by

        d L~ / d y(t, u) = -(1 + lambda) alpha(t, u) beta(t, u+1) / P,
        d L~ / d b(t, u) = -alpha(t, u) beta(t+1, u) / P    (unchanged).

    Multiplying by y (or b) turns these into the gradient w.r.t. the edge
    log-probs: -(1 + lambda) emit_post and -blank_post. Through the
    log-softmax, d log y / d logit[v] = [v == target_u] - softmax_v, so

        d L~ / d logit[t, u, v] = softmax_v * (blank_post + (1 + lambda) emit_post)
                                  - blank_post * [v == blank]
                                  - (1 + lambda) emit_post * [v == target_u].

    This is the gradient of NeMo's ``fastemit_lambda`` (its numpy reference,
    nemo/collections/asr/parts/numba/rnnt_loss/rnnt_numpy.py, scales the
    gradient w.r.t. each target log-prob by (1 + lambda) before the
    log-softmax; also 1ytic/warp-rnnt #23). FastEmit and the delay penalty
    combine: the posteriors are then the penalised ones.
    ``clamp`` clips the final gradient, as without them.
    """
    blank = check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction)
    check_latency_options(fastemit_lambda, delay_penalty)
    with torch.no_grad():
        edges, _ = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
        edges = edges.double()
        if delay_penalty:
            edges[..., EMIT] += delay_penalty_offsets(logit_lengths.to(edges.device), logits.shape[1],
                                                      delay_penalty)[:, :, None]
        probs = torch.softmax(logits.double(), dim=-1) if fused_log_softmax else None
        grads = torch.zeros(logits.shape, dtype=torch.float64, device=logits.device)
        costs = []
        for b in range(logits.shape[0]):
            T_b, U_b = int(logit_lengths[b]), int(target_lengths[b])
            lat = lattice_tables(edges[b, :T_b, :U_b + 1, BLANK], edges[b, :T_b, :U_b + 1, EMIT])
            costs.append(-lat.log_prob)
            blank_post, emit_post = lat.blank_posterior, lat.emit_posterior
            if fastemit_lambda:
                emit_post = (1 + fastemit_lambda) * emit_post
            g = grads[b, :T_b, :U_b + 1]  # a view: padding keeps gradient 0
            if fused_log_softmax:
                # blank_post + emit_post is the node posterior when lambda = 0.
                g += probs[b, :T_b, :U_b + 1] * (lat.node_posterior if not fastemit_lambda
                                                 else blank_post + emit_post)[..., None]
            g[..., blank] -= blank_post
            for u in range(U_b):
                g[:, u, int(targets[b, u])] -= emit_post[:, u]
        costs = torch.tensor(costs, dtype=logits.dtype, device=logits.device)
        grads = _clamp_grad(grads, clamp).to(logits.dtype)
    return reduce(_PrecomputedGrad.apply(logits, costs, grads), reduction)
