"""Notebook 11 (memory and the pruned loss): the size of the joint, the narrowest band that holds a path,
the band gather (coding).

The joint's size is computed from torchaudio's base configuration, the narrowest band is
:func:`~emformer_edu.rnnt.pruned.min_prune_range`, and the learner's gather is compared with the
predictor half of :func:`~emformer_edu.rnnt.pruned.do_rnnt_pruning`.
"""
import torch

from ...rnnt import pruned
from ._shared import Exercise

# torchaudio's emformer_rnnt_base: 4097 outputs (4096 sentencepiece tokens + blank); a batch of 16
# ten-second LibriSpeech utterances: 10 ms frames, stride 4 -> T = 250; about 60 tokens each.
JOINT = dict(B=16, T=250, U=60, V=4097)


def _joint_gib() -> float:
    B, T, U, V = JOINT["B"], JOINT["T"], JOINT["U"], JOINT["V"]
    return B * T * (U + 1) * V * 4 / 2**30


def _min_band() -> int:
    return pruned.min_prune_range(torch.tensor([20]), torch.tensor([45]))


def _band_gather(predictor_out: torch.Tensor, starts: torch.Tensor, prune_range: int) -> torch.Tensor:
    """The library's gather: predictor_out (B, U+1, D), starts (B, T) -> (B, T, S, D)."""
    B, T = starts.shape
    encoder_out = predictor_out.new_zeros(B, T, 1)
    return pruned.do_rnnt_pruning(encoder_out, predictor_out, starts, prune_range)[1]


def _band_gather_cases():
    def case(B, T, U, D, S):
        starts = torch.randint(0, U + 2 - S, (B, T)).sort(dim=1).values  # any monotone starts in range
        return dict(predictor_out=torch.randn(B, U + 1, D, dtype=torch.float64), starts=starts, prune_range=S)

    # One frame first, then the full width (S = U + 1), then random sizes.
    return [case(1, 1, 2, 1, 2), case(1, 3, 2, 2, 3), case(2, 5, 4, 3, 2), case(3, 9, 7, 4, 3), case(2, 12, 10, 5, 5)]


EXERCISES = {
    "11.joint_gib": Exercise("GiB of the float32 joint (B, T, U+1, V) for B=16, T=250, U=60, V=4097", _joint_gib),
    "11.min_band": Exercise("smallest band width S that holds a path for T=20 frames and U=45 tokens", _min_band),
    "11.band_gather": Exercise("write band_gather(predictor_out, starts, prune_range): (B, U+1, D), (B, T) "
                               "-> (B, T, S, D) with [b, t, j] = predictor_out[b, starts[b, t] + j]",
                               _band_gather, _band_gather_cases),
}
