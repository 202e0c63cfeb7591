"""Grade a student's notebook: run it in a clean kernel, then re-check every exercise of its chapter there.

The submission is executed cell by cell in a fresh kernel (nbclient, the grader's own python) with a
per-cell timeout and a total budget. A cell that raises does not stop the run (``allow_errors``); a
cell that runs past its timeout is interrupted and the run goes on with the next cell.

Then, in the same kernel, one hidden grading cell per exercise evaluates the notebook's answer
expression (the second argument of its ``check("NN.key", <expr>)`` call) and decides with the
library's own :func:`emformer_edu.teaching.exercises.is_correct` (for a coding exercise: the learner's
function against the library on the exercise's inputs). The cell prints its verdict as JSON after a
per-run random marker, so nothing the student prints can be mistaken for a grade.

Statuses: ``correct``, ``wrong``, ``not answered`` (``None`` or an untouched ``...`` stub), ``error``
(the answer cell or the check raised), ``timed out`` (the answer cell, or the check of the learner's
function, ran out of time; or the notebook's total budget ran out before the answer cell). Each
exercise is worth one point.

A bad submission is always a report, never a crash; :class:`GradingInputError` is raised only for an
input that is not a notebook at all.
"""
import ast
import asyncio
import datetime
import json
import os
import re
import secrets
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from .exercises import EXERCISES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_NOTEBOOKS = PROJECT_ROOT / "notebooks"
MARKER = "__emformer_edu_grade__"
_CHECK_LINE = re.compile(r"""check\(\s*["'](\d\d\.\w+)["']\s*,\s*(.+?)\s*\)\s*$""")

STATUSES = ("correct", "wrong", "not answered", "error", "timed out")


class GradingInputError(ValueError):
    """The input cannot be graded at all (missing file, not a notebook, no exercises): the grader exits non-zero."""


@dataclass
class ExerciseResult:
    key: str
    kind: str                 # "value" or "coding"
    points: int
    max_points: int
    status: str               # one of STATUSES
    detail: str = ""          # why (the check's feedback, the error, what timed out)

    @property
    def label(self) -> str:
        return f"{self.status}: {self.detail}" if self.status == "error" and self.detail else self.status


@dataclass
class Report:
    notebook: str
    chapter: str
    score: int
    max_score: int
    exercises: List[ExerciseResult]
    cells: Dict[str, object] = field(default_factory=dict)
    timeouts: Dict[str, float] = field(default_factory=dict)
    elapsed_s: float = 0.0
    python: str = sys.executable
    graded_at: str = ""

    def to_json(self) -> dict:
        return asdict(self)


# --- reading the notebook ---------------------------------------------------------------------------

def _is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def _calls_in(source: str) -> List[Tuple[str, str]]:
    """The ``(key, answer expression)`` of every ``check("NN.key", expr)`` call in a cell's source."""
    # IPython magics and shell lines are not Python: blank them so the rest still parses.
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        # A cell the student broke: fall back to reading the check line itself.
        return [m.groups() for m in map(_CHECK_LINE.search, source.splitlines()) if m]
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and len(node.args) >= 2 and getattr(node.func, "attr", getattr(node.func, "id", None)) == "check"
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
                and re.fullmatch(r"\d\d\.\w+", node.args[0].value)):
            calls.append((node.args[0].value, ast.get_source_segment(code, node.args[1])))
    return calls


def answer_expressions(nb) -> Dict[str, Tuple[int, str]]:
    """Exercise key -> (index of its check cell, answer expression), from the notebook's non-solution code cells."""
    found: Dict[str, Tuple[int, str]] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not _is_solution(cell):
            source = cell.source if isinstance(cell.source, str) else "".join(cell.source)  # raw JSON: lines
            for key, expr in _calls_in(source):
                found.setdefault(key, (index, expr))
    return found


def _reference_expressions(chapter: str) -> Dict[str, str]:
    """The answer expressions of the course's own notebook of ``chapter`` (for a deleted check cell)."""
    for path in sorted(REFERENCE_NOTEBOOKS.glob(f"{chapter}_*.ipynb")):
        return {key: expr for key, (_, expr) in answer_expressions(nbformat.read(path, as_version=4)).items()}
    return {}


def _chapter(nb, path: Path, found: Dict[str, Tuple[int, str]], chapter: Optional[str]) -> str:
    if chapter is None:
        chapters = sorted({key[:2] for key in found if key in EXERCISES})
        if len(chapters) > 1:
            raise GradingInputError(f"{path}: exercises of several chapters ({', '.join(chapters)}); pass --chapter")
        chapter = chapters[0] if chapters else (path.name[:2] if re.match(r"\d\d_", path.name) else None)
    if chapter is None or not any(key.startswith(f"{chapter}.") for key in EXERCISES):
        raise GradingInputError(f"{path}: no exercise of a known chapter found (no check(\"NN.key\", ...) call); "
                                "pass --chapter NN")
    return chapter


def load_submission(path) -> nbformat.NotebookNode:
    path = Path(path)
    if not path.is_file():
        raise GradingInputError(f"{path}: no such file")
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as err:  # not JSON, not a notebook
        raise GradingInputError(f"{path}: not a Jupyter notebook ({type(err).__name__}: {err})") from None
    if not isinstance(nb.get("cells"), list):
        raise GradingInputError(f"{path}: not a Jupyter notebook (no cells)")
    return nb


# --- the hidden grading cell ------------------------------------------------------------------------

_GRADING_CELL = '''\
def __emformer_edu_grade(key, expr, marker):
    import json as _json
    import sys as _sys
    from emformer_edu.teaching import exercises as _ex

    def _stub(function):
        # "def f(...): ...": a body that does nothing and returns None (docstrings do not count)
        def _empty():
            ...
        code = getattr(function, "__code__", None)
        return code is not None and code.co_code == _empty.__code__.co_code

    out = {"key": key, "python": _sys.executable}
    try:
        value = eval(compile(expr, "<answer of " + key + ">", "eval"), globals())
    except KeyboardInterrupt:  # the grader stopping a runaway answer: it reports the timeout
        raise
    except BaseException as err:
        out.update(status="error", detail=type(err).__name__ + ": " + str(err))
    else:
        try:
            if value is None or (_ex.is_coding(key) and _stub(value)):
                out.update(status="not answered", detail="")
            elif _ex.is_correct(key, value):
                out.update(status="correct", detail="")
            else:
                if _ex.is_coding(key):
                    why = _ex._coding_failure(key, value) or ""
                else:
                    why = _ex._verdict(key, value).split("] not yet: ", 1)[-1].replace(" Try again.", "")
                out.update(status="wrong", detail=why)
        except KeyboardInterrupt:
            raise
        except BaseException as err:
            out.update(status="error", detail="the check raised " + type(err).__name__ + ": " + str(err))
    # Not print(): a student may have rebound it. A newline first: their output may not end in one.
    _sys.stdout.write("\\n" + marker + _json.dumps(out) + "\\n")
    _sys.stdout.flush()

'''


# Run once before the grading cells, with a generous timeout: importing the library and computing its
# answers is the grader's time, so a short --timeout only limits the learner's own code.
_PRELUDE = '''\
def __emformer_edu_prepare(keys):
    from emformer_edu.teaching import exercises as _ex
    for key in keys:
        try:
            _ex.expected(key)
        except Exception:  # reported by that exercise's check
            pass


__emformer_edu_prepare({keys!r})
del __emformer_edu_prepare
'''
PRELUDE_TIMEOUT = 300.0


def _grading_cell(key: str, expr: str, marker: str):
    call = f"\n\n__emformer_edu_grade({key!r}, {expr!r}, {marker!r})\ndel __emformer_edu_grade\n"
    return nbformat.v4.new_code_cell(_GRADING_CELL + call)


def _verdict_from(cell, marker: str) -> Optional[dict]:
    # The kernel may split one write over several stream messages: join them first.
    text = "".join(out.get("text", "") for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    for line in text.splitlines():
        if line.startswith(marker):
            try:
                return json.loads(line[len(marker):])
            except ValueError:
                return None
    return None


def _cell_error(cell) -> Optional[str]:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename')}: {out.get('evalue')}"
    return None


# --- running --------------------------------------------------------------------------------------

class _Client(NotebookClient):
    """nbclient with its own timeout path: interrupt the kernel, wait for the cell's last output, go on.

    (Raising ``CellTimeoutError`` instead would leave the cell's output reader running, and it would
    swallow the next cells' outputs.) The cells that timed out are remembered in ``timed_out``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, interrupt_on_timeout=True,
                         error_on_timeout={"ename": "CellTimeout", "evalue": "the cell ran out of time",
                                           "traceback": []}, **kwargs)
        self.timed_out = []

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out.append(cell)
        return await super()._async_handle_timeout(timeout, cell)


async def _run(nb, cwd: Path, cell_timeout: float, total_timeout: float, grading: List[Tuple[str, object]]):
    """Execute the notebook's code cells, then the grading cells; return what happened to each.

    Returns ``(timed_out, not_run, grading_timed_out, died)``: indices of the student's cells that ran
    past their timeout or were never run, keys whose check ran past its timeout, and why the kernel died.
    """
    client = _Client(nb, timeout=max(1, int(cell_timeout)), allow_errors=True,
                     kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    client.widget_registry = {}  # nbclient's Output-widget stand-in can deadlock (see tools/execute_notebooks.py)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("MPLBACKEND", "agg")
    timed_out, not_run, grading_timed_out, died = [], [], [], None

    async def execute(cell, index, timeout) -> str:
        nonlocal died
        client.timeout = max(1, int(timeout))
        try:
            await client.async_execute_cell(cell, index)
        except DeadKernelError as err:
            died = f"the kernel died in cell {index} ({err})"
            return "died"
        return "timed out" if any(c is cell for c in client.timed_out) else "ok"

    async with client.async_setup_kernel(env=env):
        deadline = time.monotonic() + total_timeout  # the student's budget starts with a running kernel
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            left = deadline - time.monotonic()
            if died or left < 1:
                not_run.append(index)
                continue
            if await execute(cell, index, min(cell_timeout, left)) == "timed out":
                timed_out.append(index)
        # The grading cells get their own budget: the student's time may be spent, the checks still run.
        if grading and not died:
            prelude = nbformat.v4.new_code_cell(_PRELUDE.format(keys=[key for key, _ in grading]))
            nb.cells.append(prelude)
            await execute(prelude, len(nb.cells) - 1, max(cell_timeout, PRELUDE_TIMEOUT))
        for key, cell in grading:
            nb.cells.append(cell)  # executed where nbclient expects it; removed again by grade()
            if not died and await execute(cell, len(nb.cells) - 1, cell_timeout) == "timed out":
                grading_timed_out.append(key)
    return timed_out, not_run, grading_timed_out, died


def grade(path, cell_timeout: float = 120.0, total_timeout: float = 1800.0, chapter: Optional[str] = None,
          cwd=None) -> Report:
    """Grade the notebook at ``path``; :class:`GradingInputError` only when it is not a gradable notebook."""
    path = Path(path)
    nb = load_submission(path)
    start = time.monotonic()
    found = answer_expressions(nb)
    chapter = _chapter(nb, path, found, chapter)
    keys = [key for key in EXERCISES if key.startswith(f"{chapter}.")]
    reference = _reference_expressions(chapter)
    # Relative paths such as ../benchmarks/... are written for notebooks/ as the working directory.
    cwd = Path(cwd) if cwd else (REFERENCE_NOTEBOOKS if REFERENCE_NOTEBOOKS.is_dir() else path.resolve().parent)

    marker = f"{MARKER}{secrets.token_hex(8)}:"
    expressions = {key: found[key][1] if key in found else reference.get(key) for key in keys}
    grading = [(key, _grading_cell(key, expr, marker)) for key, expr in expressions.items() if expr]
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    count = len(nb.cells)
    try:
        timed_out, not_run, grading_timed_out, died = asyncio.run(
            _run(nb, cwd, cell_timeout, total_timeout, grading))
    except Exception as err:  # the kernel would not start, or nbclient failed: still a report
        timed_out, not_run, grading_timed_out = [], [], []
        died = f"the notebook could not be run ({type(err).__name__}: {err})"
    del nb.cells[count:]  # the grading cells
    grading_cells = dict(grading)

    verdicts = {key: _verdict_from(cell, marker) for key, cell in grading}
    results = []
    for key in keys:
        kind = "coding" if EXERCISES[key].is_coding else "value"
        cell_index = found.get(key, (None, None))[0]
        answer_cell = nb.cells[cell_index] if cell_index is not None else None
        verdict = verdicts.get(key)
        status, detail = (verdict["status"], verdict["detail"]) if verdict else ("error", "")
        if key not in grading_cells:
            status, detail = "error", "no check cell for this exercise, and no answer expression known"
        elif status != "correct":
            # Say what went wrong in the student's own cell rather than what followed from it.
            if cell_index in timed_out:
                status, detail = "timed out", f"the answer cell ran past {cell_timeout:g} s"
            elif cell_index in not_run and died:
                status, detail = "error", f"not run: {died}"
            elif cell_index in not_run:
                status, detail = "timed out", f"not run: the notebook used up its {total_timeout:g} s"
            elif key in grading_timed_out:
                status, detail = "timed out", f"checking the answer ran past {cell_timeout:g} s"
            elif answer_cell is not None and _cell_error(answer_cell) and status in ("error", "not answered"):
                status, detail = "error", f"the answer cell raised {_cell_error(answer_cell)}"
            elif verdict is None:
                status, detail = "error", died or "the grading cell printed no verdict"
        if key not in found:
            detail = (detail + "; " if detail else "") + "the check cell was deleted"
        points = 1 if status == "correct" else 0
        results.append(ExerciseResult(key, kind, points, 1, status, detail))

    errors = [{"cell": i, "error": _cell_error(nb.cells[i])} for i in code_cells
              if _cell_error(nb.cells[i]) and i not in timed_out]  # a timeout's KeyboardInterrupt is no error
    pythons = sorted({v["python"] for v in verdicts.values() if v and v.get("python")})
    cells = {"code": len(code_cells), "executed": len(code_cells) - len(not_run), "errors": errors,
             "timed_out": timed_out, "not_run": not_run, "kernel_died": died,
             "kernel_python": pythons[0] if pythons else None}
    return Report(notebook=str(path), chapter=chapter, score=sum(r.points for r in results),
                  max_score=len(results), exercises=results, cells=cells,
                  timeouts={"cell_s": cell_timeout, "total_s": total_timeout},
                  elapsed_s=round(time.monotonic() - start, 1),
                  graded_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))


def format_table(report: Report) -> str:
    """The per-exercise score table, as printed by ``python -m emformer_edu.grade``."""
    rows = [("exercise", "kind", "points", "status")]
    rows += [(r.key, r.kind, f"{r.points}/{r.max_points}", r.label) for r in report.exercises]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"{report.notebook}  (chapter {report.chapter})"]
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3])
        if n == 0:
            lines.append("-" * (sum(widths) + 6 + len("status")))
    for r in report.exercises:
        if r.detail and r.status != "error":
            lines.append(f"  {r.key}: {r.detail}")
    cells = report.cells
    lines.append(f"score: {report.score}/{report.max_score}   ({cells['executed']}/{cells['code']} code cells run, "
                 f"{len(cells['errors'])} raised, {len(cells['timed_out'])} timed out; {report.elapsed_s:.1f} s)")
    if cells.get("kernel_died"):
        lines.append(f"note: {cells['kernel_died']}")
    return "\n".join(lines)
