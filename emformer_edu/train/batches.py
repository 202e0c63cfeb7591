"""Training batches: features kept in memory or made per batch, the predictor input, augmentation.

* :class:`FeatureSet`: synthetic utterances featurized once, batched as
  ``features (B, T_max + R, F)``, ``lengths (B,)``, ``targets (B, U_max)``, ``target_lengths (B,)``;
* :class:`FeatureCollate`: the same four tensors from a list of utterances (a DataLoader's
  ``collate_fn``, so fresh utterances are featurized in a worker process);
* :func:`prepend_blank`: targets ``(B, U)`` -> predictor input ``(B, U + 1)`` starting with the
  blank, as in torchaudio's recipe;
* :func:`length_buckets`: a batch as parts of similar length, each padded only to its own longest;
* :func:`spec_augment`: frequency and time masks (Park et al., 2019) without time warping;
* :func:`change_speed`, :class:`SpeedPerturbed`: speed perturbation (Ko et al., 2015), the
  waveform resampled by a factor near 1, so tempo, pitch and formants all move.

Notation: B batch, T frames, U target length, F mel bins, R right context (look-ahead frames).
"""
import dataclasses
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchaudio

from ..data.corpus import Alignment, Utterance
from ..data.features import SAMPLE_RATE, FeatureExtractor
from ..data.synthetic import SyntheticSpeechDataset
from ..runtime import single_thread

SPEED_RANGE = (0.9, 1.1)  # speed factors of SpeedPerturbed, as in Kaldi's 0.9 / 1.0 / 1.1 recipe, but any in between
SPEED_STEP = 0.01  # factors are rounded to it, so 21 resampling kernels serve every utterance


class FeatureSet:
    """Synthetic utterances featurized once and kept in memory (token ids and ``(T, F)`` features).

    Featurizing costs about as much as a training step, so doing it once per utterance
    instead of once per epoch halves training time.
    """

    def __init__(self, dataset: SyntheticSpeechDataset, extractor: FeatureExtractor):
        self.right_padding = extractor.right_padding
        self.features: List[torch.Tensor] = []  # (T_i, F) each
        self.tokens: List[torch.Tensor] = []  # (U_i,) int32 each
        with torch.no_grad(), single_thread():
            for i in range(len(dataset)):
                utt = dataset[i]
                self.features.append(extractor.features(utt.waveform))
                self.tokens.append(utt.tokens.to(torch.int32))

    def __len__(self) -> int:
        return len(self.features)

    def batch(self, indices: Sequence[int]):
        """``(features (B, T_max + R, F), lengths (B,), targets (B, U_max), target_lengths (B,))``.

        Same layout as :class:`~emformer_edu.data.corpus.Collate`: zero padding, then R zero
        frames; lengths count real frames; int32 targets padded with 0 (use the lengths).
        """
        pad = torch.nn.utils.rnn.pad_sequence
        feats = [self.features[i] for i in indices]
        toks = [self.tokens[i] for i in indices]
        x = torch.nn.functional.pad(pad(feats, batch_first=True), (0, 0, 0, self.right_padding))
        lengths = torch.tensor([f.size(0) for f in feats], dtype=torch.int32)
        return x, lengths, pad(toks, batch_first=True), torch.tensor([t.numel() for t in toks], dtype=torch.int32)


class FeatureCollate:
    """``collate_fn`` for training: utterances -> ``(features (B, T_max + R, F), lengths (B,), targets (B, U_max),
    target_lengths (B,))``, the layout of :meth:`FeatureSet.batch` (each utterance featurized on its own).
    It reads only each item's ``waveform`` and ``tokens``: a recording, which has no alignment, batches too.

    A class, not a closure, so DataLoader worker processes can receive it.
    """

    def __init__(self, extractor: FeatureExtractor):
        self.extractor = extractor

    def __call__(self, items: Sequence[Utterance]):
        with torch.no_grad(), single_thread():
            x, lengths = self.extractor.batch([u.waveform for u in items])
        toks = [u.tokens.to(torch.int32) for u in items]
        targets = torch.nn.utils.rnn.pad_sequence(toks, batch_first=True)
        return x, lengths, targets, torch.tensor([t.numel() for t in toks], dtype=torch.int32)


def batch_indices(step: int, num_items: int, batch_size: int, seed: int = 0) -> List[int]:
    """The items of training step ``step``: epoch-wise shuffles seeded by (seed, epoch), so any step can be
    replayed (resume) without storing the order. An epoch is ``num_items // batch_size`` steps; the
    remainder of each shuffle is left out of that epoch."""
    epoch, k = divmod(step, max(1, num_items // batch_size))
    order = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return order[k * batch_size: (k + 1) * batch_size].tolist()


def prepend_blank(targets: torch.Tensor, blank: int) -> torch.Tensor:
    """``(B, U)`` targets -> ``(B, U + 1)`` predictor input starting with the blank (start symbol)."""
    return torch.cat([torch.full_like(targets[:, :1], blank), targets], dim=1)


def length_buckets(features: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                   target_lengths: torch.Tensor, parts: int):
    """The batch sorted by length (longest first) and cut into ``parts`` sub-batches, each trimmed to
    its own longest utterance plus the R right-context frames, and to its longest target.

    Spoken batches hold utterances of 1-3 s, so about 40 % of a batch's frames are padding; two parts
    pad far less, and the parts' losses add up to the batch's. One detail of torchaudio's layout moves:
    the longest utterance of a batch keeps its last ``length % stride`` input frames (the partial
    encoder frame) as look-ahead, where the others drop them; now the longest of each part does. With
    lengths that are multiples of the stride the gradient is the batch's exactly.
    Yields ``(features (b, T_b + R, F), lengths (b,), targets (b, U_b), target_lengths (b,))``.
    """
    if parts == 1:
        yield features, lengths, targets, target_lengths
        return
    R = features.size(1) - int(lengths.max())  # the appended right-context frames
    for idx in torch.argsort(lengths, descending=True, stable=True).tensor_split(parts):
        if idx.numel():
            T, U = int(lengths[idx].max()), int(target_lengths[idx].max())
            yield features[idx, : T + R], lengths[idx], targets[idx, :U], target_lengths[idx]


def spec_augment(
    features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator,
    freq_masks: int = 2, freq_mask_width: int = 12, time_masks: int = 2, time_mask_width: int = 4,
    all_lengths: Optional[torch.Tensor] = None, offset: int = 0,
) -> torch.Tensor:
    """SpecAugment-style masking (Park et al., 2019) without time warping; returns a new tensor.

    ``features (B, T + R, F)``, ``lengths (B,)``. For each utterance, ``freq_masks`` bands of
    ``w ~ U{0..freq_mask_width}`` mel bins and ``time_masks`` spans of ``w ~ U{0..time_mask_width}``
    frames inside its ``lengths[b]`` real frames are set to 0, the mean in normalized units.
    Time masks stay short because a synthetic token can be as short as 6 frames: masking
    all of it would teach the model to hallucinate.

    Distributed training (:mod:`.distributed`): ``features`` are one shard of a global batch whose
    lengths are ``all_lengths (B,)``, the shard starting at utterance ``offset``. The masks are drawn
    for all B utterances in order, as on one process, and the shard's rows get theirs.
    """
    out = features.clone()
    F = out.size(-1)
    draw = lambda high: int(torch.randint(0, high + 1, (1,), generator=generator))  # noqa: E731
    every = lengths if all_lengths is None else all_lengths
    for b in range(every.numel()):
        T_b = int(every[b])
        row = b - offset
        mine = 0 <= row < out.size(0)  # draw for every utterance, mask this shard's only
        for _ in range(freq_masks):
            w = draw(min(freq_mask_width, F))
            f0 = draw(F - w)
            if mine:
                out[row, :, f0 : f0 + w] = 0
        for _ in range(time_masks):
            w = draw(min(time_mask_width, T_b))
            t0 = draw(T_b - w)
            if mine:
                out[row, t0 : t0 + w] = 0
    return out


# ----------------------------------------------------------------------------- speed perturbation
@lru_cache(maxsize=32)
def _resampler(orig_freq: int) -> torchaudio.transforms.Resample:
    return torchaudio.transforms.Resample(orig_freq, SAMPLE_RATE)  # keeps its sinc kernel between calls


def change_speed(utt: Utterance, factor: float) -> Utterance:
    """``utt`` played ``factor`` times as fast (``factor > 1``: shorter, higher), as a new utterance.

    The waveform is resampled as if it had been recorded at ``16000 * factor`` Hz, so
    ``N -> ~N / factor`` samples; every span (the token ``alignment`` and, for a spoken utterance,
    its ``words`` and ``phonemes``) is scaled by ``1 / factor`` too (a recording has none: its
    ``alignment`` stays ``None``). ``16000 * factor`` is rounded to an integer rate.
    """
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must be in [0.5, 2], got {factor!r}.")
    orig = int(round(SAMPLE_RATE * factor))
    if orig == SAMPLE_RATE:
        return utt
    with torch.no_grad():
        wave = _resampler(orig)(utt.waveform).clamp_(-1.0, 1.0)  # the filter can overshoot a little
    n = wave.numel()

    def scale(spans: Alignment) -> Alignment:  # sample p -> round(p * 16000 / orig), never past the end
        f = lambda p: torch.clamp((p * SAMPLE_RATE + orig // 2) // orig, max=n)  # noqa: E731
        return dataclasses.replace(spans, start_sample=f(spans.start_sample), end_sample=f(spans.end_sample))

    changes = {"waveform": wave}
    for name in ("alignment", "words", "phonemes"):  # a SpokenUtterance's other spans; a recording has none
        if getattr(utt, name, None) is not None:
            changes[name] = scale(getattr(utt, name))
    return dataclasses.replace(utt, **changes)


class SpeedPerturbed(torch.utils.data.Dataset):
    """``dataset`` with item i played at speed ``factor(i)``, drawn from ``SPEED_RANGE`` in ``SPEED_STEP`` steps.

    The factor is seeded by ``(seed, i)``: the same in any order and any worker process.
    """

    def __init__(self, dataset, seed: int = 0, speed_range: Tuple[float, float] = SPEED_RANGE):
        self.dataset, self.seed, self.speed_range = dataset, seed, speed_range

    def __len__(self) -> int:
        return len(self.dataset)

    def factor(self, index: int) -> float:
        lo, hi = self.speed_range
        k = np.random.default_rng([self.seed, 0x5BEED, index]).integers(0, round((hi - lo) / SPEED_STEP), endpoint=True)
        return round(lo + int(k) * SPEED_STEP, 6)

    def __getitem__(self, index: int) -> Utterance:
        if index < 0:
            index += len(self)
        return change_speed(self.dataset[index], self.factor(index))
