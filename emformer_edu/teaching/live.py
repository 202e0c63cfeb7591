"""The live recogniser: type a sentence, pick a voice, and watch the streaming transcript grow.

:func:`live_recognition` is the callback of :func:`emformer_edu.teaching.widgets.live_recogniser`
(notebook 00), and a plain function you can call anywhere::

    from emformer_edu.teaching.live import live_recognition
    result = live_recognition("turn off the radio", "en-us+m5")   # a voice training never heard
    print(result.report())       # the transcript after every chunk, with the chunk's end time
    result.figure()              # features with the true word spans, the lattice, the Viterbi path

What it does, step by step, with the library's own functions only:

1. :func:`emformer_edu.speak` says the text with eSpeak NG (exact word and character spans);
   :func:`emformer_edu.data.spoken.record` then puts :data:`EDGE_SILENCE_S` of silence before
   and after it, under noise at :data:`~emformer_edu.data.spoken.CLEAN_SNR_DB` dB SNR: the
   quietest condition training heard (digital silence would be a condition it never heard);
2. ``pretrained.features`` and ``pretrained.chunks`` cut the audio's features into the chunks a
   live recogniser receives (``segment_length + R`` input frames each);
3. each chunk goes through :func:`emformer_edu.rnnt.greedy_infer` (``model.transcribe_streaming``,
   then greedy search continued from the previous chunk), so the transcript after chunk i is
   what a live system would show at that moment. The final transcript is exactly
   ``pretrained.recognize(waveform, beam_width=None, streaming=True)``;
4. :func:`emformer_edu.rnnt.forced_align` aligns the *true* text, for the lattice figure.

Text is what the model writes: lower-case words of ``a``-``z`` and ``'`` (upper case and extra
spaces are tidied; digits and punctuation raise ``ValueError``). Words outside the training
lexicon (``pretrained.lexicon``) are allowed, and the result says which they are: a character
model can spell a new word, but has never heard it.
"""
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

import numpy as np
import torch

from ..data.log_mel import HOP_LENGTH, SAMPLE_RATE
from ..data.speech import SpokenUtterance, UnspokenWordError, check_text, speak
from ..data.spoken import CLEAN_SNR_DB, Channel, record
from ..rnnt.greedy import greedy_infer
from ..runtime import single_thread
from .viz.lattice import truth_lattice_figure

__all__ = ["DEFAULT_TEXT", "DEFAULT_VOICE", "EDGE_SILENCE_S", "ChunkStep", "LiveResult", "live_recognition",
           "live_figure", "voice_choices", "normalise_text"]

DEFAULT_TEXT = "the green bird can sing"
DEFAULT_VOICE = "en-us+m5"  # a held-out voice of the shipped spoken model
EDGE_SILENCE_S = 0.1  # silence before and after the sentence (training drew 0.05-0.2 s)
PEAK = 0.5  # the recording's peak amplitude (training drew 0.1-0.9)
WORD_GAPS = (0, 1, 2)  # eSpeak may run two words together; it is asked again with a pause (10 ms units)
TRAINING_VOICES_SHOWN = 4  # training voices offered beside the held-out ones, one per accent
LETTERS = "abcdefghijklmnopqrstuvwxyz'"  # what a word may hold (the space separates words)


class ChunkStep(NamedTuple):
    """The recogniser's state after one chunk: ``index``; ``end_s``, the audio it has heard so far
    (seconds: its last input frame, look-ahead included, capped at the audio's end); ``transcript``."""

    index: int
    end_s: float
    transcript: str


@dataclass
class LiveResult:
    """What :func:`live_recognition` heard and wrote.

    text: the sentence as spoken (tidied); voice: the eSpeak NG voice; utterance: the recording
    (:class:`~emformer_edu.data.speech.SpokenUtterance`: waveform, true word and character spans);
    features: ``(T + R, F)``; steps: one :class:`ChunkStep` per chunk; tokens, timesteps: the
    emitted token ids and the encoder frame of each; transcript: the final text;
    unknown_words: the words that are not in the model's lexicon; pretrained: the model used.
    """

    text: str
    voice: str
    utterance: SpokenUtterance
    features: torch.Tensor
    steps: List[ChunkStep]
    tokens: List[int]
    timesteps: List[int]
    transcript: str
    unknown_words: Tuple[str, ...]
    pretrained: object

    @property
    def waveform(self) -> torch.Tensor:
        """The audio ``(N,)`` at 16 kHz, as the recogniser heard it."""
        return self.utterance.waveform

    @property
    def duration_s(self) -> float:
        return self.waveform.numel() / SAMPLE_RATE

    def warning(self) -> str:
        """A line about the words outside the lexicon ("" if there are none)."""
        if not self.unknown_words:
            return ""
        words = ", ".join(repr(w) for w in self.unknown_words)
        one = len(self.unknown_words) == 1
        return (f"note: {words} {'is' if one else 'are'} not in the training lexicon: the model can spell "
                f"{'it' if one else 'them'} by sound, but never heard {'it' if one else 'them'} in training")

    def report(self) -> str:
        """The transcript after every chunk, then the final one beside the truth."""
        seg, R = self.pretrained.segment_length, self.pretrained.right_context_length
        lines = [f"{self.text!r} spoken by {self.voice}, {self.duration_s:.2f} s of audio, "
                 f"{len(self.steps)} chunks of {seg} + {R} input frames"]
        if self.unknown_words:
            lines.append(self.warning())
        for step in self.steps:
            lines.append(f"after chunk {step.index:2d} (audio up to {step.end_s:.2f} s): {step.transcript!r}")
        lines.append(f"recognised: {self.transcript!r}")
        lines.append(f"spoken:     {self.text!r}")
        return "\n".join(lines)

    def figure(self):
        """:func:`live_figure` of this result."""
        return live_figure(self)


def normalise_text(text: str) -> str:
    """Lower-case ``text`` and join its words with single spaces; ``ValueError`` (naming the words)
    if what is left holds a character the model cannot write (digits, punctuation)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    tidy = " ".join(text.lower().split())
    if not tidy:
        raise ValueError("the text is empty: type a sentence, e.g. 'turn off the radio'.")
    bad = [w for w in tidy.split() if any(c not in LETTERS for c in w)]
    if bad:
        raise ValueError(f"cannot speak {text!r}: {', '.join(map(repr, bad))} {'uses' if len(bad) == 1 else 'use'} "
                         "characters outside the model's vocabulary (a-z and the apostrophe): spell numbers as "
                         "words ('7' -> 'seven') and drop punctuation.")
    check_text(tidy)  # what is left to refuse: a word without a letter, such as "'"
    return tidy


def _speak(text: str, voice: str, rate: Optional[int]) -> SpokenUtterance:
    """``speak`` with eSpeak's default settings; if it runs two words together, ask again with a short pause."""
    last = None
    for gap in WORD_GAPS:
        try:
            return speak(text, voice=voice, rate=rate, word_gap=gap)
        except UnspokenWordError as err:
            last = err
    raise ValueError(f"{last} Even with a pause between words: try another sentence or voice.")


def live_recognition(text: str = DEFAULT_TEXT, voice: str = DEFAULT_VOICE, pretrained=None,
                     rate: Optional[int] = None) -> LiveResult:
    """Speak ``text`` with ``voice`` and recognise it chunk by chunk, as a live recogniser would.

    Args:
        text: words of ``a``-``z`` and ``'``, e.g. from ``pretrained.lexicon``.
        voice: an eSpeak NG voice, e.g. one of ``pretrained.test_voices`` (never heard in training).
        pretrained: a spoken :class:`~emformer_edu.train.pretrained.Pretrained`; default
            ``pretrained.spoken()``.
        rate: words per minute (default: eSpeak's 175; training heard 130-230).
    Returns:
        :class:`LiveResult`; its ``transcript`` equals ``pretrained.recognize(result.waveform,
        beam_width=None, streaming=True)``.
    Raises:
        ValueError: the text has characters outside the vocabulary (the message names the words), the
            voice or rate is unknown, or eSpeak would not speak a word on its own.
    """
    if pretrained is None:
        from ..train import pretrained as shipped
        pretrained = shipped.spoken()
    if pretrained.lexicon is None:
        raise ValueError("live_recognition needs a spoken model (pretrained.spoken()), not a synthetic one.")
    tidy = normalise_text(text)
    if not isinstance(voice, str) or not voice.strip():
        raise ValueError(f"voice must be an eSpeak NG voice name such as {DEFAULT_VOICE!r}, got {voice!r}.")
    lexicon = set(pretrained.lexicon)
    unknown = tuple(dict.fromkeys(w for w in tidy.split() if w not in lexicon))
    lead = int(round(EDGE_SILENCE_S * SAMPLE_RATE))
    channel = Channel(lead=lead, tail=lead, rt60_s=None, reverb_wet=0.0, snr_db=CLEAN_SNR_DB[0], noise_color=0.0,
                      peak=PEAK)
    utt = record(_speak(tidy, voice, rate), channel, np.random.default_rng(0))

    model, blank = pretrained.model, pretrained.blank
    features = pretrained.features(utt.waveform)
    T = features.size(0) - pretrained.right_context_length
    seg, R = pretrained.segment_length, pretrained.right_context_length
    steps, state, greedy = [], None, None
    with torch.no_grad(), single_thread():
        for i, (chunk, length) in enumerate(pretrained.chunks(features)):
            greedy, state = greedy_infer(model, chunk, length, blank, state=state, decoder_state=greedy)
            end_s = min(min((i + 1) * seg + R, T) * HOP_LENGTH / SAMPLE_RATE, utt.waveform.numel() / SAMPLE_RATE)
            steps.append(ChunkStep(i, end_s, pretrained.vocab.decode(greedy.tokens[0])))
    return LiveResult(tidy, voice, utt, features, steps, list(greedy.tokens[0]), list(greedy.timesteps[0]),
                      steps[-1].transcript, unknown, pretrained)


def voice_choices(pretrained, num_training: int = TRAINING_VOICES_SHOWN) -> List[Tuple[str, str]]:
    """``[(label, voice), ...]`` for a dropdown: the held-out voices, then ``num_training`` training
    voices of different accents (the first of each accent in ``train_voices``)."""
    held = [(f"{v} (never heard in training)", v) for v in pretrained.test_voices]
    seen, accents = [], set()
    for v in pretrained.spoken_config.train_voices:
        accent = v.split("+")[0]
        if accent not in accents and len(seen) < num_training:
            accents.add(accent)
            seen.append((f"{v} (a training voice)", v))
    return held + seen


def live_figure(result: LiveResult, title: Optional[str] = None):
    """Above: the features with the true word spans and the chunk boundaries. Below: the lattice of
    the *true* text (posterior occupancy, :func:`~emformer_edu.rnnt.forced_align`'s Viterbi path, the
    true character spans): :func:`emformer_edu.viz.truth_lattice_figure`, as notebook 00's section 1
    draws it for a held-out sentence. Both panels share the encoder-frame axis."""
    pre, utt = result.pretrained, result.utterance
    stride = pre.model.transcriber.time_reduction.stride
    with single_thread():
        return truth_lattice_figure(
            pre, utt, features=result.features, spans=utt.words.encoder_spans(stride), labels=utt.words.labels,
            chunk_lines=True,
            title=title or f"'{result.text}' spoken by {result.voice}; streamed greedy transcript: "
                           f"'{result.transcript}'\n(features; true word spans on top; dashed: chunk boundaries)")

