"""*When* does a trained model emit each token? Emission delays against the true alignments.

:func:`emission_delays` and :func:`compare_alignments` put each emitted token next to where the
corpus generator really spoke it.

Time bookkeeping. Feature frame ``t`` is 10 ms (hop 160 samples at 16 kHz). After time
reduction by ``stride``, encoder frame ``k`` covers input frames ``[k * stride, (k + 1) * stride)``.
A token emitted at encoder frame ``k`` is compared with the true span ``[start_frame, end_frame)``
of :class:`~emformer_edu.data.corpus.Alignment`:

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

:func:`word_end_delays` asks the same of whole words in a recognizer's output: how long after
the true end of a word (the eSpeak NG word span) the word's last character comes out, for every
word the recognizer got right, wherever the rest of the sentence went wrong.

Notation: B batch, T frames, U target length, V vocabulary (incl. blank), D model dim, F mel bins.
"""
import math
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import torch

from ..data.corpus import Alignment, Utterance
from ..data.features import HOP_LENGTH, SAMPLE_RATE, FeatureExtractor
from ..rnnt.lattice import forced_align
from ..data.corpus import Vocabulary
from .metrics import TERResult, _as_list, evaluate, matched_pairs

FRAME_MS = 1000.0 * HOP_LENGTH / SAMPLE_RATE  # 10 ms per input frame


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
        if self.num_tokens == 0:
            return (f"{name}no tokens to compare: none of the {self.num_utterances} utterances was recognized exactly "
                    f"({self.skipped} skipped)")
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

    :func:`emformer_edu.rnnt.lattice.forced_align` per utterance (model in eval mode). Returns,
    per utterance, one frame per true token (non-decreasing).
    """

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


@dataclass
class WordEndDelays:
    """Milliseconds from the true end of each correctly recognized word to its last character.

    ``emitted_ms`` ``(K,)``: to the end of the encoder frame that emitted the character (where in
    the audio the model decided). ``available_ms`` ``(K,)``: to the moment a streaming recognizer
    holds that frame's segment and look-ahead, so it can emit it (compute time not counted).
    ``words`` (K) of ``total_words`` reference words were recognized right and are counted.
    """

    emitted_ms: torch.Tensor
    available_ms: torch.Tensor
    words: int
    total_words: int
    source: str = ""

    @staticmethod
    def _stats(x: torch.Tensor) -> str:
        return f"mean {float(x.mean()):.0f} ms, 90th percentile {float(torch.quantile(x, 0.9)):.0f} ms"

    def summary(self) -> str:
        if self.words == 0:
            return f"{self.source}: 0 of {self.total_words} words right, no word end to time"
        return (f"{self.source}: {self.words} of {self.total_words} words right; after each word's true end, "
                f"its last character is emitted at {self._stats(self.emitted_ms)} of audio and available to a "
                f"streaming recognizer at {self._stats(self.available_ms)}")

    def __repr__(self) -> str:
        return f"WordEndDelays({self.summary()})"


def word_end_delays(
    model, utterances: Sequence[Utterance], extractor: FeatureExtractor, blank: int, vocab: Vocabulary,
    beam_width: Optional[int] = None, streaming: bool = True, batch_size: int = 64,
    result: Optional[TERResult] = None,
) -> WordEndDelays:
    """Decode ``utterances`` (:class:`~emformer_edu.data.speech.SpokenUtterance`, with ``words`` spans) and
    time the last character of every word that the recognizer got right.

    Words are paired by one cheapest word-level edit path (:func:`~.metrics.matched_pairs`), so a
    right word counts even in a sentence with other mistakes. The vocabulary's tokens must be single
    characters (character ``c`` of the hypothesis text is token ``c``). ``result``: the
    :func:`~.metrics.evaluate` result of these utterances with the same decoder, to time its
    emissions instead of decoding them again.
    """
    if any(len(name) != 1 for name in vocab.tokens):
        raise ValueError("word_end_delays needs a character vocabulary (every token one character).")
    utterances = list(utterances)
    if any(getattr(u, "words", None) is None for u in utterances):
        raise ValueError("every utterance needs word spans (``words``), as SpokenDataset items have.")
    tr = model.transcriber
    stride, seg, R = tr.time_reduction.stride, tr.segment_length, tr.right_context_length
    if result is None:
        result = evaluate(model, utterances, extractor, blank, beam_width, streaming, batch_size, vocab=vocab)
    elif len(result.hyp_texts) != len(utterances):
        raise ValueError(f"result holds {len(result.hyp_texts)} hypotheses for {len(utterances)} utterances.")
    emitted, available, total = [], [], 0
    for utt, text, times in zip(utterances, result.hyp_texts, result.timesteps):
        ref_words, ends = utt.words.labels, utt.words.end_sample.tolist()
        spans = [(m.group(), m.end() - 1) for m in re.finditer(r"\S+", text)]  # (word, index of its last character)
        total += len(ref_words)
        for i, j in matched_pairs(list(ref_words), [w for w, _ in spans]):
            k = int(times[spans[j][1]])  # encoder frame of the word's last character
            end_ms = ends[i] * 1000.0 / SAMPLE_RATE
            emitted.append((k + 1) * stride * FRAME_MS - end_ms)
            available.append(((k * stride // seg + 1) * seg + R) * FRAME_MS - end_ms)
    label = ("streaming " if streaming else "full-context ") + ("greedy" if beam_width is None else f"beam {beam_width}")
    as_tensor = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return WordEndDelays(as_tensor(emitted), as_tensor(available), len(emitted), total, label)
