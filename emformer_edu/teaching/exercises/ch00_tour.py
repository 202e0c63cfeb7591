"""Notebook 00 (tour): the training mask's size, what one frame sees, the left context in audio time,
and a coding exercise: plan the chunks a streaming recogniser receives.

The notebook's solutions count by hand; these values come from a real Emformer pass (its recorded
attention), from the library's latency arithmetic, and from the real chunker
(:func:`emformer_edu.transducer.streaming.streaming_chunks`).
"""
import torch

from ...config import EmformerRNNTConfig
from ...transducer import streaming_chunks
from ...transducer.streaming import latency_ms
from ._shared import Exercise, attended_keys, query_row, training_call


def _mask_shape():
    # (queries, keys) of the attention the Emformer actually computed: T=10, segment 4, R=2, memory on (M=2).
    probs = training_call(10, 4, 2, max_memory_size=2).layers[0].attention_probs
    return tuple(probs.shape[-2:])


def _visible_keys():
    # Keys given probability by the first frame of segment 2 (T=12, segment 4, R=2, L=3, M=1).
    call = training_call(12, 4, 2, left_context_length=3, max_memory_size=1)
    return len(attended_keys(call, query_row(call, "utterance", 2)))


def _left_context_ms():
    # Milliseconds of past audio in emformer_rnnt_base's left context (counted in Emformer frames).
    cfg = EmformerRNNTConfig.base()
    return float(latency_ms(cfg.segment_length, cfg.right_context_length, cfg.time_reduction_stride,
                            cfg.transformer_left_context_length)["left_context"])


def chunk_plan(T: int, segment_length: int, right_context_length: int):
    """The chunks :func:`streaming_chunks` cuts from ``T`` frames (+ R right padding), as
    ``((start, stop, length), ...)``: chunk i holds feature frames ``[start, stop)`` (zero-padded past
    ``T + R``) and ``length`` of them are real, the number ``transcribe_streaming`` is given.
    Read off the real chunker's output: frame k of the features holds the number k + 1."""
    R = right_context_length
    features = torch.arange(1.0, T + R + 1).unsqueeze(1)  # (T + R, 1): frame k holds k + 1
    plan = []
    for chunk, length in streaming_chunks(features, segment_length, R):
        start = int(chunk[0, 0, 0]) - 1
        plan.append((start, start + chunk.size(1), int(length[0])))
    return tuple(plan)


def _chunk_cases():
    cases = [dict(T=10, segment_length=4, right_context_length=2),   # the last chunk is half empty
             dict(T=8, segment_length=4, right_context_length=2),    # T a multiple of the segment
             dict(T=7, segment_length=3, right_context_length=0)]    # no look-ahead
    for _ in range(8):
        cases.append(dict(T=int(torch.randint(1, 60, ())), segment_length=int(torch.randint(1, 17, ())),
                          right_context_length=int(torch.randint(0, 6, ()))))
    return cases


EXERCISES = {
    "00.mask_shape": Exercise("(queries, keys) of the training mask for T=10, segment 4, R=2, M=2", _mask_shape),
    "00.visible_keys": Exercise("keys the first frame of segment 2 attends to (T=12, segment 4, R=2, L=3, M=1)",
                                _visible_keys),
    "00.left_context_ms": Exercise("milliseconds of past audio in emformer_rnnt_base's left context",
                                   _left_context_ms),
    "00.chunk_plan": Exercise("(start, stop, length) of every streaming chunk of T frames", chunk_plan,
                              _chunk_cases),
}
