"""Notebook 02 (attention masks): build one row of the training mask, which memory slots a frame reads, what a summary sees.

``02.mask_row`` is a coding exercise: the learner's function must return the same boolean key row
as the library's :func:`~emformer_edu.encoder.masks.training_mask` on every case. The value
exercises are read from the attention probabilities of a real Emformer pass: a key counts if the
softmax gave it probability, so those checks test what the model does, not how the mask is drawn.
"""
import random

import torch

from ...encoder.masks import training_mask
from ._shared import Exercise, attended_keys, query_row, training_call


def _library_mask_row(kind: str, segment: int, utterance_length: int, segment_length: int,
                      right_context_length: int, left_context_length: int, max_memory_size: int) -> torch.Tensor:
    """The library's answer: row ``(kind, segment)`` of ``training_mask(...).allowed`` (True = may attend)."""
    mask = training_mask(utterance_length, segment_length, right_context_length, left_context_length, max_memory_size)
    return mask.allowed[mask.first_row(kind, segment)]


def _mask_row_cases():
    def case(kind, segment, T, seg, R, L, M):
        return dict(kind=kind, segment=segment, utterance_length=T, segment_length=seg, right_context_length=R,
                    left_context_length=L, max_memory_size=M)

    # Small first: the notebook's example (T=12, segment 4, R=2, L=4, M=2), then edge cases.
    cases = [case("utterance", 1, 12, 4, 2, 4, 2), case("right_context", 1, 12, 4, 2, 4, 2),
             case("summary", 1, 12, 4, 2, 4, 2), case("utterance", 0, 12, 4, 2, 4, 2),
             case("utterance", 2, 10, 4, 1, 0, 0),  # no memory, no left context, a short last segment
             case("utterance", 3, 16, 4, 2, 6, 2)]  # left context longer than a segment
    rng = random.Random(0)  # the cases are the same on every run
    while len(cases) < 40:
        seg, R, L, M = rng.randint(1, 5), rng.randint(0, 3), rng.randint(0, 9), rng.randint(0, 3)
        T = rng.randint(1, 24)
        kinds = ["utterance"] + (["right_context"] if R else []) + (["summary"] if M else [])
        cases.append(case(rng.choice(kinds), rng.randrange(-(-T // seg)), T, seg, R, L, M))
    return cases


def _memory_slots():
    # Memory columns come first in the key layout, one per memory vector the layer read.
    call = training_call(24, 4, 1, left_context_length=0, max_memory_size=3)
    num_memory = call.layers[0].memory_in.size(0)
    keys = attended_keys(call, query_row(call, "utterance", 5)).tolist()
    return frozenset(f"m{j}" for j in keys if j < num_memory)


def _summary_keys():
    call = training_call(16, 4, 2, left_context_length=6, max_memory_size=2)
    return len(attended_keys(call, query_row(call, "summary", 3)))


EXERCISES = {
    # A set: the slots are an answer in any order.
    "02.memory_slots": Exercise("memory slots read by segment 5 (T=24, segment 4, R=1, L=0, M=3), as names m<j>",
                                _memory_slots),
    "02.summary_keys": Exercise("keys the summary query of segment 3 sees (T=16, segment 4, R=2, L=6, M=2)",
                                _summary_keys),
    "02.mask_row": Exercise("mask_row(kind, segment, utterance_length, segment_length, right_context_length, "
                            "left_context_length, max_memory_size): the training mask's boolean key row "
                            "(True = may attend) of one query block", _library_mask_row, cases=_mask_row_cases),
}
