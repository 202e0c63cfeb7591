"""Write the student notebooks (used by `make student`): solutions removed, outputs cleared, stubs kept.

For every notebooks/NN_name.ipynb this writes student/NN_name.ipynb:
* every cell tagged ``solution`` is removed;
* every output, execution count and the stored widget state are cleared (they show what the
  solutions computed, and a student runs the notebook anyway);
* the answer cells stay as they are: ``answer_N = None`` or ``def f(...): ...  # your code here``,
  each followed by ``emformer_edu.exercises.check("NN.key", ...)``.

Then it checks every student notebook and fails loudly (exit 1, every problem listed) unless:
* each exercise of the chapter (``emformer_edu.teaching.exercises.EXERCISES``) still has its check cell;
* each answer is still a stub (``None``, or a function whose body is only ``...``);
* no solution is left: no cell tagged ``solution``, no ``# Solution`` line, no ``solution_``/``_solution`` name.

Usage: python tools/make_student.py [--out student] [--notebooks notebooks]
"""
import argparse
import ast
import copy
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # importable from a bare checkout, as with NO_VENV

from emformer_edu.teaching.exercises import EXERCISES  # noqa: E402
from emformer_edu.teaching.grader import answer_expressions  # noqa: E402  (the grader reads answers the same way)

SOLUTION_TEXT = re.compile(r"\bsolution_\w+|\w+_solution\b|#\s*Solution\b")

README = """\
# Student notebooks

These are the course notebooks without their solutions, made by `make student`.

* Open them in JupyterLab (`jupyter lab`) and run them top to bottom: the outputs were cleared.
* Each chapter ends with 2-4 exercises. An answer cell holds `answer_1 = None`, or a function
  `def f(...):` whose body is `...  # your code here`; replace the `None` or the `...`, then run the cell:
  the `emformer_edu.exercises.check("NN.key", ...)` line under it says whether the answer is right.
  Keep that line: the grader reads the answer from it.
* Submit the notebook file (`NN_name.ipynb`) as it is. It is graded by running it in a fresh
  kernel, so it must run from top to bottom (Kernel > Restart Kernel and Run All Cells) and not
  depend on cells run out of order.
* Needs the `emformer_edu` package installed (`pip install -e .` in the course repository).
* Notebook 11 reads `../benchmarks/bench_pruned_loss.json`: kept inside the course repository
  (`student/` next to `benchmarks/`), that path works; elsewhere the notebook says so and goes on.

Notebooks: {notebooks}.
"""


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _is_solution(cell) -> bool:
    return "solution" in cell.get("metadata", {}).get("tags", [])


def student_version(nb: dict) -> dict:
    """The notebook without solution cells, outputs, execution counts or widget state (``nb`` is not changed)."""
    out = copy.deepcopy(nb)
    out["cells"] = [cell for cell in out["cells"] if not _is_solution(cell)]
    for cell in out["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)  # run timestamps
    out["metadata"].pop("widgets", None)  # the stored widget state holds the executed figures
    return out


def _is_stub(cell_source: str, expr: str, coding: bool) -> bool:
    """Whether the answer cell still leaves ``expr`` unanswered: ``expr = None`` or a ``...``-only function."""
    tree = ast.parse(cell_source)
    for node in tree.body:
        if coding and isinstance(node, ast.FunctionDef) and node.name == expr:
            body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                                 and isinstance(n.value.value, str))]  # docstrings
            return all(isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                                                   and n.value.value is Ellipsis) for n in body)
        if (not coding and isinstance(node, ast.Assign) and [ast.unparse(t) for t in node.targets] == [expr]):
            return isinstance(node.value, ast.Constant) and node.value.value is None
    return False


def problems(name: str, original: dict, student: dict) -> list:
    """Everything wrong with ``student`` as the student version of ``original`` (empty: it is fine)."""
    import nbformat
    found = []
    chapter = name[:2]
    wanted = [key for key in EXERCISES if key.startswith(f"{chapter}.")]
    if not wanted:
        found.append(f"{name}: no exercises known for chapter {chapter}")
    checks = answer_expressions(nbformat.from_dict(student))
    in_original = answer_expressions(nbformat.from_dict(original))
    for key in wanted:
        if key not in checks:
            found.append(f"{name}: exercise {key} has no check cell left")
            continue
        index, expr = checks[key]
        source = _source(student["cells"][index])
        if not _is_stub(source, expr, EXERCISES[key].is_coding):
            found.append(f"{name}: the answer cell of {key} is not a stub ({expr} is answered)")
    for key in in_original:
        if key not in checks:
            found.append(f"{name}: the check of {key} was lost")
    for index, cell in enumerate(student["cells"]):
        if _is_solution(cell):
            found.append(f"{name}: cell {index} is tagged solution")
        if cell["cell_type"] == "code":
            if SOLUTION_TEXT.search(_source(cell)):
                found.append(f"{name}: cell {index} holds solution text: {SOLUTION_TEXT.search(_source(cell))[0]!r}")
            if cell.get("outputs") or cell.get("execution_count") is not None:
                found.append(f"{name}: cell {index} keeps its outputs")
    if "widgets" in student.get("metadata", {}):
        found.append(f"{name}: widget state kept")
    return found


def make_student(notebooks: Path, out: Path) -> list:
    """Write every student notebook and the README; ``SystemExit`` listing every problem if any check fails."""
    paths = sorted(Path(notebooks).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit(f"make_student: no notebooks (NN_name.ipynb) in {notebooks}")
    versions, errors = {}, []
    for path in paths:
        original = json.loads(path.read_text())
        student = student_version(original)
        errors += problems(path.name, original, student)
        versions[path.name] = student
    if errors:  # write nothing half-checked
        raise SystemExit("make_student: the student notebooks are not safe to hand out:\n  " + "\n  ".join(errors))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, student in versions.items():
        (out / name).write_text(json.dumps(student, indent=1, ensure_ascii=False) + "\n")
        written.append(out / name)
    (out / "README.md").write_text(README.format(notebooks=", ".join(f"`{n}`" for n in versions)))
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Write the student notebooks (solutions removed).")
    parser.add_argument("--out", default=str(ROOT / "student"), help="output folder (default: student/)")
    parser.add_argument("--notebooks", default=str(ROOT / "notebooks"), help="course notebooks (default: notebooks/)")
    args = parser.parse_args()
    written = make_student(Path(args.notebooks), Path(args.out))
    print(f"wrote {len(written)} student notebooks and README.md to {args.out}/")
