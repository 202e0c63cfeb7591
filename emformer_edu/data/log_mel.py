"""The building blocks of torchaudio's Emformer log-mel features, and the checks on their input.

:mod:`emformer_edu.data.features` assembles these into the pipeline; they live here so the
extractor module stays short and so other modules can check audio the same way.

* constants of ``EMFORMER_RNNT_BASE_LIBRISPEECH``'s feature extractor (16 kHz, 400-sample
  window, 160-sample hop, 80 mel bins, R = 4 right-padding frames, gain ``32767 ** 2``);
* :func:`piecewise_linear_log`, the pipeline's compression of mel power;
* :class:`GlobalStats`, per-bin mean and inverse standard deviation, shapes ``(F,)``;
* :func:`check_waveform`, :func:`check_sample_rate`, :func:`check_log_mel_finite`: one clear
  ``ValueError`` (saying which sample) instead of confident features of broken audio.

Notation: N samples, T frames, F mel bins (80). A waveform is mono float audio in [-1, 1]
at 16 kHz, shape ``(N,)`` or ``(1, N)``; log-mel features are ``(T, F)``.
"""
import json
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torchaudio

SAMPLE_RATE = 16000
N_FFT = 400
HOP_LENGTH = 160
N_MELS = 80
RIGHT_PADDING = 4  # EMFORMER_RNNT_BASE_LIBRISPEECH._right_padding == its right_context_length

# Same arithmetic as torchaudio: 10 ** (2 * 20 * log10(32767) / 20) == 32767 ** 2 (+ rounding).
_DECIBEL = 2 * 20 * math.log10(torch.iinfo(torch.int16).max)
GAIN = pow(10, 0.05 * _DECIBEL)

__all__ = [
    "SAMPLE_RATE",
    "N_FFT",
    "HOP_LENGTH",
    "N_MELS",
    "RIGHT_PADDING",
    "GAIN",
    "num_frames",
    "piecewise_linear_log",
    "mel_spectrogram",
    "check_sample_rate",
    "check_waveform",
    "check_log_mel_finite",
    "GlobalStats",
]


def num_frames(num_samples: int, hop_length: int = HOP_LENGTH) -> int:
    """Frames produced for ``num_samples`` samples with centred framing: ``N // hop + 1``."""
    return num_samples // hop_length + 1


def piecewise_linear_log(x: torch.Tensor, torchaudio_quirk: bool = True) -> torch.Tensor:
    """The pipeline's compression of ``mel * GAIN``: a log for loud bins, linear for quiet ones.

    The intent is ``log(x)`` above ``e`` and the line ``x / e`` below (continuous at ``e``,
    finite at 0 where ``log`` gives -inf). torchaudio's ``_piecewise_linear_log`` writes
    in place in two steps::

        x[x > e] = log(x[x > e])
        x[x <= e] = x[x <= e] / e      # mask recomputed AFTER the first line

    so values in ``(e, e**e]`` (about 2.72 .. 15.15) are logged and then divided by ``e``
    again: the curve drops from 1 to ``1/e`` just above ``x = e`` and jumps back at
    ``e**e``. The pretrained models were trained with it, so by default this function
    reproduces it exactly (out of place). ``torchaudio_quirk=False`` gives the intended
    continuous curve, for comparison only.
    """
    # clamp keeps log() away from 0 in the branch torch.where discards (no -inf, no nan grads).
    y = torch.where(x > math.e, torch.log(x.clamp(min=math.e)), x)
    if torchaudio_quirk:
        return torch.where(y <= math.e, y / math.e, y)
    return torch.where(x > math.e, y, x / math.e)


def mel_spectrogram(center: bool) -> torchaudio.transforms.MelSpectrogram:
    """The pipeline's ``MelSpectrogram``: ``(N,)`` -> power ``(F, T)``."""
    # Same constructor call as the torchaudio pipeline; center=False only for streaming,
    # where the edge padding is done by hand.
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, hop_length=HOP_LENGTH, center=center
    )


# ----------------------------------------------------------------------------- input checks
def check_sample_rate(sample_rate) -> None:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"sample_rate must be {SAMPLE_RATE} Hz (the rate the Emformer RNN-T features are defined at), "
            f"got {sample_rate!r}. Resample first, e.g. torchaudio.functional.resample(w, {sample_rate}, {SAMPLE_RATE})."
        )


def check_waveform(
    waveform: torch.Tensor, name: str = "waveform", allow_empty: bool = False, stream_offset: Optional[int] = None
) -> torch.Tensor:
    """Check a waveform and return it as ``(N,)``. Accepts ``(N,)`` or ``(1, N)``.

    Refuses non-float audio, more than one channel, other shapes, no samples (unless
    ``allow_empty``) and NaN or inf samples, naming the first bad sample. ``stream_offset``:
    for a streaming chunk, how many samples came before it (the message gives both positions).
    """
    if not isinstance(waveform, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(waveform).__name__}.")
    if not waveform.is_floating_point():
        raise ValueError(
            f"{name} must be float audio in [-1, 1], got dtype {waveform.dtype} "
            "(for int16 PCM divide by 32768 first)."
        )
    if waveform.dim() == 2:
        if waveform.size(0) != 1:
            channels = f" ({waveform.size(0)} channels)" if waveform.size(0) < waveform.size(1) else ""
            raise ValueError(
                f"{name} must be mono, shape (N,) or (1, N); got shape {tuple(waveform.shape)}{channels}. "
                "Mix multi-channel (C, N) audio down first, e.g. waveform.mean(0)."
            )
        waveform = waveform[0]
    elif waveform.dim() != 1:
        raise ValueError(f"{name} must have shape (N,) or (1, N), got {tuple(waveform.shape)}.")
    if waveform.numel() == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 samples).")
    finite = torch.isfinite(waveform)
    if not bool(finite.all()):
        # One NaN spreads over every frame whose window holds it: refuse rather than featurize.
        bad = (~finite).nonzero()[:, 0]
        i = int(bad[0])
        value = float(waveform[i])
        kind = "NaN" if math.isnan(value) else ("+inf" if value > 0 else "-inf")
        if stream_offset is None:
            where = f"sample {i} ({i / SAMPLE_RATE:.4f} s at 16 kHz)"
        else:
            at = stream_offset + i
            where = f"sample {i} of the chunk (sample {at} of the stream, {at / SAMPLE_RATE:.4f} s at 16 kHz)"
        raise ValueError(
            f"{name} must hold only finite samples, got {bad.numel()} NaN/inf of {waveform.numel()}: "
            f"the first is {kind} at {where}. Clean the audio first."
        )
    return waveform


def check_log_mel_finite(log_mel: torch.Tensor, samples: torch.Tensor, name: str = "waveform") -> None:
    """Finite audio can still overflow float32 mel power (|x| around 1e12 and up): say so."""
    if not bool(torch.isfinite(log_mel).all()):
        t = int((~torch.isfinite(log_mel)).nonzero()[0, 0])
        peak = float(samples.abs().max()) if samples.numel() else 0.0
        raise ValueError(
            f"{name} must be audio in [-1, 1], got peak |x| = {peak:.3g} ({samples.dtype}): its log-mel "
            f"power overflows to inf (first at frame {t}). Scale the audio to [-1, 1] first."
        )


# ----------------------------------------------------------------------------- statistics
@dataclass
class GlobalStats:
    """Per-mel-bin mean and inverse standard deviation of log-mel features, shapes ``(F,)``.

    Saved as JSON with exactly torchaudio's ``global_stats.json`` layout::

        {"mean": [F floats], "invstddev": [F floats]}

    so a file written here loads in torchaudio's ``_GlobalStatsNormalization`` and back.
    ``mean`` must be finite and ``invstddev`` finite and > 0: normalization multiplies by it,
    so a NaN, an inf, a zero or a sign flip would silently corrupt every feature.
    """

    mean: torch.Tensor
    invstddev: torch.Tensor

    def __post_init__(self):
        self.mean = torch.as_tensor(self.mean, dtype=torch.float32)
        self.invstddev = torch.as_tensor(self.invstddev, dtype=torch.float32)
        if self.mean.dim() != 1 or self.mean.shape != self.invstddev.shape:
            raise ValueError(
                "mean and invstddev must both have shape (F,), got "
                f"{tuple(self.mean.shape)} and {tuple(self.invstddev.shape)}."
            )
        # Checked after the float32 cast: a float64 value above 3.4e38 becomes inf there.
        bad = (~torch.isfinite(self.mean)).nonzero()
        if bad.numel():
            f = int(bad[0])
            raise ValueError(f"mean must be a finite number in every mel bin, got {float(self.mean[f])} at bin {f}.")
        bad = (~(torch.isfinite(self.invstddev) & (self.invstddev > 0))).nonzero()
        if bad.numel():
            f = int(bad[0])
            raise ValueError(
                f"invstddev must be a finite number in (0, inf) in every mel bin (it is 1 / std), "
                f"got {float(self.invstddev[f])} at bin {f}."
            )

    @classmethod
    def identity(cls, n_mels: int = N_MELS) -> "GlobalStats":
        """Mean 0, inverse std 1: normalization does nothing (before stats are known)."""
        return cls(torch.zeros(n_mels), torch.ones(n_mels))

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "invstddev": self.invstddev.tolist()}

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path) -> "GlobalStats":
        with open(path) as f:
            blob = json.load(f)
        missing = {"mean", "invstddev"} - set(blob)
        if missing:
            raise ValueError(f"{path}: global stats JSON must have keys 'mean' and 'invstddev', missing {sorted(missing)}.")
        try:
            return cls(torch.tensor(blob["mean"]), torch.tensor(blob["invstddev"]))
        except ValueError as err:  # say which file holds the bad statistics
            raise ValueError(f"{path}: {err}") from None
