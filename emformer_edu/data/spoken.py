"""A spoken corpus: eSpeak NG sentences from the lexicon, many voices, noise and rooms, exact spans.

Item ``i`` of :class:`SpokenDataset` is synthesized on the fly (about 10 ms) from
``numpy.random.default_rng([seed, split, i])``, so it is the same audio on every call, in any
order, in any DataLoader worker. One item:

1. a sentence: ``words_per_sentence`` words drawn uniformly from ``lexicon`` (default
   :data:`~emformer_edu.data.lexicon.LEXICON`); no grammar, the model learns to spell sounds;
2. a speaker: an eSpeak NG voice of the split, crossed with a rate, pitch, pitch range and
   pause between words, each drawn from its range (:class:`~emformer_edu.data.speech.Voice`);
3. a channel (:class:`Channel`): silence before and after, with probability
   ``reverb_probability`` a room (an exponentially decaying noise impulse response after the
   direct sound), background noise of a random colour at a random SNR, and a random peak level;
4. optionally, training items only, two augmentations meant to make a few voices sound like many
   more: a playback ``train_speed`` (:attr:`Voice.speed`: tempo, pitch and formants scale
   together, as with a speaker of a longer or shorter vocal tract; Ko et al. 2015) and a
   ``train_tilt``, the microphone's colour (a one-tap filter ``y[n] = x[n] - tilt * x[n - 1]``:
   positive tilt thins the voice, negative makes it boomy). Both are off by default: with them
   (0.88-1.12 and +-0.5) a recipe with 36 training voices ended at held-out CER 17.8 % instead of
   16.5 %; the harder training sentences cost more than the extra speakers gained in 15 minutes of
   training. Real voices did better: the default :data:`TRAIN_VOICES` are 456.
   The test split is always heard as recorded, so held-out numbers measure new speakers.

The split is fixed and speaker-independent. ``train_voices`` and ``test_voices`` are disjoint
(the default test voices use variants, i.e. speakers, absent from training, with accents training has). Sentences are
split by their word pairs: a hash of each adjacent pair ``"a b"`` puts a fraction
``test_pair_fraction`` of all pairs in the test set. A training sentence has only training
pairs; a test sentence has at least one test pair. So no test sentence is ever a training
sentence, and each one holds a word combination training never heard (its words, though,
are all in training). Sentences are drawn again until they belong to the split.

Items are :class:`~emformer_edu.data.speech.SpokenUtterance`: character tokens (vocabulary
``a``-``z``, ``'``, space; blank last) with per-character ``alignment`` (letters split their
word's span evenly, a space gets the gap between its words), plus ``words`` and ``phonemes``
spans. The room's direct sound is not delayed, so the spans stay exact. Batch with
:class:`~emformer_edu.data.corpus.Collate`.

Shapes: N samples (16 kHz), U characters, W words, P phonemes, B batch.
"""
import hashlib
import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from .corpus import Alignment, Vocabulary
from .lexicon import LEXICON
from .log_mel import SAMPLE_RATE
from .speech import (
    PITCH_LIMITS, RATE_LIMITS, SPEED_LIMITS, WORD_GAP_LIMITS, SpokenUtterance, UnspokenWordError, Voice, character_vocabulary,
    check_text, speak_voice,
)
from .synthetic_config import PEAK_LIMITS, SNR_DB_LIMITS, _check_number, _check_range

__all__ = ["SpokenConfig", "Channel", "SpokenDataset", "pair_is_test", "sentence_split", "draw_sentence", "record",
           "ACCENTS", "TRAIN_VARIANTS", "TRAIN_VOICES", "TEST_VOICES", "CONDITIONS", "listening_condition"]

# Speakers are eSpeak NG variants (voice timbres) crossed with six accents, and the accents' own voices. More
# speakers, not more of each, is what carries a model to new voices: 36 of these voices left a gap of 2.6 nats
# between training and held-out loss, the 456 closed it (README, "The shipped spoken recogniser").
ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-us-nyc", "en-029")
# 75 of eSpeak NG 1.52's 104 variants: not the test ones (m5, f3, m8, klatt3), nor the novelty ones (whisper,
# robots, ...), nor "rob", which crashes it ("thousand were").
TRAIN_VARIANTS = (
    "Alex", "Alicia", "Andrea", "Andy", "Annie", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee",
    "Marco", "Mario", "Michael", "Mike", "Nguyen", "Reed", "adam", "anika", "announcer", "antonio", "aunty", "belinda",
    "benjamin", "boris", "caleb", "david", "edward", "edward2", "f1", "f2", "f4", "f5", "grandma", "grandpa", "gustave",
    "ian", "iven", "iven2", "iven3", "iven4", "john", "klatt", "klatt2", "klatt4", "klatt5", "klatt6", "linda", "m1",
    "m2", "m3", "m4", "m6", "m7", "marcelo", "max", "michel", "miguel", "mike2", "norbert", "pablo", "paul", "pedro",
    "quincy", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac",
)
TRAIN_VOICES = ACCENTS + tuple(f"{accent}+{variant}" for accent in ACCENTS for variant in TRAIN_VARIANTS)  # 456
TEST_VOICES = ("en-us+m5", "en-us+f3", "en-gb-scotland+m8", "en-us-nyc+klatt3")
SPLITS = {"train": 0, "test": 1}
# The accuracy table's rows (listening_condition): each is the test split's sentences heard another way.
CONDITIONS = ("held out", "clean, seen voices", "clean, unseen voices", "noisy, unseen voices", "fast, unseen voices")
CLEAN_SNR_DB = (40.0, 40.0)  # the quietest noise training heard (digital silence would be a new condition)
NOISY_SNR_DB = (0.0, 10.0)  # below every SNR of training (15-40 dB)
FAST_RATE = (230, 290)  # above every rate of training (130-230 words per minute)
SPEAK_TRIES = 10  # eSpeak rarely runs two words together ("from which"); a new draw speaks them apart
MAX_DRAWS = 10_000  # sentence redraws before giving up (a test sentence of 2 words is test 1 time in 1 / fraction)


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SpokenConfig:
    """Ranges ``(low, high)`` are sampled uniformly (integers inclusive). Times in seconds."""

    train_voices: Tuple[str, ...] = TRAIN_VOICES
    test_voices: Tuple[str, ...] = TEST_VOICES
    lexicon: Tuple[str, ...] = LEXICON
    words_per_sentence: Tuple[int, int] = (2, 6)
    test_pair_fraction: float = 0.15
    rate: Tuple[int, int] = (130, 230)  # words per minute
    pitch: Tuple[int, int] = (25, 75)  # eSpeak's 0-100 scale
    pitch_range: Tuple[int, int] = (20, 90)
    word_gap: Tuple[int, int] = (0, 2)  # extra pause between words, 10 ms units
    edge_silence_s: Tuple[float, float] = (0.05, 0.2)
    reverb_probability: float = 0.3
    rt60_s: Tuple[float, float] = (0.15, 0.6)  # time for the room's echo to fall by 60 dB
    reverb_wet: Tuple[float, float] = (0.05, 0.3)  # echo energy relative to the direct sound
    snr_db: Tuple[float, float] = (15.0, 40.0)
    noise_color: Tuple[float, float] = (0.0, 2.0)  # noise power ~ 1 / f ** color: 0 white, 1 pink, 2 brown
    peak: Tuple[float, float] = (0.1, 0.9)  # final peak amplitude: the random gain
    train_speed: Tuple[float, float] = (1.0, 1.0)  # training only: Voice.speed range, e.g. (0.88, 1.12); (1, 1): off
    train_tilt: Tuple[float, float] = (0.0, 0.0)  # training only: Channel.tilt range, e.g. (-0.5, 0.5); (0, 0): off

    def __post_init__(self):
        for name in ("train_voices", "test_voices", "lexicon"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value) or len(value) == 0:
                raise ValueError(f"{name} must be a non-empty tuple of strings, got {value!r}.")
            object.__setattr__(self, name, tuple(value))
        shared = sorted(set(self.train_voices) & set(self.test_voices))
        if shared:
            raise ValueError(f"train_voices and test_voices must be disjoint (a speaker-independent test), "
                             f"both have {shared}.")
        for word in self.lexicon:
            if len(check_text(word)) != 1:
                raise ValueError(f"lexicon entries must be single words, got {word!r}.")
        _check_range("words_per_sentence", self.words_per_sentence, 2, integer=True,
                     why=" The split is made on word pairs, so a sentence has at least two words.")
        _check_number("test_pair_fraction", self.test_pair_fraction, 0, 1, lo_open=True)
        if self.test_pair_fraction == 1:
            raise ValueError("test_pair_fraction must be below 1, or no sentence is left for training.")
        _check_range("rate", self.rate, *RATE_LIMITS, unit="words per minute", integer=True)
        _check_range("pitch", self.pitch, *PITCH_LIMITS, integer=True)
        _check_range("pitch_range", self.pitch_range, *PITCH_LIMITS, integer=True)
        _check_range("word_gap", self.word_gap, *WORD_GAP_LIMITS, integer=True)
        _check_range("edge_silence_s", self.edge_silence_s, 0, 10, unit="s")
        _check_number("reverb_probability", self.reverb_probability, 0, 1)
        _check_range("rt60_s", self.rt60_s, 0.01, 2.0, unit="s")
        _check_range("reverb_wet", self.reverb_wet, 0, 10)
        _check_range("snr_db", self.snr_db, *SNR_DB_LIMITS, unit="dB")
        _check_range("noise_color", self.noise_color, 0, 2)
        _check_range("peak", self.peak, *PEAK_LIMITS)
        _check_range("train_speed", self.train_speed, *SPEED_LIMITS)
        _check_range("train_tilt", self.train_tilt, -0.9, 0.9)

    @property
    def augments(self) -> bool:
        """Whether training items are augmented (``train_speed`` or ``train_tilt`` is a range, not a point)."""
        return tuple(self.train_speed) != (1.0, 1.0) or tuple(self.train_tilt) != (0.0, 0.0)

    def voices(self, split: str) -> Tuple[str, ...]:
        return self.train_voices if _split_id(split) == 0 else self.test_voices


@dataclass(frozen=True)
class Channel:
    """How one utterance was recorded: silence (samples) before and after, the room
    (``rt60_s`` ``None``: no reverberation), noise SNR (dB) and colour, the final peak, and the
    microphone's ``tilt`` (``y[n] = x[n] - tilt * x[n - 1]``, 0: flat; drawn for training items only)."""

    lead: int
    tail: int
    rt60_s: Optional[float]
    reverb_wet: float
    snr_db: float
    noise_color: float
    peak: float
    tilt: float = 0.0


def listening_condition(name: str, config: Optional[SpokenConfig] = None) -> SpokenConfig:
    """``config`` (default :class:`SpokenConfig`) changed so that its *test* split is heard under ``name``:

    * ``"held out"``: unchanged (held-out voices and word pairs, training's noise and rooms);
    * ``"clean, seen voices"``: the training voices say the test sentences (the two voice lists
      trade places), with no room and noise at 40 dB SNR, the quietest training heard: what the
      model can do at best;
    * ``"clean, unseen voices"``: the held-out voices, no room, 40 dB SNR;
    * ``"noisy, unseen voices"``: SNR 0-10 dB, below anything training heard;
    * ``"fast, unseen voices"``: 230-290 words per minute, faster than anything training heard.

    Item i of a given seed says the same sentence in every condition (the sentence is drawn
    before the voice and the channel), so the rows of the table differ only in how it is heard.
    """
    c = config if config is not None else SpokenConfig()
    if name not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {name!r}.")
    clean = dict(snr_db=CLEAN_SNR_DB, reverb_probability=0.0)
    changes = {
        "held out": {},
        "clean, seen voices": dict(clean, train_voices=c.test_voices, test_voices=c.train_voices),
        "clean, unseen voices": clean,
        "noisy, unseen voices": dict(snr_db=NOISY_SNR_DB),
        "fast, unseen voices": dict(rate=FAST_RATE),
    }[name]
    return replace(c, **changes)


# ----------------------------------------------------------------------------- the split
def _split_id(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    return SPLITS[split]


def pair_is_test(first: str, second: str, fraction: float) -> bool:
    """Whether the word pair ``"first second"`` is held out. A stable hash (not Python's
    ``hash``, which changes between runs) mapped to [0, 1) and compared with ``fraction``."""
    digest = hashlib.blake2b(f"{first} {second}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0 ** 64 < fraction


def sentence_split(words: Sequence[str], fraction: float) -> str:
    """``"test"`` if any adjacent pair is held out, else ``"train"``."""
    return "test" if any(pair_is_test(a, b, fraction) for a, b in zip(words, words[1:])) else "train"


def draw_sentence(rng: np.random.Generator, split: str, config: SpokenConfig) -> Tuple[str, ...]:
    """Random words from the lexicon, drawn again until the sentence belongs to ``split``."""
    lo, hi = config.words_per_sentence
    for _ in range(MAX_DRAWS):
        count = int(rng.integers(lo, hi, endpoint=True))
        words = tuple(config.lexicon[j] for j in rng.integers(len(config.lexicon), size=count))
        if sentence_split(words, config.test_pair_fraction) == split:
            return words
    raise RuntimeError(f"no {split} sentence in {MAX_DRAWS} draws: raise words_per_sentence or adjust "
                       f"test_pair_fraction ({config.test_pair_fraction}).")


# ----------------------------------------------------------------------------- the channel
def _colored_noise(rng: np.random.Generator, n: int, color: float) -> np.ndarray:
    size = 1 << max(n - 1, 1).bit_length()  # power-of-two FFT, cropped
    spec = np.fft.rfft(rng.standard_normal(size))
    spec /= np.maximum(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE), 50.0) ** (color / 2)  # amplitude ~ f^(-color/2)
    noise = np.fft.irfft(spec, size)[:n]
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


def _reverberate(rng: np.random.Generator, x: np.ndarray, rt60_s: float, wet: float) -> np.ndarray:
    # Impulse response: the direct sound (1 at delay 0, so spans stay exact), then noise
    # whose amplitude falls by 60 dB in rt60_s: exp(-ln(1000) t / rt60).
    length = max(int(rt60_s * SAMPLE_RATE), 2)
    t = np.arange(1, length) / SAMPLE_RATE
    tail = rng.standard_normal(length - 1) * np.exp(-math.log(1000.0) * t / rt60_s)
    tail *= math.sqrt(wet / max(float(np.sum(tail ** 2)), 1e-12))
    h = np.concatenate([[1.0], tail])
    size = 1 << (x.size + length - 2).bit_length()
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)[: x.size]


def _draw_channel(rng: np.random.Generator, c: SpokenConfig) -> Channel:
    sec = lambda r: int(round(rng.uniform(*r) * SAMPLE_RATE))  # noqa: E731
    lead, tail = sec(c.edge_silence_s), sec(c.edge_silence_s)
    room = rng.random() < c.reverb_probability
    rt60, wet = float(rng.uniform(*c.rt60_s)), float(rng.uniform(*c.reverb_wet))  # drawn always: stable streams
    return Channel(lead, tail, rt60 if room else None, wet if room else 0.0, float(rng.uniform(*c.snr_db)),
                   float(rng.uniform(*c.noise_color)), float(rng.uniform(*c.peak)))


def record(clean: SpokenUtterance, channel: Channel, rng: np.random.Generator) -> SpokenUtterance:
    """``clean`` as heard through ``channel``: padded, reverberated, noisy, scaled; spans shifted."""
    x = np.concatenate([np.zeros(channel.lead), clean.waveform.numpy().astype(np.float64), np.zeros(channel.tail)])
    if channel.rt60_s is not None:
        x = _reverberate(rng, x, channel.rt60_s, channel.reverb_wet)
    if channel.tilt:  # a causal one-tap filter: no delay, so the spans stay exact
        x = x - channel.tilt * np.concatenate([[0.0], x[:-1]])
    words = clean.words.shifted(channel.lead)
    speech = np.concatenate([x[s:e] for _, s, e in words.as_list()])
    power = float(np.mean(speech ** 2)) if speech.size else float(np.mean(x ** 2))
    x = x + _colored_noise(rng, x.size, channel.noise_color) * math.sqrt(power / 10 ** (channel.snr_db / 10))
    x *= channel.peak / max(float(np.abs(x).max()), 1e-12)
    a = clean.alignment
    return SpokenUtterance(
        waveform=torch.from_numpy(x.astype(np.float32)),
        tokens=clean.tokens,
        alignment=Alignment(a.start_sample + channel.lead, a.end_sample + channel.lead),
        text=clean.text,
        speaker=clean.speaker,
        words=words,
        phonemes=clean.phonemes.shifted(channel.lead),
        phoneme_word=clean.phoneme_word,
        channel=channel,
    )


# ----------------------------------------------------------------------------- dataset
class SpokenDataset(torch.utils.data.Dataset):
    """``num_utterances`` spoken sentences of one ``split`` (``"train"`` or ``"test"``).

    Item i is seeded by ``(seed, split, i)``: the same in any order and any worker. Items are
    :class:`SpokenUtterance`; batch them with :class:`~emformer_edu.data.corpus.Collate`.
    Needs eSpeak NG (``pip install espeakng-loader``) when items are read.
    """

    def __init__(self, num_utterances: int = 1000, split: str = "train", seed: int = 0,
                 config: Optional[SpokenConfig] = None):
        if isinstance(num_utterances, bool) or not isinstance(num_utterances, int) or num_utterances < 1:
            raise ValueError(f"num_utterances must be an integer >= 1, got {num_utterances!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
        _split_id(split)
        self.num_utterances, self.split, self.seed = num_utterances, split, seed
        self.config = config if config is not None else SpokenConfig()

    @property
    def vocab(self) -> Vocabulary:
        return character_vocabulary()

    @property
    def voices(self) -> Tuple[str, ...]:
        return self.config.voices(self.split)

    def __len__(self) -> int:
        return self.num_utterances

    def sentence(self, index: int) -> str:
        """The text of item ``index`` without synthesizing it (cheap: for inspecting splits). In the rare case
        that eSpeak runs two of its words together, the item is drawn again and says something else."""
        return " ".join(draw_sentence(self._rng(index), self.split, self.config))

    def _rng(self, index: int) -> np.random.Generator:
        if index < 0:
            index += self.num_utterances
        if not 0 <= index < self.num_utterances:
            raise IndexError(f"index {index} out of range for {self.num_utterances} utterances.")
        return np.random.default_rng([self.seed, _split_id(self.split), index])

    def __getitem__(self, index: int) -> SpokenUtterance:
        rng, c = self._rng(index), self.config
        integer = lambda r: int(rng.integers(r[0], r[1], endpoint=True))  # noqa: E731
        for _ in range(SPEAK_TRIES):
            words = draw_sentence(rng, self.split, c)
            voice = Voice(str(self.voices[rng.integers(len(self.voices))]), integer(c.rate), integer(c.pitch),
                          integer(c.pitch_range), integer(c.word_gap))
            channel = _draw_channel(rng, c)
            if self.split == "train" and c.augments:  # drawn last and only when on: other items stay as they were
                voice = replace(voice, speed=float(rng.uniform(*c.train_speed)))
                channel = replace(channel, tilt=float(rng.uniform(*c.train_tilt)))
            try:
                return record(speak_voice(" ".join(words), voice), channel, rng)
            except UnspokenWordError:  # two words run together: no span for one of them, draw again (same rng)
                continue
        raise RuntimeError(f"item {index}: eSpeak ran words together in {SPEAK_TRIES} draws in a row.")
