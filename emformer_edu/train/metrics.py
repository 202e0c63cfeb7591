"""How well does a trained model recognize? Edit distance, token, character and word error rates, :func:`evaluate`.

* :func:`edit_distance`, :func:`token_error_rate`: the token error rate (TER), i.e. the
  Levenshtein distance between reference and hypothesis token sequences (substitutions,
  deletions, insertions) summed over a set and divided by the number of reference tokens.
* :func:`character_error_rate` (CER) and :func:`word_error_rate` (WER): the same over the
  characters of texts (spaces included) and over their words (``text.split()``).
* :func:`evaluate`: decode utterances in full context or chunk by chunk, greedily or by beam
  search (:mod:`emformer_edu.rnnt.recognize`), and score them; given the vocabulary it also
  writes the texts, for CER and WER.

Notation: B batch, T frames, U target length, V vocabulary (incl. blank), F mel bins, R right context.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..checks import check_finite
from ..data.corpus import Utterance, Vocabulary
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


def matched_pairs(ref: Sequence, hyp: Sequence) -> List[Tuple[int, int]]:
    """Pairs ``(i, j)`` with ``ref[i] == hyp[j]`` on one cheapest edit path (the same table as
    :func:`edit_distance`, kept whole and traced back from the end): which hypothesis token *is* which
    reference token, for timing the tokens a recognizer got right."""
    ref, hyp = _as_list(ref), _as_list(hyp)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(len(hyp) + 1)] for i in range(len(ref) + 1)]
    for i in range(1, len(ref) + 1):
        for j in range(1, len(hyp) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs, i, j = [], len(ref), len(hyp)
    while i > 0 and j > 0:
        if d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):  # diagonal first: matches over gaps
            if ref[i - 1] == hyp[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


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


def character_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus CER: character edit distance over reference characters, spaces included (0.05 = 5 %)."""
    return token_error_rate(list(refs), list(hyps))


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER: edit distance between the word lists ``text.split()``, over reference words.

    A word with one wrong letter is one substituted word; a missing space merges two words into
    one wrong word (a substitution and a deletion), so WER is usually several times the CER.
    """
    return token_error_rate([r.split() for r in refs], [h.split() for h in hyps])


@dataclass
class TERResult:
    """Decoding results for a set of utterances.

    refs, hyps: token id lists; timesteps: encoder frame of every hypothesis token;
    errors: summed edit distance; ref_tokens: number of reference tokens;
    ref_texts, hyp_texts: the same as texts (``vocab.decode``), or ``None`` if :func:`evaluate`
    had no vocabulary; they give :attr:`cer` and :attr:`wer`.
    """

    refs: List[List[int]]
    hyps: List[List[int]]
    timesteps: List[List[int]]
    errors: int
    ref_tokens: int
    ref_texts: Optional[List[str]] = None
    hyp_texts: Optional[List[str]] = None

    @property
    def ter(self) -> float:
        """Token error rate as a fraction."""
        return self.errors / self.ref_tokens

    @property
    def cer(self) -> Optional[float]:
        """Character error rate of the texts (for a character vocabulary, the TER); ``None`` without texts."""
        return None if self.ref_texts is None else character_error_rate(self.ref_texts, self.hyp_texts)

    @property
    def wer(self) -> Optional[float]:
        """Word error rate of the texts (words: ``text.split()``); ``None`` without texts."""
        return None if self.ref_texts is None else word_error_rate(self.ref_texts, self.hyp_texts)

    def scores(self) -> Dict[str, float]:
        """``{"ter": ...}``, plus ``"cer"`` and ``"wer"`` when there are texts (a training history entry)."""
        return dict(ter=self.ter) if self.ref_texts is None else dict(ter=self.ter, cer=self.cer, wer=self.wer)

    @property
    def sentence_errors(self) -> int:
        """Utterances whose hypothesis differs from the reference."""
        return sum(r != h for r, h in zip(self.refs, self.hyps))

    def __repr__(self) -> str:
        texts = "" if self.ref_texts is None else f"cer={100 * self.cer:.2f}%, wer={100 * self.wer:.2f}%, "
        return (f"TERResult(ter={100 * self.ter:.2f}%, {texts}errors={self.errors}/{self.ref_tokens} tokens, "
                f"wrong utterances={self.sentence_errors}/{len(self.refs)})")


@torch.no_grad()
def evaluate(
    model, utterances: Sequence[Utterance], extractor: FeatureExtractor, blank: int,
    beam_width: Optional[int] = None, streaming: bool = False, batch_size: int = 64,
    vocab: Optional[Vocabulary] = None,
) -> TERResult:
    """TER of ``model`` on ``utterances`` (e.g. a held-out :class:`SyntheticSpeechDataset`).

    Args:
        extractor: the feature extractor (with the statistics) the model was trained with;
            its ``right_padding`` must equal the model's ``right_context_length``.
        beam_width: ``None`` for greedy decoding, else beam search with this width.
        streaming: decode chunk by chunk (``transcribe_streaming``) instead of in full context.
        vocab: if given, references and hypotheses are also decoded to text, for the result's
            ``cer`` and ``wer`` (spoken corpus).
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
    result = TERResult(refs, hyps, times, errors, sum(len(r) for r in refs))
    if vocab is not None:
        result.ref_texts, result.hyp_texts = [vocab.decode(r) for r in refs], [vocab.decode(h) for h in hyps]
    return result


