"""What the synthetic corpus may vary, and the values that still make labelled speech.

:class:`SyntheticConfig` holds the ranges an utterance's voice and timing are drawn from;
:class:`Speaker` is one draw (the voice of one utterance). Both refuse, with a ``ValueError``
naming the field and its allowed range, any value that would give NaN samples, silence that
still carries labels, a numpy error or audio outside [-1, 1].

The limits follow from how :mod:`emformer_edu.data.synthetic` renders a token:

* voiced sounds are a wavetable of ``TABLE_SIZE`` samples holding harmonics ``h * f0`` up to
  ``MAX_VOICED_HZ``, with ``f0`` jittered by ``F0_JITTER`` per token: a fundamental above
  5000 Hz renders no harmonic (silent vowels), one under 5000 / 1025 Hz has more harmonics
  than the table's 1025 frequency bins;
* formant and hiss bands are Gaussian bumps ``centre * formant_scale`` wide ``bw * formant_scale``:
  scale 0 divides by zero (NaN); far from 1 the bands leave the 0 - 8 kHz band or become
  narrower than the FFT bins, and hiss-only tokens render as silence;
* background noise is scaled by ``10 ** (-snr_db / 20)``, the whole utterance to ``peak``.

Shapes: no tensors here; every field is a Python number or a ``(low, high)`` pair, sampled
uniformly. Times in seconds, frequencies in Hz.
"""
import math
import numbers
from dataclasses import dataclass
from typing import Tuple

from .corpus import LETTER_NAMES
from .log_mel import HOP_LENGTH, N_FFT, SAMPLE_RATE

__all__ = ["SyntheticConfig", "Speaker", "TABLE_SIZE", "MAX_VOICED_HZ", "F0_JITTER", "F0_HZ_LIMITS",
           "FORMANT_SCALE_LIMITS", "SNR_DB_LIMITS", "PEAK_LIMITS", "NOISE_SLOPE_LIMITS"]

TABLE_SIZE = 2048  # one pitch period of the voiced source, looked up with interpolation
MAX_VOICED_HZ = 5000.0  # highest overtone rendered; well below Nyquist (8 kHz), no aliasing
F0_JITTER = (0.95, 1.05)  # each token's pitch is the voice's f0 times a factor drawn from this

# (low, high), low exclusive: f0 * jitter must exceed 5000 / 1025 (harmonics fit the table's
# 1025 bins) and stay <= 5000 (at least the fundamental is rendered).
F0_HZ_LIMITS = (MAX_VOICED_HZ / (TABLE_SIZE // 2 + 1) / F0_JITTER[0], MAX_VOICED_HZ / F0_JITTER[1])
# Half to twice the default vocal tract: outside it hiss-only tokens can render as silence.
FORMANT_SCALE_LIMITS = (0.5, 2.0)
# Below -20 dB the noise is 10x the speech amplitude (labels on inaudible speech); above
# 200 dB the noise is far below float32 resolution anyway (and 10 ** (snr / 10) overflows at ~3083).
SNR_DB_LIMITS = (-20.0, 200.0)
# Peak amplitude: audio is documented in [-1, 1]; under -60 dBFS the piecewise-linear log of
# the features flattens towards silence.
PEAK_LIMITS = (1e-3, 1.0)
NOISE_SLOPE_LIMITS = (0.0, 2.0)  # background noise ~ 1 / f ** slope: 0 white, 1 pink, 2 brown


# ----------------------------------------------------------------------------- checks
def _is_number(value, integer: bool) -> bool:
    if isinstance(value, bool):  # True is an int to Python, never a sensible count or size here
        return False
    return isinstance(value, numbers.Integral if integer else numbers.Real)


def _inside(x: float, lo: float, hi: float, lo_open: bool) -> bool:
    return math.isfinite(x) and (lo < x if lo_open else lo <= x) and x <= hi


def _interval(lo: float, hi: float, lo_open: bool, unit: str) -> str:
    right = ")" if math.isinf(hi) else "]"
    return f"{'(' if lo_open else '['}{lo:g}, {hi:g}{right}{' ' + unit if unit else ''}"


def _check_number(name, value, lo, hi=math.inf, lo_open=False, unit="", why="", integer=False) -> None:
    """One value: a finite number (or integer) in the interval; ``why`` is appended as a sentence."""
    if not (_is_number(value, integer) and _inside(float(value), lo, hi, lo_open)):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(f"{name} must be {kind} in {_interval(lo, hi, lo_open, unit)}, got {value!r}.{why}")


def _check_range(name, value, lo, hi=math.inf, lo_open=False, unit="", why="", integer=False) -> None:
    """A ``(low, high)`` pair: both ends finite numbers (or integers) in the interval, low <= high."""
    kind = "integers" if integer else "finite numbers"
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_number(v, integer) for v in value)):
        raise ValueError(f"{name} must be a range (low, high) of two {kind}, got {value!r}.")
    if not all(_inside(float(v), lo, hi, lo_open) for v in value):
        raise ValueError(
            f"{name} must be a range (low, high) of {kind} in {_interval(lo, hi, lo_open, unit)}, got {value!r}.{why}"
        )
    if not value[0] <= value[1]:
        raise ValueError(f"{name} must be a range (low, high) with low <= high, got {value!r}.")


_F0_WHY = (f" Each token's pitch is f0 times {F0_JITTER[0]}..{F0_JITTER[1]}: above {MAX_VOICED_HZ:g} Hz "
           f"no harmonic is rendered (silent vowels that still carry labels), under "
           f"{MAX_VOICED_HZ:g} / {TABLE_SIZE // 2 + 1} Hz the harmonics overflow the {TABLE_SIZE}-sample wavetable.")
_FORMANT_WHY = (" It scales every formant and hiss band: 0 gives NaN samples, a negative scale or one far "
                "from 1 moves the bands out of the 0-8 kHz band and can render tokens as silence.")
_SNR_WHY = (f" Below {SNR_DB_LIMITS[0]:g} dB the speech is buried in noise; for practically clean "
            f"audio use ({SNR_DB_LIMITS[1]:g}, {SNR_DB_LIMITS[1]:g}), not inf.")
_PEAK_WHY = (" Audio is float in [-1, 1]; 0 gives all-zero audio and below -60 dBFS the log-mel "
             "features flatten towards silence.")


# ----------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SyntheticConfig:
    """Ranges ``(low, high)`` are sampled uniformly. Times in seconds.

    Token durations and gaps are nominal values at speaking rate 1; the spoken duration is
    ``nominal / rate``, so it lies in :attr:`token_duration_bounds_s`. Every field is
    checked (see the module docstring for why each limit exists).
    """

    num_tokens: int = 20
    tokens_per_utterance: Tuple[int, int] = (3, 10)
    token_duration_s: Tuple[float, float] = (0.08, 0.20)
    speaking_rate: Tuple[float, float] = (0.8, 1.25)
    gap_s: Tuple[float, float] = (0.0, 0.10)  # silence between tokens (nominal)
    edge_silence_s: Tuple[float, float] = (0.05, 0.25)  # before the first / after the last token
    f0_hz: Tuple[float, float] = (90.0, 240.0)
    formant_scale: Tuple[float, float] = (0.93, 1.07)
    snr_db: Tuple[float, float] = (10.0, 35.0)
    peak: Tuple[float, float] = (0.25, 0.9)  # final peak amplitude
    ramp_s: float = 0.015  # raised-cosine onset/offset
    allow_repeats: bool = False  # same token twice in a row: boundary only visible through a gap
    signature_seed: int = 0  # which language: the symbol sounds

    def __post_init__(self):
        _check_number("num_tokens", self.num_tokens, 2, len(LETTER_NAMES), integer=True,
                      why=" Token names are the letters a-z then the digits 0-9.")
        _check_range("tokens_per_utterance", self.tokens_per_utterance, 1, integer=True)
        _check_range("token_duration_s", self.token_duration_s, 0, lo_open=True, unit="s")
        _check_range("speaking_rate", self.speaking_rate, 0, lo_open=True)
        _check_range("gap_s", self.gap_s, 0, unit="s")
        _check_range("edge_silence_s", self.edge_silence_s, 0, unit="s")
        _check_range("f0_hz", self.f0_hz, *F0_HZ_LIMITS, lo_open=True, unit="Hz", why=_F0_WHY)
        _check_range("formant_scale", self.formant_scale, *FORMANT_SCALE_LIMITS, why=_FORMANT_WHY)
        _check_range("snr_db", self.snr_db, *SNR_DB_LIMITS, unit="dB", why=_SNR_WHY)
        _check_range("peak", self.peak, *PEAK_LIMITS, why=_PEAK_WHY)
        if not isinstance(self.allow_repeats, bool):
            raise ValueError(f"allow_repeats must be True or False, got {self.allow_repeats!r}.")
        _check_number("signature_seed", self.signature_seed, 0, integer=True,
                      why=" It seeds numpy's default_rng, which takes only non-negative integers.")
        for name in ("tokens_per_utterance", "token_duration_s", "speaking_rate", "gap_s", "edge_silence_s",
                     "f0_hz", "formant_scale", "snr_db", "peak"):
            # Lists (e.g. from JSON) become tuples, so a reloaded config equals the original.
            object.__setattr__(self, name, tuple(getattr(self, name)))
        # A token must span at least one frame, and the shortest possible utterance must be
        # longer than the 200 samples the centred STFT needs.
        shortest = self.token_duration_bounds_s[0]
        if shortest * SAMPLE_RATE < HOP_LENGTH:
            raise ValueError(
                f"the shortest spoken token, token_duration_s[0] / speaking_rate[1], must be in "
                f"[{HOP_LENGTH / SAMPLE_RATE:g}, inf) s (one 10 ms frame), got {self.token_duration_s[0]!r} / "
                f"{self.speaking_rate[1]!r} = {shortest:.4g} s: the shortest token would be under one frame. "
                "Raise token_duration_s or lower speaking_rate."
            )
        if (shortest + 2 * self.edge_silence_s[0]) * SAMPLE_RATE <= N_FFT // 2:
            raise ValueError(
                f"the shortest utterance, shortest token + 2 * edge_silence_s[0], must be over {N_FFT // 2} "
                f"samples ({N_FFT // 2 / SAMPLE_RATE:g} s) for the centred STFT, got {shortest:.4g} + 2 * "
                f"{self.edge_silence_s[0]!r} s. Raise edge_silence_s or token_duration_s."
            )
        # _ramp cuts a ramp to half the token, so a longer one would silently not be what was asked.
        _check_number("ramp_s", self.ramp_s, 0, shortest / 2, unit="s",
                      why=" The onset and offset ramps must fit in the shortest spoken token "
                          "(token_duration_s[0] / speaking_rate[1]).")

    @property
    def token_duration_bounds_s(self) -> Tuple[float, float]:
        """Shortest and longest spoken token: ``(dur_lo / rate_hi, dur_hi / rate_lo)``."""
        return (self.token_duration_s[0] / self.speaking_rate[1], self.token_duration_s[1] / self.speaking_rate[0])

    @property
    def expected_token_duration_s(self) -> float:
        """Mean spoken duration ``E[dur] * E[1 / rate]`` (dur and rate independent, uniform)."""
        (a, b), (c, d) = self.token_duration_s, self.speaking_rate
        inv_rate = 1.0 / c if c == d else math.log(d / c) / (d - c)
        return 0.5 * (a + b) * inv_rate


@dataclass(frozen=True)
class Speaker:
    """The voice and recording conditions of one utterance (same limits as :class:`SyntheticConfig`)."""

    f0_hz: float
    formant_scale: float
    rate: float
    snr_db: float
    noise_slope: float  # background noise spectrum ~ 1 / f ** slope (0 white, 1 pink)
    peak: float

    def __post_init__(self):
        # Checked here too because render(tokens, speaker=...) bypasses the config.
        _check_number("f0_hz", self.f0_hz, *F0_HZ_LIMITS, lo_open=True, unit="Hz", why=_F0_WHY)
        _check_number("formant_scale", self.formant_scale, *FORMANT_SCALE_LIMITS, why=_FORMANT_WHY)
        _check_number("rate", self.rate, 0, lo_open=True, why=" Durations are divided by it.")
        _check_number("snr_db", self.snr_db, *SNR_DB_LIMITS, unit="dB", why=_SNR_WHY)
        _check_number("noise_slope", self.noise_slope, *NOISE_SLOPE_LIMITS)
        _check_number("peak", self.peak, *PEAK_LIMITS, why=_PEAK_WHY)
