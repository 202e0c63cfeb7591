"""How well does a trained model recognize, and *when* does it emit? TER and emission delays.

* :func:`edit_distance`, :func:`token_error_rate`: the token error rate (TER), i.e. the
  Levenshtein distance between reference and hypothesis token sequences (substitutions,
  deletions, insertions) summed over a set and divided by the number of reference tokens.
* :func:`streaming_chunks`, :func:`decode_streaming`, :func:`decode`, :func:`evaluate`:
  decode synthetic utterances in full context (``model.transcribe``) or chunk by chunk
  (``model.transcribe_streaming``), greedily or with :class:`~emformer_edu.decoding.RNNTBeamSearch`,
  and score them.
* :func:`emission_delays`, :func:`compare_alignments`: put each emitted token next to where the
  synthetic generator really spoke it.

Time bookkeeping. Feature frame ``t`` is 10 ms (hop 160 samples at 16 kHz). After time
reduction by ``stride``, encoder frame ``k`` covers input frames ``[k * stride, (k + 1) * stride)``.
A token emitted at encoder frame ``k`` is compared with the true span ``[start_frame, end_frame)``
of :class:`~emformer_edu.synthetic.Alignment`:

* ``start_delay = k * stride - start_frame``: from the true onset to the first input frame of
  the emitting encoder frame;
* ``end_delay = (k + 1) * stride - end_frame``: from the true end of the token to the end of
  the emitting encoder frame (both boundaries exclusive); negative when the model commits
  to a token before it is over.

These say *where in the audio* the model decides. A streaming recognizer can only decide once
it holds the whole chunk: encoder frame ``k`` lies in segment ``c = k * stride // segment_length``,
which is computed when input frames up to ``(c + 1) * segment_length + right_context_length``
have arrived (the segment and its look-ahead). Hence

* ``latency = (c + 1) * segment_length + right_context_length - end_frame``: input frames from
  the true end of the token until a streaming recognizer has the audio to emit it (ignoring
  compute time and the feature window's 12.5 ms look-ahead).

Notation: B batch, T frames, U target length, V vocabulary (incl. blank), D model dim, F mel bins.
"""
import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch

from .decoding import RNNTBeamSearch, greedy_decode, greedy_search
from .features import HOP_LENGTH, SAMPLE_RATE, FeatureExtractor
from .synthetic import Alignment, Utterance

__all__ = [
    "edit_distance",
    "token_error_rate",
    "streaming_chunks",
    "decode_streaming",
    "decode",
    "TERResult",
    "evaluate",
    "EmissionDelays",
    "emission_delays",
    "forced_alignment_frames",
    "compare_alignments",
]

FRAME_MS = 1000.0 * HOP_LENGTH / SAMPLE_RATE  # 10 ms per input frame


# ----------------------------------------------------------------------------- TER
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


# ----------------------------------------------------------------------------- decoding
def streaming_chunks(
    features: torch.Tensor, segment_length: int, right_context_length: int
) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Cut one utterance into the chunks ``model.transcribe_streaming`` takes.

    Args:
        features: ``(T + R, F)`` or ``(1, T + R, F)``, as :class:`FeatureExtractor` returns
            them: T real frames followed by the R = ``right_context_length`` zero frames.
        segment_length, right_context_length: in input frames (the model's settings).

    Returns:
        ``[(chunk (1, segment_length + R, F), length (1,)), ...]``: chunk i holds frames
        ``[i * segment_length, (i + 1) * segment_length + R)``; the last one is zero-padded
        and its length counts only real frames plus R, so the padding stays out of attention
        and the encoder reports how many of its output frames are real.
    """
    if features.dim() == 3:
        if features.size(0) != 1:
            raise ValueError(f"features must be one utterance, (T + R, F) or (1, T + R, F), got {tuple(features.shape)}.")
        features = features[0]
    if features.dim() != 2:
        raise ValueError(f"features must have shape (T + R, F), got {tuple(features.shape)}.")
    total = features.size(0)
    T = total - right_context_length
    if T < 1:
        raise ValueError(
            f"features hold {total} frames, which is not more than right_context_length ({right_context_length}): "
            "no real frames to decode (did you forget the right padding or pass an empty utterance?)."
        )
    chunk_size = segment_length + right_context_length
    out = []
    for start in range(0, T, segment_length):
        chunk = features[start : start + chunk_size]
        valid = chunk.size(0)
        chunk = torch.nn.functional.pad(chunk, (0, 0, 0, chunk_size - valid))
        out.append((chunk.unsqueeze(0), torch.tensor([valid], device=features.device)))
    return out


@torch.no_grad()
def decode_streaming(
    model, features: torch.Tensor, blank: int, beam_width: Optional[int] = None, beam_search: Optional[RNNTBeamSearch] = None
) -> Tuple[List[int], List[int]]:
    """Decode one utterance chunk by chunk, as a live recognizer would.

    Each chunk goes through ``model.transcribe_streaming`` (carrying the Emformer state) and
    the search continues frame-synchronously from the previous chunk's result: greedy
    (:func:`~emformer_edu.decoding.greedy_search`) when ``beam_width`` is ``None``, else beam
    search (:meth:`RNNTBeamSearch.search`, i.e. ``RNNTBeamSearch.infer`` split in its two steps
    so that the last chunk's zero-padded encoder frames are dropped before searching).

    Args:
        features: ``(T + R, F)`` for one utterance (R zero frames at the end).
        blank: blank index. beam_width: ``None`` for greedy, else the beam size.
        beam_search: reuse this searcher (its model must be ``model``).
    Returns:
        ``(tokens, timesteps)``: emitted token ids and the encoder frame of each.
    """
    transcriber = model.transcriber
    chunks = streaming_chunks(features, transcriber.segment_length, transcriber.right_context_length)
    state, greedy, hyps = None, None, None
    if beam_width is not None and beam_search is None:
        beam_search = RNNTBeamSearch(model, blank)
    for chunk, length in chunks:
        enc, enc_len, state = model.transcribe_streaming(chunk, length, state)
        if beam_width is None:
            greedy = greedy_search(model, enc, enc_len, blank, state=greedy)
        else:
            hyps = beam_search.search(enc[:, : int(enc_len[0])], beam_width, hyps)
    if beam_width is None:
        return greedy.tokens[0], greedy.timesteps[0]
    best = hyps[0]
    # Drop the blank that seeded the predictor (timestep -1).
    return list(best.tokens[1:]), list(best.timesteps[1:])


@torch.no_grad()
def decode(
    model, features: torch.Tensor, lengths: torch.Tensor, blank: int,
    beam_width: Optional[int] = None, streaming: bool = False,
) -> Tuple[List[List[int]], List[List[int]]]:
    """Decode a padded batch ``features (B, T_max + R, F)``, ``lengths (B,)`` (real frames).

    Full-context greedy decoding is batched; beam search and streaming go one utterance at
    a time (each utterance cut to its own ``T_b + R`` frames). Returns per-utterance
    ``(tokens, timesteps)`` lists (token ids without blanks, encoder frame of each).
    """
    if not streaming and beam_width is None:
        return greedy_decode(model, features, lengths, blank)
    R = model.transcriber.right_context_length
    searcher = RNNTBeamSearch(model, blank) if beam_width is not None else None
    tokens, timesteps = [], []
    for b in range(features.size(0)):
        x = features[b, : int(lengths[b]) + R]
        if streaming:
            tok, ts = decode_streaming(model, x, blank, beam_width, searcher)
        else:
            best = searcher(x, torch.tensor(int(lengths[b])), beam_width)[0]
            tok, ts = list(best.tokens[1:]), list(best.timesteps[1:])
        tokens.append(tok)
        timesteps.append(ts)
    return tokens, timesteps


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
    """
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
        utterances = list(utterances)
        for i in range(0, len(utterances), batch_size):
            part = utterances[i : i + batch_size]
            feats, lengths = extractor.batch([u.waveform for u in part])
            tok, ts = decode(model, feats, lengths, blank, beam_width, streaming)
            refs += [u.tokens.tolist() for u in part]
            hyps += tok
            times += ts
    finally:
        model.train(was_training)
    errors = sum(edit_distance(r, h) for r, h in zip(refs, hyps))
    return TERResult(refs, hyps, times, errors, sum(len(r) for r in refs))


# ----------------------------------------------------------------------------- alignments
@dataclass
class EmissionDelays:
    """Per-token emission frames against the true spans, pooled over utterances.

    All tensors have one entry per compared token (float64, input frames):
    ``start_delay``, ``end_delay`` and ``latency`` as defined in the module docstring
    (``latency`` is ``None`` unless the streaming geometry was given); ``inside`` (bool)
    whether the emitting encoder frame overlaps the true span. ``skipped`` counts utterances
    left out because the hypothesis differs from the reference (token i of a wrong
    hypothesis has no true span to compare with).
    """

    start_delay: torch.Tensor
    end_delay: torch.Tensor
    inside: torch.Tensor
    stride: int
    num_utterances: int
    skipped: int = 0
    source: str = ""
    latency: Optional[torch.Tensor] = None
    frame_ms: float = field(default=FRAME_MS)

    @property
    def num_tokens(self) -> int:
        return self.start_delay.numel()

    @staticmethod
    def _mean(x: Optional[torch.Tensor]) -> float:
        return float(x.double().mean()) if x is not None and x.numel() else math.nan

    @property
    def mean_start_delay_frames(self) -> float:
        return self._mean(self.start_delay)

    @property
    def mean_end_delay_frames(self) -> float:
        return self._mean(self.end_delay)

    @property
    def mean_latency_frames(self) -> float:
        return self._mean(self.latency)

    @property
    def mean_start_delay_ms(self) -> float:
        return self.mean_start_delay_frames * self.frame_ms

    @property
    def mean_end_delay_ms(self) -> float:
        return self.mean_end_delay_frames * self.frame_ms

    @property
    def mean_latency_ms(self) -> float:
        return self.mean_latency_frames * self.frame_ms

    @property
    def fraction_inside(self) -> float:
        """Share of tokens emitted at an encoder frame that overlaps the token's true span."""
        return self._mean(self.inside)

    def summary(self) -> str:
        name = f"{self.source}: " if self.source else ""
        latency = ("" if self.latency is None else
                   f"; streaming latency after token end {self.mean_latency_frames:.2f} frames = {self.mean_latency_ms:.1f} ms")
        return (
            f"{name}{self.num_tokens} tokens in {self.num_utterances} utterances ({self.skipped} skipped): "
            f"emitted {self.mean_start_delay_frames:.2f} frames = {self.mean_start_delay_ms:.1f} ms after the true onset, "
            f"{self.mean_end_delay_frames:.2f} frames = {self.mean_end_delay_ms:.1f} ms after the true end; "
            f"{100 * self.fraction_inside:.1f} % inside the true span{latency} "
            f"(stride {self.stride}: one encoder frame = {self.stride * self.frame_ms:.0f} ms)"
        )

    def __repr__(self) -> str:
        return f"EmissionDelays({self.summary()})"


def emission_delays(
    timesteps: Sequence[Sequence[int]], alignments: Sequence[Alignment], stride: int,
    hyps: Optional[Sequence[Sequence[int]]] = None, refs: Optional[Sequence[Sequence[int]]] = None,
    source: str = "", segment_length: Optional[int] = None, right_context_length: Optional[int] = None,
) -> EmissionDelays:
    """Compare emission frames with true alignments.

    Args:
        timesteps: per utterance, the encoder frame at which each token was emitted
            (from :func:`decode`, :func:`decode_streaming` or :func:`forced_alignment_frames`).
        alignments: per utterance, the generator's :class:`Alignment` (U tokens).
        stride: the model's ``time_reduction_stride`` (input frames per encoder frame).
        hyps, refs: if given, utterances whose hypothesis differs from the reference are
            skipped (counted in ``skipped``); otherwise every ``timesteps[i]`` must have as
            many entries as its alignment.
        source: a label for :meth:`EmissionDelays.summary`.
        segment_length, right_context_length: the model's streaming geometry in input frames;
            if both are given, ``latency`` is computed too.
    """
    if len(timesteps) != len(alignments):
        raise ValueError(f"timesteps and alignments must have one entry per utterance, got {len(timesteps)} and {len(alignments)}.")
    if (hyps is None) != (refs is None):
        raise ValueError("pass both hyps and refs, or neither.")
    if (segment_length is None) != (right_context_length is None):
        raise ValueError("pass both segment_length and right_context_length, or neither.")
    starts, ends, inside, latency, skipped = [], [], [], [], 0
    for i, (ts, al) in enumerate(zip(timesteps, alignments)):
        if hyps is not None and _as_list(hyps[i]) != _as_list(refs[i]):
            skipped += 1
            continue
        k = torch.as_tensor(_as_list(ts), dtype=torch.float64)
        if k.numel() != len(al):
            raise ValueError(
                f"utterance {i}: {k.numel()} emission frames for {len(al)} true tokens; pass hyps and refs "
                "to skip utterances that were not recognized exactly."
            )
        first, last = k * stride, (k + 1) * stride  # input-frame span of the encoder frame, [first, last)
        s, e = al.start_frame.double(), al.end_frame.double()
        starts.append(first - s)
        ends.append(last - e)
        inside.append((first < e) & (last > s))
        if segment_length is not None:
            ready = (torch.div(first, segment_length, rounding_mode="floor") + 1) * segment_length + right_context_length
            latency.append(ready - e)
    cat = lambda xs, dtype: torch.cat(xs) if xs else torch.zeros(0, dtype=dtype)  # noqa: E731
    return EmissionDelays(cat(starts, torch.float64), cat(ends, torch.float64), cat(inside, torch.bool),
                          stride, len(timesteps), skipped, source,
                          latency=cat(latency, torch.float64) if segment_length is not None else None)


def forced_alignment_frames(
    model, utterances: Sequence[Utterance], extractor: FeatureExtractor, blank: int,
) -> List[List[int]]:
    """Encoder frame of each *reference* token on the model's best (Viterbi) path.

    :func:`emformer_edu.lattice.forced_align` per utterance (model in eval mode). Returns,
    per utterance, one frame per true token (non-decreasing).
    """
    from .lattice import forced_align  # imported late: only this function needs the lattice module

    frames = []
    for utt in utterances:
        feats = extractor(utt.waveform)[0]  # (T + R, F)
        T = feats.size(0) - extractor.right_padding
        frames.append(forced_align(model, feats, T, utt.tokens, blank).token_frames)
    return frames


@torch.no_grad()
def compare_alignments(
    model, utterances: Sequence[Utterance], extractor: FeatureExtractor, blank: int,
    source: str = "greedy", beam_width: int = 4, streaming: bool = False, batch_size: int = 64,
) -> EmissionDelays:
    """Where does the model emit each token, compared with where it was spoken?

    Args:
        source: ``"greedy"`` or ``"beam"`` (what a recognizer outputs; utterances not
            recognized exactly are skipped) or ``"forced"`` (the best path through the
            lattice of the *true* tokens: every utterance counts).
        beam_width: for ``"beam"``. streaming: for ``"greedy"`` / ``"beam"``, decode chunk by chunk.
    """
    if source not in ("greedy", "beam", "forced"):
        raise ValueError(f"source must be one of ('greedy', 'beam', 'forced'), got {source!r}.")
    utterances = list(utterances)
    tr = model.transcriber
    geometry = dict(stride=tr.time_reduction.stride, segment_length=tr.segment_length,
                    right_context_length=tr.right_context_length)
    alignments = [u.alignment for u in utterances]
    if source == "forced":
        times = forced_alignment_frames(model, utterances, extractor, blank)
        return emission_delays(times, alignments, source="forced alignment", **geometry)
    result = evaluate(model, utterances, extractor, blank, beam_width if source == "beam" else None, streaming, batch_size)
    label = ("streaming " if streaming else "") + (f"beam search (width {beam_width})" if source == "beam" else "greedy")
    return emission_delays(result.timesteps, alignments, hyps=result.hyps, refs=result.refs, source=label, **geometry)
