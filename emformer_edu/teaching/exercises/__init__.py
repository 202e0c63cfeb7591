"""Checks for the notebooks' end-of-chapter exercises: ``check("02.memory_slots", answer)`` prints a verdict.

One table per chapter (``ch00_tour`` ... ``ch09_training``) maps each exercise key to a short
description and a function that computes the answer with the library doing the real thing (a real
Emformer pass, the real loss, the shipped model). The notebooks' hidden solutions get the same
answers by hand, so the two are independent and a check can fail. Answers are compared as described
in :mod:`.compare`: ``(19, 18)``, ``[19, 18]``, ``torch.Size`` and tensors are all the same answer.

:func:`check` prints instead of returning or raising, so a wrong answer is feedback, not a crash.
"""
import functools
from typing import Any, Dict

import torch

from . import (
    ch00_tour, ch01_features, ch02_masks, ch03_memory, ch04_layer, ch05_streaming, ch06_transducer, ch07_loss,
    ch08_decoding, ch09_training,
)
from .compare import expected_kind, kind, matches, same_kind, short_repr
from ._shared import Exercise

CHAPTERS = (ch00_tour, ch01_features, ch02_masks, ch03_memory, ch04_layer, ch05_streaming, ch06_transducer,
            ch07_loss, ch08_decoding, ch09_training)

# Every exercise, in course order: chapter by chapter, each chapter's in the order its notebook asks them.
EXERCISES: Dict[str, Exercise] = {key: entry for chapter in CHAPTERS for key, entry in chapter.EXERCISES.items()}

__all__ = ["CHAPTERS", "EXERCISES", "Exercise", "expected", "is_correct", "check"]


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; known: {list(EXERCISES)}")
    return EXERCISES[name]


@functools.lru_cache(maxsize=None)
def _computed(name: str) -> Any:
    # A fixed seed inside a saved-and-restored random state: the same value every time, and a check
    # run in a notebook leaves the notebook's own random numbers untouched.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        return EXERCISES[name].compute()


def expected(name: str) -> Any:
    """The library's answer to exercise ``name`` (computed once, then cached). ``ValueError`` for an unknown name."""
    _exercise(name)
    return _computed(name)


def is_correct(name: str, answer: Any) -> bool:
    """Whether ``answer`` is right for exercise ``name``, in any equivalent form. Never raises for an answer."""
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
