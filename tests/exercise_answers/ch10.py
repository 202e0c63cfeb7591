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


# Held-out sentence 3, 'save seven still open that cry': 'save' ends at sample 6081 (380.0625 ms); its last character
# 'e' comes at encoder frame 9, in segment 9 * 4 // 16 = 2, ready after (2 + 1) * 16 + 4 = 52 input frames = 520 ms.
ANSWERS = {
    "10.latency": (algorithmic_latency, algorithmic_latency_no_minus_one),
    "10.available": (520.0 - 6081 / 16, 480.0 - 6081 / 16),  # wrong: the segment end, without the R = 4 frames
}
