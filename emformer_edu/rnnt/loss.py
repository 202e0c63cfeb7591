"""RNN-T loss, three ways, over ONE lattice definition.

Notation: B batch, T frames (joiner time steps), U target length, V vocabulary.

The joiner scores every pair (frame t, tokens emitted so far u) with V logits,
giving ``logits`` of shape (B, T, U+1, V). Only two numbers per node matter
for the loss: the log-probability of *blank* (move to the next frame,
t -> t+1) and of the *next target token* (u -> u+1). :func:`lattice_log_probs`
extracts exactly these two (B, T, U+1) tables; every implementation below,
and :mod:`emformer_edu.lattice`, starts from it.

An alignment is a monotone path from node (0, 0) to node (T-1, U) followed by
one final blank; its probability is the product of its edge probabilities, and
the loss is ``-log`` of the sum over all alignments.

* :func:`rnnt_loss_bruteforce` - enumerates every path (tiny sizes only).
* :func:`rnnt_loss_reference` - plain Python loops over t and u (alpha, beta,
  and the analytic gradient), to read beside the notebook.
* :func:`rnnt_loss` - the fast version used for training: wavefront (anti-
  diagonal) recursion vectorised over batch and diagonal, and an analytic
  alpha-beta gradient written into one (B, T, U+1, V) buffer.

All three have the signature and semantics of
``torchaudio.functional.rnnt_loss`` (torchaudio 2.11), including its
conventions for ``clamp`` (the per-utterance gradient w.r.t. logits is clipped
to [-clamp, clamp] *before* the incoming gradient of the reduction is applied;
``clamp <= 0`` disables it) and ``fused_log_softmax=False`` (the input is used
as log-probabilities as given, and the gradient is the exact gradient w.r.t.
that input: non-zero only on blank and target entries).

Differences from torchaudio, all in the permissive direction: logits may be
padded beyond ``max(logit_lengths)`` / ``max(target_lengths) + 1``; int64
targets/lengths are accepted; float64 is supported; and bad input raises
``ValueError`` instead of computing garbage (e.g. a blank inside a target).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    "rnnt_loss",
    "rnnt_loss_reference",
    "rnnt_loss_bruteforce",
    "lattice_log_probs",
    "alpha_beta",
    "edge_posteriors",
    "alignment_paths",
]

_REDUCTIONS = ("none", "mean", "sum")
_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INT_DTYPES = (torch.int32, torch.int64)
NEG_INF = float("-inf")

# --------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------


def _check_inputs(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int,
    reduction: str,
    check_nan: bool = True,
) -> int:
    """Validate the inputs; return ``blank`` as a non-negative index."""
    for name, x in (("logits", logits), ("targets", targets),
                    ("logit_lengths", logit_lengths), ("target_lengths", target_lengths)):
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if logits.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"logits must be a floating tensor (float32/float64/float16/bfloat16), got {logits.dtype}")
    for name, x in (("targets", targets), ("logit_lengths", logit_lengths), ("target_lengths", target_lengths)):
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
    for name, x in (("logit_lengths", logit_lengths), ("target_lengths", target_lengths)):
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
    ll_min, ll_max = int(logit_lengths.min()), int(logit_lengths.max())
    if ll_max > T:
        raise ValueError(f"logit_lengths must be <= T={T} (logits.shape[1]), got max {ll_max}")
    if ll_min < 1:
        raise ValueError(f"logit_lengths must be >= 1, got min {ll_min}")
    tl_min, tl_max = int(target_lengths.min()), int(target_lengths.max())
    if tl_max > U:
        raise ValueError(f"target_lengths must be <= U={U} (targets.shape[1]), got max {tl_max}")
    if tl_min < 0:
        raise ValueError(f"target_lengths must be >= 0, got min {tl_min}")
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


def _reduce(costs: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return costs.mean()
    if reduction == "sum":
        return costs.sum()
    return costs


# --------------------------------------------------------------------------
# The lattice definition (shared by everything)
# --------------------------------------------------------------------------


# The two edge tables live side by side in one (B, T, U+1, 2) tensor, last
# index EMIT = 0 (edge (t, u) -> (t, u+1)) and BLANK = 1 (edge (t, u) -> (t+1, u)),
# so one gather reads them and one mask cuts them to each utterance's lengths.
EMIT, BLANK = 0, 1


def _mask_lattice_(edges: Tensor, logit_lengths: Tensor, target_lengths: Tensor) -> Tensor:
    """Set non-existent edges of (B, T, U+1, 2) ``edges`` to -inf, in place.

    Node (t, u) exists iff t < T_b and u <= U_b; its emit edge also needs u < U_b.
    """
    B, T, U1, _ = edges.shape
    dev = edges.device
    ll = logit_lengths.to(dev).view(B, 1, 1, 1)
    tl = target_lengths.to(dev).view(B, 1, 1, 1)
    u_limit = tl + torch.tensor([0, 1], device=dev)  # emit: u < U_b, blank: u < U_b + 1
    gone = (torch.arange(T, device=dev).view(1, T, 1, 1) >= ll) | (
        torch.arange(U1, device=dev).view(1, 1, U1, 1) >= u_limit)
    return edges.masked_fill_(gone, NEG_INF)


def _lattice(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int,
    fused_log_softmax: bool,
) -> Tuple[Tensor, Tensor]:
    """Masked edge log-probs ``edges`` (B, T, U+1, 2), plus the full log-probs.

    ``edges[..., EMIT]`` and ``edges[..., BLANK]`` are the emit and blank
    tables. The second result is the (B, T, U+1, V) tensor they were read
    from: ``log_softmax(logits)`` when fused (a new tensor, which the fast
    path recycles into its gradient), else ``logits`` itself.
    """
    B, T, U1, V = logits.shape
    U = U1 - 1
    dev = logits.device
    log_probs = torch.log_softmax(logits, dim=-1) if fused_log_softmax else logits
    # Column to read per (u, edge): the target for emit, blank for blank. Padding
    # positions (and u = U) read the blank column too: any valid index will do,
    # the mask removes them.
    tok = torch.where(torch.arange(U, device=dev) < target_lengths.to(dev).view(B, 1),
                      targets.to(dev).long(), blank)
    index = torch.full((B, 1, U1, 2), blank, dtype=torch.long, device=dev)
    index[:, 0, :U, EMIT] = tok
    edges = torch.gather(log_probs, 3, index.expand(B, T, U1, 2))
    return _mask_lattice_(edges, logit_lengths, target_lengths), log_probs


def lattice_log_probs(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Optional[Tensor] = None,
    target_lengths: Optional[Tensor] = None,
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> Tuple[Tensor, Tensor]:
    """The RNN-T lattice: blank and emit log-probabilities of every node.

    Args:
        logits: (B, T, U+1, V) joiner output (or log-probs if
            ``fused_log_softmax=False``).
        targets: (B, U) target tokens.
        logit_lengths, target_lengths: (B,) valid lengths; default full.
        blank: blank index (negative counts from the end).
        fused_log_softmax: apply log-softmax over V first.

    Returns:
        ``(blank_lp, emit_lp)``, each (B, T, U+1). ``blank_lp[b, t, u]`` is
        log P(blank | t, u) (edge (t, u) -> (t+1, u)); ``emit_lp[b, t, u]`` is
        log P(targets[b, u] | t, u) (edge (t, u) -> (t, u+1)). Edges that do
        not exist (beyond the lengths; emit at u = U_b) are ``-inf``.
        Differentiable w.r.t. ``logits``.
    """
    B, T, U1, V = logits.shape
    if logit_lengths is None:
        logit_lengths = torch.full((B,), T, dtype=torch.int32, device=logits.device)
    if target_lengths is None:
        target_lengths = torch.full((B,), U1 - 1, dtype=torch.int32, device=logits.device)
    blank = _check_inputs(logits, targets, logit_lengths, target_lengths, blank, "none", check_nan=False)
    edges, _ = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
    return edges[..., BLANK], edges[..., EMIT]


def alignment_paths(T: int, U: int) -> Iterator[List[Tuple[int, int, str]]]:
    """Every alignment through a T x (U+1) lattice, as lists of edges.

    An edge is ``(t, u, kind)``: it leaves node (t, u), ``kind`` is
    ``"blank"`` (to (t+1, u)) or ``"emit"`` (to (t, u+1)). Each path has
    T + U edges and ends with the final blank out of (T-1, U). There are
    C(T-1+U, U) paths: choose where the U emits go among the first T-1+U moves.
    """
    moves = T - 1 + U
    for emit_at in itertools.combinations(range(moves), U):
        emit_set = set(emit_at)
        t = u = 0
        path = []
        for k in range(moves):
            if k in emit_set:
                path.append((t, u, "emit"))
                u += 1
            else:
                path.append((t, u, "blank"))
                t += 1
        path.append((t, u, "blank"))
        yield path


# --------------------------------------------------------------------------
# Shared autograd shell: costs plus a precomputed gradient (as torchaudio does)
# --------------------------------------------------------------------------


class _PrecomputedGrad(torch.autograd.Function):
    """Return ``costs``; backward is ``grads * dy`` per utterance."""

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


# --------------------------------------------------------------------------
# 1. Brute force: enumerate every alignment
# --------------------------------------------------------------------------


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
) -> Tensor:
    """RNN-T loss by summing the probability of every alignment (an oracle).

    Same arguments and result as :func:`rnnt_loss`; the gradient comes from
    autograd through :func:`lattice_log_probs`. Raises ``ValueError`` when an
    utterance has more than ``max_paths`` alignments (C(T_b-1+U_b, U_b)).
    """
    blank = _check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction)
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
        costs = []
        for b, (T_b, U_b) in enumerate(sizes):
            # One row per path: the log-probs of its T_b + U_b edges, summed.
            rows = []
            for path in alignment_paths(T_b, U_b):
                tb = [t for t, u, k in path if k == "blank"]
                ub = [u for t, u, k in path if k == "blank"]
                te = [t for t, u, k in path if k == "emit"]
                ue = [u for t, u, k in path if k == "emit"]
                rows.append(blank_lp[b, tb, ub].sum() + emit_lp[b, te, ue].sum())
            costs.append(-torch.logsumexp(torch.stack(rows), dim=0))
        costs = torch.stack(costs) if costs else x.new_zeros(0)
        # Utterances are independent, so d(sum)/dx stacks per-utterance gradients.
        (grads,) = torch.autograd.grad(costs.sum(), x) if B else (torch.zeros_like(x),)
    costs = _PrecomputedGrad.apply(logits, costs.detach(), _clamp_grad(grads, clamp))
    return _reduce(costs, reduction)


# --------------------------------------------------------------------------
# 2. Readable reference: Python loops over t and u
# --------------------------------------------------------------------------


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def rnnt_loss_reference(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
) -> Tensor:
    """RNN-T loss with alpha, beta and gradient as plain loops (float64 math).

    Same arguments and result as :func:`rnnt_loss`. Per utterance, with
    ``blank[t][u]`` and ``emit[t][u]`` the lattice log-probs:

    * ``alpha[t][u]``: log-prob of all partial paths from (0, 0) to (t, u).
    * ``beta[t][u]``: log-prob of all ways to finish from (t, u), including
      the final blank; ``log P = beta[0][0] = alpha[T-1][U] + blank[T-1][U]``.
    * edge posterior = alpha(source) + edge + beta(destination) - log P,
      node posterior = blank-edge + emit-edge posteriors out of the node.
    * d(-log P)/d logit[t, u, v] = softmax_v * node_post - blank_post * [v == blank]
      - emit_post * [v == target_u]   (fused case; otherwise only the two
      edge terms, since the input *is* the log-prob).
    """
    blank = _check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction)
    B, T, U1, V = logits.shape
    with torch.no_grad():
        edges, _ = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
        blank_t, emit_t = edges[..., BLANK], edges[..., EMIT]
        probs = torch.softmax(logits.double(), dim=-1) if fused_log_softmax else None
        grads = torch.zeros(logits.shape, dtype=torch.float64, device=logits.device)
        costs = []
        for b in range(B):
            T_b, U_b = int(logit_lengths[b]), int(target_lengths[b])
            blank_lp = blank_t[b].double().tolist()
            emit_lp = emit_t[b].double().tolist()
            alpha = [[NEG_INF] * (U_b + 1) for _ in range(T_b)]
            for t in range(T_b):
                for u in range(U_b + 1):
                    if t == 0 and u == 0:
                        alpha[t][u] = 0.0
                        continue
                    from_blank = alpha[t - 1][u] + blank_lp[t - 1][u] if t > 0 else NEG_INF
                    from_emit = alpha[t][u - 1] + emit_lp[t][u - 1] if u > 0 else NEG_INF
                    alpha[t][u] = _logaddexp(from_blank, from_emit)
            beta = [[NEG_INF] * (U_b + 1) for _ in range(T_b)]
            for t in reversed(range(T_b)):
                for u in reversed(range(U_b + 1)):
                    if t == T_b - 1 and u == U_b:
                        beta[t][u] = blank_lp[t][u]  # the final blank ends every path
                        continue
                    to_blank = blank_lp[t][u] + beta[t + 1][u] if t < T_b - 1 else NEG_INF
                    to_emit = emit_lp[t][u] + beta[t][u + 1] if u < U_b else NEG_INF
                    beta[t][u] = _logaddexp(to_blank, to_emit)
            log_p = beta[0][0]
            costs.append(-log_p)
            for t in range(T_b):
                for u in range(U_b + 1):
                    # beta where each edge leads; the final blank leaves the lattice (log 1).
                    if (t, u) == (T_b - 1, U_b):
                        after_blank = 0.0
                    else:
                        after_blank = beta[t + 1][u] if t < T_b - 1 else NEG_INF
                    after_emit = beta[t][u + 1] if u < U_b else NEG_INF
                    post_blank = math.exp(alpha[t][u] + blank_lp[t][u] + after_blank - log_p)
                    post_emit = math.exp(alpha[t][u] + emit_lp[t][u] + after_emit - log_p)
                    if fused_log_softmax:
                        grads[b, t, u] = probs[b, t, u] * (post_blank + post_emit)
                    grads[b, t, u, blank] -= post_blank
                    if u < U_b:
                        grads[b, t, u, int(targets[b, u])] -= post_emit
        costs = torch.tensor(costs, dtype=logits.dtype, device=logits.device)
        grads = _clamp_grad(grads, clamp).to(logits.dtype)
    return _reduce(_PrecomputedGrad.apply(logits, costs, grads), reduction)


# --------------------------------------------------------------------------
# 3. Fast: wavefront over anti-diagonals, analytic gradient
# --------------------------------------------------------------------------
#
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
    """

    @staticmethod
    def forward(ctx, logits, targets, logit_lengths, target_lengths, blank, clamp, fused_log_softmax):
        B, T, U1, V = logits.shape
        edges, log_probs = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
        if fused_log_softmax and bool(torch.isnan(log_probs[:, :, :, blank]).any()):
            # log_softmax turns a row holding NaN or +inf (or only -inf) into
            # NaN, so one column catches it anywhere: no extra full pass.
            raise ValueError("logits contain NaN (or +inf, or a row of only -inf)")
        flat = _wavefront(edges, logit_lengths, target_lengths)
        post, log_prob = _posteriors(edges, flat)
        if ctx.needs_input_grad[0]:
            # Emit column per (b, u); padding and u = U point at blank, which
            # backward writes last, so their zero emit terms clobber nothing.
            tok = torch.full((B, 1, U1, 1), blank, dtype=torch.long, device=logits.device)
            valid = torch.arange(U1 - 1, device=logits.device) < target_lengths.to(logits.device).view(B, 1)
            tok[:, 0, :-1, 0] = torch.where(valid, targets.to(logits.device).long(), blank)
            ctx.save_for_backward(logits, edges, post, tok)
            ctx.log_probs = log_probs if fused_log_softmax else None
            ctx.blank, ctx.clamp, ctx.fused = blank, float(clamp), fused_log_softmax
            ctx.lengths = list(zip(logit_lengths.tolist(), target_lengths.tolist()))
        return -log_prob

    @staticmethod
    def backward(ctx, dy):
        logits, edges, post, tok = ctx.saved_tensors
        B, T, U1, V = logits.shape
        blank, clamp = ctx.blank, ctx.clamp
        dy = dy.reshape(B, 1, 1, 1).to(logits.dtype)
        dy_list = dy.flatten().tolist()
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
        return buf, None, None, None, None, None, None


def rnnt_loss(
    logits: Tensor,
    targets: Tensor,
    logit_lengths: Tensor,
    target_lengths: Tensor,
    blank: int = -1,
    clamp: float = -1,
    reduction: str = "mean",
    fused_log_softmax: bool = True,
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

    Returns:
        (B,) costs -log P(targets | logits) for ``"none"``, else a scalar.
        Works on any device; gradients are analytic (alpha-beta).
    """
    blank = _check_inputs(logits, targets, logit_lengths, target_lengths, blank, reduction,
                          check_nan=not fused_log_softmax)
    if logits.dtype in (torch.float16, torch.bfloat16):
        # The recursion needs float32 range and precision; autograd casts back.
        return rnnt_loss(logits.float(), targets, logit_lengths, target_lengths, blank,
                         clamp, reduction, fused_log_softmax).to(logits.dtype)
    if logits.shape[0] == 0:
        return _reduce(logits.new_zeros(0) + logits.sum(), reduction)
    costs = _FastRNNTLoss.apply(logits.contiguous(), targets, logit_lengths, target_lengths,
                                blank, clamp, fused_log_softmax)
    return _reduce(costs, reduction)
