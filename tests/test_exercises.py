"""Exercise checks: every key accepts its right answer and rejects a wrong one, equivalent forms are
accepted, nothing an answer can be makes ``check`` raise, and the registry holds exactly the notebooks' keys.

The right answers are written here by hand, as a learner would compute them, never read from
``expected``: a check whose expected value drifted would fail here, not pass silently.
"""
import json
import math
import pathlib
import re

import numpy as np
import pytest
import torch

from emformer_edu import exercises
from emformer_edu.teaching.exercises import CHAPTERS, EXERCISES
from emformer_edu.teaching.exercises.compare import matches
from exercise_answers import ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11

CHAPTER_ANSWERS = (ch00, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10, ch11)

NOTEBOOKS = pathlib.Path(__file__).resolve().parent.parent / "notebooks"

# key: (right answer, a wrong one: off by one, or the usual mistake), one file per chapter in exercise_answers/
ANSWERS = {key: pair for chapter in CHAPTER_ANSWERS for key, pair in chapter.ANSWERS.items()}
FLOAT_KEYS = [k for k, (right, _) in ANSWERS.items() if isinstance(right, float)]
SHAPE_KEYS = [k for k, (right, _) in ANSWERS.items() if isinstance(right, tuple)]
COUNT_KEYS = [k for k, (right, _) in ANSWERS.items() if isinstance(right, int)]


def notebook_keys():
    """``{key: notebook file name}`` for every ``check("KEY", ...)`` in the notebooks' code cells."""
    keys = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                for key in re.findall(r"""check\(\s*["']([^"']+)["']""", "".join(cell["source"])):
                    keys[key] = path.name
    return keys


# ----------------------------------------------------------------------------- the registry
def test_registry_holds_exactly_the_notebook_keys():
    used = notebook_keys()
    assert set(used) - set(EXERCISES) == set(), "notebooks check keys the registry does not have"
    assert set(EXERCISES) - set(used) == set(), "registry keys no notebook uses"
    for key, notebook in used.items():
        assert notebook.startswith(key[:2]), f"{key} is checked in {notebook}"


def test_every_key_has_a_right_and_a_wrong_answer_here():
    assert set(ANSWERS) == set(EXERCISES)


def test_tables_one_per_chapter_in_course_order():
    assert list(EXERCISES) == sorted(EXERCISES, key=lambda k: k[:2])  # chapter order, stable within
    for number, chapter in enumerate(CHAPTERS):
        assert chapter.__name__.rsplit(".", 1)[1].startswith(f"ch{number:02d}_")
        assert chapter.__doc__
        for key, entry in chapter.EXERCISES.items():
            assert key.startswith(f"{number:02d}.")
            assert isinstance(entry.description, str) and entry.description
            assert callable(entry.compute)
            assert entry.cases is None or callable(entry.cases)


def test_unknown_name():
    with pytest.raises(ValueError, match="unknown exercise"):
        exercises.expected("99.nope")


# ----------------------------------------------------------------------------- right and wrong, per key
@pytest.mark.parametrize("key", list(ANSWERS))
def test_right_answer_accepted_wrong_one_rejected(key):
    right, wrong = ANSWERS[key]
    assert exercises.is_correct(key, right)
    assert not exercises.is_correct(key, wrong)
    assert not exercises.is_correct(key, None)


@pytest.mark.parametrize("key", COUNT_KEYS)
def test_counts_are_exact(key):
    right = ANSWERS[key][0]
    assert exercises.is_correct(key, float(right))
    assert not exercises.is_correct(key, right + 1)
    assert not exercises.is_correct(key, right - 1)
    assert not exercises.is_correct(key, right + 0.01)


@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_floats_within_relative_tolerance(key):
    right = ANSWERS[key][0]
    assert exercises.is_correct(key, right * (1 + 5e-4))
    assert not exercises.is_correct(key, right * (1 + 2e-3))
    assert exercises.is_correct(key, torch.tensor(right, dtype=torch.float32))
    assert exercises.is_correct(key, np.float32(right))


# ----------------------------------------------------------------------------- equivalent forms
@pytest.mark.parametrize("key", SHAPE_KEYS)
def test_shape_answers_in_any_sequence_form(key):
    right = ANSWERS[key][0]
    forms = [tuple(right), list(right), torch.Size(right), torch.tensor(right), torch.tensor(right, dtype=torch.int32),
             torch.tensor(right, dtype=torch.float64), np.array(right), np.array(right, dtype=np.float32),
             tuple(np.int64(x) for x in right), [torch.tensor(x) for x in right]]
    for form in forms:
        assert exercises.is_correct(key, form), form
    assert not exercises.is_correct(key, tuple(reversed(right)))  # order matters
    assert not exercises.is_correct(key, tuple(right) + (1,))
    assert not exercises.is_correct(key, right[0])


@pytest.mark.parametrize("form", [
    10, 10.0, np.int64(10), np.float64(10.0), torch.tensor(10), torch.tensor(10.0), torch.tensor(10, dtype=torch.int32),
    torch.tensor(10, dtype=torch.uint8), torch.tensor(10.0, dtype=torch.float16),
    torch.tensor(10.0, requires_grad=True),
])
def test_number_answers_in_any_scalar_form(form):
    assert exercises.is_correct("00.visible_keys", form)


@pytest.mark.parametrize("form", [torch.tensor([10]), [10], (10,), True, "10", np.array([10])])
def test_a_number_is_not_a_sequence_string_or_bool(form):
    assert not exercises.is_correct("00.visible_keys", form)


def test_order_free_answer_in_any_collection_form():
    for form in (["m2", "m3", "m4"], ["m4", "m2", "m3"], ("m3", "m2", "m4"), {"m2", "m3", "m4"},
                 frozenset({"m4", "m3", "m2"}), np.array(["m2", "m4", "m3"])):
        assert exercises.is_correct("02.memory_slots", form), form
    for form in (["m2", "m3"], ["m2", "m3", "m3"], ["m2", "m3", "m4", "m4"], ["m2", "m3", "m4", "m5"], [2, 3, 4],
                 "m2 m3 m4", "m2"):
        assert not exercises.is_correct("02.memory_slots", form), form


# ----------------------------------------------------------------------------- verdicts, never an exception
class _BrokenRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


class _OddShape:
    shape = "not a shape"

    def tolist(self):
        raise RuntimeError("no list")


GARBAGE = ["abc", "", object(), _BrokenRepr(), _OddShape(), torch.randn(2, 3, 4), torch.zeros(0),
           torch.tensor([1 + 2j]), np.array([[1, 2], [3, 4]]), {"a": 1}, {1, 2}, [None, None], [[1, 2], 3],
           float("nan"), float("inf"), -1, 10 ** 30, b"bytes", 1 + 2j, Ellipsis, print]


@pytest.mark.parametrize("key", list(ANSWERS))
def test_check_never_raises_and_prints_one_verdict(key, capsys):
    for answer in GARBAGE + [None, 0, ANSWERS[key][1], ANSWERS[key][0]]:
        assert exercises.is_correct(key, answer) in (True, False)
        exercises.check(key, answer)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(GARBAGE) + 4
    assert all(line.startswith(f"[{key}] not yet: ") for line in lines[: len(GARBAGE)]), lines
    assert lines[-4] == f"[{key}] no answer yet: assign your answer, then run this cell again."
    assert lines[-2].startswith(f"[{key}] not yet: ") and lines[-2].endswith("Try again.")
    assert lines[-1] == f"[{key}] correct!"


def test_verdicts_say_what_is_wrong(capsys):
    exercises.check("00.visible_keys", 10)
    exercises.check("00.visible_keys", 11)
    exercises.check("00.visible_keys", None)
    exercises.check("00.mask_shape", 19)
    exercises.check("00.mask_shape", torch.randn(2, 3, 4))
    exercises.check("02.memory_slots", "m2, m3, m4")
    exercises.check("00.visible_keys", torch.randn(500, 500))
    exercises.check("02.nope", 3)
    exercises.check(["unhashable"], 3)
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["[00.visible_keys] correct!",
                       "[00.visible_keys] not yet: 11 is not the expected value. Try again.",
                       "[00.visible_keys] no answer yet: assign your answer, then run this cell again."]
    assert out[3].startswith("[00.mask_shape] not yet: 19 is a single number, "
                             "but the answer is a sequence of 2 numbers")
    assert "a Tensor of shape (2, 3, 4)" in out[4]
    assert "is a string, but the answer is 3 names, in any order" in out[5]
    assert len(out[6]) < 200  # a big tensor is cut short, not printed whole
    assert out[7] == "[02.nope] unknown exercise; known: 02.memory_slots, 02.summary_keys, 02.mask_row."
    assert out[8].startswith("[['unhashable']] could not check this answer")


# ----------------------------------------------------------------------------- computing expected values
def test_expected_values_are_cached_and_leave_the_random_state_alone():
    assert exercises.expected("06.joint_shape") is exercises.expected("06.joint_shape")
    before = torch.get_rng_state()
    # Recompute without the cache: same value, and the global generator is where it was.
    assert exercises._computed.__wrapped__("03.oldest_slot") == 3
    assert exercises._computed.__wrapped__("00.mask_shape") == exercises.expected("00.mask_shape")
    assert torch.equal(torch.get_rng_state(), before)


def test_independent_values_match_the_closed_forms():
    """The library's runs agree with the formulas the notebooks' solutions use."""
    assert exercises.expected("07.num_paths") == math.comb(6 - 1 + 3, 3)
    assert math.isclose(exercises.expected("07.uniform_loss"), -math.log(math.comb(5, 2) * 0.5 ** 6), rel_tol=1e-12)
    assert math.isclose(exercises.expected("07.occupancy_sum"), 5 + 3, rel_tol=1e-9)
    assert all(value == case["num_samples"] // 160 + 1 for case, value in exercises.expected("01.num_frames"))
    assert exercises.expected("09.steps_per_epoch") == 900 // 24


def test_tensor_expected_values_compare_shape_and_values():
    # No exercise expects a tensor today; the rule is there for the next one.
    want = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    for form in (want.clone(), want.double() * (1 + 5e-4), want.numpy(), [[1, 2], [3, 4]], ((1.0, 2.0), (3.0, 4.0))):
        assert matches(form, want), form
    for form in (want.T, want.flatten(), want * 1.01, [1, 2, 3, 4], 1.0, "tensor", None):
        assert not matches(form, want), form


# ----------------------------------------------------------------------------- coding exercises
def _cumulative(x):
    return torch.cumsum(x, dim=0)


@pytest.fixture
def coding_exercise(monkeypatch):
    """A coding exercise registered for one test: write a cumulative sum (the library's is torch.cumsum)."""
    from emformer_edu.teaching.exercises import Exercise

    def cases():
        return [dict(x=torch.arange(3.0))] + [dict(x=torch.randn(n)) for n in (5, 9)]

    monkeypatch.setitem(EXERCISES, "99.cumsum", Exercise("a running sum", _cumulative, cases))
    exercises._computed.cache_clear()
    yield "99.cumsum"
    exercises._computed.cache_clear()


def test_a_coding_exercise_accepts_a_right_function_and_names_the_first_failing_case(coding_exercise, capsys):
    key = coding_exercise
    assert exercises.is_coding(key) and not exercises.is_coding("00.visible_keys")

    def loop(x):  # a learner's correct version, written another way
        out, total = [], 0.0
        for v in x.tolist():
            total += v
            out.append(total)
        return out

    def off_by_one(x):  # sums up to the previous element
        return torch.cumsum(x, dim=0) - x

    def wrong_shape(x):
        return str(torch.cumsum(x, dim=0).tolist())

    def crashes(x):
        raise IndexError("list index out of range")

    def mutates(x):  # changes its input: the next case must not see it
        x.add_(1.0)
        return torch.cumsum(x - 1.0, dim=0)

    assert exercises.is_correct(key, loop) and exercises.is_correct(key, mutates)
    for wrong in (off_by_one, wrong_shape, crashes, None, 3, "cumsum"):
        assert not exercises.is_correct(key, wrong)
    for answer in (loop, off_by_one, wrong_shape, crashes, None, 3):
        exercises.check(key, answer)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"[{key}] correct!"
    assert out[1].startswith(f"[{key}] not yet: on case 1 of 3 (x: a Tensor of shape (3,)) it returned")
    assert out[1].endswith("Try again.") and "tensor([0., 0., 1.])" in out[1]
    assert "it returned a string, but the library returns a tensor of shape (3,)" in out[2]
    assert "raised IndexError ('list index out of range') on case 1 of 3" in out[3]
    assert out[4] == f"[{key}] no answer yet: assign your answer, then run this cell again."
    assert "asks for a function" in out[5]
    assert exercises.expected(key)[0][0]["x"].tolist() == [0.0, 1.0, 2.0]  # the library's input was not changed
