"""How well does a trained model recognize? Edit distance, the token error rate, and :func:`evaluate`.

* :func:`edit_distance`, :func:`token_error_rate`: the token error rate (TER), i.e. the
  Levenshtein distance between reference and hypothesis token sequences (substitutions,
  deletions, insertions) summed over a set and divided by the number of reference tokens.
* :func:`evaluate`: decode utterances in full context or chunk by chunk, greedily or by beam
  search (:mod:`emformer_edu.rnnt.recognize`), and score them.

Notation: B batch, T frames, U target length, V vocabulary (incl. blank), F mel bins, R right context.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch

from ..checks import check_finite
from ..data.corpus import Utterance
from ..data.features import FeatureExtractor
from ..rnnt.recognize import decode


def _as_list(seq) -> list:
    return seq.tolist() if isinstance(seq, torch.Tensor) else list(seq)


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance: fewest substitutions + deletions + insertions turning ``ref`` into ``hyp``.

    ``ref`` and ``hyp`` are token sequences (lists, tuples, strings or 1-D tensors).
    One row of the dynamic-programming table is kept at a time: O(len(ref) * len(hyp)) time.
    """
    ref, hyp = _as_list(ref), _as_list(hyp)
    prev = list(range(len(hyp) + 1))  # distance from ref[:0] to hyp[:j]: j insertions
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1,  # deletion of r
                         cur[j - 1] + 1,  # insertion of h
                         prev[j - 1] + (r != h))  # match or substitution
        prev = cur
    return prev[-1]


def token_error_rate(refs: Sequence[Sequence], hyps: Sequence[Sequence]) -> float:
    """Corpus TER: ``sum(edit_distance) / sum(len(ref))`` as a fraction (0.05 = 5 %).

    Summing before dividing weights every reference token equally (long utterances count
    more), as word error rates are usually reported.
    """
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps must have the same length, got {len(refs)} and {len(hyps)}.")
    total = sum(len(_as_list(r)) for r in refs)
    if total == 0:
        raise ValueError("references hold no tokens: the TER is undefined.")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total


@dataclass
class TERResult:
    """Decoding results for a set of utterances.

    refs, hyps: token id lists; timesteps: encoder frame of every hypothesis token;
    errors: summed edit distance; ref_tokens: number of reference tokens.
    """

    refs: List[List[int]]
    hyps: List[List[int]]
    timesteps: List[List[int]]
    errors: int
    ref_tokens: int

    @property
    def ter(self) -> float:
        """Token error rate as a fraction."""
        return self.errors / self.ref_tokens

    @property
    def sentence_errors(self) -> int:
        """Utterances whose hypothesis differs from the reference."""
        return sum(r != h for r, h in zip(self.refs, self.hyps))

    def __repr__(self) -> str:
        return (f"TERResult(ter={100 * self.ter:.2f}%, errors={self.errors}/{self.ref_tokens} tokens, "
                f"wrong utterances={self.sentence_errors}/{len(self.refs)})")


@torch.no_grad()
def evaluate(
    model, utterances: Sequence[Utterance], extractor: FeatureExtractor, blank: int,
    beam_width: Optional[int] = None, streaming: bool = False, batch_size: int = 64,
) -> TERResult:
    """TER of ``model`` on ``utterances`` (e.g. a held-out :class:`SyntheticSpeechDataset`).

    Args:
        extractor: the feature extractor (with the statistics) the model was trained with;
            its ``right_padding`` must equal the model's ``right_context_length``.
        beam_width: ``None`` for greedy decoding, else beam search with this width.
        streaming: decode chunk by chunk (``transcribe_streaming``) instead of in full context.
    The model is put in eval mode for the call and restored afterwards.

    Raises ``ValueError`` naming the utterance whose waveform holds NaN or inf (or whose features
    the extractor refuses): decoding garbage features gives a stream of insertions that can push
    the TER to thousands of percent from one utterance alone, hiding how the model does on the rest.
    """
    utterances = list(utterances)
    if sum(u.tokens.numel() for u in utterances) == 0:
        raise ValueError(f"the {len(utterances)} reference transcripts hold no tokens: the TER is undefined.")
    for i, u in enumerate(utterances):  # before decoding anything: fail in a second, not after minutes
        check_finite(u.waveform, f"utterance {i} waveform")
    R = model.transcriber.right_context_length
    if extractor.right_padding != R:
        raise ValueError(
            f"the feature extractor pads {extractor.right_padding} frames but the model's right context is {R}: "
            f"use FeatureExtractor(stats, right_padding={R})."
        )
    was_training = model.training
    model.eval()
    try:
        refs, hyps, times = [], [], []
        for i in range(0, len(utterances), batch_size):
            part = utterances[i : i + batch_size]
            try:
                feats, lengths = extractor.batch([u.waveform for u in part])  # (B, T_max + R, F), (B,)
            except ValueError as err:  # the extractor counts from 0 in each batch: give the offset
                raise ValueError(f"utterances {i} to {i + len(part) - 1} (item k is utterance {i} + k): {err}") from err
            tok, ts = decode(model, feats, lengths, blank, beam_width, streaming)
            refs += [u.tokens.tolist() for u in part]
            hyps += tok
            times += ts
    finally:
        model.train(was_training)
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    return TERResult(refs, hyps, times, errors, sum(len(r) for r in refs))


