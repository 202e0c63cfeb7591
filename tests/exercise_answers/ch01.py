"""Chapter 01's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import torch


# 01.num_frames -------------------------------------------------------------------------------
def num_frames(num_samples):
    # Centred framing: frame t is centred on sample 160 t, for every t with 160 t <= N - 1.
    return num_samples // 160 + 1


def num_frames_uncentred(num_samples):
    # Bug: the formula for windows that must lie inside the signal (center=False), not centred ones.
    return (num_samples - 400) // 160 + 1


# 01.chunks -----------------------------------------------------------------------------------
def chunk(features, segment_length, right_context_length):
    T = features.shape[0] - right_context_length
    size = segment_length + right_context_length
    padded = torch.cat([features, torch.zeros(size, features.shape[1])])
    starts = range(0, T, segment_length)
    return torch.stack([padded[s: s + size] for s in starts])


def chunk_counting_padding(features, segment_length, right_context_length):
    # Bug: the R right-padding frames are taken for utterance frames, so chunks start up to T + R.
    T = features.shape[0]
    size = segment_length + right_context_length
    padded = torch.cat([features, torch.zeros(size, features.shape[1])])
    starts = range(0, T, segment_length)
    return torch.stack([padded[s: s + size] for s in starts])


# 01.frame_latency ----------------------------------------------------------------------------
def frame_latency_ms(t, segment_length, right_context_length, frame_ms):
    # Frame t is in segment t // C; that chunk is complete when frame (t // C + 1) C + R - 1 has arrived.
    last_needed = (t // segment_length + 1) * segment_length + right_context_length - 1
    return (last_needed - t) * frame_ms


def frame_latency_from_start_ms(t, segment_length, right_context_length, frame_ms):
    # Bug: counts from the start of frame t, not from when it has arrived (one frame too many).
    last_needed = (t // segment_length + 1) * segment_length + right_context_length
    return (last_needed - t) * frame_ms


ANSWERS = {
    "01.num_frames": (num_frames, num_frames_uncentred),
    "01.chunks": (chunk, chunk_counting_padding),
    "01.frame_latency": (frame_latency_ms, frame_latency_from_start_ms),
}
