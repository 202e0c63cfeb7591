"""RNN-T loss, fast: the wavefront used for training.

Notation: B batch, T frames (joiner time steps), U target length, V vocabulary.

Same lattice (:func:`~.lattice.lattice_log_probs`) and same tables as the
plain loops of :mod:`.lattice`, computed for a whole batch at once:

* :func:`alpha_beta` - log alpha and log beta, (B, T+1, U+1) each, and log P (B,);
* :func:`edge_posteriors` - blank and emit edge posteriors, (B, T, U+1) each;
* :func:`rnnt_loss` - drop-in for ``torchaudio.functional.rnnt_loss`` (logits
  (B, T, U+1, V), targets (B, U), lengths (B,); conventions in :mod:`.loss`),
  with the analytic alpha-beta gradient written into one (B, T, U+1, V) buffer;
  optional latency regularisers ``fastemit_lambda`` and ``delay_penalty``.

``tests/test_lattice.py`` and ``tests/test_loss.py`` check these against the
readable loops, the brute-force sum over paths, and torchaudio.
"""

from __future__ import annotations

import functools
import math
from typing import Tuple

import torch
from torch import Tensor

from .inputs import check_inputs, check_latency_options, reduce
from .lattice import BLANK, EMIT, NEG_INF, _lattice, _mask_lattice_, delay_penalty_offsets

__all__ = ["rnnt_loss", "alpha_beta", "edge_posteriors"]

# Node (t, u) lies on anti-diagonal n = t + u, and both of its predecessors lie
# on diagonal n - 1, so a whole diagonal follows from the previous one in a few
# vectorised ops. Diagonals are stored "skewed": row n holds the nodes of
# diagonal n indexed by u. The grid gets one extra row t = T (so there are
# N = T + U + 1 diagonals): the final blank of utterance b leads from
# (T_b-1, U_b) to a "sink" node (T_b, U_b), which makes the last blank an
# ordinary edge and gives alpha(sink) = beta(0, 0) = log P.
#
# Beta runs on the lattice turned by 180 degrees (n -> N-1-n, u -> U-u), where
# its recursion has exactly alpha's form, so one add and one logaddexp per
# diagonal advance alpha and beta together: ~2N small ops in all. On a busy
# CPU each op costs far more than its arithmetic, so the skewing and
# un-skewing are single gathers with index tables cached per shape.


@functools.lru_cache(maxsize=32)
def _plan(B: int, T: int, U1: int, device: str) -> Tuple[Tensor, Tensor, Tensor]:
    """Index tables for the wavefront (depend only on the shape).

    Returns flat indices into, first, ``edges`` (B, T, U+1, 2) with one extra
    -inf slot at the end; then, twice, into the diagonal table ``AB``
    (N, 2, B, U+2) with one extra -inf slot:

    * ``w_idx`` (N, 2, 2, B, U+1): ``W[n, s, k, b, u]`` is the weight of the
      edge into node u of diagonal n, for s = 0 alpha / 1 beta (turned), from
      the node at u-1 (k = 0, an emit) or at u (k = 1, a blank) on diagonal n-1.
    * ``post_idx`` (3, B, T, U+1): alpha(t, u), beta(t, u+1), beta(t+1, u),
      i.e. alpha at every node and beta after its emit and blank edge.
    * ``grid_idx`` (2, B, T+1, U+1): alpha and beta on the grid with sink row.
    """
    N, U = T + U1, U1 - 1
    n = torch.arange(N).view(N, 1, 1)
    b = torch.arange(B).view(1, B, 1)
    u = torch.arange(U1).view(1, 1, U1)
    e_sent = B * T * U1 * 2

    def edge(t, uu, k):
        ok = (t >= 0) & (t < T) & (uu >= 0) & (uu <= U)
        flat = ((b * T + t.clamp(0, T - 1)) * U1 + uu.clamp(0, U)) * 2 + k
        return torch.where(ok, flat, e_sent)

    n_rot, u_rot = N - 1 - n, U - u  # the node a turned (beta) entry stands for
    w_idx = torch.stack([
        torch.stack([edge(n - u, u - 1, EMIT), edge(n - 1 - u, u, BLANK)]),
        torch.stack([edge(n_rot - u_rot, u_rot, EMIT), edge(n_rot - u_rot, u_rot, BLANK)]),
    ]).permute(2, 0, 1, 3, 4)  # (N, 2, 2, B, U+1)

    ab_sent = N * 2 * B * (U1 + 1)
    bg = torch.arange(B).view(B, 1, 1)  # grid layout (B, T(+1), U+1)

    def node(s, t, uu):
        ok = (t >= 0) & (t <= T) & (uu >= 0) & (uu <= U)
        diag = t + uu if s == 0 else N - 1 - (t + uu)
        col = uu + 1 if s == 0 else U - uu + 1
        flat = ((diag.clamp(0, N - 1) * 2 + s) * B + bg) * (U1 + 1) + col.clamp(0, U1)
        return torch.where(ok, flat, ab_sent)

    t = torch.arange(T + 1).view(1, T + 1, 1)
    tt = t[:, :T]
    u = u.view(1, 1, U1)
    post_idx = torch.stack([node(0, tt, u), node(1, tt, u + 1), node(1, tt + 1, u)])
    grid_idx = torch.stack([node(0, t, u), node(1, t, u)])
    dev = torch.device(device)
    return w_idx.to(dev), post_idx.to(dev), grid_idx.to(dev)


def _wavefront(edges: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
               combine=torch.logaddexp) -> Tensor:
    """Run alpha and beta over all diagonals; return the flat table ``AB``.

    ``combine`` is ``torch.logaddexp`` (sum over paths) or ``torch.maximum``
    (best path: Viterbi scores). Index the result with :func:`_plan`.
    """
    B, T, U1, _ = edges.shape
    N, U = T + U1, U1 - 1
    w_idx, _, _ = _plan(B, T, U1, str(edges.device))
    src = torch.cat([edges.reshape(-1), edges.new_full((1,), NEG_INF)])
    W = src[w_idx]
    flat = edges.new_full((N * 2 * B * (U1 + 1) + 1,), NEG_INF)
    AB = flat[:-1].view(N, 2, B, U1 + 1)  # column 0: -inf pad, so "u-1" is a shift
    AB[0, 0, :, 1] = 0.0  # alpha(0, 0) = log 1
    # Beta starts at each sink with log 1. A sink has no way out (row T_b is
    # masked), so the recursion would leave it at -inf: pin it after its step.
    sinks = {}
    for b, (t_b, u_b) in enumerate(zip(logit_lengths.tolist(), target_lengths.tolist())):
        sinks.setdefault(N - 1 - (int(t_b) + int(u_b)), []).append((b, U - int(u_b) + 1))
    for b, col in sinks.pop(0, ()):
        AB[0, 1, b, col] = 0.0
    st = AB.stride()
    for n in range(1, N):
        prev = AB[n - 1]
        # View [s, k, b, u] = prev[s, b, u + k]: both predecessors, no copy.
        pair = prev.as_strided((2, 2, B, U1), (st[1], 1, st[2], 1), prev.storage_offset())
        x = pair + W[n]
        combine(x[:, 0], x[:, 1], out=AB[n, :, :, 1:])
        for b, col in sinks.get(n, ()):
            AB[n, 1, b, col] = 0.0
    return flat


def alpha_beta(
    blank_lp: Tensor,
    emit_lp: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    semiring: str = "log",
) -> Tuple[Tensor, Tensor, Tensor]:
    """Log alpha and log beta of a batch of lattices, by wavefront recursion.

    Args:
        blank_lp, emit_lp: (B, T, U+1) from :func:`lattice_log_probs`.
        logit_lengths, target_lengths: (B,).
        semiring: ``"log"`` sums over paths (logaddexp); ``"max"`` keeps the
            best path (Viterbi scores: alpha = best prefix, beta = best suffix).
            Not differentiable: gradients come from :func:`rnnt_loss`.

    Returns:
        ``(log_alpha, log_beta, log_prob)``. alpha and beta are (B, T+1, U+1):
        the grid plus a sink row t = T, where only the sink (T_b, U_b) is
        meaningful (alpha = log P, beta = 0). beta includes the final blank,
        so ``log_prob`` (B,) = beta[:, 0, 0]. Outside an utterance's lattice
        beta is -inf; alpha is -inf there too except on row T_b.
    """
    combine = {"log": torch.logaddexp, "max": torch.maximum}.get(semiring)
    if combine is None:
        raise ValueError(f"semiring must be 'log' or 'max', got {semiring!r}")
    with torch.no_grad():
        edges = _mask_lattice_(torch.stack([emit_lp, blank_lp], -1), logit_lengths, target_lengths)
        flat = _wavefront(edges, logit_lengths, target_lengths, combine)
        _, _, grid_idx = _plan(*edges.shape[:3], str(edges.device))
        alpha, beta = flat[grid_idx]
    return alpha, beta, beta[:, 0, 0]


def edge_posteriors(
    blank_lp: Tensor,
    emit_lp: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
) -> Tuple[Tensor, Tensor, Tensor]:
    """Posterior probability of every blank and emit edge (not differentiable).

    posterior(edge a -> b) = alpha(a) * P(edge) * beta(b) / P: the share of
    the total probability carried by alignments that use the edge.

    Args:
        blank_lp, emit_lp: (B, T, U+1) from :func:`lattice_log_probs`.
        logit_lengths, target_lengths: (B,).

    Returns:
        ``(post_blank, post_emit, log_prob)``: (B, T, U+1), (B, T, U+1), (B,).
    """
    with torch.no_grad():
        edges = _mask_lattice_(torch.stack([emit_lp, blank_lp], -1), logit_lengths, target_lengths)
        post, log_prob = _posteriors(edges, _wavefront(edges, logit_lengths, target_lengths))
    return post[..., BLANK], post[..., EMIT], log_prob


def _posteriors(edges: Tensor, flat: Tensor) -> Tuple[Tensor, Tensor]:
    """Edge posteriors (B, T, U+1, 2) = alpha(node) * edge * beta(next) / P, and log P (B,)."""
    B, T, U1, _ = edges.shape
    _, post_idx, grid_idx = _plan(B, T, U1, str(edges.device))
    log_prob = flat[grid_idx[1, :, 0, 0]]
    g = flat[post_idx]  # alpha, beta after emit, beta after blank
    x = g[1:].permute(1, 2, 3, 0) + edges
    x += (g[0] - log_prob.view(B, 1, 1)).unsqueeze(-1)
    return x.exp_(), log_prob


class _FastRNNTLoss(torch.autograd.Function):
    """Costs in forward; gradient = softmax * node posterior - edge posteriors.

    The fused path's only full-size (B, T, U+1, V) tensor is ``log_softmax``
    from the forward pass; backward turns it *in place* into the gradient and
    returns it. (torchaudio keeps a full gradient from forward and allocates a
    second one, ``grad * dy``, in backward.)

    FastEmit and the delay penalty only touch the small (B, T, U+1, 2) edge
    tables: the penalty is added to the emit scores the recursion runs on,
    FastEmit multiplies the emit posteriors by (1 + lambda) in backward.
    """

    @staticmethod
    def forward(ctx, logits, targets, logit_lengths, target_lengths, blank, clamp, fused_log_softmax,
                fastemit_lambda=0.0, delay_penalty=0.0):
        B, T, U1, V = logits.shape
        edges, log_probs = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
        if fused_log_softmax and bool(torch.isnan(log_probs[:, :, :, blank]).any()):
            # log_softmax turns a row holding NaN or +inf (or only -inf) into
            # NaN, so one column catches it anywhere: no extra full pass.
            raise ValueError("logits contain NaN (or +inf, or a row of only -inf)")
        scores = edges
        if delay_penalty:
            # The recursion runs on penalised emit scores; ``edges`` stays the
            # model's log-probs, which backward needs for the softmax term.
            scores = edges.clone()
            offsets = delay_penalty_offsets(logit_lengths.to(edges.device), T, delay_penalty, edges.dtype)
            scores[..., EMIT] += offsets[:, :, None]
        flat = _wavefront(scores, logit_lengths, target_lengths)
        post, log_prob = _posteriors(scores, flat)
        if ctx.needs_input_grad[0]:
            # Emit column per (b, u); padding and u = U point at blank, which
            # backward writes last, so their zero emit terms clobber nothing.
            tok = torch.full((B, 1, U1, 1), blank, dtype=torch.long, device=logits.device)
            valid = torch.arange(U1 - 1, device=logits.device) < target_lengths.to(logits.device).view(B, 1)
            tok[:, 0, :-1, 0] = torch.where(valid, targets.to(logits.device).long(), blank)
            ctx.save_for_backward(logits, edges, post, tok)
            ctx.log_probs = log_probs if fused_log_softmax else None
            ctx.blank, ctx.clamp, ctx.fused = blank, float(clamp), fused_log_softmax
            ctx.fastemit_lambda = float(fastemit_lambda)
            ctx.lengths = list(zip(logit_lengths.tolist(), target_lengths.tolist()))
        return -log_prob

    @staticmethod
    def backward(ctx, dy):
        logits, edges, post, tok = ctx.saved_tensors
        B, T, U1, V = logits.shape
        blank, clamp = ctx.blank, ctx.clamp
        dy = dy.reshape(B, 1, 1, 1).to(logits.dtype)
        dy_list = dy.flatten().tolist()
        if ctx.fastemit_lambda:
            # FastEmit: d(-log P)/d(emit log-prob) = -posterior becomes -(1 + lambda) * posterior.
            # A new tensor: the saved one must survive a second backward.
            scale = post.new_ones(2)
            scale[EMIT] += ctx.fastemit_lambda
            post = post * scale
        if ctx.fused:
            buf, ctx.log_probs = ctx.log_probs, None
            if buf is None:  # a second backward (retain_graph=True): rebuild it
                buf = torch.log_softmax(logits, dim=-1)
            node_post = post.sum(-1, keepdim=True)  # every path leaves a node once
            # Emit and blank entries exactly, from the small tables.
            g = edges.exp() * node_post - post
            if clamp > 0:
                g.clamp_(-clamp, clamp)
            # Everything else: softmax * node_post * |dy| = exp(log_softmax + log node_post + log|dy|):
            # one add and one exp over the full tensor (the sign comes after).
            log_dy = dy.abs().log_().nan_to_num_(neginf=0.0)  # dy = 0: zeroed below
            buf.add_(node_post.log_().add_(log_dy))
            # CPU exp is ~60x slower for arguments below log(smallest normal), where
            # it returns ~0 anyway: floor the exponent there (error < 1e-37).
            floor = torch.tensor(math.log(torch.finfo(buf.dtype).tiny) + 1.0, dtype=buf.dtype, device=buf.device)
            if clamp > 0:
                # min(p * node_post, clamp) * |dy|: cap the exponent at log(clamp) + log|dy|.
                buf.clamp_(min=floor, max=log_dy + math.log(clamp))
            else:
                buf.clamp_(min=floor)
            buf.exp_()
            if any(d < 0 for d in dy_list):
                buf.mul_(dy.sign())
            # Exact zeros where there is no lattice (padding) or no upstream gradient.
            for b, (t_b, u_b) in enumerate(ctx.lengths):
                if dy_list[b] == 0:
                    buf[b].zero_()
                    continue
                if t_b < T:
                    buf[b, t_b:].zero_()
                if u_b + 1 < U1:
                    buf[b, :t_b, u_b + 1:].zero_()
        else:
            # Input taken as log-probs: only blank and target entries get gradient.
            buf = torch.zeros_like(logits)
            g = -post
            if clamp > 0:
                g.clamp_(min=-clamp)
        g *= dy
        buf.scatter_(3, tok.expand(B, T, U1, 1), g[..., EMIT:EMIT + 1])
        buf[..., blank] = g[..., BLANK]
        return buf, None, None, None, None, None, None, None, None


def rnnt_loss(
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
    """RNN-T loss (Graves 2012), drop-in for ``torchaudio.functional.rnnt_loss``.

    Args:
        logits: (B, T, U+1, V) joiner output; float32 or float64 (float16 and
            bfloat16 are computed in float32). With ``fused_log_softmax=False``
            these are taken as log-probabilities as given.
        targets: (B, U) int32/int64 target tokens, padded past ``target_lengths``.
        logit_lengths: (B,) valid frames per utterance, 1 <= T_b <= T.
        target_lengths: (B,) valid tokens per utterance, 0 <= U_b <= U.
        blank: blank index; negative values count from the end (-1 = V-1).
        clamp: if > 0, each utterance's gradient w.r.t. logits is clipped to
            [-clamp, clamp] before the reduction's gradient is applied.
        reduction: ``"none"`` (B,) | ``"mean"`` over B | ``"sum"``.
        fused_log_softmax: apply log-softmax over V inside the loss.
        fastemit_lambda: FastEmit (Yu et al. 2021, arXiv:2010.11148): the loss
            value is unchanged, the gradient through every emit edge is
            multiplied by (1 + lambda); 0 (default) is off. Equations in
            :func:`~.loss.rnnt_loss_reference`.
        delay_penalty: k2's symbol-delay penalty (k2-fsa/k2 #955): adds
            ``delay_penalty * ((T_b - 1) / 2 - t)`` to the log-prob of every
            emit edge at frame t (:func:`~.lattice.delay_penalty_offsets`), so
            the loss is -log of the penalised path sum; 0 (default) is off.

    Returns:
        (B,) costs -log P(targets | logits) for ``"none"``, else a scalar.
        Works on any device; gradients are analytic (alpha-beta).
    """
    blank = check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction,
                          check_nan=not fused_log_softmax)
    check_latency_options(fastemit_lambda, delay_penalty)
    if logits.dtype in (torch.float16, torch.bfloat16):
        # The recursion needs float32 range and precision; autograd casts back.
        return rnnt_loss(logits.float(), targets, logit_lengths, target_lengths, blank,
                         clamp, reduction, fused_log_softmax, fastemit_lambda=fastemit_lambda,
                         delay_penalty=delay_penalty).to(logits.dtype)
    if logits.shape[0] == 0:
        return reduce(logits.new_zeros(0) + logits.sum(), reduction)
    costs = _FastRNNTLoss.apply(logits.contiguous(), targets, logit_lengths, target_lengths,
                                blank, clamp, fused_log_softmax, float(fastemit_lambda), float(delay_penalty))
    return reduce(costs, reduction)
