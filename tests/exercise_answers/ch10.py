"""Chapter 10's exercises: for each key, a right answer and a wrong one, written by hand.

``algorithmic_latency_no_minus_one`` waits for the whole segment *after* the first frame (S + R frames
instead of S + R - 1): the usual off-by-one. The wrong available delay forgets the look-ahead wait.
"""


def algorithmic_latency(segment_length, right_context_length):
    """The first frame of a segment waits for the other S - 1 frames and the R look-ahead frames, 10 ms each;
    the last waits for R only; the average is the midpoint."""
    worst = (segment_length + right_context_length - 1) * 10.0
    average = ((segment_length - 1) / 2 + right_context_length) * 10.0
    return worst, average


def algorithmic_latency_no_minus_one(segment_length, right_context_length):
    # Wrong: counts the first frame's own 10 ms as waiting time, so both values are 10 ms / 5 ms too large.
    worst = (segment_length + right_context_length) * 10.0
    average = (segment_length / 2 + right_context_length) * 10.0
    return worst, average


# Held-out sentence 3, 'save seven still open that cry', is heard as 'seven still paun that cry': 'save' is missed, so
# the first word recognised right is 'seven'. It ends at sample 11357 (709.8125 ms); its last character 'n' comes at
# encoder frame 14, in segment 14 * 4 // 16 = 3, ready after (3 + 1) * 16 + 4 = 68 input frames = 680 ms: shown
# before the word's true end.
ANSWERS = {
    "10.latency": (algorithmic_latency, algorithmic_latency_no_minus_one),
    "10.available": (680.0 - 11357 / 16, 640.0 - 11357 / 16),  # wrong: the segment end, without the R = 4 frames
}
