"""Chapter 09's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""

import math


def lr_factor(step, warmup_steps, total_steps, final_scale):
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_scale + (1 - final_scale) * (1 + math.cos(math.pi * progress)) / 2


def lr_factor_off_by_one(step, warmup_steps, total_steps, final_scale):
    if step < warmup_steps:
        return step / warmup_steps  # the first step would train at learning rate 0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_scale + (1 - final_scale) * (1 + math.cos(math.pi * progress)) / 2


def collapse(frame_tokens, blank):
    out, previous = [], None
    for k in frame_tokens:
        if k != previous and k != blank:
            out.append(k)
        previous = k
    return out


def collapse_blanks_first(frame_tokens, blank):
    # Drops blanks before merging runs: "a - a" becomes "a", so no word keeps a double letter.
    out = []
    for k in frame_tokens:
        if k != blank and (not out or out[-1] != k):
            out.append(k)
    return out


ANSWERS = {
    "09.lr_schedule": (lr_factor, lr_factor_off_by_one),
    "09.predictor_length": (10, 9),
    "09.steps_per_epoch": (37, 38),  # kept the remainder
    "09.ctc_collapse": (collapse, collapse_blanks_first),
}
