"""Real spoken words: eSpeak NG speech at 16 kHz with exact word, phoneme and character spans.

``speak("seven three nine zero")`` returns a :class:`SpokenUtterance`: the audio, the text
as character tokens, and where every word, phoneme and character is. The timing is not
estimated: eSpeak NG reports the sample where each phoneme starts (see :mod:`.espeak`).

Spans (all half-open ``[start, end)``, in 16 kHz samples; frames are ``sample // 160`` as in
:mod:`emformer_edu.data.corpus`):

* phoneme: from its PHONEME event to the next one (pauses such as ``_:`` end a phoneme but
  are not listed), so a word's phonemes tile it;
* word: from its first phoneme's start to its last phoneme's end. Words never overlap;
  silence between them (a pause, ``word_gap``) belongs to no word;
* character (the utterance's ``alignment``, one span per token): the letters of a word split
  its span evenly in text order; the space between two words gets the gap between their
  spans (zero-length when they touch). A teaching approximation: letters are not phonemes.

Text is what the model writes: lower-case ``a``-``z`` and ``'`` in words separated by single
spaces. Anything else (upper case, digits, punctuation) is refused with a ``ValueError``;
spell numbers out ("seven", not "7").

eSpeak speaks at 22050 Hz; torchaudio resamples to 16 kHz (a zero-phase filter, so an
event at native sample ``s`` is at ``round(s * 16000 / 22050)``). Same arguments, same audio.
A :class:`Voice` with ``speed`` != 1 is resampled from ``22050 * speed`` Hz instead: played faster or slower.

Shapes: N samples (16 kHz), U characters, W words, P phonemes.
"""
import bisect
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, List, Optional, Tuple

import numpy as np
import torch
import torchaudio

from .corpus import Alignment, Utterance, Vocabulary
from .espeak import EVENT_PHONEME, Synthesis, synthesize
from .log_mel import SAMPLE_RATE

__all__ = ["CHARACTERS", "character_vocabulary", "UnspokenWordError", "Voice", "Spans", "SpokenUtterance", "speak", "speak_voice",
           "check_text", "character_alignment"]

CHARACTERS = string.ascii_lowercase + "' "  # token ids: a-z 0-25, apostrophe 26, space 27; blank 28
RATE_LIMITS = (80, 450)  # eSpeak NG's speaking rates, words per minute (175 is its default)
PITCH_LIMITS = (0, 100)  # eSpeak's pitch and pitch range scales (50 is the default for both)
WORD_GAP_LIMITS = (0, 100)  # extra pause between words, units of 10 ms at the default rate
SPEED_LIMITS = (0.5, 2.0)  # playback speed of the synthesized audio (Voice.speed)
SPEED_GRID_HZ = 250  # a sped-up source rate is rounded to this grid, so the resampling kernel stays small

# What speak(seed=...) draws the settings it is not given from: ordinary voices, moderate settings.
SEED_VOICES = ("en-us", "en-us+f1", "en-us+f2", "en-us+f3", "en-us+m3", "en-us+m5", "en", "en+f4", "en+m7")
SEED_RATE, SEED_PITCH, SEED_PITCH_RANGE = (140, 220), (30, 70), (30, 80)


def character_vocabulary() -> Vocabulary:
    """The 28 characters of :data:`CHARACTERS`, blank last (id 28)."""
    return Vocabulary(tuple(CHARACTERS))


# ----------------------------------------------------------------------------- types
def _check_int(name: str, value, limits: Tuple[int, int]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not limits[0] <= value <= limits[1]:
        raise ValueError(f"{name} must be an integer in [{limits[0]}, {limits[1]}], got {value!r}.")


class UnspokenWordError(ValueError):
    """eSpeak ran a word into its neighbour (e.g. "from which"), so that word has no span of its own."""


@dataclass(frozen=True)
class Voice:
    """How eSpeak speaks: ``name`` is ``language[+variant]`` (``"en-us"``, ``"en+f3"``, ``"en-us+m5"``);
    ``rate`` words per minute; ``pitch`` and ``pitch_range`` on eSpeak's 0-100 scales;
    ``word_gap`` extra silence between words in 10 ms units. Names are checked when spoken.

    ``speed`` plays eSpeak's audio faster (> 1) or slower (< 1), as a tape would: tempo, pitch and
    the formants (so the apparent vocal-tract length) all scale by it. It costs nothing: the
    22,050 Hz samples are resampled to 16 kHz as if recorded at ``22050 * speed`` Hz, rounded to
    :data:`SPEED_GRID_HZ` (so 1.1 is applied as 24,250 Hz, 1.0998). Corpora use it to augment
    speakers (speed perturbation, Ko et al. 2015); ``1.0`` is eSpeak's own audio."""

    name: str = "en-us"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50
    word_gap: int = 0
    speed: float = 1.0

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"voice must be a non-empty string such as 'en-us' or 'en+f3', got {self.name!r}.")
        _check_int("rate", self.rate, RATE_LIMITS)
        _check_int("pitch", self.pitch, PITCH_LIMITS)
        _check_int("pitch_range", self.pitch_range, PITCH_LIMITS)
        _check_int("word_gap", self.word_gap, WORD_GAP_LIMITS)
        if isinstance(self.speed, bool) or not isinstance(self.speed, (int, float)) or \
                not SPEED_LIMITS[0] <= self.speed <= SPEED_LIMITS[1]:
            raise ValueError(f"speed must be a number in [{SPEED_LIMITS[0]}, {SPEED_LIMITS[1]}], got {self.speed!r}.")

    def source_rate(self, native: int) -> int:
        """The rate eSpeak's ``native``-Hz samples are taken to have: ``native`` at speed 1, else
        ``native * speed`` on the :data:`SPEED_GRID_HZ` grid."""
        if self.speed == 1:
            return native
        return int(round(native * self.speed / SPEED_GRID_HZ)) * SPEED_GRID_HZ

@dataclass
class Spans(Alignment):
    """Labelled spans: ``labels`` (K names), ``start_sample``/``end_sample`` ``(K,)`` int64.
    An :class:`Alignment`, so ``start_frame``/``end_frame``/``encoder_spans`` work the same."""

    labels: Tuple[str, ...] = ()

    def shifted(self, offset: int) -> "Spans":
        """The same spans ``offset`` samples later (for audio with silence put in front)."""
        return Spans(self.start_sample + offset, self.end_sample + offset, self.labels)

    def as_list(self) -> List[Tuple[str, int, int]]:
        """``[(label, start_sample, end_sample), ...]``."""
        return list(zip(self.labels, self.start_sample.tolist(), self.end_sample.tolist()))


@dataclass
class SpokenUtterance(Utterance):
    """An :class:`Utterance` of characters (``tokens`` ``(U,)``, ``alignment`` per character)
    plus ``words`` (W spans), ``phonemes`` (P spans, eSpeak mnemonics) and ``phoneme_word``
    ``(P,)`` int64, the word each phoneme belongs to. ``speaker`` is the :class:`Voice`;
    ``channel`` the noise and room a corpus added (``None`` from :func:`speak`)."""

    words: Optional[Spans] = None
    phonemes: Optional[Spans] = None
    phoneme_word: Optional[torch.Tensor] = None
    channel: Any = None


# ----------------------------------------------------------------------------- text
def check_text(text) -> List[Tuple[int, int]]:
    """Refuse what the character vocabulary cannot write; return each word's ``(start, end)`` characters."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}.")
    if not text.strip():
        raise ValueError("text is empty: say at least one word.")
    for i, c in enumerate(text):
        if c not in CHARACTERS:
            raise ValueError(
                f"character {c!r} at position {i} of {text!r} is not in the vocabulary (a-z, apostrophe, space): "
                f"lower-case the text, spell numbers as words ('7' -> 'seven') and drop punctuation.")
    words = text.split(" ")
    if any(not w for w in words):
        raise ValueError(f"words must be separated by single spaces, without leading or trailing space: {text!r}.")
    ranges, start = [], 0
    for w in words:
        if not any(c.isalpha() for c in w):
            raise ValueError(f"word {w!r} in {text!r} has no letter: eSpeak NG would not speak it.")
        ranges.append((start, start + len(w)))
        start += len(w) + 1
    return ranges


# ----------------------------------------------------------------------------- spans
def _phoneme_spans(synth: Synthesis, text: str, ranges: List[Tuple[int, int]]):
    """Native-rate ``(labels, starts, ends, word index)`` of the phonemes; pauses dropped."""
    events = [e for e in synth.events if e.kind == EVENT_PHONEME]
    n = synth.samples.size
    starts = [e.sample for e in events]
    if any(not 0 <= s <= n for s in starts) or any(b < a for a, b in zip(starts, starts[1:])):
        raise RuntimeError(f"eSpeak NG gave phoneme positions {starts} outside or out of order in {n} samples.")
    word_starts = [a for a, _ in ranges]
    labels, begin, end, owner, word = [], [], [], [], 0
    for i, e in enumerate(events):
        k = bisect.bisect_right(word_starts, e.text_position) - 1
        if k >= 0 and e.text_position < ranges[k][1]:
            word = k  # else (rare): keep the previous phoneme's word
        if e.phoneme.startswith("_"):  # a pause: ends the phoneme before it, is no phoneme itself
            continue
        labels.append(e.phoneme)
        begin.append(e.sample)
        end.append(starts[i + 1] if i + 1 < len(events) else n)
        owner.append(word)
    missing = sorted(set(range(len(ranges))) - set(owner))
    if missing or any(b < a for a, b in zip(owner, owner[1:])):
        what = text[slice(*ranges[missing[0]])] if missing else text
        raise UnspokenWordError(f"eSpeak NG did not speak {what!r} as a word of its own in {text!r}, so it has "
                                f"no span.")
    return labels, begin, end, owner


def character_alignment(text: str, words: Spans) -> Alignment:
    """One span per character: letters split their word's span evenly, spaces get the gap."""
    ranges = check_text(text)
    ws, we = words.start_sample.tolist(), words.end_sample.tolist()
    start, end = [], []
    for k, (a, b) in enumerate(ranges):
        length = b - a
        edges = [ws[k] + (we[k] - ws[k]) * j // length for j in range(length + 1)]
        start += edges[:-1]
        end += edges[1:]
        if k + 1 < len(ranges):  # the space after word k
            start.append(we[k])
            end.append(ws[k + 1])
    return Alignment(torch.tensor(start, dtype=torch.int64), torch.tensor(end, dtype=torch.int64))


@lru_cache(maxsize=64)
def _resampler(rate: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(rate, SAMPLE_RATE)  # keeps the sinc kernel between calls


def _resample(x: torch.Tensor, rate: int) -> torch.Tensor:
    # oneDNN compiles a convolution for every new input length (about 3 ms, 8x the convolution
    # itself); every utterance has a new length, so the plain kernel is faster. Same numbers.
    # (Not torch.backends.mkldnn.flags(): it warns about TF32 on every call.)
    was = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        with torch.no_grad():
            return _resampler(rate)(x)
    finally:
        torch.backends.mkldnn.enabled = was


def _to_16k(positions: List[int], rate: int, limit: int) -> torch.Tensor:
    # Round half up; never past the last sample (the resampled length is ceil(n * 16000 / rate)).
    return torch.tensor([min((p * SAMPLE_RATE + rate // 2) // rate, limit) for p in positions], dtype=torch.int64)


# ----------------------------------------------------------------------------- speak
def speak_voice(text: str, voice: Voice) -> SpokenUtterance:
    """Speak ``text`` with every setting given by ``voice``; see :func:`speak`."""
    ranges = check_text(text)
    synth = synthesize(text, voice.name, voice.rate, voice.pitch, voice.pitch_range, voice.word_gap)
    labels, begin, end, owner = _phoneme_spans(synth, text, ranges)

    native = torch.from_numpy(synth.samples.astype(np.float32) / 32768.0)
    rate = voice.source_rate(synth.sample_rate)
    wave = _resample(native, rate).clamp_(-1.0, 1.0)  # the filter can overshoot a little
    n = wave.numel()
    to16 = lambda p: _to_16k(p, rate, n)  # noqa: E731
    phonemes = Spans(to16(begin), to16(end), tuple(labels))
    owner_t = torch.tensor(owner, dtype=torch.int64)
    first = [owner.index(k) for k in range(len(ranges))]
    last = [len(owner) - 1 - owner[::-1].index(k) for k in range(len(ranges))]
    words = Spans(phonemes.start_sample[first], phonemes.end_sample[last], tuple(text[a:b] for a, b in ranges))
    vocab = character_vocabulary()
    return SpokenUtterance(
        waveform=wave,
        tokens=torch.tensor(vocab.encode(text), dtype=torch.int32),
        alignment=character_alignment(text, words),
        text=text,
        speaker=voice,
        words=words,
        phonemes=phonemes,
        phoneme_word=owner_t,
    )


def speak(text: str, voice: Optional[str] = None, rate: Optional[int] = None, pitch: Optional[int] = None,
          seed: Optional[int] = None, *, pitch_range: Optional[int] = None, word_gap: Optional[int] = None
          ) -> SpokenUtterance:
    """Speak ``text`` (lower-case words, single spaces) with eSpeak NG, at 16 kHz, with spans.

    Args:
        voice: ``language[+variant]``, e.g. ``"en-us"``, ``"en+f3"``, ``"en+m5"``; unknown ones raise ``ValueError``.
        rate: words per minute in [80, 450]; pitch, pitch_range: eSpeak's 0-100 scales.
        seed: ``None``: what is not given takes eSpeak's defaults (en-us, 175 wpm, pitch 50,
            range 50). An integer: what is not given is drawn from :data:`SEED_VOICES` and the
            ``SEED_*`` ranges, deterministically (the same seed gives the same voice).
        word_gap: extra silence between words, in 10 ms units (default 0).
    Returns:
        a :class:`SpokenUtterance`; the same arguments always give the same samples.
    """
    check_text(text)  # before anything else: bad text is refused even without eSpeak installed
    if seed is None:
        drawn = Voice()
    else:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}.")
        rng = np.random.default_rng([int(seed), 0x5EEC])
        # Draw everything, in a fixed order, so giving one setting does not change the others.
        integer = lambda r: int(rng.integers(r[0], r[1], endpoint=True))  # noqa: E731
        drawn = Voice(str(SEED_VOICES[rng.integers(len(SEED_VOICES))]), integer(SEED_RATE), integer(SEED_PITCH),
                      integer(SEED_PITCH_RANGE))
    chosen = Voice(
        name=drawn.name if voice is None else voice,
        rate=drawn.rate if rate is None else rate,
        pitch=drawn.pitch if pitch is None else pitch,
        pitch_range=drawn.pitch_range if pitch_range is None else pitch_range,
        word_gap=drawn.word_gap if word_gap is None else word_gap,
    )
    return speak_voice(text, chosen)
