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
The building blocks (constants, :func:`piecewise_linear_log`, :class:`GlobalStats`, the
waveform checks) are in :mod:`emformer_edu.data.log_mel`.

Audio with NaN or inf samples is refused with a ``ValueError`` naming the first bad sample
(and, for :meth:`FeatureExtractor.batch`, the utterance): one NaN would spread over every
frame whose window holds it and still yield a confident transcript.

Notation: B batch, N samples, T frames, F mel bins (80), R right-padding frames.
A waveform is mono float audio in [-1, 1] at 16 kHz, shape ``(N,)`` or ``(1, N)``.
Frame ``t`` is centred on sample ``t * 160`` (``center=True``), so ``T = N // 160 + 1``.
"""
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch

from ..checks import check_finite, check_non_negative
from .log_mel import (
    GAIN,
    HOP_LENGTH,
    N_FFT,
    N_MELS,
    RIGHT_PADDING,
    SAMPLE_RATE,
    GlobalStats,
    check_log_mel_finite,
    check_sample_rate,
    check_waveform,
    mel_spectrogram,
    num_frames,
    piecewise_linear_log,
)

# The constants, num_frames, piecewise_linear_log and GlobalStats are defined in .log_mel
# and used here; they stay importable from this module, where the pipeline is assembled.
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


def _check_num_mels(stats: GlobalStats) -> None:
    # copy_ into the (F,) buffers would silently broadcast a (1,) tensor.
    if stats.mean.numel() != N_MELS:
        raise ValueError(f"global stats must have {N_MELS} values (one per mel bin), got {stats.mean.numel()}.")


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
        check_sample_rate(sample_rate)
        check_non_negative("right_padding", right_padding)
        self.sample_rate = sample_rate
        self.n_fft, self.hop_length, self.n_mels = N_FFT, HOP_LENGTH, N_MELS
        self.right_padding = right_padding
        self.mel = mel_spectrogram(center=True)
        if global_stats is None:
            global_stats = GlobalStats.identity(N_MELS)
        elif not isinstance(global_stats, GlobalStats):
            global_stats = GlobalStats.load(global_stats)
        _check_num_mels(global_stats)
        self.register_buffer("mean", global_stats.mean.clone())
        self.register_buffer("invstddev", global_stats.invstddev.clone())

    # -- statistics --------------------------------------------------------------------
    @property
    def global_stats(self) -> GlobalStats:
        return GlobalStats(self.mean.detach().cpu(), self.invstddev.detach().cpu())

    def set_global_stats(self, stats: GlobalStats) -> None:
        _check_num_mels(stats)
        self.mean.copy_(stats.mean)
        self.invstddev.copy_(stats.invstddev)

    def fit(self, corpus: Iterable[torch.Tensor], kind: str = "auto") -> GlobalStats:
        """Compute statistics from ``corpus`` (see :func:`compute_global_stats`), use and return them."""
        stats = compute_global_stats(corpus, kind=kind, extractor=self)
        self.set_global_stats(stats)
        return stats

    # -- stages ------------------------------------------------------------------------
    def _prepare(self, waveform: torch.Tensor, sample_rate: Optional[int], name: str) -> torch.Tensor:
        if sample_rate is not None:
            check_sample_rate(sample_rate)
        waveform = check_waveform(waveform, name)
        # Reflect padding of n_fft // 2 samples needs more samples than that.
        if waveform.numel() <= self.n_fft // 2:
            raise ValueError(
                f"{name} too short: {waveform.numel()} samples, need more than {self.n_fft // 2} "
                f"(> {1000 * (self.n_fft // 2) / SAMPLE_RATE:.1f} ms) for the centred STFT."
            )
        samples = waveform.to(device=self.mean.device, dtype=self.mean.dtype)
        if not bool(torch.isfinite(samples).all()):  # e.g. float64 1e300 is inf in float32
            raise ValueError(
                f"{name} must be audio in [-1, 1], got peak |x| = {float(waveform.abs().max()):.3g} "
                f"({waveform.dtype}), which overflows the extractor's {samples.dtype}. Scale it to [-1, 1] first."
            )
        return samples

    def _log_mel(self, waveform: torch.Tensor, sample_rate: Optional[int], name: str) -> torch.Tensor:
        # ``name`` says which input a message is about ("waveforms[2]" in a batch).
        samples = self._prepare(waveform, sample_rate, name)
        log_mel = piecewise_linear_log(self.mel(samples).transpose(1, 0) * GAIN)
        check_log_mel_finite(log_mel, samples, name)
        return log_mel

    def log_mel(self, waveform: torch.Tensor, sample_rate: Optional[int] = None) -> torch.Tensor:
        """Un-normalized features ``piecewise_linear_log(mel * GAIN)``: ``(N,)`` -> ``(T, F)``."""
        return self._log_mel(waveform, sample_rate, "waveform")

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
        A bad utterance (NaN or inf, too short, ...) is named in the error as ``waveforms[b]``.
        """
        if len(waveforms) == 0:
            raise ValueError("waveforms is empty: need at least one utterance.")
        feats = [self.normalize(self._log_mel(w, sample_rate, f"waveforms[{b}]")) for b, w in enumerate(waveforms)]
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
    infinite invstddev, so variance is floored at 1e-10. An item with NaN or inf is refused
    (``ValueError`` naming the item and where in it): it would poison every bin's statistics.
    """
    if kind not in ("auto", "waveform", "features"):
        raise ValueError(f"kind must be one of ('auto', 'waveform', 'features'), got {kind!r}.")
    extractor = extractor if extractor is not None else FeatureExtractor()
    total = torch.zeros(N_MELS, dtype=torch.float64)
    total_sq = torch.zeros(N_MELS, dtype=torch.float64)
    count = 0
    with torch.no_grad():
        for i, item in enumerate(corpus):
            item = torch.as_tensor(item)
            is_features = kind == "features" or (
                kind == "auto" and item.dim() == 2 and item.size(1) == N_MELS and item.size(0) != 1
            )
            if is_features:
                if item.dim() != 2 or item.size(1) != N_MELS:
                    raise ValueError(f"features must have shape (T, {N_MELS}), got {tuple(item.shape)}.")
                check_finite(item, f"corpus item {i} (log-mel features (T, F))")
                feats = item
            else:
                feats = extractor._log_mel(item, None, f"corpus item {i}")
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
    extractor does; empty chunks are fine. A chunk holding NaN or inf is refused (the message
    gives its position in the chunk and in the stream) and leaves the stream as it was.
    After ``flush`` call :meth:`reset` to reuse it.
    """

    def __init__(self, extractor: Optional[FeatureExtractor] = None):
        self.extractor = extractor if extractor is not None else FeatureExtractor()
        self.mel = mel_spectrogram(center=False)
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
        log_mel = piecewise_linear_log(mel * GAIN)
        check_log_mel_finite(log_mel, padded[lo:hi], "streamed audio")
        self._next_frame = last_frame + 1
        return self.extractor.normalize(log_mel)

    def __call__(self, chunk: torch.Tensor, sample_rate: Optional[int] = None) -> torch.Tensor:
        """Feed ``chunk`` ``(n,)`` or ``(1, n)`` (n may be 0); return newly final frames ``(T_new, F)``."""
        if self._finished:
            raise ValueError("stream already flushed; call reset() to start a new utterance.")
        if sample_rate is not None:
            check_sample_rate(sample_rate)
        mean = self.extractor.mean
        chunk = check_waveform(chunk, "chunk", allow_empty=True, stream_offset=self._num_samples)
        chunk = chunk.to(device=mean.device, dtype=mean.dtype)
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
