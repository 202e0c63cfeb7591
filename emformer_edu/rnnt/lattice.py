"""The RNN-T alignment lattice of ONE utterance: the tables the notebooks draw.

Notation: T frames (joiner time steps), U target length, V vocabulary.

The lattice is the T x (U+1) grid of nodes (t, u) = "at frame t, u tokens
emitted so far". From every node two edges leave: *blank* to (t+1, u) and
*emit* of the next token to (t, u+1); an alignment runs from (0, 0) to
(T-1, U) and ends with one final blank. The edge log-probabilities come from
:func:`emformer_edu.loss.lattice_log_probs` and every recursion from
:mod:`emformer_edu.loss`; this module only slices one utterance out and adds
the Viterbi back-trace and forced alignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from .loss import alignment_paths, alpha_beta, edge_posteriors, lattice_log_probs

__all__ = [
    "Lattice",
    "LatticeAlignment",
    "utterance_lattice",
    "lattice_tables",
    "viterbi",
    "token_frames",
    "path_log_probs",
    "forced_align",
]

Edge = Tuple[int, int, str]  # (t, u, "blank" | "emit"): the edge leaving node (t, u)


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


def _as_tables(blank_lp: Tensor, emit_lp: Tensor):
    if blank_lp.dim() != 2 or emit_lp.shape != blank_lp.shape:
        raise ValueError(
            f"blank_lp and emit_lp must both be (T, U+1), got {tuple(blank_lp.shape)} and {tuple(emit_lp.shape)}")
    T, U1 = blank_lp.shape
    if T < 1 or U1 < 1:
        raise ValueError(f"the lattice needs T >= 1 and U+1 >= 1, got (T, U+1) = ({T}, {U1})")
    lengths = (torch.tensor([T], device=blank_lp.device), torch.tensor([U1 - 1], device=blank_lp.device))
    return blank_lp.detach()[None], emit_lp.detach()[None], lengths


def utterance_lattice(
    logits: Tensor,
    tokens: Union[Sequence[int], Tensor],
    blank: int = -1,
    fused_log_softmax: bool = True,
) -> Tuple[Tensor, Tensor]:
    """Blank and emit log-probs of one utterance.

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


def lattice_tables(blank_lp: Tensor, emit_lp: Tensor) -> Lattice:
    """Alpha, beta and posteriors of one utterance's lattice.

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.
    """
    b, e, (ll, tl) = _as_tables(blank_lp, emit_lp)
    T = b.shape[1]
    alpha, beta, log_prob = alpha_beta(b, e, ll, tl)
    post_blank, post_emit, _ = edge_posteriors(b, e, ll, tl)
    return Lattice(
        blank_lp=b[0],
        emit_lp=e[0],
        log_alpha=alpha[0, :T],  # drop the sink row
        log_beta=beta[0, :T],
        log_prob=float(log_prob[0]),
        # Every path through a node leaves it by exactly one of its two edges.
        node_posterior=post_blank[0] + post_emit[0],
        blank_posterior=post_blank[0],
        emit_posterior=post_emit[0],
    )


def token_frames(path: Sequence[Edge]) -> List[int]:
    """Frame at which each token is emitted, from a path of ``(t, u, kind)`` edges."""
    return [t for t, _, kind in path if kind == "emit"]


def path_log_probs(blank_lp, emit_lp) -> List[tuple]:
    """Every alignment of a ``(T, U+1)`` lattice with its log-probability: ``[(path, log_p), ...]``.

    Paths come from :func:`~emformer_edu.rnnt.loss.alignment_paths`; a path's log-probability is the sum
    of its edges' log-probabilities, ``blank_lp[t, u]`` or ``emit_lp[t, u]``.
    """
    T, U1 = blank_lp.shape
    b, e = blank_lp.detach().double().cpu(), emit_lp.detach().double().cpu()
    return [(path, float(sum(b[t, u] if k == "blank" else e[t, u] for t, u, k in path)))
            for path in alignment_paths(T, U1 - 1)]


def viterbi(blank_lp: Tensor, emit_lp: Tensor) -> LatticeAlignment:
    """The single most probable alignment of one utterance.

    Max-product version of alpha (same wavefront as the loss, with max in
    place of logaddexp), then a back-trace from the final blank.

    Args:
        blank_lp, emit_lp: (T, U+1), e.g. from :func:`utterance_lattice`.
    """
    b, e, (ll, tl) = _as_tables(blank_lp, emit_lp)
    T, U1 = b.shape[1:]
    U = U1 - 1
    best, _, _ = alpha_beta(b, e, ll, tl, semiring="max")
    best, blank_l, emit_l = best[0].tolist(), b[0].tolist(), e[0].tolist()
    if best[T][U] == float("-inf"):
        raise ValueError("every alignment has probability 0; there is no best path")
    path = [(T - 1, U, "blank")]
    t, u = T - 1, U
    while (t, u) != (0, 0):
        # Which predecessor realises best[t][u]? Ties go to blank (emit later).
        via_blank = best[t - 1][u] + blank_l[t - 1][u] if t > 0 else float("-inf")
        via_emit = best[t][u - 1] + emit_l[t][u - 1] if u > 0 else float("-inf")
        if via_blank >= via_emit:
            t -= 1
            path.append((t, u, "blank"))
        else:
            u -= 1
            path.append((t, u, "emit"))
    path.reverse()
    return LatticeAlignment(path=path, log_prob=best[T][U], token_frames=token_frames(path))


def forced_align(
    model: torch.nn.Module,
    features: Tensor,
    feature_length: Union[int, Tensor],
    tokens: Union[Sequence[int], Tensor],
    blank: int,
) -> LatticeAlignment:
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
