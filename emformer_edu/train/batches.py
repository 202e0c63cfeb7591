"""Training batches: features kept in memory, the predictor input, SpecAugment.

* :class:`FeatureSet`: synthetic utterances featurized once, batched as
  ``features (B, T_max + R, F)``, ``lengths (B,)``, ``targets (B, U_max)``, ``target_lengths (B,)``;
* :func:`prepend_blank`: targets ``(B, U)`` -> predictor input ``(B, U + 1)`` starting with the
  blank, as in torchaudio's recipe;
* :func:`spec_augment`: frequency and time masks (Park et al., 2019) without time warping.

Notation: B batch, T frames, U target length, F mel bins, R right context (look-ahead frames).
"""
from typing import List, Sequence

import torch

from ..data.features import FeatureExtractor
from ..data.synthetic import SyntheticSpeechDataset
from ..runtime import single_thread


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


def spec_augment(
    features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator,
    freq_masks: int = 2, freq_mask_width: int = 12, time_masks: int = 2, time_mask_width: int = 4,
) -> torch.Tensor:
    """SpecAugment-style masking (Park et al., 2019) without time warping; returns a new tensor.

    ``features (B, T + R, F)``, ``lengths (B,)``. For each utterance, ``freq_masks`` bands of
    ``w ~ U{0..freq_mask_width}`` mel bins and ``time_masks`` spans of ``w ~ U{0..time_mask_width}``
    frames inside its ``lengths[b]`` real frames are set to 0, the mean in normalized units.
    Time masks stay short because a synthetic token can be as short as 6 frames: masking
    all of it would teach the model to hallucinate.
    """
    out = features.clone()
    F = out.size(-1)
    draw = lambda high: int(torch.randint(0, high + 1, (1,), generator=generator))  # noqa: E731
    for b in range(out.size(0)):
        T_b = int(lengths[b])
        for _ in range(freq_masks):
            w = draw(min(freq_mask_width, F))
            f0 = draw(F - w)
            out[b, :, f0 : f0 + w] = 0
        for _ in range(time_masks):
            w = draw(min(time_mask_width, T_b))
            t0 = draw(T_b - w)
            out[b, t0 : t0 + w] = 0
    return out
