"""Chapter 05's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import math

import torch

from emformer_edu import streaming_chunks


def hard_copies_right(frames, segment_length, right_context_length):
    T = frames.shape[0] - right_context_length
    blocks = []
    for i in range(math.ceil(T / segment_length)):
        start = min((i + 1) * segment_length, T)  # a partly filled last segment: its look-ahead starts at T
        blocks.append(frames[start:start + right_context_length])
    return torch.cat(blocks)


def hard_copies_wrong(frames, segment_length, right_context_length):
    # Forgets that the last segment may be partly filled: its block starts at (i + 1) * S, past T.
    T = frames.shape[0] - right_context_length
    blocks = []
    for i in range(math.ceil(T / segment_length)):
        start = (i + 1) * segment_length
        blocks.append(frames[start:start + right_context_length])
    return torch.cat(blocks)


def _stream(model, features, carry_state):
    tr = model.transcriber
    state, pieces = None, []
    with torch.no_grad():
        for chunk, length in streaming_chunks(features, tr.segment_length, tr.right_context_length):
            out, _, new_state = model.transcribe_streaming(chunk, length, state)
            state = new_state if carry_state else None
            pieces.append(out)
    return torch.cat(pieces, dim=1)


def streaming_loop_right(model, features):
    return _stream(model, features, carry_state=True)


def streaming_loop_wrong(model, features):
    # Drops the state between chunks: every chunk starts with no memory and no left context.
    return _stream(model, features, carry_state=False)


ANSWERS = {
    "05.hard_copies": (hard_copies_right, hard_copies_wrong),
    "05.streaming_loop": (streaming_loop_right, streaming_loop_wrong),
    # (L - 1) segments and R: (6 - 1) * 8 + 2. Wrong: "n layers x R", as for a frame-by-frame window.
    "05.lookahead_without_copies": (42, 12),
}
