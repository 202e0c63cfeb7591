"""Notebook 07's coding exercise "write the alpha recursion": a learner's correct versions pass, and each
classic slip (max for logaddexp, the next token read one column off, blank read at the wrong frame, alpha(0, 0)
left at -inf) is caught by the check against the library's ``log_alpha``."""
import math

import torch

from emformer_edu import exercises
from emformer_edu.rnnt.lattice import log_alpha as library_log_alpha
from emformer_edu.rnnt.lattice import utterance_lattice
from exercise_answers.ch07 import log_alpha, log_alpha_max

KEY = "07.log_alpha"


def _recursion(log_probs, targets, blank, plus=torch.logaddexp, next_index=lambda u: u - 1, blank_frame=lambda t: t - 1,
               start=0.0):
    T, U1, _ = log_probs.shape
    alpha = torch.full((T, U1), -math.inf, dtype=log_probs.dtype)
    alpha[0, 0] = start
    for t in range(T):
        for u in range(U1):
            if t > 0:
                alpha[t, u] = plus(alpha[t, u], alpha[t - 1, u] + log_probs[blank_frame(t), u, blank])
            if u > 0:
                k = targets[min(next_index(u), len(targets) - 1)]
                alpha[t, u] = plus(alpha[t, u], alpha[t, u - 1] + log_probs[t, u - 1, k])
    return alpha


def by_anti_diagonals(log_probs, targets, blank):
    """A correct learner's version written another way: plain floats, one anti-diagonal t + u = n at a time."""
    T, U1, _ = log_probs.shape
    lp = log_probs.tolist()
    alpha = [[-math.inf] * U1 for _ in range(T)]
    alpha[0][0] = 0.0
    for n in range(1, T + U1 - 1):
        for u in range(max(0, n - T + 1), min(n, U1 - 1) + 1):
            t = n - u
            terms = []
            if t > 0:
                terms.append(alpha[t - 1][u] + lp[t - 1][u][blank])
            if u > 0:
                terms.append(alpha[t][u - 1] + lp[t][u - 1][int(targets[u - 1])])
            top = max(terms)
            alpha[t][u] = top + math.log(sum(math.exp(x - top) for x in terms))
    return torch.tensor(alpha, dtype=log_probs.dtype)


def test_the_cases_are_valid_inputs_small_first():
    cases = [case for case, _ in exercises.expected(KEY)]
    sizes = [tuple(case["log_probs"].shape) for case in cases]
    assert sizes[0] == (1, 1, 3) and sizes[1] == (2, 2, 3)
    assert {case["blank"] for case in cases} >= {0}
    assert any(case["blank"] == case["log_probs"].shape[-1] - 1 for case in cases)
    for case in cases:
        lp, targets, blank = case["log_probs"], case["targets"], case["blank"]
        assert len(targets) == lp.shape[1] - 1 and not (targets == blank).any()
        torch.testing.assert_close(lp.exp().sum(-1), torch.ones(lp.shape[:2], dtype=lp.dtype))


def test_expected_values_are_the_librarys_alpha():
    for case, want in exercises.expected(KEY):
        blank_lp, emit_lp = utterance_lattice(case["log_probs"], case["targets"], case["blank"],
                                              fused_log_softmax=False)
        torch.testing.assert_close(want, library_log_alpha(blank_lp, emit_lp), rtol=0, atol=0)
        torch.testing.assert_close(want, log_alpha(**case), rtol=1e-12, atol=1e-12)


def test_correct_versions_pass():
    assert exercises.is_correct(KEY, log_alpha)
    assert exercises.is_correct(KEY, by_anti_diagonals)
    assert exercises.is_correct(KEY, lambda log_probs, targets, blank: _recursion(log_probs, targets, blank))


def test_each_subtle_bug_is_caught():
    wrong = {
        "max instead of logaddexp (a missing log-add)": log_alpha_max,
        "the next token read one column off (targets[u])":
            lambda lp, tg, b: _recursion(lp, tg, b, next_index=lambda u: u),
        "blank read at the node it enters": lambda lp, tg, b: _recursion(lp, tg, b, blank_frame=lambda t: t),
        "alpha(0, 0) left at -inf": lambda lp, tg, b: _recursion(lp, tg, b, start=-math.inf),
        "probabilities instead of log-probabilities": lambda lp, tg, b: _recursion(lp.exp(), tg, b),
    }
    for what, function in wrong.items():
        wrapped = lambda log_probs, targets, blank, f=function: f(log_probs, targets, blank)  # noqa: E731
        assert not exercises.is_correct(KEY, wrapped), what


def test_the_notebook_stub_gets_a_verdict(capsys):
    def stub(log_probs, targets, blank):
        ...  # your code here

    exercises.check(KEY, stub)
    exercises.check(KEY, log_alpha_max)
    exercises.check(KEY, log_alpha)
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"[{KEY}] not yet: on case 1 of 6") and "NoneType" in out[0]
    assert out[1].startswith(f"[{KEY}] not yet: on case 2 of 6")  # one frame and no token: max and logaddexp agree
    assert out[2] == f"[{KEY}] correct!"
