"""Chapter 11's exercises: for each key, a right answer and a wrong one, written by hand."""
import torch


def band_gather(predictor_out, starts, prune_range):
    B, T = starts.shape
    D = predictor_out.shape[2]
    index = starts.unsqueeze(-1) + torch.arange(prune_range)  # (B, T, S): u = s_t + j
    return torch.gather(predictor_out, 1, index.reshape(B, T * prune_range, 1).expand(-1, -1, D)).reshape(
        B, T, prune_range, D)


def band_gather_no_offset(predictor_out, starts, prune_range):
    # Wrong: forgot "+ j": every slot of the band holds the band's first node.
    B, T = starts.shape
    D = predictor_out.shape[2]
    rows = torch.gather(predictor_out, 1, starts.unsqueeze(-1).expand(-1, -1, D))  # (B, T, D)
    return rows.unsqueeze(2).expand(B, T, prune_range, D)


ANSWERS = {
    "11.joint_gib": (3.7240, 3.6630),  # forgot the "+1" of U+1: 60 rows instead of 61
    "11.min_band": (4, 3),  # ceil(45 / 20) = 3, without the "+1"
    "11.band_gather": (band_gather, band_gather_no_offset),
}
