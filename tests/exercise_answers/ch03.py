"""Chapter 03's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import math

import torch


def summary_vectors(frames, segment_length):
    T = frames.shape[0]
    return torch.stack([frames[i:i + segment_length].mean(dim=0) for i in range(0, T, segment_length)])


def summary_vectors_padded(frames, segment_length):
    # Bug: zero-pads the last segment and divides by segment_length, not by the frames it has.
    T = frames.shape[0]
    S = math.ceil(T / segment_length)
    padded = torch.cat([frames, frames.new_zeros(S * segment_length - T, frames.shape[1])])
    return padded.view(S, segment_length, -1).sum(dim=1) / segment_length


def memory_sources(segment, max_memory_size):
    return list(range(max(0, segment - max_memory_size), segment))


def memory_sources_one_short(segment, max_memory_size):
    # Bug: off by one, the oldest slot of a full bank is missing.
    return list(range(max(0, segment - max_memory_size + 1), segment))


ANSWERS = {
    "03.summary_vectors": (summary_vectors, summary_vectors_padded),
    "03.memory_sources": (memory_sources, memory_sources_one_short),
    "03.memory_columns": (4, 5),  # the last summary is never read
    "03.oldest_slot": (3, 4),  # counted M chunks back from 8, not from 7
}
