"""Notebook 05 (streaming = full context): how many chunks, and what the shipped model's cache holds.

Chunks are cut by the real chunker; the cache is the shipped spoken model's streaming state (the model
notebook 05 streams) after real ``transcribe_streaming`` calls, counting the slots that hold a vector
rather than the initial zeros.
"""
import torch

from ...transducer import streaming_chunks
from ._shared import Exercise, filled_rows, spoken


def _chunks():
    # 96 feature frames plus R = 4 padding frames, segment 16.
    return len(streaming_chunks(torch.zeros(96 + 4, 80), 16, 4))


def _spoken_state(num_chunks: int):
    """Layer 0's streaming state of the spoken model after ``num_chunks`` chunks of random features."""
    model = spoken()
    features = torch.randn(num_chunks * model.segment_length + model.right_context_length, 80)
    state = None
    with torch.no_grad():
        for chunk, length in model.chunks(features)[:num_chunks]:
            _, _, state = model.model.transcribe_streaming(chunk, length, state)
    return state[0]


EXERCISES = {
    "05.chunks": Exercise("transcribe_streaming calls for 96 frames + R=4, segment 16", _chunks),
    "05.memory_after_3": Exercise("memory slots holding real vectors after 3 chunks (M=4)",
                                  lambda: filled_rows(_spoken_state(3).memory)),
    "05.left_context_after_1": Exercise("left-context frames cached after the first chunk (L=8, 4 per chunk)",
                                        lambda: filled_rows(_spoken_state(1).left_context_key)),
}
