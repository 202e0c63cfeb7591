"""Log-mel features exactly as torchaudio's Emformer RNN-T pipeline computes them.

``torchaudio.pipelines.EMFORMER_RNNT_BASE_LIBRISPEECH.get_feature_extractor()`` is::

    MelSpectrogram(sample_rate=16000, n_fft=400, n_mels=80, hop_length=160)   # (F, T), power 2
    -> transpose                                                              # (T, F)
    -> _piecewise_linear_log(x * _gain)         # _gain = 32767 ** 2 (see piecewise_linear_log)
    -> _GlobalStatsNormalization(global_stats.json)   # (x - mean) * invstddev
    -> pad R = 4 zero frames at the end          # the model's right context

:class:`FeatureExtractor` rebuilds that chain (same transforms, same constants, same JSON
layout for the statistics) and adds what a teaching corpus needs: statistics computed from
your own data (:class:`GlobalStats`), input checks, and a batched form for training.
:class:`StreamingFeatureExtractor` computes the same frames from audio arriving in chunks.

Notation: B batch, N samples, T frames, F mel bins (80), R right-padding frames.
A waveform is mono float audio in [-1, 1] at 16 kHz, shape ``(N,)`` or ``(1, N)``.
Frame ``t`` is centred on sample ``t * 160`` (``center=True``), so ``T = N // 160 + 1``.
"""
import json
import math
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch
import torchaudio

from ..checks import check_non_negative

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
    "GlobalStats",
    "compute_global_stats",
    "FeatureExtractor",
    "StreamingFeatureExtractor",
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


def _as_mono(waveform: torch.Tensor, name: str = "waveform", allow_empty: bool = False) -> torch.Tensor:
    """Check a waveform and return it as ``(N,)``. Accepts ``(N,)`` or ``(1, N)``."""
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
    return waveform


def _check_sample_rate(sample_rate) -> None:
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"sample_rate must be {SAMPLE_RATE} Hz (the rate the Emformer RNN-T features are defined at), "
            f"got {sample_rate!r}. Resample first, e.g. torchaudio.functional.resample(w, {sample_rate}, {SAMPLE_RATE})."
        )


@dataclass
class GlobalStats:
    """Per-mel-bin mean and inverse standard deviation of log-mel features, shapes ``(F,)``.

    Saved as JSON with exactly torchaudio's ``global_stats.json`` layout::

        {"mean": [F floats], "invstddev": [F floats]}

    so a file written here loads in torchaudio's ``_GlobalStatsNormalization`` and back.
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
        return cls(torch.tensor(blob["mean"]), torch.tensor(blob["invstddev"]))


def _log_mel_transform(center: bool) -> torchaudio.transforms.MelSpectrogram:
    # Same constructor call as the torchaudio pipeline; center=False only for streaming,
    # where the edge padding is done by hand.
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, hop_length=HOP_LENGTH, center=center
    )


class FeatureExtractor(torch.nn.Module):
    """Waveform -> normalized log-mel features, same numbers as torchaudio's pipeline.

    Args:
        global_stats: :class:`GlobalStats`, a path to a ``global_stats.json``, or ``None``
            for identity normalization (mean 0, invstddev 1) until :meth:`fit` is called.
        right_padding: R zero frames appended by :meth:`forward` so the last real frames
            have a right context to look at (pipeline default 4 = the model's right context).
        sample_rate: must be 16000; any other value raises ``ValueError`` (no silent resampling).

    Stages, each usable on its own: :meth:`log_mel` (what statistics are computed on),
    :meth:`normalize`, :meth:`features` (both, no padding), :meth:`forward` (pipeline
    output with padding) and :meth:`batch` (padded batch for training).
    """

    def __init__(
        self,
        global_stats: Union[GlobalStats, str, None] = None,
        right_padding: int = RIGHT_PADDING,
        sample_rate: int = SAMPLE_RATE,
    ):
        super().__init__()
        _check_sample_rate(sample_rate)
        check_non_negative("right_padding", right_padding)
        self.sample_rate = sample_rate
        self.n_fft, self.hop_length, self.n_mels = N_FFT, HOP_LENGTH, N_MELS
        self.right_padding = right_padding
        self.mel = _log_mel_transform(center=True)
        if global_stats is None:
            global_stats = GlobalStats.identity(N_MELS)
        elif not isinstance(global_stats, GlobalStats):
            global_stats = GlobalStats.load(global_stats)
        if global_stats.mean.numel() != N_MELS:
            raise ValueError(f"global stats must have {N_MELS} values (one per mel bin), got {global_stats.mean.numel()}.")
        self.register_buffer("mean", global_stats.mean.clone())
        self.register_buffer("invstddev", global_stats.invstddev.clone())

    # -- statistics --------------------------------------------------------------------
    @property
    def global_stats(self) -> GlobalStats:
        return GlobalStats(self.mean.detach().cpu(), self.invstddev.detach().cpu())

    def set_global_stats(self, stats: GlobalStats) -> None:
        self.mean.copy_(stats.mean)
        self.invstddev.copy_(stats.invstddev)

    def fit(self, corpus: Iterable[torch.Tensor], kind: str = "auto") -> GlobalStats:
        """Compute statistics from ``corpus`` (see :func:`compute_global_stats`), use and return them."""
        stats = compute_global_stats(corpus, kind=kind, extractor=self)
        self.set_global_stats(stats)
        return stats

    # -- stages ------------------------------------------------------------------------
    def _prepare(self, waveform: torch.Tensor, sample_rate: Optional[int]) -> torch.Tensor:
        if sample_rate is not None:
            _check_sample_rate(sample_rate)
        waveform = _as_mono(waveform)
        # Reflect padding of n_fft // 2 samples needs more samples than that.
        if waveform.numel() <= self.n_fft // 2:
            raise ValueError(
                f"waveform too short: {waveform.numel()} samples, need more than {self.n_fft // 2} "
                f"(> {1000 * (self.n_fft // 2) / SAMPLE_RATE:.1f} ms) for the centred STFT."
            )
        return waveform.to(device=self.mean.device, dtype=self.mean.dtype)

    def log_mel(self, waveform: torch.Tensor, sample_rate: Optional[int] = None) -> torch.Tensor:
        """Un-normalized features ``piecewise_linear_log(mel * GAIN)``: ``(N,)`` -> ``(T, F)``."""
        waveform = self._prepare(waveform, sample_rate)
        return piecewise_linear_log(self.mel(waveform).transpose(1, 0) * GAIN)

    def normalize(self, log_mel: torch.Tensor) -> torch.Tensor:
        """``(log_mel - mean) * invstddev``, broadcast over ``(..., T, F)``."""
        return (log_mel - self.mean) * self.invstddev

    def features(self, waveform: torch.Tensor, sample_rate: Optional[int] = None) -> torch.Tensor:
        """Normalized features without right padding: ``(N,)`` -> ``(T, F)``, ``T = N // 160 + 1``."""
        return self.normalize(self.log_mel(waveform, sample_rate))

    def forward(self, waveform: torch.Tensor, sample_rate: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """The pipeline's output: ``(N,)`` -> features ``(T + R, F)`` and length ``(1,)``.

        As in torchaudio the R padding frames are zeros (in normalized units) and the
        returned length counts them: ``length == [T + R]``.
        """
        feats = torch.nn.functional.pad(self.features(waveform, sample_rate), (0, 0, 0, self.right_padding))
        return feats, torch.tensor([feats.size(0)])

    def batch(
        self, waveforms: Sequence[torch.Tensor], sample_rate: Optional[int] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Training layout: B waveforms -> features ``(B, T_max + R, F)``, lengths ``(B,)`` int32.

        Each utterance is featurized on its own (so its last frames see its own end, not
        the padding), zero-padded to ``T_max``, then R zero frames are appended for the
        right context. Lengths count real frames only (``T_b``), as torchaudio's training
        recipe passes them to ``RNNT.forward``; padded frames are zeros in normalized units.
        """
        if len(waveforms) == 0:
            raise ValueError("waveforms is empty: need at least one utterance.")
        feats = [self.features(w, sample_rate) for w in waveforms]
        lengths = torch.tensor([f.size(0) for f in feats], dtype=torch.int32)
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        return torch.nn.functional.pad(padded, (0, 0, 0, self.right_padding)), lengths

    def streaming(self) -> "StreamingFeatureExtractor":
        """A :class:`StreamingFeatureExtractor` sharing this extractor's statistics."""
        return StreamingFeatureExtractor(self)


def compute_global_stats(
    corpus: Iterable[torch.Tensor], kind: str = "auto", extractor: Optional[FeatureExtractor] = None
) -> GlobalStats:
    """Mean and 1/std per mel bin over all frames of a corpus, as torchaudio's recipe does.

    Args:
        corpus: iterable of waveforms ``(N,)`` / ``(1, N)`` or of un-normalized log-mel
            features ``(T, F)`` (the output of :meth:`FeatureExtractor.log_mel`).
        kind: ``"waveform"``, ``"features"`` or ``"auto"`` (a 2-D tensor with F = 80 columns
            and more than one row is features, anything else a waveform).
        extractor: used to compute ``log_mel`` of waveforms (default: a fresh one).

    Every frame weighs the same (longer utterances count more). Population variance
    ``E[x^2] - E[x]^2``, accumulated in float64; a bin with zero variance would give an
    infinite invstddev, so variance is floored at 1e-10.
    """
    if kind not in ("auto", "waveform", "features"):
        raise ValueError(f"kind must be one of ('auto', 'waveform', 'features'), got {kind!r}.")
    extractor = extractor if extractor is not None else FeatureExtractor()
    total = torch.zeros(N_MELS, dtype=torch.float64)
    total_sq = torch.zeros(N_MELS, dtype=torch.float64)
    count = 0
    with torch.no_grad():
        for item in corpus:
            item = torch.as_tensor(item)
            is_features = kind == "features" or (
                kind == "auto" and item.dim() == 2 and item.size(1) == N_MELS and item.size(0) != 1
            )
            if is_features:
                if item.dim() != 2 or item.size(1) != N_MELS:
                    raise ValueError(f"features must have shape (T, {N_MELS}), got {tuple(item.shape)}.")
                feats = item
            else:
                feats = extractor.log_mel(item)
            feats = feats.to(torch.float64)
            total += feats.sum(0)
            total_sq += feats.pow(2).sum(0)
            count += feats.size(0)
    if count == 0:
        raise ValueError("corpus is empty: cannot compute statistics from 0 frames.")
    mean = total / count
    var = (total_sq / count - mean.pow(2)).clamp(min=1e-10)
    return GlobalStats(mean.float(), var.rsqrt().float())


class StreamingFeatureExtractor:
    """Features from audio arriving in chunks of any size, identical to the full utterance's.

    Call it with each chunk; it returns the frames that became final, ``(T_new, F)``.
    Call :meth:`flush` once the audio has ended; it returns the remaining frames plus the
    R right-padding frames. Then (up to float rounding)::

        torch.cat([s(c) for c in chunks] + [s.flush()]) == extractor(torch.cat(chunks))[0]

    How the edges are made to agree. The full extractor frames the signal as ``torch.stft``
    with ``center=True``: it reflect-pads P = n_fft // 2 = 200 samples at both ends, and
    frame t is the window ``padded[160 t : 160 t + 400]`` (samples ``160 t - 200 ..
    160 t + 199`` of the original). So:

    * Start: the left pad is ``x[1:201]`` reversed, known once 201 samples have arrived.
      Until then nothing is emitted; then the pad is built once and prepended.
    * Middle: frame t is emitted as soon as its window lies inside the samples seen so far
      (``160 t + 200 <= N_seen``). Those frames never touch the right pad, so they are the
      full utterance's frames. Samples no future frame needs are dropped: between calls
      the cache holds at most one window plus one hop (560 samples), never fewer than the
      last 201 real samples that the right pad will need.
    * End: the right pad (``x[-201:-1]`` reversed) depends on where the audio stops, so
      the last one or two frames (those with ``160 t + 200 > N``) are only produced by
      :meth:`flush`, which also appends the R zero frames of :class:`FeatureExtractor`.

    Latency is therefore 200 samples (12.5 ms) of look-ahead per frame until ``flush``.
    This differs on purpose from torchaudio's ``get_streaming_feature_extractor``, which
    centre-pads every fixed-size segment independently and so does not reproduce the
    full-utterance features at segment edges.

    A stream holding 200 samples or fewer at ``flush`` raises ``ValueError``, as the full
    extractor does; empty chunks are fine. After ``flush`` call :meth:`reset` to reuse it.
    """

    def __init__(self, extractor: Optional[FeatureExtractor] = None):
        self.extractor = extractor if extractor is not None else FeatureExtractor()
        self.mel = _log_mel_transform(center=False)
        self.pad = N_FFT // 2
        self.reset()

    def reset(self) -> None:
        """Forget the stream and start a new utterance."""
        self._buffer = torch.zeros(0)  # before the start: raw samples; after: padded-signal samples
        self._buffer_start = 0  # padded-signal index of self._buffer[0]
        self._num_samples = 0  # real samples received (N_seen)
        self._next_frame = 0  # first frame not yet emitted
        self._started = False
        self._finished = False

    @property
    def num_samples(self) -> int:
        return self._num_samples

    @property
    def frames_emitted(self) -> int:
        """Real frames emitted so far (excluding right padding)."""
        return self._next_frame

    def _frames(self, last_frame: int, padded: torch.Tensor) -> torch.Tensor:
        """Normalized frames ``next .. last_frame`` (inclusive) from the padded-signal cache."""
        if last_frame < self._next_frame:
            return torch.zeros(0, N_MELS, dtype=self.extractor.mean.dtype, device=self.extractor.mean.device)
        lo = self._next_frame * HOP_LENGTH - self._buffer_start
        hi = last_frame * HOP_LENGTH + N_FFT - self._buffer_start
        mel = self.mel.to(padded.device)(padded[lo:hi]).transpose(1, 0)
        self._next_frame = last_frame + 1
        return self.extractor.normalize(piecewise_linear_log(mel * GAIN))

    def __call__(self, chunk: torch.Tensor, sample_rate: Optional[int] = None) -> torch.Tensor:
        """Feed ``chunk`` ``(n,)`` or ``(1, n)`` (n may be 0); return newly final frames ``(T_new, F)``."""
        if self._finished:
            raise ValueError("stream already flushed; call reset() to start a new utterance.")
        if sample_rate is not None:
            _check_sample_rate(sample_rate)
        mean = self.extractor.mean
        chunk = _as_mono(chunk, name="chunk", allow_empty=True).to(device=mean.device, dtype=mean.dtype)
        self._buffer = torch.cat([self._buffer.to(mean.device), chunk])
        self._num_samples += chunk.numel()
        if not self._started:
            if self._num_samples <= self.pad:
                return self._frames(-1, self._buffer)
            left = self._buffer[1 : self.pad + 1].flip(0)
            self._buffer = torch.cat([left, self._buffer])
            self._started = True
        # Last frame whose window ends inside the left pad + samples seen.
        last = (self._num_samples + self.pad - N_FFT) // HOP_LENGTH
        out = self._frames(last, self._buffer)
        # Keep what the next frame needs, and the last pad + 1 real samples for the right pad.
        keep_from = min(self._next_frame * HOP_LENGTH, self._num_samples - 1)
        self._buffer = self._buffer[keep_from - self._buffer_start :]
        self._buffer_start = keep_from
        return out

    def flush(self) -> torch.Tensor:
        """End of audio: the last frames (built with the right reflect pad) + R zero frames."""
        if self._finished:
            raise ValueError("stream already flushed; call reset() to start a new utterance.")
        if self._num_samples == 0:
            raise ValueError("no audio received: the stream is empty (0 samples).")
        if not self._started:
            raise ValueError(
                f"waveform too short: {self._num_samples} samples, need more than {self.pad} for the centred STFT."
            )
        right = self._buffer[-(self.pad + 1) : -1].flip(0)
        padded = torch.cat([self._buffer, right])
        out = self._frames(num_frames(self._num_samples) - 1, padded)
        self._finished = True
        return torch.nn.functional.pad(out, (0, 0, 0, self.extractor.right_padding))
