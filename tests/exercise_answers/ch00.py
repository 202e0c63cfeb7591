"""Chapter 00's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""


def chunk_plan(T, segment_length, right_context_length):
    """Chunk i holds frames [i * segment, i * segment + segment + R); real ones end at T + R."""
    size = segment_length + right_context_length
    return [(start, start + size, min(size, T + right_context_length - start))
            for start in range(0, T, segment_length)]


def chunk_plan_padding_counted(T, segment_length, right_context_length):
    """The usual bug: the last chunk's length counts its zero padding, so attention would see the padding."""
    size = segment_length + right_context_length
    return [(start, start + size, size) for start in range(0, T, segment_length)]


ANSWERS = {
    "00.mask_shape": ((19, 18), (19, 17)),
    "00.visible_keys": (10, 11),
    "00.left_context_ms": (1200.0, 300.0),  # counted the 30 left-context frames as 10 ms input frames
    "00.chunk_plan": (chunk_plan, chunk_plan_padding_counted),
}
