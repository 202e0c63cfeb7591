"""How an exercise answer is compared with the expected value, and how a wrong one is described.

Learners compute answers in many forms: ``(19, 18)``, ``[19, 18]``, ``torch.Size([19, 18])``, a
tensor or a NumPy array; ``36``, ``36.0``, ``torch.tensor(36)``; ``["m2", "m3", "m4"]`` in any order.
:func:`plain` turns all of them into Python numbers, strings, tuples and frozensets, and
:func:`matches` compares by the kind of the *expected* value:

* an ``int``: the answer must be that exact number (``36.0`` counts, ``36.01`` does not): with a
  relative tolerance, 66177 would pass for 66176;
* a ``float``: relative tolerance :data:`REL_TOL`;
* a ``tuple``: same length, element by element, in order;
* a ``frozenset``: the answer's items in any order, each once;
* a tensor: same shape, values within :data:`REL_TOL`;
* a string: equal after stripping spaces.

Nothing here raises: an answer that cannot be read is simply not a match.
"""
import math
import numbers
from typing import Any

import torch

REL_TOL = 1e-3
_REPR_CHARS = 60


def plain(value: Any) -> Any:
    """Tensors, arrays and NumPy scalars -> Python values; lists, ranges and sizes -> tuples; sets -> frozensets."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "shape"):  # torch.Tensor, numpy.ndarray, NumPy scalars
        value = tolist()
    if isinstance(value, (list, tuple, range)):  # torch.Size is a tuple
        return tuple(plain(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(plain(v) for v in value)
    return value


def _is_number(x: Any) -> bool:
    # bool is an int in Python, but True is not an answer to "how many".
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _same(answer: Any, expected: Any) -> bool:
    """``answer`` (already :func:`plain`) equals ``expected``; may raise on odd input (see :func:`matches`)."""
    if isinstance(expected, torch.Tensor):
        got = torch.as_tensor(answer, dtype=torch.float64)
        want = expected.detach().cpu().to(torch.float64)
        return got.shape == want.shape and torch.allclose(got, want, rtol=REL_TOL, atol=0.0)
    if isinstance(expected, frozenset):
        if not isinstance(answer, (tuple, frozenset)):
            return False
        # The same length as a set rules out repeated items.
        return len(answer) == len(expected) and len(frozenset(answer)) == len(answer) and frozenset(answer) == expected
    if isinstance(expected, tuple):
        return (isinstance(answer, tuple) and len(answer) == len(expected)
                and all(_same(a, e) for a, e in zip(answer, expected)))
    if _is_number(expected):
        if not _is_number(answer):
            return False
        if isinstance(expected, int):
            return answer == expected
        return math.isclose(answer, expected, rel_tol=REL_TOL, abs_tol=1e-12)
    if isinstance(expected, str):
        return isinstance(answer, str) and answer.strip() == expected
    return bool(answer == expected)


def matches(answer: Any, expected: Any) -> bool:
    """True if ``answer`` is ``expected`` in any equivalent form; never raises (``None`` is never a match)."""
    if answer is None:
        return False
    try:
        return _same(plain(answer), expected)
    except Exception:  # an answer we cannot convert or compare is not a match
        return False


def _article(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def kind(value: Any) -> str:
    """What ``value`` is, in words a learner recognises: "a single number", "a sequence of 2 values", ..."""
    shape = getattr(value, "shape", None)
    if shape is not None and callable(getattr(value, "tolist", None)):
        try:
            dims = tuple(int(d) for d in shape)
        except Exception:  # an object with an odd ``shape`` attribute
            dims = None
        if dims == ():  # a 0-d tensor or a NumPy scalar: describe the Python value inside
            try:
                return kind(value.tolist())
            except Exception:  # tolist failed: fall back to the shape
                return "a single number"
        if dims is not None:
            return f"{_article(type(value).__name__)} of shape {dims}"
    if isinstance(value, bool):
        return "a bool"
    if _is_number(value):
        return "a single number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple, range)):
        return f"a sequence of {len(value)} values"
    if isinstance(value, (set, frozenset)):
        return f"a set of {len(value)} values"
    return _article(type(value).__name__)


def expected_kind(expected: Any) -> str:
    """What the answer should be, without giving it away."""
    if isinstance(expected, torch.Tensor):
        return f"a tensor of shape {tuple(expected.shape)}"
    if isinstance(expected, frozenset):
        return f"{len(expected)} names, in any order (a list, tuple or set)"
    if isinstance(expected, tuple):
        return f"a sequence of {len(expected)} numbers, in order (a tuple, list, torch.Size or tensor)"
    if _is_number(expected):
        return "a single number"
    return kind(expected)


def _same_kind(value: Any, expected: Any) -> bool:
    if isinstance(expected, torch.Tensor):
        return isinstance(value, tuple) or _is_number(value)
    if isinstance(expected, frozenset):
        item_types = {type(e) for e in expected}
        return (isinstance(value, (tuple, frozenset)) and len(value) == len(expected)
                and all(type(v) in item_types for v in value))
    if isinstance(expected, tuple):
        return (isinstance(value, tuple) and len(value) == len(expected)
                and all(_same_kind(v, e) for v, e in zip(value, expected)))
    if _is_number(expected):
        return _is_number(value)
    return type(value) is type(expected)


def same_kind(answer: Any, expected: Any) -> bool:
    """Whether ``answer`` has the right form: a number for a number, a sequence of as many numbers, names for names."""
    try:
        return _same_kind(plain(answer), expected)
    except Exception:  # unreadable: certainly not the right form
        return False


def short_repr(value: Any) -> str:
    """``repr(value)`` cut to one short line (tensors can print pages); a broken ``__repr__`` gives the type name."""
    try:
        text = " ".join(repr(value).split())
    except Exception:  # a learner's own class with a failing __repr__
        return f"<{type(value).__name__}>"
    return text if len(text) <= _REPR_CHARS else text[: _REPR_CHARS - 3] + "..."
