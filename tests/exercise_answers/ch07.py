"""Chapter 07's exercises: for each key, a right answer and a wrong one, written by hand.

Value exercises: ``(right value, wrong value)``, the wrong one an off-by-one or the usual mistake.
Coding exercises: ``(right function, wrong function)``, both written here as a learner would: the
wrong one has one subtle bug (an off-by-one, a missing log-add) that the check must catch.
"""
import math

import torch


def log_alpha(log_probs, targets, blank):
    """alpha(t, u) = logaddexp(alpha(t-1, u) + log blank(t-1, u), alpha(t, u-1) + log y(t, u-1))."""
    T, U1, _ = log_probs.shape
    alpha = torch.full((T, U1), -math.inf, dtype=log_probs.dtype)
    alpha[0, 0] = 0.0
    for t in range(T):
        for u in range(U1):
            if t > 0:
                alpha[t, u] = torch.logaddexp(alpha[t, u], alpha[t - 1, u] + log_probs[t - 1, u, blank])
            if u > 0:
                alpha[t, u] = torch.logaddexp(alpha[t, u], alpha[t, u - 1] + log_probs[t, u - 1, targets[u - 1]])
    return alpha


def log_alpha_max(log_probs, targets, blank):
    # Wrong: max instead of logaddexp (the missing log-add): the best partial path, not the sum of all of them.
    T, U1, _ = log_probs.shape
    alpha = torch.full((T, U1), -math.inf, dtype=log_probs.dtype)
    alpha[0, 0] = 0.0
    for t in range(T):
        for u in range(U1):
            if t > 0:
                alpha[t, u] = torch.maximum(alpha[t, u], alpha[t - 1, u] + log_probs[t - 1, u, blank])
            if u > 0:
                alpha[t, u] = torch.maximum(alpha[t, u], alpha[t, u - 1] + log_probs[t, u - 1, targets[u - 1]])
    return alpha


ANSWERS = {
    "07.num_paths": (56, 84),
    "07.log_alpha": (log_alpha, log_alpha_max),
    "07.uniform_loss": (1.8563, 4.1589),  # forgot that there are 10 paths
    "07.occupancy_sum": (8, 7),
}
