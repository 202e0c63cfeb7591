"""A tiny synthetic "speech" corpus: seeded, in memory, 16 kHz, with exact alignments.

There is no dataset download in this project, so we make our own speech. The language has
``num_tokens`` symbols (default 20, named ``a``, ``b``, ...). Each symbol has a fixed
spectral signature, like a phoneme:

* ``vowel``: a harmonic sound (a pitch and its overtones) shaped by 2-3 formant bands;
* ``voiced_fricative``: weaker formants plus a band of hiss;
* ``fricative``: hiss only, shaped by 1-2 noise bands.

An utterance is a random token sequence spoken by a random voice: a pitch (f0), a
formant scale (vocal-tract length: every formant moves by the same factor), a speaking
rate (all durations and gaps divided by it), loudness and background noise at a random
SNR. Each token also gets its own duration, slight pitch jitter and glide, stress, and
onset/offset ramps. Different symbols differ in *where* the energy is; the voice changes
pitch and shifts formants a little, so a model must learn envelopes, not exact tones.

Alignments, vocabulary and batches follow :mod:`emformer_edu.data.corpus`; the settings
(:class:`SyntheticConfig`, :class:`Speaker`) and the limits that keep every utterance
finite, audible and in [-1, 1] are in :mod:`emformer_edu.data.synthetic_config`.

Everything is drawn from ``numpy.random.Generator`` seeded by ``(seed, index)``, so item i
of a dataset is the same audio on every machine and every call, whatever the order.

Shapes: N samples, U target length, B batch, T frames, F mel bins, R right padding.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from .corpus import Alignment, Utterance, Vocabulary
from .log_mel import SAMPLE_RATE
from .synthetic_config import F0_JITTER, MAX_VOICED_HZ, TABLE_SIZE, Speaker, SyntheticConfig

__all__ = ["SymbolSignature", "make_signatures", "SyntheticConfig", "Speaker", "SpeechSynthesizer",
           "SyntheticSpeechDataset"]


# ----------------------------------------------------------------------------- signatures
@dataclass(frozen=True)
class SymbolSignature:
    """How one symbol sounds. Bands are ``(centre_hz, bandwidth_hz, gain)`` Gaussian bumps."""

    name: str
    kind: str  # "vowel", "voiced_fricative" or "fricative"
    formants: Tuple[Tuple[float, float, float], ...]
    noise_bands: Tuple[Tuple[float, float, float], ...]
    voiced_gain: float
    noise_gain: float

    @staticmethod
    def _bumps(freqs: np.ndarray, bands, scale: float) -> np.ndarray:
        out = np.zeros_like(freqs, dtype=np.float64)
        for centre, bw, gain in bands:
            out += gain * np.exp(-0.5 * ((freqs - centre * scale) / (bw * scale)) ** 2)
        return out

    def voiced_envelope(self, freqs: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return self._bumps(freqs, self.formants, scale)

    def noise_envelope(self, freqs: np.ndarray, scale: float = 1.0) -> np.ndarray:
        return self._bumps(freqs, self.noise_bands, scale)

    def envelope(self, freqs: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """Overall amplitude envelope (used to keep symbols apart when they are drawn)."""
        return self.voiced_gain * self.voiced_envelope(freqs, scale) + self.noise_gain * self.noise_envelope(freqs, scale)


def _draw_signature(rng: np.random.Generator, name: str) -> SymbolSignature:
    kind = rng.choice(["vowel", "vowel", "vowel", "voiced_fricative", "fricative"])
    f1 = rng.uniform(250, 900)
    f2 = rng.uniform(max(f1 + 350, 850), 2600)
    formants = [(f1, rng.uniform(60, 110), 1.0), (f2, rng.uniform(80, 150), rng.uniform(0.5, 1.0))]
    if rng.random() < 0.5:
        formants.append((rng.uniform(max(f2 + 400, 2500), 3800), rng.uniform(100, 200), rng.uniform(0.3, 0.7)))
    if kind == "fricative":
        formants = []  # hiss only
    noise = []
    if kind != "vowel":
        for _ in range(1 if kind == "voiced_fricative" else rng.integers(1, 3)):
            noise.append((rng.uniform(1500, 6500), rng.uniform(250, 900), rng.uniform(0.5, 1.0)))
    voiced_gain, noise_gain = {"vowel": (1.0, 0.0), "voiced_fricative": (0.7, 0.5), "fricative": (0.0, 1.0)}[kind]
    as_tuple = lambda bands: tuple(tuple(float(v) for v in b) for b in bands)  # noqa: E731
    return SymbolSignature(name, str(kind), as_tuple(formants), as_tuple(noise), voiced_gain, noise_gain)


_GRID = np.geomspace(100.0, 7500.0, 48)  # log-frequency grid, roughly mel-like


def _distance(a: SymbolSignature, b: SymbolSignature) -> float:
    # RMS difference of log envelopes: how different the two would look in log-mel features.
    la = np.log(a.envelope(_GRID) + 0.05)
    lb = np.log(b.envelope(_GRID) + 0.05)
    return float(np.sqrt(np.mean((la - lb) ** 2)))


def make_signatures(vocab: Vocabulary, seed: int = 0, min_distance: float = 1.0) -> Tuple[SymbolSignature, ...]:
    """Draw one signature per token, rejecting candidates too close to earlier ones.

    ``min_distance`` is in RMS log-envelope units; it is relaxed by 10 % after every 200
    rejected draws so that large vocabularies still finish. Deterministic in ``seed``.
    """
    rng = np.random.default_rng([seed, 0x51A7])
    out: List[SymbolSignature] = []
    threshold, failures = min_distance, 0
    while len(out) < vocab.num_tokens:
        cand = _draw_signature(rng, vocab.tokens[len(out)])
        if all(_distance(cand, s) >= threshold for s in out):
            out.append(cand)
            failures = 0
        else:
            failures += 1
            if failures == 200:
                threshold, failures = threshold * 0.9, 0
    return tuple(out)


def _as_rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    # numpy's own message ("expected non-negative integer") names neither the argument nor the value.
    parts = seed if isinstance(seed, (list, tuple)) else [seed]
    if any(isinstance(p, bool) or (isinstance(p, (int, np.integer)) and p < 0) for p in parts):
        raise ValueError(
            f"seed must be an integer in [0, inf), a sequence of them or a numpy Generator, got {seed!r}."
        )
    return np.random.default_rng(seed)


def _ramp(n: int, ramp: int) -> np.ndarray:
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp) + 0.5) / ramp)
        env[:ramp] = rise
        env[n - ramp :] = rise[::-1]
    return env


def _band_noise(rng: np.random.Generator, n: int, shape_fn) -> np.ndarray:
    """White noise of length n filtered in the frequency domain by ``shape_fn(freqs_hz)``."""
    # A power-of-two FFT, cropped: odd lengths can be 10x slower, and noise has no edges to keep.
    size = 1 << max(n - 1, 1).bit_length()
    spec = np.fft.rfft(rng.standard_normal(size))
    spec *= shape_fn(np.fft.rfftfreq(size, 1.0 / SAMPLE_RATE))
    return np.fft.irfft(spec, size)[:n]


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


class SpeechSynthesizer:
    """Renders token sequences to audio for one synthetic language.

    Args:
        config: :class:`SyntheticConfig` (default settings if ``None``).

    ``synth.render([3, 1, 4], seed=0)`` speaks given tokens; ``synth.random_utterance(seed)``
    draws the tokens too. ``seed`` is an int, a list of ints or a ``numpy`` Generator.
    """

    def __init__(self, config: Optional[SyntheticConfig] = None):
        self.config = config if config is not None else SyntheticConfig()
        self.vocab = Vocabulary.letters(self.config.num_tokens)
        self.signatures = make_signatures(self.vocab, self.config.signature_seed)

    def sample_speaker(self, rng: np.random.Generator) -> Speaker:
        c = self.config
        return Speaker(
            f0_hz=float(rng.uniform(*c.f0_hz)),
            formant_scale=float(rng.uniform(*c.formant_scale)),
            rate=float(rng.uniform(*c.speaking_rate)),
            snr_db=float(rng.uniform(*c.snr_db)),
            noise_slope=float(rng.uniform(0.0, 1.0)),
            peak=float(rng.uniform(*c.peak)),
        )

    def sample_tokens(self, rng: np.random.Generator) -> List[int]:
        c = self.config
        count = int(rng.integers(c.tokens_per_utterance[0], c.tokens_per_utterance[1] + 1))
        tokens: List[int] = []
        for _ in range(count):
            if c.allow_repeats or not tokens:
                tokens.append(int(rng.integers(c.num_tokens)))
            else:  # draw among the other num_tokens - 1 ids
                t = int(rng.integers(c.num_tokens - 1))
                tokens.append(t + (t >= tokens[-1]))
        return tokens

    def _render_token(self, rng: np.random.Generator, sig: SymbolSignature, n: int, spk: Speaker) -> np.ndarray:
        out = np.zeros(n)
        if sig.voiced_gain > 0:
            # Voiced source: one period as a wavetable (harmonic h gets the envelope at h * f0),
            # then read at the instantaneous pitch; cheaper than summing sinusoids per sample.
            f0 = spk.f0_hz * rng.uniform(*F0_JITTER)
            harmonics = np.arange(1, int(MAX_VOICED_HZ // f0) + 1)
            amps = sig.voiced_envelope(harmonics * f0, spk.formant_scale) + 0.02 / harmonics  # + weak glottal tilt
            spec = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
            spec[harmonics] = amps * np.exp(2j * np.pi * rng.random(harmonics.size))
            table = np.fft.irfft(spec, TABLE_SIZE)
            glide = rng.uniform(-0.08, 0.08)  # pitch moves by +-8 % across the token
            f0_t = f0 * (1.0 + glide * (np.arange(n) / n - 0.5))
            phase = (rng.random() + np.cumsum(f0_t) / SAMPLE_RATE) % 1.0 * TABLE_SIZE
            i0 = phase.astype(np.int64)
            frac = phase - i0
            voiced = table[i0] * (1.0 - frac) + table[(i0 + 1) % TABLE_SIZE] * frac
            out += sig.voiced_gain * voiced / max(_rms(voiced), 1e-12)
        if sig.noise_gain > 0:
            hiss = _band_noise(rng, n, lambda f: sig.noise_envelope(f, spk.formant_scale))
            out += sig.noise_gain * hiss / max(_rms(hiss), 1e-12)
        stress = rng.uniform(0.6, 1.0)
        return out * stress * _ramp(n, int(round(self.config.ramp_s * SAMPLE_RATE)))

    def render(self, tokens: Sequence[int], seed=0, speaker: Optional[Speaker] = None) -> Utterance:
        """Speak ``tokens`` (ids, no blank). Timing, voice (unless given) and noise come from ``seed``."""
        tokens = [int(t) for t in (tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens)]
        if not tokens:
            raise ValueError("tokens is empty: an utterance needs at least one token.")
        if min(tokens) < 0 or max(tokens) >= self.vocab.num_tokens:
            raise ValueError(
                f"token ids must be in [0, {self.vocab.num_tokens - 1}] (blank {self.vocab.blank} is not spoken), got {tokens}."
            )
        rng = _as_rng(seed)
        c = self.config
        spk = speaker if speaker is not None else self.sample_speaker(rng)
        sec = lambda s: int(round(s * SAMPLE_RATE))  # noqa: E731

        # Layout: edge silence, tokens separated by gaps, edge silence.
        durations = [max(sec(rng.uniform(*c.token_duration_s) / spk.rate), 1) for _ in tokens]
        gaps = [sec(rng.uniform(*c.gap_s) / spk.rate) for _ in tokens[1:]]
        lead, tail = sec(rng.uniform(*c.edge_silence_s)), sec(rng.uniform(*c.edge_silence_s))
        starts, pos = [], lead
        for k, d in enumerate(durations):
            starts.append(pos)
            pos += d + (gaps[k] if k < len(gaps) else 0)
        n_total = pos + tail

        speech = np.zeros(n_total)
        for t, s, d in zip(tokens, starts, durations):
            speech[s : s + d] += self._render_token(rng, self.signatures[t], d, spk)

        # Background noise at the drawn SNR, relative to the power of the speech parts.
        speech_power = float(np.mean(np.concatenate([speech[s : s + d] for s, d in zip(starts, durations)]) ** 2))
        noise = _band_noise(rng, n_total, lambda f: 1.0 / np.maximum(f, 50.0) ** (spk.noise_slope / 2))
        noise *= math.sqrt(speech_power / 10 ** (spk.snr_db / 10)) / max(_rms(noise), 1e-12)
        wave = speech + noise
        wave *= spk.peak / max(float(np.abs(wave).max()), 1e-12)

        start = torch.tensor(starts, dtype=torch.int64)
        return Utterance(
            waveform=torch.from_numpy(wave.astype(np.float32)),
            tokens=torch.tensor(tokens, dtype=torch.int32),
            alignment=Alignment(start, start + torch.tensor(durations, dtype=torch.int64)),
            text=self.vocab.decode(tokens),
            speaker=spk,
        )

    def random_utterance(self, seed=0) -> Utterance:
        """Random tokens, spoken by a random voice; deterministic in ``seed``."""
        rng = _as_rng(seed)
        return self.render(self.sample_tokens(rng), rng)


# ----------------------------------------------------------------------------- dataset
class SyntheticSpeechDataset(torch.utils.data.Dataset):
    """``num_utterances`` random utterances; item i is seeded by ``(seed, i)``, so it is
    always the same, in any order, in any DataLoader worker.

    Items are :class:`Utterance`; batch them with :class:`Collate`.
    """

    def __init__(self, num_utterances: int = 1000, seed: int = 0, config: Optional[SyntheticConfig] = None):
        if not isinstance(num_utterances, int) or num_utterances < 1:
            raise ValueError(f"num_utterances must be an integer >= 1, got {num_utterances!r}.")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")
        self.num_utterances = num_utterances
        self.seed = seed
        self.synthesizer = SpeechSynthesizer(config)

    @property
    def config(self) -> SyntheticConfig:
        return self.synthesizer.config

    @property
    def vocab(self) -> Vocabulary:
        return self.synthesizer.vocab

    def __len__(self) -> int:
        return self.num_utterances

    def __getitem__(self, index: int) -> Utterance:
        if index < 0:
            index += self.num_utterances
        if not 0 <= index < self.num_utterances:
            raise IndexError(f"index {index} out of range for {self.num_utterances} utterances.")
        return self.synthesizer.random_utterance([self.seed, index])


