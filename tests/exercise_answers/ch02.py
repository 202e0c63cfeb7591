"""Chapter 02's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import math

import torch


def _mask_row(kind, segment, utterance_length, segment_length, right_context_length, left_context_length,
              max_memory_size, left_context_shift=0):
    """A learner's mask row from the index sets; ``left_context_shift=1`` is the off-by-one bug."""
    T, R, L, M = utterance_length, right_context_length, left_context_length, max_memory_size
    N = math.ceil(T / segment_length)
    num_memory = N - 1 if M > 0 else 0
    row = torch.zeros(num_memory + N * R + T, dtype=torch.bool)
    if kind != "summary":  # the summary query never reads the memory bank
        row[max(segment - M, 0):segment] = True
    rc = num_memory + segment * R
    row[rc:rc + R] = True
    first = max(segment * segment_length - L + left_context_shift, 0)
    last = min((segment + 1) * segment_length, T)
    utterance = num_memory + N * R
    row[utterance + first:utterance + last] = True
    return row


def mask_row_right(kind, segment, utterance_length, segment_length, right_context_length, left_context_length,
                   max_memory_size):
    return _mask_row(kind, segment, utterance_length, segment_length, right_context_length, left_context_length,
                     max_memory_size)


def mask_row_wrong(kind, segment, utterance_length, segment_length, right_context_length, left_context_length,
                   max_memory_size):
    # Off by one in the left context: sees L - 1 frames before the segment instead of L.
    return _mask_row(kind, segment, utterance_length, segment_length, right_context_length, left_context_length,
                     max_memory_size, left_context_shift=1)


ANSWERS = {
    "02.memory_slots": (["m2", "m3", "m4"], ["m1", "m2", "m3"]),
    "02.summary_keys": (12, 14),  # gave the summary memory
    "02.mask_row": (mask_row_right, mask_row_wrong),
}
