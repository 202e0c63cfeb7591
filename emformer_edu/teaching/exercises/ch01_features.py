"""Notebook 01 (features and chunks): how many chunks, the worst-case latency, frames per second.

Chunks are counted by cutting features with the real chunker, latency is read off the frames each
chunk waits for, and frames per second come from running the feature pipeline on one second of audio.
"""
import torch

from ...data import FeatureExtractor
from ...transducer import streaming_chunks
from ._shared import Exercise


def _num_chunks():
    # 131 feature frames, the last 4 of them the right padding; segment 16, R = 4.
    return len(streaming_chunks(torch.zeros(131, 80), 16, 4))


def _worst_latency():
    # Each frame holds its own index, so a chunk shows which frames it waited for. Segment 8, R = 2.
    extractor = FeatureExtractor()
    frame_ms = 1000 * extractor.hop_length / extractor.sample_rate
    segment, right = 8, 2
    frames = torch.arange(4 * segment + right, dtype=torch.float64).unsqueeze(1)
    worst = 0.0
    for chunk, length in streaming_chunks(frames, segment, right):
        waited_for = chunk[0, : int(length[0]), 0]
        # From the end of the segment's first frame to the end of the last frame the chunk needs.
        worst = max(worst, float(waited_for[-1] - waited_for[0]) * frame_ms)
    return worst


def _frames_per_second():
    # The pipeline's output counts its R padding frames; the question asks for the frames before padding.
    extractor = FeatureExtractor()
    _, length = extractor(torch.zeros(extractor.sample_rate))
    return int(length[0]) - extractor.right_padding


EXERCISES = {
    "01.num_chunks": Exercise("streaming chunks for 131 frames (4 of them right padding), segment 16, R=4",
                              _num_chunks),
    "01.worst_latency": Exercise("worst-case algorithmic latency in ms, segment 8, R=2, 10 ms frames",
                                 _worst_latency),
    "01.frames_per_second": Exercise("feature frames for exactly 1 s of 16 kHz audio, before right padding",
                                     _frames_per_second),
}
