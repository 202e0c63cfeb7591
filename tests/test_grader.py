"""The autograder (``python -m emformer_edu.grade``) on real and broken submissions of chapter 02.

Chapter 02 is the course's quickest notebook (about 5 s to run): its solution version scores full
marks, its student version zero, one subtly wrong function loses exactly its exercise; a tiny
synthetic notebook that raises and loops forever is reported, not fatal. Each grading starts a
fresh kernel, so the module takes about a minute on 2 CPU cores.
"""
import ast
import copy
import importlib.util
import json
import pathlib

import nbformat
import pytest

from emformer_edu import grade as grade_cli
from emformer_edu.teaching.grader import GradingInputError, answer_expressions, format_table, grade

ROOT = pathlib.Path(__file__).resolve().parent.parent
NB02 = ROOT / "notebooks" / "02_attention_masks.ipynb"
KEYS02 = ["02.memory_slots", "02.summary_keys", "02.mask_row"]


def _make_student():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_call(source):
    """(answer expression) of the check call in ``source``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "check":
            return ast.get_source_segment(source, node.args[1])
    return None


def solution_version(nb):
    """The notebook as a student who solved everything hands it in: each answer cell replaced by the
    hidden solution that follows it, with the solution's value bound to the answer's name."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            answer = cells[-1]
            answer_expr, solution_expr = _check_call(answer.source), _check_call(cell.source)
            answer.source = cell.source + (f"\n{answer_expr} = {solution_expr}\n" if answer_expr != solution_expr else "")
        else:
            cells.append(cell)
    nb.cells = cells
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def _write(nb, path):
    nbformat.write(nbformat.from_dict(nb), path)
    return path


def _by_key(report):
    return {r.key: r for r in report.exercises}


@pytest.fixture(scope="module")
def nb02():
    return nbformat.read(NB02, as_version=4)


def test_solution_version_scores_full_marks(nb02, tmp_path):
    report = grade(_write(solution_version(nb02), tmp_path / "solved.ipynb"), cell_timeout=120)
    assert [r.key for r in report.exercises] == KEYS02
    assert {r.key: r.status for r in report.exercises} == dict.fromkeys(KEYS02, "correct"), format_table(report)
    assert (report.score, report.max_score) == (3, 3)
    assert report.cells["errors"] == [] and report.cells["timed_out"] == []


def test_student_version_scores_zero_through_the_cli(nb02, tmp_path):
    # The real student notebook (as `make student` writes it), graded by the command line entry point.
    student = _make_student().student_version(json.loads(NB02.read_text()))
    path = tmp_path / "02_attention_masks.ipynb"
    path.write_text(json.dumps(student))
    out = tmp_path / "report.json"
    assert grade_cli.main([str(path), "--timeout", "120", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert (report["score"], report["max_score"], report["chapter"]) == (0, 3, "02")
    assert [(e["key"], e["kind"], e["points"], e["status"]) for e in report["exercises"]] == [
        ("02.memory_slots", "value", 0, "not answered"), ("02.summary_keys", "value", 0, "not answered"),
        ("02.mask_row", "coding", 0, "not answered")]
    assert report["cells"]["errors"] == [] and report["cells"]["executed"] == report["cells"]["code"]


def test_one_subtly_wrong_function_loses_exactly_that_exercise(nb02, tmp_path):
    nb = solution_version(nb02)
    (cell,) = [c for c in nb.cells if "def mask_row" in c.source]
    # The classic slip: letting the summary query read the memory bank too.
    wrong = cell.source.replace('    if kind != "summary":                       # the summary query never reads the bank\n'
                                '        row[max(i - M, 0):i] = True',
                                '    row[max(i - M, 0):i] = True')
    assert wrong != cell.source
    cell.source = wrong
    report = grade(_write(nb, tmp_path / "wrong.ipynb"), cell_timeout=120)
    results = _by_key(report)
    assert {k: r.status for k, r in results.items()} == {
        "02.memory_slots": "correct", "02.summary_keys": "correct", "02.mask_row": "wrong"}, format_table(report)
    assert report.score == 2
    assert "summary" in results["02.mask_row"].detail  # the check names the input where it differs


def _synthetic(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import emformer_edu")] + [nbformat.v4.new_code_cell(c) for c in cells]
    return nb


def test_raising_and_looping_notebooks_are_reported_not_fatal(tmp_path):
    nb = _synthetic([])
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [
        # A stand-in for the library's check: the notebook's own cells stay fast under any load (the
        # 3 s timeout is for the loops), and the grader still checks with the real library.
        "import types\nemformer_edu = types.SimpleNamespace(exercises=types.SimpleNamespace(check=lambda k, a: None))",
        # Output without a newline and a rebound print() must not hide the grader's verdicts.
        'import sys\nsys.stdout.write("no newline")\nprint = "not a function"',
        'answer_2 = 1 / 0\nemformer_edu.exercises.check("02.summary_keys", answer_2)',
        # A function that never returns: the grader's check of it hangs.
        "def mask_row(kind, segment, utterance_length, segment_length, right_context_length,\n"
        "             left_context_length, max_memory_size):\n    while True:\n        pass\n\n"
        'emformer_edu.exercises.check("02.mask_row", mask_row)',
        "while True:\n    pass",
        # After the loop: answered only if the kernel was interrupted, not lost.
        'answer_1 = ["m2", "m3", "m4"]\nemformer_edu.exercises.check("02.memory_slots", answer_1)',
    ]]
    report = grade(_write(nb, tmp_path / "broken.ipynb"), cell_timeout=3, total_timeout=60)
    results = _by_key(report)
    assert {k: r.status for k, r in results.items()} == {
        "02.memory_slots": "correct", "02.summary_keys": "error", "02.mask_row": "timed out"}, format_table(report)
    assert "ZeroDivisionError" in results["02.summary_keys"].detail
    assert "checking the answer ran past 3 s" == results["02.mask_row"].detail
    assert report.score == 1
    assert report.cells["timed_out"] == [4]             # the bare loop
    assert [e["cell"] for e in report.cells["errors"]] == [2]
    assert report.cells["not_run"] == [] and report.cells["kernel_died"] is None
    table = format_table(report)
    assert "timed out" in table and "error: the answer cell raised ZeroDivisionError" in table


def test_a_notebook_out_of_total_time_is_reported(tmp_path):
    nb = _synthetic([])
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(30)"),
                nbformat.v4.new_code_cell('answer_1 = ["m2", "m3", "m4"]\n'
                                          'emformer_edu.exercises.check("02.memory_slots", answer_1)')]
    report = grade(_write(nb, tmp_path / "slow.ipynb"), cell_timeout=30, total_timeout=2)
    results = _by_key(report)
    assert results["02.memory_slots"].status == "timed out" and "not run" in results["02.memory_slots"].detail
    assert report.cells["timed_out"] == [0] and report.cells["not_run"] == [1]
    # Exercises whose check cell was deleted are still graded, by the course notebook's answer names.
    assert results["02.mask_row"].status == "error"
    assert "NameError" in results["02.mask_row"].detail and "check cell was deleted" in results["02.mask_row"].detail
    assert report.score == 0


def test_a_kernel_that_dies_is_reported(tmp_path):
    nb = _synthetic([])
    nb.cells = [nbformat.v4.new_code_cell("import os\nos._exit(1)"),
                nbformat.v4.new_code_cell('answer_2 = 12\nemformer_edu.exercises.check("02.summary_keys", answer_2)')]
    report = grade(_write(nb, tmp_path / "dies.ipynb"), cell_timeout=30)
    assert "kernel died in cell 0" in report.cells["kernel_died"] and report.cells["not_run"] == [1]
    assert {r.status for r in report.exercises} == {"error"} and report.score == 0
    assert "not run: the kernel died" in _by_key(report)["02.summary_keys"].detail


def test_unusable_input_is_a_clear_error(tmp_path, capsys):
    assert grade_cli.main([str(tmp_path / "missing.ipynb")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "notes.ipynb").write_text("this is not json")
    assert grade_cli.main([str(tmp_path / "notes.ipynb")]) == 2
    assert "not a Jupyter notebook" in capsys.readouterr().err
    with pytest.raises(GradingInputError, match="no exercise"):
        grade(_write(_synthetic(["x = 1"]), tmp_path / "empty.ipynb"))


def test_answers_are_read_from_broken_cells_too():
    nb = _synthetic(['answer_1 = [\nemformer_edu.exercises.check("02.memory_slots", answer_1)',  # a syntax error
                     '%time x = 1\nemformer_edu.exercises.check("02.summary_keys", my_answer)'])
    assert {k: expr for k, (_, expr) in answer_expressions(nb).items()} == {
        "02.memory_slots": "answer_1", "02.summary_keys": "my_answer"}
