"""The RNN-T alignment lattice, and alpha, beta and Viterbi as plain loops.

Notation: B batch, T frames (joiner time steps), U target length, V vocabulary.

The joiner scores every pair (frame t, tokens emitted so far u) with V logits:
``logits`` (B, T, U+1, V). The lattice is the T x (U+1) grid of nodes (t, u).
Two edges leave every node: *blank* to (t+1, u) and *emit* of the next token
to (t, u+1). An alignment runs from (0, 0) to (T-1, U) and ends with one final
blank. Only two numbers per node matter, the log-probs of those two edges:
:func:`lattice_log_probs` reads them out as two (B, T, U+1) tables, and every
loss in :mod:`.loss` and :mod:`.loss_fast` starts from the same function.

For ONE utterance, with ``blank_lp`` and ``emit_lp`` of shape (T, U+1):

* :func:`log_alpha` (all ways to reach a node), :func:`log_beta` (all ways to
  finish from it, final blank included, so log P = beta[0, 0]) and
  :func:`viterbi` (the best way) are plain loops over t and u: the code the
  notebooks show. :mod:`.loss_fast` computes the same tables for a whole batch
  at once, and the tests check that the two agree.
* :func:`lattice_tables` adds the posteriors, :func:`forced_align` runs a model
  and returns its Viterbi alignment of a known transcript.
* :func:`expected_emission_frames` reads from the posteriors when each token is
  emitted on average; :func:`delay_penalty_offsets` are the per-frame emit
  bonuses of k2's delay penalty (used by the losses' ``delay_penalty``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .inputs import check_inputs, check_latency_options

__all__ = [
    "lattice_log_probs", "alignment_paths", "Lattice", "LatticeAlignment", "utterance_lattice",
    "log_alpha", "log_beta", "lattice_tables", "viterbi", "token_frames", "path_log_probs", "forced_align",
    "delay_penalty_offsets", "expected_emission_frames",
]

NEG_INF = float("-inf")  # log of probability 0
# The batched edge tables live side by side in one (B, T, U+1, 2) tensor, so one
# gather reads both and one mask cuts both to each utterance's lengths.
EMIT, BLANK = 0, 1  # emit: (t, u) -> (t, u+1); blank: (t, u) -> (t+1, u)

Edge = Tuple[int, int, str]  # (t, u, "blank" | "emit"): the edge leaving node (t, u)


# --------------------------------------------------------------------------
# A batch of lattices: the edge tables
# --------------------------------------------------------------------------


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


def _lattice(logits: Tensor, targets: Tensor, logit_lengths: Tensor, target_lengths: Tensor,
             blank: int, fused_log_softmax: bool) -> Tuple[Tensor, Tensor]:
    """Masked edge log-probs ``edges`` (B, T, U+1, 2), plus the full log-probs.

    ``edges[..., EMIT]`` and ``edges[..., BLANK]`` are the emit and blank
    tables. The second result is the (B, T, U+1, V) tensor they were read
    from: ``log_softmax(logits)`` when fused (a new tensor, which the fast
    loss recycles into its gradient), else ``logits`` itself.
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


def lattice_log_probs(logits: Tensor, targets: Tensor, logit_lengths: Optional[Tensor] = None,
                      target_lengths: Optional[Tensor] = None, blank: int = -1,
                      fused_log_softmax: bool = True) -> Tuple[Tensor, Tensor]:
    """The RNN-T lattice: blank and emit log-probabilities of every node.

    Args:
        logits: (B, T, U+1, V) joiner output (or log-probs if ``fused_log_softmax=False``).
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
    blank = check_inputs(logits, targets, logit_lengths, target_lengths, blank, "none", check_nan=False)
    edges, _ = _lattice(logits, targets, logit_lengths, target_lengths, blank, fused_log_softmax)
    return edges[..., BLANK], edges[..., EMIT]


def delay_penalty_offsets(logit_lengths: Tensor, T: int, delay_penalty: float,
                          dtype: torch.dtype = torch.float64) -> Tensor:
    """k2's symbol-delay penalty as log-weights added to the emit edges: (B, T).

    ``offsets[b, t] = delay_penalty * ((T_b - 1) / 2 - t)`` with T_b =
    ``logit_lengths[b]``, the form of k2's ``rnnt_loss(..., delay_penalty)``
    (k2/python/k2/rnnt_loss.py, ``px += penalty``; k2-fsa/k2 #955). Every path
    emits each token once, so a path's score grows by delay_penalty times
    (U_b (T_b - 1) / 2 - sum of its emission frames): early emission is
    rewarded, late emission penalised, and the centring at (T_b - 1) / 2 keeps
    the total near 0 for emissions spread over the utterance. Entries with
    t >= T_b are meaningless (those edges are masked anyway).
    """
    check_latency_options(0.0, delay_penalty)
    if not isinstance(logit_lengths, Tensor) or logit_lengths.dim() != 1:
        got = tuple(logit_lengths.shape) if isinstance(logit_lengths, Tensor) else type(logit_lengths).__name__
        raise ValueError(f"logit_lengths must be a 1-D tensor (B,), got {got}")
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    dev = logit_lengths.device
    centre = (logit_lengths.to(dev, torch.float64) - 1) / 2
    offsets = centre.view(-1, 1) - torch.arange(T, device=dev, dtype=torch.float64).view(1, T)
    return (offsets * delay_penalty).to(dtype)


def alignment_paths(T: int, U: int) -> Iterator[List[Edge]]:
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
# One utterance: the (T, U+1) tables the notebooks draw
# --------------------------------------------------------------------------


@dataclass
class Lattice:
    """Every table of one utterance's lattice, each (T, U+1) unless noted.

    Attributes:
        blank_lp: log P(blank | t, u).
        emit_lp: log P(token u+1 | t, u); -inf in column U (nothing left to emit).
        log_alpha: log-prob of all partial alignments from (0, 0) to (t, u).
        log_beta: log-prob of all ways to finish from (t, u), final blank included.
        log_prob: float, log P(tokens | input) = log_beta[0, 0].
        node_posterior: probability that the alignment passes through (t, u).
        blank_posterior, emit_posterior: probability that it uses that edge.
    """

    blank_lp: Tensor
    emit_lp: Tensor
    log_alpha: Tensor
    log_beta: Tensor
    log_prob: float
    node_posterior: Tensor
    blank_posterior: Tensor
    emit_posterior: Tensor


@dataclass
class LatticeAlignment:
    """One alignment (path) through the lattice.

    Attributes:
        path: the T + U edges in order, each ``(t, u, kind)`` leaving node
            (t, u); the last is ``(T-1, U, "blank")``.
        log_prob: float, log-probability of this one path.
        token_frames: for each token u, the frame t of its emit edge.
        blank_lp, emit_lp: (T, U+1) lattice it was found in (set by
            :func:`forced_align`, for drawing).
    """

    path: List[Edge]
    log_prob: float
    token_frames: List[int]
    blank_lp: Optional[Tensor] = None
    emit_lp: Optional[Tensor] = None

    @property
    def nodes(self) -> List[Tuple[int, int]]:
        """The T + U nodes visited, (0, 0) first, (T-1, U) last."""
        return [(t, u) for t, u, _ in self.path]


def utterance_lattice(logits: Tensor, tokens: Union[Sequence[int], Tensor], blank: int = -1,
                      fused_log_softmax: bool = True) -> Tuple[Tensor, Tensor]:
    """Blank and emit log-probs of one utterance: :func:`lattice_log_probs` with B = 1.

    Args:
        logits: (T, U+1, V) joiner output for this utterance.
        tokens: the U target tokens (no blank).
        blank: blank index (negative counts from the end).
        fused_log_softmax: ``False`` if ``logits`` are log-probs already.

    Returns:
        ``(blank_lp, emit_lp)``, each (T, U+1).
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (T, U+1, V) for one utterance, got shape {tuple(logits.shape)}")
    if not isinstance(tokens, Tensor):
        tokens = torch.tensor([int(x) for x in tokens], dtype=torch.long)
    if tokens.is_floating_point():
        raise ValueError(f"tokens must be integers, got {tokens.dtype}")
    tokens = tokens.to(logits.device).reshape(1, -1)
    blank_lp, emit_lp = lattice_log_probs(
        logits[None], tokens.long(), blank=blank, fused_log_softmax=fused_log_softmax)
    return blank_lp[0], emit_lp[0]


def _check_tables(blank_lp: Tensor, emit_lp: Tensor) -> None:
    if blank_lp.dim() != 2 or emit_lp.shape != blank_lp.shape:
        raise ValueError(
            f"blank_lp and emit_lp must both be (T, U+1), got {tuple(blank_lp.shape)} and {tuple(emit_lp.shape)}")
    if blank_lp.shape[0] < 1 or blank_lp.shape[1] < 1:
        raise ValueError(f"the lattice needs T >= 1 and U+1 >= 1, got (T, U+1) = {tuple(blank_lp.shape)}")


def _logaddexp(a: float, b: float) -> float:
    """log(e^a + e^b) without overflow; -inf (probability 0) is the identity."""
    if a == NEG_INF or b == NEG_INF:
        return max(a, b)
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


# Sum over paths (log-probabilities) or keep the best one (Viterbi scores):
# the recursions are the same, only the way two incoming scores combine differs.
_SEMIRINGS = {"log": _logaddexp, "max": max}


def _semiring(name: str):
    if name not in _SEMIRINGS:
        raise ValueError(f"semiring must be 'log' or 'max', got {name!r}")
    return _SEMIRINGS[name]


def log_alpha(blank_lp: Tensor, emit_lp: Tensor, semiring: str = "log") -> Tensor:
    """alpha[t, u]: log-prob of all partial alignments from (0, 0) to (t, u).

    Every path into (t, u) arrives by a blank from (t-1, u) or by an emit from
    (t, u-1), so alpha fills the grid row by row from alpha[0, 0] = log 1.

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.
        semiring: ``"log"`` sums over paths; ``"max"`` keeps the best one.

    Returns:
        (T, U+1), dtype and device of ``blank_lp`` (computed in float64).
    """
    plus = _semiring(semiring)
    _check_tables(blank_lp, emit_lp)
    blank, emit = blank_lp.tolist(), emit_lp.tolist()
    T, U1 = len(blank), len(blank[0])
    alpha = [[NEG_INF] * U1 for _ in range(T)]
    alpha[0][0] = 0.0  # the empty path, probability 1
    for t in range(T):
        for u in range(U1):
            if t > 0:
                alpha[t][u] = plus(alpha[t][u], alpha[t - 1][u] + blank[t - 1][u])
            if u > 0:
                alpha[t][u] = plus(alpha[t][u], alpha[t][u - 1] + emit[t][u - 1])
    return blank_lp.new_tensor(alpha)


def log_beta(blank_lp: Tensor, emit_lp: Tensor, semiring: str = "log") -> Tensor:
    """beta[t, u]: log-prob of all ways to finish from (t, u), final blank included.

    The mirror image of :func:`log_alpha`: every path out of (t, u) leaves by a
    blank to (t+1, u) or an emit to (t, u+1). Paths end with the blank out of
    (T-1, U), so beta[T-1, U] = blank_lp[T-1, U] and log P = beta[0, 0].

    Args and result as for :func:`log_alpha`.
    """
    plus = _semiring(semiring)
    _check_tables(blank_lp, emit_lp)
    blank, emit = blank_lp.tolist(), emit_lp.tolist()
    T, U1 = len(blank), len(blank[0])
    beta = [[NEG_INF] * U1 for _ in range(T)]
    beta[T - 1][U1 - 1] = blank[T - 1][U1 - 1]  # the final blank
    for t in reversed(range(T)):
        for u in reversed(range(U1)):
            if t < T - 1:
                beta[t][u] = plus(beta[t][u], blank[t][u] + beta[t + 1][u])
            if u < U1 - 1:
                beta[t][u] = plus(beta[t][u], emit[t][u] + beta[t][u + 1])
    return blank_lp.new_tensor(beta)


def lattice_tables(blank_lp: Tensor, emit_lp: Tensor) -> Lattice:
    """Alpha, beta and posteriors of one utterance's lattice.

    The posterior of edge a -> b is alpha(a) * P(edge) * beta(b) / P: the share
    of the total probability carried by the alignments that use it.

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.
    """
    blank_lp, emit_lp = blank_lp.detach(), emit_lp.detach()
    alpha, beta = log_alpha(blank_lp, emit_lp), log_beta(blank_lp, emit_lp)
    log_prob = beta[0, 0]
    # beta where each edge lands. A blank off the last frame leaves the lattice:
    # only the final one, out of (T-1, U), is part of a path (log 1 after it).
    after_blank = torch.cat([beta[1:], torch.full_like(beta[:1], NEG_INF)])
    after_blank[-1, -1] = 0.0
    after_emit = torch.cat([beta[:, 1:], torch.full_like(beta[:, :1], NEG_INF)], dim=1)
    blank_post = torch.exp(alpha + blank_lp + after_blank - log_prob)
    emit_post = torch.exp(alpha + emit_lp + after_emit - log_prob)
    return Lattice(
        blank_lp=blank_lp, emit_lp=emit_lp, log_alpha=alpha, log_beta=beta, log_prob=float(log_prob),
        # Every path through a node leaves it by exactly one of its two edges.
        node_posterior=blank_post + emit_post, blank_posterior=blank_post, emit_posterior=emit_post,
    )


def expected_emission_frames(blank_lp: Tensor, emit_lp: Tensor) -> Tensor:
    """Expected frame at which each token is emitted, under the lattice posterior: (U,).

    Every alignment emits token u exactly once, at some frame t, so the emit
    posteriors of column u sum to 1 over t and

        E[t_u] = sum_t t * posterior(emit edge (t, u) -> (t, u+1)).

    A latency regulariser that moves probability mass to earlier emissions
    lowers these numbers (compare two models, or a lattice with and without
    :func:`delay_penalty_offsets` added to ``emit_lp``).

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.

    Returns:
        (U,) float frames, dtype of ``blank_lp`` (empty for U = 0).
    """
    lat = lattice_tables(blank_lp, emit_lp)
    post = lat.emit_posterior[:, :-1].double()  # column U has no emit edge
    frames = torch.arange(post.shape[0], dtype=torch.float64, device=post.device)
    return (frames @ post).to(blank_lp.dtype)


def token_frames(path: Sequence[Edge]) -> List[int]:
    """Frame at which each token is emitted, from a path of ``(t, u, kind)`` edges."""
    return [t for t, _, kind in path if kind == "emit"]


def path_log_probs(blank_lp: Tensor, emit_lp: Tensor) -> List[Tuple[List[Edge], float]]:
    """Every alignment of a (T, U+1) lattice with its log-probability: ``[(path, log_p), ...]``.

    Paths come from :func:`alignment_paths`; a path's log-probability is the sum
    of its edges' log-probabilities, ``blank_lp[t, u]`` or ``emit_lp[t, u]``.
    """
    T, U1 = blank_lp.shape
    b, e = blank_lp.detach().double().cpu(), emit_lp.detach().double().cpu()
    return [(path, float(sum(b[t, u] if k == "blank" else e[t, u] for t, u, k in path)))
            for path in alignment_paths(T, U1 - 1)]


def viterbi(blank_lp: Tensor, emit_lp: Tensor) -> LatticeAlignment:
    """The single most probable alignment of one utterance.

    :func:`log_alpha` with max in place of logaddexp gives the best score into
    every node; the path is read back from the final blank, at each node
    taking the predecessor that realises its score.

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.
    """
    best = log_alpha(blank_lp, emit_lp, semiring="max").tolist()
    blank, emit = blank_lp.tolist(), emit_lp.tolist()
    t, u = len(blank) - 1, len(blank[0]) - 1
    log_prob = best[t][u] + blank[t][u]  # then the final blank
    if log_prob == NEG_INF:
        raise ValueError("every alignment has probability 0; there is no best path")
    path = [(t, u, "blank")]
    while (t, u) != (0, 0):
        via_blank = best[t - 1][u] + blank[t - 1][u] if t > 0 else NEG_INF
        via_emit = best[t][u - 1] + emit[t][u - 1] if u > 0 else NEG_INF
        if via_blank >= via_emit:  # ties go to blank: emit as late as the scores allow
            t -= 1
            path.append((t, u, "blank"))
        else:
            u -= 1
            path.append((t, u, "emit"))
    path.reverse()
    return LatticeAlignment(path=path, log_prob=log_prob, token_frames=token_frames(path))


def forced_align(model: torch.nn.Module, features: Tensor, feature_length: Union[int, Tensor],
                 tokens: Union[Sequence[int], Tensor], blank: int) -> LatticeAlignment:
    """Best alignment of a known transcript through an RNN-T model.

    Runs ``model.transcribe``, ``model.predict`` on ``[blank] + tokens`` (the
    prediction network starts from blank, as in torchaudio's training recipe
    and ``RNNTBeamSearch``), ``model.join``, then :func:`viterbi`. Works with
    any model that has torchaudio's ``RNNT`` interface. The model runs in
    eval mode (no dropout); its mode is restored afterwards.

    Args:
        model: an RNN-T model (``transcribe``, ``predict``, ``join``).
        features: (T_in + R, D) or (1, T_in + R, D) input frames, right-padded
            with the model's R right-context frames, as ``transcribe`` expects.
        feature_length: T_in, the number of valid frames (without R).
        tokens: the U transcript tokens (no blank).
        blank: the model's blank index.

    Returns:
        :class:`LatticeAlignment`; ``token_frames`` are in encoder frames (after time
        reduction: multiply by the stride for input frames), each in
        [0, T_enc), non-decreasing. ``blank_lp`` and ``emit_lp`` hold the lattice.
    """
    if features.dim() == 2:
        features = features[None]
    if features.dim() != 3 or features.shape[0] != 1:
        raise ValueError(f"features must be (T_in + R, D) or (1, T_in + R, D), got {tuple(features.shape)}")
    tokens = [int(x) for x in torch.as_tensor(tokens).reshape(-1).tolist()]
    device = features.device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            lengths = torch.as_tensor([int(feature_length)], device=device)
            enc, enc_lengths = model.transcribe(features, lengths)
            pred_in = torch.tensor([[blank] + tokens], dtype=torch.long, device=device)
            pred_lengths = torch.tensor([len(tokens) + 1], device=device)
            pred, pred_lengths, _ = model.predict(pred_in, pred_lengths, None)
            joint, _, _ = model.join(enc, enc_lengths, pred, pred_lengths)  # (1, T_enc, U+1, V)
            T_enc = int(enc_lengths[0])
            if T_enc < 1:
                raise ValueError(f"the encoder produced no frames from feature_length={int(feature_length)}")
            blank_lp, emit_lp = utterance_lattice(joint[0, :T_enc], tokens, blank)
            ali = viterbi(blank_lp, emit_lp)
    finally:
        model.train(was_training)
    ali.blank_lp, ali.emit_lp = blank_lp, emit_lp
    return ali
