"""Notebook 03 (memory bank): write the summary vectors, say which memory slots a segment reads, count memory
columns, find the chunk in the oldest slot.

The coding exercises are checked against the library's own functions: ``summarize_segments`` (the
average pooling every layer applies to its normed segment frames, and ``Emformer.forward`` to its
input for layer 0's memory) and the training mask of a real ``Emformer.forward`` call, read from the
recording. The value exercises are read from real runs too (a training-mode pass, a
streaming cache after chunks whose frames carry their chunk's number).
"""
import torch

from ...encoder.memory_bank import summarize_segments
from ...transducer import streaming_chunks
from ._shared import Exercise, small_emformer, training_call


def _memory_columns():
    # The memory vectors layer 0 actually read: T=20, segment 4, memory on.
    return training_call(20, 4, 1, max_memory_size=2).layers[0].memory_in.size(0)


def _summary_vectors(frames: torch.Tensor, segment_length: int) -> torch.Tensor:
    # The library's pooling, on time-major (T, B=1, D) frames.
    return summarize_segments(frames.unsqueeze(1), segment_length)[:, 0]


def _summary_cases():
    cases = [dict(frames=torch.arange(8.0).repeat(2, 1).T.contiguous(), segment_length=4),  # two full segments
             dict(frames=torch.arange(10.0).repeat(2, 1).T.contiguous(), segment_length=4)]  # a partial last one
    for T, segment in [(7, 3), (13, 4), (16, 5), (5, 8), (9, 1)]:
        cases.append(dict(frames=torch.randn(T, 6, dtype=torch.float64), segment_length=segment))
    return cases


def _memory_sources(segment: int, max_memory_size: int):
    """The segments whose memory slot the frames of ``segment`` attended to, in a real training-mode pass."""
    call = training_call((segment + 1) * 2, 2, 1, max_memory_size=max_memory_size)
    probs = call.layers[0].attention_probs[0, 0]  # head 0; blocked keys get exactly 0 in float64
    row = next(b.start for b in call.mask.rows if b.kind == "utterance" and b.segment == segment)
    # A tuple: the checker compares sequences in order (a learner's list or range is the same answer).
    return tuple(b.segment for b in call.mask.cols if b.kind == "memory" and float(probs[row, b.start]) > 0)


def _memory_sources_cases():
    return [dict(segment=s, max_memory_size=m) for s, m in [(0, 4), (2, 4), (3, 4), (7, 4), (6, 2), (5, 1), (9, 3)]]


def _oldest_slot(chunk: int = 7, max_memory_size: int = 4) -> int:
    segment, right = 4, 1
    model = small_emformer(segment, right, max_memory_size=max_memory_size)
    # Every frame of chunk i holds i + 1, so layer 0's memory (segment averages) names its chunk; 0 = empty slot.
    frames = torch.arange((chunk + 1) * segment + right) // segment + 1
    x = frames.to(torch.float64)[None, :, None].expand(1, -1, model.input_dim)
    state = None
    for chunk_in, length in streaming_chunks(x, segment, right)[:chunk]:
        _, _, state = model.infer(chunk_in, length, state)
    # The cache as chunk `chunk` finds it; its oldest slot holds the smallest chunk number.
    slots = state[0].memory[:, 0, 0]
    return int(slots[slots > 0].min().round()) - 1


EXERCISES = {
    "03.summary_vectors": Exercise("summary_vectors(frames (T, D), segment_length) -> (S, D): each segment's mean",
                                   _summary_vectors, _summary_cases),
    "03.memory_sources": Exercise("memory_sources(segment, max_memory_size) -> the segments whose memory slot "
                                  "the frames of `segment` read (training mode)", _memory_sources,
                                  _memory_sources_cases),
    "03.memory_columns": Exercise("memory columns of the training mask for T=20, segment 4, memory on",
                                  _memory_columns),
    "03.oldest_slot": Exercise("chunk whose memory is in the oldest slot while chunk 7 is processed, M=4",
                               _oldest_slot),
}
