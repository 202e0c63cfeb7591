"""Checks for the notebooks' end-of-chapter exercises.

Each check compares a learner's answer with the value the library computes, and prints a
short verdict instead of raising, so a wrong answer is feedback, not a crash.
"""
import math
from typing import Any, Callable, Dict

import torch

from .masks import training_mask
from .segments import latency_ms, num_segments

_CHECKS: Dict[str, Callable[[], Any]] = {
    # 00: rows and columns of the training mask for T=10, segment 4, R=2, memory on (M=2).
    "00.mask_shape": lambda: training_mask(10, 4, 2, max_memory_size=2).shape,
    # 00: how many key columns can the first frame of segment 2 attend to (T=12, seg 4, R=2, L=3, M=1)?
    "00.visible_keys": lambda: int(training_mask(12, 4, 2, left_context_length=3, max_memory_size=1).allowed[2 * 3 + 8].sum()),
    # 00: streaming chunk length in input frames for emformer_rnnt_base
    "00.base_chunk": lambda: 16 + 4,
    # 01: chunks for 1.3 s of features (131 frames incl. 4 right-padding) with segment 16, R 4
    "01.num_chunks": lambda: num_segments(131 - 4, 16),
    # 01: worst-case algorithmic latency (ms) with segment 8, R 2 input frames of 10 ms
    "01.worst_latency": lambda: latency_ms(8, 2)["worst"],
    # 01: feature frames for exactly 1 s of 16 kHz audio (center=True framing)
    "01.frames_per_second": lambda: 16000 // 160 + 1,
    # 02: memory slots the frames of segment 5 read with M=3 (T=24, segment 4, R=1)
    "02.memory_slots": lambda: [k for k in training_mask(24, 4, 1, 0, 3).visible_keys(6 * 1 + 5 * 4) if k.startswith("m")],
    # 02: keys a summary query sees (T=16, segment 4, R=2, L=6, M=2), for segment 3
    "02.summary_keys": lambda: len(training_mask(16, 4, 2, 6, 2).visible_keys(4 * 2 + 16 + 3)),
    # 02: allowed cells with no context at all (T=10, segment 4, R=0, L=0, M=0)
    "02.block_diagonal": lambda: int(training_mask(10, 4, 0, 0, 0).allowed.sum()),
}


def expected(name: str):
    """The library's answer for exercise ``name`` (what the hidden solutions compute by hand)."""
    if name not in _CHECKS:
        raise ValueError(f"unknown exercise {name!r}; known: {sorted(_CHECKS)}")
    return _CHECKS[name]()


def _equal(a, b) -> bool:
    if isinstance(b, float) or isinstance(a, float):
        return a is not None and math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-6)
    if isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a.float(), b.float())
    return tuple(a) == tuple(b) if isinstance(b, tuple) and a is not None else a == b


def is_correct(name: str, answer) -> bool:
    """True if ``answer`` matches the library's value for exercise ``name``."""
    return answer is not None and _equal(answer, expected(name))


def check(name: str, answer) -> None:
    """Print whether ``answer`` is right for exercise ``name`` (prints rather than returns, for notebooks)."""
    if answer is None:
        print(f"[{name}] no answer yet: assign your answer, then run this cell again.")
    elif is_correct(name, answer):
        print(f"[{name}] correct!")
    else:
        print(f"[{name}] not yet: {answer!r} is not the expected value. Try again.")
