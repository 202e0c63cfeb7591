"""Checks for the notebooks' end-of-chapter exercises: ``check("02.memory_slots", answer)`` prints a verdict.

Two kinds of exercise. Most ask for a value (a count, a shape, a loss). A *coding* exercise asks for
a function: ``check("02.mask_row", my_mask_row)`` calls the learner's function on several inputs
(:attr:`Exercise.cases`) and compares each result with the library's own function on the same
input; the verdict names the first input where they differ.

One table per chapter (``ch00_tour`` ... ``ch09_training``) maps each exercise key to a short
description and a function that computes the answer with the library doing the real thing (a real
Emformer pass, the real loss, the shipped model). The notebooks' hidden solutions get the same
answers by hand, so the two are independent and a check can fail. Answers are compared as described
in :mod:`.compare`: ``(19, 18)``, ``[19, 18]``, ``torch.Size`` and tensors are all the same answer.

:func:`check` prints instead of returning or raising, so a wrong answer is feedback, not a crash.
"""
import copy
import functools
from typing import Any, Dict, Optional

import torch

from . import (
    ch00_tour, ch01_features, ch02_masks, ch03_memory, ch04_layer, ch05_streaming, ch06_transducer, ch07_loss,
    ch08_decoding, ch09_training, ch10_latency, ch11_memory,
)
from .compare import expected_kind, kind, matches, plain, same_kind, short_repr
from ._shared import Exercise

CHAPTERS = (ch00_tour, ch01_features, ch02_masks, ch03_memory, ch04_layer, ch05_streaming, ch06_transducer,
            ch07_loss, ch08_decoding, ch09_training, ch10_latency, ch11_memory)

# Every exercise, in course order: chapter by chapter, each chapter's in the order its notebook asks them.
EXERCISES: Dict[str, Exercise] = {key: entry for chapter in CHAPTERS for key, entry in chapter.EXERCISES.items()}

__all__ = ["CHAPTERS", "EXERCISES", "Exercise", "expected", "is_correct", "check", "is_coding"]


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; known: {list(EXERCISES)}")
    return EXERCISES[name]


def is_coding(name: str) -> bool:
    """Whether exercise ``name`` asks for a function (``ValueError`` for an unknown name)."""
    return _exercise(name).is_coding


@functools.lru_cache(maxsize=None)
def _computed(name: str) -> Any:
    # A fixed seed inside a saved-and-restored random state: the same value every time, and a check
    # run in a notebook leaves the notebook's own random numbers untouched.
    entry = EXERCISES[name]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        if not entry.is_coding:
            return entry.compute()
        cases = entry.cases()
        # The inputs are copied for the library too, so neither side sees what the other changed.
        results = [entry.compute(**copy.deepcopy(case)) for case in cases]
        # Lists, sizes and arrays become tuples and numbers (as a learner's answer is read), tensors stay.
        return tuple((case, r if isinstance(r, torch.Tensor) else plain(r)) for case, r in zip(cases, results))


def _describe(case: Dict[str, Any]) -> str:
    """``T=12, logits: a Tensor of shape (1, 5, 3, 4)``: the case's small arguments by value, tensors by shape."""
    parts = []
    for key, value in case.items():
        parts.append(f"{key}={value!r}" if isinstance(value, (int, float, bool, str)) else f"{key}: {kind(value)}")
    return ", ".join(parts)


def _shape(value: Any) -> Optional[tuple]:
    """The shape of a tensor or array answer, else ``None``."""
    try:
        return tuple(int(d) for d in value.shape) if hasattr(value, "shape") and hasattr(value, "tolist") else None
    except Exception:  # an odd ``shape`` attribute
        return None


def _coding_failure(name: str, function: Any) -> Optional[str]:
    """Why ``function`` does not solve coding exercise ``name`` (``None``: it does). Never raises."""
    if not callable(function):
        return f"{short_repr(function)} is {kind(function)}, but this exercise asks for a function (def ...)."
    results = expected(name)
    for i, (case, want) in enumerate(results, start=1):
        where = f"case {i} of {len(results)} ({_describe(case)})"
        try:
            with torch.random.fork_rng(devices=[]):
                got = function(**copy.deepcopy(case))
        except Exception as err:  # the learner's bug: report it as feedback, not a crash
            return f"your function raised {type(err).__name__} ({short_repr(str(err))}) on {where}."
        if not matches(got, want):
            got_shape = _shape(got)
            if isinstance(want, torch.Tensor) and got_shape is not None and got_shape != tuple(want.shape):
                return (f"on {where} it returned a tensor of shape {got_shape}, but the library's has shape "
                        f"{tuple(want.shape)}.")
            if not same_kind(got, want):
                return f"on {where} it returned {kind(got)}, but the library returns {expected_kind(want)}."
            return f"on {where} it returned {short_repr(got)}, the library gives {short_repr(want)}."
    return None


def expected(name: str) -> Any:
    """The library's answer to exercise ``name`` (computed once, then cached). ``ValueError`` for an unknown name."""
    _exercise(name)
    return _computed(name)


def is_correct(name: str, answer: Any) -> bool:
    """Whether ``answer`` is right for exercise ``name``, in any equivalent form (for a coding exercise:
    a function that agrees with the library on every case). Never raises for an answer."""
    if _exercise(name).is_coding:
        return answer is not None and _coding_failure(name, answer) is None
    return matches(answer, expected(name))


def _verdict(name: str, answer: Any) -> str:
    if answer is None:
        return f"[{name}] no answer yet: assign your answer, then run this cell again."
    if name not in EXERCISES:
        # The chapter's keys are the likely intended ones; all keys if the chapter number is off too.
        nearby = [key for key in EXERCISES if key[:3] == str(name)[:3]] or list(EXERCISES)
        return f"[{name}] unknown exercise; known: {', '.join(nearby)}."
    try:
        value = expected(name)
    except Exception as err:  # a broken library: say so instead of blaming the answer
        return f"[{name}] could not compute the expected value ({type(err).__name__}: {err})."
    if EXERCISES[name].is_coding:
        failure = _coding_failure(name, answer)
        return f"[{name}] correct!" if failure is None else f"[{name}] not yet: {failure} Try again."
    if matches(answer, value):
        return f"[{name}] correct!"
    if not same_kind(answer, value):
        return (f"[{name}] not yet: {short_repr(answer)} is {kind(answer)}, but the answer is "
                f"{expected_kind(value)}. Try again.")
    return f"[{name}] not yet: {short_repr(answer)} is not the expected value. Try again."


def check(name: str, answer: Any) -> None:
    """Print whether ``answer`` is right for exercise ``name``; never raises, whatever ``answer`` is."""
    try:
        message = _verdict(name, answer)
    except Exception as err:  # the last resort: a notebook cell must not crash on an answer
        message = f"[{name}] could not check this answer ({type(err).__name__}: {err})."
    print(message)
