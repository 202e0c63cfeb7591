"""Cutting an utterance into segments and right-context (look-ahead) blocks.

Emformer processes the time axis in segments of ``segment_length`` frames. Each segment
may look ``R = right_context_length`` frames into the future; those frames are *hard
copies* of the frames that follow the segment, so in training every segment gets its own
look-ahead block exactly as it will in streaming.

Shapes use time-major layout, as the Emformer layers do: ``(T, B, D)``.
"""
import math
from dataclasses import dataclass
from typing import List

import torch


@dataclass(frozen=True)
class SegmentSpan:
    """Frame ranges (``start`` inclusive, ``stop`` exclusive) seen by one segment.

    ``segment`` is the segment itself, ``right_context`` the R look-ahead frames copied from
    the input, ``left_context`` the cached past frames it may attend to. All in utterance frames.
    """

    index: int
    segment: tuple
    right_context: tuple
    left_context: tuple


def num_segments(utterance_length: int, segment_length: int) -> int:
    """Number of segments, the last one possibly only partly filled: ``ceil(T / segment_length)``."""
    return math.ceil(utterance_length / segment_length)


def segment_spans(
    utterance_length: int, segment_length: int, right_context_length: int, left_context_length: int = 0
) -> List[SegmentSpan]:
    """Describe, for every segment, which frames it owns, looks ahead to and looks back to.

    ``utterance_length`` T excludes the trailing R frames; the right context of the last
    segment is ``[T, T + R)``, the utterance's trailing R frames.
    """
    T, R = utterance_length, right_context_length
    spans = []
    for i in range(num_segments(T, segment_length)):
        start, stop = i * segment_length, min((i + 1) * segment_length, T)
        rc_start = stop if stop < T else T
        spans.append(
            SegmentSpan(
                index=i,
                segment=(start, stop),
                right_context=(rc_start, rc_start + R),
                left_context=(max(start - left_context_length, 0), start),
            )
        )
    return spans


def split_utterance_and_right_context(
    input: torch.Tensor, segment_length: int, right_context_length: int
):
    """Split ``(T + R, B, D)`` frames into the utterance and its right-context blocks.

    Returns ``(utterance, right_context)``: utterance ``(T, B, D)`` and right context
    ``(N * R, B, D)`` with ``N = ceil(T / segment_length)`` blocks of R frames. Block i holds
    the R frames after segment i; the last block is the input's trailing R frames.
    """
    R = right_context_length
    T = input.size(0) - R
    if T < 1:
        raise ValueError(
            f"input must have more than right_context_length={R} frames, got {input.size(0)}."
        )
    utterance = input[:T]
    # All blocks' frames in one gather (not a slice per block and a cat): one op in each direction.
    frames = [t for s in segment_spans(T, segment_length, R) for t in range(*s.right_context)]
    return utterance, input.index_select(0, torch.tensor(frames, dtype=torch.long, device=input.device))
