"""The pruned RNN-T loss (Kuang et al. 2022, arXiv:2206.13236), readable, after k2's ``rnnt_loss.py``.

Notation: B batch, T frames, U target length, V vocabulary, D joiner dim, S the band width
(k2's ``s_range``, icefall's ``prune_range``).

The full loss needs the joiner on every lattice node: logits (B, T, U+1, V), plus the same
again for their gradient. The pruned loss never builds it, in four steps:

1. :func:`simple_rnnt_loss`: the loss of a *trivial additive joiner*
   ``logits(t, u, k) = am(t, k) + lm(u, k)`` (``am`` = encoder output projected to V,
   ``lm`` = predictor output projected to V). Its lattice needs only (B, T, U+1) tables,
   because the log-softmax normaliser of a sum is one matrix product
   (:func:`simple_lattice`). Its edge occupancies (posteriors) say where the alignments go.
2. :func:`prune_ranges`: per frame t a start s_t, so the band of nodes
   u in [s_t, s_t + S) holds the most occupancy; monotone, and no token can be skipped.
3. :func:`do_rnnt_pruning`: gather encoder and predictor outputs to (B, T, S, D), so the
   real joiner runs on (B, T, S, V) only.
4. :func:`pruned_loss`: the RNN-T recursion on the band (nodes outside it are -inf).

:func:`pruned_rnnt_loss` chains them; training minimises ``simple_scale * simple + pruned``
(icefall's ``pruned_transducer_stateless2``: simple_scale 0.5, and the pruned term scaled by 0, then
0.1, during warm-up while the simple projections learn where the alignments are).

Deviations from k2: only the "regular" RNN-T topology; a band width S too small for an
utterance ((S - 1) T_b < U_b) raises ``ValueError`` where k2 prints a warning and widens it;
the simple loss is k2's ``rnnt_loss_simple`` (icefall trains on ``rnnt_loss_smoothed``, the same
interpolated with LM-only and AM-only terms); the recursion reuses this package's lattice code
(:func:`~.loss_fast.edge_posteriors`), where k2 runs its ``mutual_information_recursion``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import torch
from torch import Tensor

from .inputs import check_inputs, reduce
from .loss_fast import edge_posteriors

__all__ = [
    "simple_lattice", "lattice_loss", "simple_rnnt_loss", "prune_ranges", "band_ranges", "do_rnnt_pruning",
    "band_lattice", "band_to_grid", "pruned_loss", "band_log_alpha", "joiner_on_band", "pruned_rnnt_loss",
    "PrunedRNNTLoss", "min_prune_range", "fit_simple_projections",
]

NEG_INF = float("-inf")


# --------------------------------------------------------------------------
# Step 1: the simple loss, without a (B, T, U+1, V) tensor
# --------------------------------------------------------------------------


def _tokens_or_blank(targets: Tensor, target_lengths: Tensor, blank: int) -> Tensor:
    """(B, U) targets with padding replaced by blank, so every index is a valid column."""
    U = targets.shape[1]
    valid = torch.arange(U, device=targets.device) < target_lengths.to(targets.device).view(-1, 1)
    return torch.where(valid, targets.long(), blank)


def _check_am_lm(am: Tensor, lm: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
                 blank: int, reduction: str) -> int:
    for name, x, shape in (("am", am, "(B, T, V)"), ("lm", lm, "(B, U+1, V)")):
        if not isinstance(x, Tensor) or x.dim() != 3:
            raise ValueError(f"{name} must be a 3-D tensor {shape}, got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")
    if am.shape[0] != lm.shape[0] or am.shape[2] != lm.shape[2]:
        raise ValueError(f"am (B, T, V) and lm (B, U+1, V) must agree on B and V, got {tuple(am.shape)} "
                         f"and {tuple(lm.shape)}")
    B, T, V = am.shape
    # A broadcast view has the (B, T, U+1, V) shape the shared checks want, and no memory.
    return check_inputs(am[:, :, None, :].expand(B, T, lm.shape[1], V), targets, logit_lengths, target_lengths,
                        blank, reduction, check_nan=False)


def simple_lattice(am: Tensor, lm: Tensor, targets: Tensor, target_lengths: Tensor,
                   blank: int) -> Tuple[Tensor, Tensor]:
    """Blank and emit log-probs of the additive joiner ``am(t) + lm(u)``, each (B, T, U+1).

    .. math::
        Z(t, u) = \\log \\sum_k e^{am(t,k) + lm(u,k)}
                = \\bar a_t + \\bar l_u + \\log \\sum_k e^{am(t,k) - \\bar a_t}\\, e^{lm(u,k) - \\bar l_u}

    with the maxima :math:`\\bar a_t, \\bar l_u` pulled out so ``exp`` cannot overflow: the
    sum over k is a matrix product (B, T, V) @ (B, V, U+1). Then
    ``blank_lp = am(t, ∅) + lm(u, ∅) - Z`` and ``emit_lp = am(t, y_u) + lm(u, y_u) - Z``
    (u < U; the emit column u = U is -inf). Edges beyond the lengths are left as computed:
    the loss masks them.

    Args: am (B, T, V), lm (B, U+1, V), targets (B, U), target_lengths (B,), blank in [0, V).
    """
    B, T, V = am.shape
    U = lm.shape[1] - 1
    am_max = am.detach().amax(dim=2, keepdim=True)  # (B, T, 1); a constant shift: gradients unchanged
    lm_max = lm.detach().amax(dim=2, keepdim=True)  # (B, U+1, 1)
    products = torch.matmul((am - am_max).exp(), (lm - lm_max).exp().transpose(1, 2))  # (B, T, U+1)
    norm = (products + torch.finfo(am.dtype).tiny).log() + am_max + lm_max.transpose(1, 2)
    blank_lp = am[:, :, blank].unsqueeze(2) + lm[:, :, blank].unsqueeze(1) - norm
    tok = _tokens_or_blank(targets, target_lengths, blank)  # (B, U)
    am_tok = torch.gather(am, 2, tok.unsqueeze(1).expand(B, T, U))  # am(t, y_u): (B, T, U)
    lm_tok = torch.gather(lm[:, :U], 2, tok.unsqueeze(2)).transpose(1, 2)  # lm(u, y_u): (B, 1, U)
    emit = am_tok + lm_tok - norm[:, :, :U]
    emit_lp = torch.cat([emit, emit.new_full((B, T, 1), NEG_INF)], dim=2)
    return blank_lp, emit_lp


class _LatticeLoss(torch.autograd.Function):
    """-log P from (B, T, U+1) edge tables; d(-log P)/d(edge) = -posterior(edge)."""

    @staticmethod
    def forward(ctx, blank_lp, emit_lp, logit_lengths, target_lengths):
        post_blank, post_emit, log_prob = edge_posteriors(blank_lp, emit_lp, logit_lengths, target_lengths)
        ctx.save_for_backward(post_blank, post_emit)
        return -log_prob

    @staticmethod
    def backward(ctx, dy):
        post_blank, post_emit = ctx.saved_tensors
        dy = dy.view(-1, 1, 1)
        return -post_blank * dy, -post_emit * dy, None, None


def lattice_loss(blank_lp: Tensor, emit_lp: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """Per-utterance -log P (B,) of a batch of lattices given as (B, T, U+1) edge tables.

    Differentiable: the gradient w.r.t. an edge's log-prob is minus its occupancy
    :math:`\\gamma(e) = \\alpha(\\text{from}) + \\log p(e) + \\beta(\\text{to}) - \\log P` (exponentiated),
    the fraction of the probability carried by alignments through it.
    """
    return _LatticeLoss.apply(blank_lp, emit_lp, logit_lengths, target_lengths)


def simple_rnnt_loss(am: Tensor, lm: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
                     blank: int = -1, reduction: str = "mean", return_occupancy: bool = False):
    """RNN-T loss of the trivial joiner ``logits(t, u, k) = am(t, k) + lm(u, k)`` (k2's ``rnnt_loss_simple``).

    Equal to ``rnnt_loss(am[:, :, None] + lm[:, None], ...)`` but memory (B, T, U+1), not (B, T, U+1, V).

    Args:
        am: (B, T, V) encoder output projected to V. lm: (B, U+1, V) predictor output projected to V.
        targets (B, U), logit_lengths (B,), target_lengths (B,), blank, reduction: as ``rnnt_loss``.
        return_occupancy: also return ``(occ_blank, occ_emit)``, each (B, T, U+1), no gradient:
            the posterior of every edge, which is minus the gradient of the loss w.r.t. its
            log-prob (k2's ``return_grad=True``). :func:`prune_ranges` reads them.
    """
    blank = _check_am_lm(am, lm, targets, logit_lengths, target_lengths, blank, reduction)
    blank_lp, emit_lp = simple_lattice(am, lm, targets, target_lengths, blank)
    costs = lattice_loss(blank_lp, emit_lp, logit_lengths, target_lengths)
    if not return_occupancy:
        return reduce(costs, reduction)
    occ_blank, occ_emit, _ = edge_posteriors(blank_lp.detach(), emit_lp.detach(), logit_lengths, target_lengths)
    return reduce(costs, reduction), (occ_blank, occ_emit)


# --------------------------------------------------------------------------
# Step 2: the band, from the occupancy
# --------------------------------------------------------------------------


def min_prune_range(logit_lengths: Tensor, target_lengths: Tensor) -> int:
    """Smallest band width that still holds a path for every utterance: ceil(U_b / T_b) + 1, at least 2.

    A band moves up at most S - 1 tokens per frame (else a token would be skipped), and must climb
    from u = 0 at t = 0 to u = U_b at t = T_b - 1: (S - 1)(T_b - 1) >= U_b + 1 - S, i.e. (S - 1) T_b >= U_b.
    """
    T = logit_lengths.long().clamp(min=1)
    U = target_lengths.long()
    return max(2, int(((U + T - 1) // T).max()) + 1) if T.numel() else 2


def _reverse_cummin(x: Tensor) -> Tensor:
    """x[t] <- min(x[t:]): the largest non-decreasing sequence below x (k2's ``_monotonic_lower_bound``)."""
    return torch.flip(torch.cummin(torch.flip(x, dims=(-1,)), dim=-1).values, dims=(-1,))


def prune_ranges(occ_blank: Tensor, occ_emit: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
                 prune_range: int) -> Tensor:
    """Band starts s_t (B, T), long: frame t keeps nodes u in [s_t, s_t + S) (k2's ``get_rnnt_prune_ranges``).

    The alignments cross frame t along a run of nodes: they enter at some u, emit upwards,
    and leave by one blank. Such a run fits in the window [s, s + S) iff it leaves by a blank
    inside the window and did not come in through the emit edge (t, s-1) -> (t, s):

    .. math::
        \\text{score}_t(s) = \\sum_{u=s}^{s+S-1} \\gamma_{\\varnothing}(t, u) - \\gamma_{y}(t, s-1),
        \\qquad s_t = \\arg\\max_s \\text{score}_t(s),\\quad 0 \\le s \\le U + 1 - S

    (:math:`\\gamma_{y}(t, -1) = 0`). Then, as k2 does:

    * frames t >= T_b - 1 get s = max(U_b + 1 - S, 0), so the last node (T_b - 1, U_b) is in;
    * s_t is made non-decreasing (s_t <- min over t' >= t), as alignments are;
    * s_{t+1} - s_t <= S - 1 (a blank from the top of band t lands in band t+1: no token
      skipped) and s_0 = 0, by the same trick on (S-1) t - s_t.

    Args:
        occ_blank, occ_emit: (B, T, U+1) edge occupancies (from :func:`simple_rnnt_loss`).
        logit_lengths, target_lengths: (B,).
        prune_range: S >= 2; S > U + 1 is cut to U + 1 (no pruning). ``ValueError`` if S is too
            small for an utterance (see :func:`min_prune_range`).
    """
    if occ_blank.dim() != 3 or occ_emit.shape != occ_blank.shape:
        raise ValueError(f"occ_blank and occ_emit must both be (B, T, U+1), got {tuple(occ_blank.shape)} "
                         f"and {tuple(occ_emit.shape)}")
    B, T, U1 = occ_blank.shape
    if logit_lengths.shape != (B,) or target_lengths.shape != (B,):
        raise ValueError(f"logit_lengths and target_lengths must be ({B},), got {tuple(logit_lengths.shape)} "
                         f"and {tuple(target_lengths.shape)}")
    S = _check_prune_range(prune_range, logit_lengths, target_lengths, U1)
    dev = occ_blank.device
    # score (B, T, U+2-S): window sums of blank occupancy minus the emit edge entering the window.
    window = occ_blank.unfold(2, S, 1).sum(-1)
    entering = torch.cat([occ_blank.new_zeros(B, T, 1), occ_emit[:, :, :U1 - S]], dim=2)
    starts = (window - entering).argmax(dim=2)  # first maximum on ties
    t = torch.arange(T, device=dev)
    last = (target_lengths.to(dev).long() + 1 - S).clamp(min=0).view(B, 1)
    starts = torch.where(t.view(1, T) < logit_lengths.to(dev).view(B, 1) - 1, starts, last)
    starts = _reverse_cummin(starts)
    climb = (S - 1) * t - starts  # non-decreasing <=> s_{t+1} - s_t <= S - 1
    climb = _reverse_cummin(climb).clamp(min=0)  # clamp: s_0 = 0
    return (S - 1) * t - climb


def _check_prune_range(prune_range: int, logit_lengths: Tensor, target_lengths: Tensor, U1: int) -> int:
    if isinstance(prune_range, bool) or not isinstance(prune_range, int):
        raise ValueError(f"prune_range must be an int, got {type(prune_range).__name__}")
    if prune_range < 2:
        raise ValueError(f"prune_range must be >= 2 (with S = 1 a frame can emit nothing), got {prune_range}")
    S = min(prune_range, U1)
    need = min_prune_range(logit_lengths, target_lengths)
    if S < need:
        raise ValueError(f"prune_range={prune_range} is too narrow: an utterance needs (S - 1) * T_b >= U_b, "
                         f"i.e. S >= {need}")
    return S


def band_ranges(starts: Tensor, prune_range: int) -> Tensor:
    """(B, T) starts -> (B, T, S) node indices u = s_t + j, j < S (k2's ``ranges``)."""
    return starts.unsqueeze(-1) + torch.arange(prune_range, device=starts.device)


# --------------------------------------------------------------------------
# Step 3: gather, so the joiner runs on (B, T, S, D)
# --------------------------------------------------------------------------


def do_rnnt_pruning(encoder_out: Tensor, predictor_out: Tensor, starts: Tensor,
                    prune_range: int) -> Tuple[Tensor, Tensor]:
    """Encoder (B, T, D) and predictor (B, U+1, D) outputs on the band, each (B, T, S, D).

    ``enc_band[b, t, j] = encoder_out[b, t]`` (a broadcast view, no copy) and
    ``pred_band[b, t, j] = predictor_out[b, s_t + j]``: joiner(enc_band, pred_band)
    equals the full joiner's logits at the band's nodes.
    """
    if encoder_out.dim() != 3 or predictor_out.dim() != 3:
        raise ValueError(f"encoder_out (B, T, D) and predictor_out (B, U+1, D) must be 3-D, got "
                         f"{tuple(encoder_out.shape)} and {tuple(predictor_out.shape)}")
    B, T, D = encoder_out.shape
    if starts.shape != (B, T):
        raise ValueError(f"starts must be (B, T) = ({B}, {T}), got {tuple(starts.shape)}")
    if predictor_out.shape[0] != B:
        raise ValueError(f"predictor_out batch {predictor_out.shape[0]} != encoder_out batch {B}")
    S = prune_range
    if B and T and int(starts.max()) + S > predictor_out.shape[1]:
        raise ValueError(f"band [s_t, s_t + {S}) runs past U+1 = {predictor_out.shape[1]}")
    ranges = band_ranges(starts, S)  # (B, T, S)
    enc_band = encoder_out.unsqueeze(2).expand(B, T, S, D)
    pred_band = torch.gather(predictor_out, 1, ranges.reshape(B, T * S, 1).expand(B, T * S, predictor_out.shape[2]))
    return enc_band, pred_band.reshape(B, T, S, predictor_out.shape[2])


def joiner_on_band(joiner: torch.nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """This package's :class:`~emformer_edu.transducer.joiner.Joiner` as a function of two (B, T, S, D)
    tensors: ``linear(activation(enc_band + pred_band))`` -> (B, T, S, V)."""
    return lambda enc_band, pred_band: joiner.linear(joiner.activation(enc_band + pred_band))


# --------------------------------------------------------------------------
# Step 4: the loss on the band
# --------------------------------------------------------------------------


def band_lattice(band_logits: Tensor, targets: Tensor, target_lengths: Tensor, starts: Tensor,
                 blank: int) -> Tuple[Tensor, Tensor]:
    """Blank and emit log-probs of the band's nodes, each (B, T, S).

    ``band_blank[b, t, j] = log_softmax(band_logits[b, t, j])[blank]`` and ``band_emit[b, t, j]``
    the same at token y_u of node u = s_t + j (blank column where u >= U_b: masked later).
    """
    B, T, S, V = band_logits.shape
    log_probs = torch.log_softmax(band_logits, dim=-1)
    tok = torch.cat([_tokens_or_blank(targets, target_lengths, blank),
                     targets.new_full((B, 1), blank).long()], dim=1)  # (B, U+1): y_u, blank at u = U
    band_tok = torch.gather(tok.unsqueeze(1).expand(B, T, tok.shape[1]), 2, band_ranges(starts, S))
    band_blank = log_probs[..., blank]
    band_emit = torch.gather(log_probs, 3, band_tok.unsqueeze(-1)).squeeze(-1)
    return band_blank, band_emit


def band_to_grid(band_values: Tensor, starts: Tensor, U1: int) -> Tensor:
    """Place (B, T, S) band values at their nodes of the (B, T, U+1) grid; -inf elsewhere
    (log of probability 0: outside the band no alignment exists). Differentiable."""
    B, T, S = band_values.shape
    grid = band_values.new_full((B, T, U1), NEG_INF)
    return grid.scatter(2, band_ranges(starts, S), band_values)


def pruned_loss(band_logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
                starts: Tensor, blank: int = -1, reduction: str = "mean") -> Tensor:
    """RNN-T loss from the joiner's logits on the band only (k2's ``rnnt_loss_pruned``).

    .. math::
        \\alpha(t, u) = \\log\\big(e^{\\alpha(t-1, u) + \\varnothing(t-1, u)} + e^{\\alpha(t, u-1) + y(t, u-1)}\\big),
        \\quad \\text{edges outside } [s_t, s_t + S) = -\\infty

    and loss = -(alpha(T_b-1, U_b) + blank(T_b-1, U_b)). The band's edge tables go onto the
    (B, T, U+1) grid (no V there), and the lattice recursion runs on it.

    Args:
        band_logits: (B, T, S, V) joiner output at nodes u = s_t + j.
        targets (B, U), logit_lengths, target_lengths (B,), blank, reduction: as ``rnnt_loss``.
        starts: (B, T) band starts from :func:`prune_ranges`.
    """
    if not isinstance(band_logits, Tensor) or band_logits.dim() != 4:
        raise ValueError(f"band_logits must be 4-D (B, T, S, V), got "
                         f"{tuple(band_logits.shape) if isinstance(band_logits, Tensor) else type(band_logits)}")
    B, T, S, V = band_logits.shape
    U1 = targets.shape[1] + 1 if targets.dim() == 2 else -1
    if starts.shape != (B, T):
        raise ValueError(f"starts must be (B, T) = ({B}, {T}), got {tuple(starts.shape)}")
    if S > U1:
        raise ValueError(f"band width S={S} (band_logits.shape[2]) must be <= U+1 = {U1}")
    view = band_logits[:, :, :1, :].expand(B, T, max(U1, 1), V)  # shape for the shared checks, no memory
    blank = check_inputs(view, targets, logit_lengths, target_lengths, blank, reduction, check_nan=False)
    if B and T and (int(starts.min()) < 0 or int(starts.max()) + S > U1):
        raise ValueError(f"starts must lie in [0, U+1-S] = [0, {U1 - S}]")
    band_blank, band_emit = band_lattice(band_logits, targets, target_lengths, starts, blank)
    costs = lattice_loss(band_to_grid(band_blank, starts, U1), band_to_grid(band_emit, starts, U1),
                         logit_lengths, target_lengths)
    return reduce(costs, reduction)


def band_log_alpha(band_blank: Tensor, band_emit: Tensor, starts: Tensor, U: int) -> Tuple[Tensor, Tensor]:
    """Forward variables of ONE utterance, in band coordinates: a plain loop to read.

    ``alpha[t, j]`` is log alpha at node (t, u = s_t + j). Into (t, u) come the blank from
    (t-1, u), which sits at j' = u - s_{t-1} of the previous band (if 0 <= j' < S), and the
    emit from (t, u-1), at j - 1 of the same band (if j >= 1).

    Args: band_blank, band_emit (T, S) from :func:`band_lattice`; starts (T,); U the target length.
    Returns: ``(alpha (T, S), log P)`` with log P = alpha(T-1, U) + blank(T-1, U).
    """
    T, S = band_blank.shape
    alpha = torch.full((T, S), NEG_INF, dtype=band_blank.dtype)
    s = [int(x) for x in starts]
    for t in range(T):
        for j in range(S):
            u = s[t] + j
            if u > U:
                continue
            if t == 0 and u == 0:
                alpha[t, j] = 0.0
                continue
            terms = []
            jp = u - s[t - 1] if t > 0 else -1
            if t > 0 and 0 <= jp < S:
                terms.append(alpha[t - 1, jp] + band_blank[t - 1, jp])
            if j >= 1:
                terms.append(alpha[t, j - 1] + band_emit[t, j - 1])
            if terms:
                alpha[t, j] = torch.logsumexp(torch.stack(terms), dim=0)
    j_end = U - s[T - 1]
    log_p = alpha[T - 1, j_end] + band_blank[T - 1, j_end] if 0 <= j_end < S else torch.tensor(NEG_INF)
    return alpha, log_p


# --------------------------------------------------------------------------
# All four steps
# --------------------------------------------------------------------------


@dataclass
class PrunedRNNTLoss:
    """``simple``: loss of the additive joiner; ``pruned``: loss of the real joiner on the band
    (both reduced as asked); ``starts`` (B, T): the band; train on ``simple_scale * simple + pruned``."""

    simple: Tensor
    pruned: Tensor
    starts: Tensor


def pruned_rnnt_loss(encoder_out: Tensor, predictor_out: Tensor, am: Tensor, lm: Tensor, targets: Tensor,
                     logit_lengths: Tensor, target_lengths: Tensor,
                     joiner: Callable[[Tensor, Tensor], Tensor], prune_range: int, blank: int = -1,
                     reduction: str = "mean") -> PrunedRNNTLoss:
    """The pruned RNN-T loss, as icefall's ``pruned_transducer_stateless`` computes it.

    Args:
        encoder_out: (B, T, D) and predictor_out: (B, U+1, D): what the joiner combines.
        am: (B, T, V), lm: (B, U+1, V): the same projected to V by two small linear layers,
            for the simple loss (icefall's ``simple_am_proj`` / ``simple_lm_proj``).
        targets (B, U), logit_lengths, target_lengths (B,), blank, reduction: as ``rnnt_loss``.
        joiner: maps (B, T, S, D) encoder and predictor bands to (B, T, S, V) logits
            (:func:`joiner_on_band` wraps this package's joiner).
        prune_range: S, see :func:`prune_ranges`.
    """
    if encoder_out.shape[:2] != am.shape[:2] or predictor_out.shape[:2] != lm.shape[:2]:
        raise ValueError(f"encoder_out {tuple(encoder_out.shape)} / predictor_out {tuple(predictor_out.shape)} "
                         f"must match am {tuple(am.shape)} / lm {tuple(lm.shape)} in (B, T) and (B, U+1)")
    simple, (occ_blank, occ_emit) = simple_rnnt_loss(am, lm, targets, logit_lengths, target_lengths, blank,
                                                     reduction, return_occupancy=True)
    starts = prune_ranges(occ_blank, occ_emit, logit_lengths, target_lengths, prune_range)
    S = min(prune_range, lm.shape[1])
    enc_band, pred_band = do_rnnt_pruning(encoder_out, predictor_out, starts, S)
    band_logits = joiner(enc_band, pred_band)
    pruned = pruned_loss(band_logits, targets, logit_lengths, target_lengths, starts, blank, reduction)
    return PrunedRNNTLoss(simple=simple, pruned=pruned, starts=starts)


def fit_simple_projections(encoder_out: Tensor, predictor_out: Tensor, targets: Tensor, logit_lengths: Tensor,
                           target_lengths: Tensor, joiner: torch.nn.Module, blank: int = -1, steps: int = 40,
                           lr: float = 1e-2) -> Tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Fit icefall's two simple projections to a model trained with the full loss only.

    icefall learns ``am = simple_am_proj(enc)`` and ``lm = simple_lm_proj(pred)`` jointly with the
    model. A model trained without them has none, so start from the joiner's own output layer
    split in two, am = W act(enc) and lm = W act(pred) + b (its logits without the interaction
    inside the activation), and fit both with Adam on the simple loss; the model stays frozen.

    Args: encoder_out (B, T, D), predictor_out (B, U+1, D) (no gradient needed), targets, lengths,
    blank as ``rnnt_loss``; joiner: this package's Joiner (``linear``, ``activation``).
    Returns: ``(am_fn, lm_fn)`` mapping (.., D) to (.., V) with frozen fitted weights.
    """
    act = joiner.activation
    W, b = joiner.linear.weight.detach(), joiner.linear.bias.detach()
    am_w, lm_w = W.clone().requires_grad_(True), W.clone().requires_grad_(True)
    am_b, lm_b = torch.zeros_like(b).requires_grad_(True), b.clone().requires_grad_(True)
    enc, pred = act(encoder_out.detach()), act(predictor_out.detach())
    opt = torch.optim.Adam([am_w, am_b, lm_w, lm_b], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = simple_rnnt_loss(enc @ am_w.T + am_b, pred @ lm_w.T + lm_b, targets, logit_lengths,
                                    target_lengths, blank)
            opt.zero_grad()
            loss.backward()
            opt.step()
    am_w, am_b, lm_w, lm_b = (x.detach() for x in (am_w, am_b, lm_w, lm_b))
    return (lambda e: act(e) @ am_w.T + am_b), (lambda p: act(p) @ lm_w.T + lm_b)
