"""`make student` (tools/make_student.py) on all 12 notebooks: no solution left, every exercise still checked.

Pure JSON work on the committed notebooks (a few seconds).
"""
import copy
import importlib.util
import json
import pathlib
import re

import pytest

from emformer_edu.teaching.exercises import EXERCISES

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHECK = re.compile(r"""check\(\s*["'](\d\d\.\w+)["']""")


def _module():
    spec = importlib.util.spec_from_file_location("make_student", ROOT / "tools" / "make_student.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_student = _module()


def _source(cell):
    return "".join(cell["source"])


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    paths = make_student.make_student(ROOT / "notebooks", out)
    return out, paths


def test_writes_every_notebook_and_a_readme(written):
    out, paths = written
    assert len(NOTEBOOKS) == 12
    assert [p.name for p in paths] == [p.name for p in NOTEBOOKS]
    readme = (out / "README.md").read_text()
    assert "bench_pruned_loss.json" in readme and "check(" in readme


@pytest.mark.parametrize("original", NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def test_student_notebook(written, original):
    out, _ = written
    source_nb = json.loads(original.read_text())
    nb = json.loads((out / original.name).read_text())
    cells = nb["cells"]
    # No solution: no tagged cell, no solution names or "# Solution" lines anywhere in the code.
    assert not [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    code = "\n".join(_source(c) for c in cells if c["cell_type"] == "code")
    assert not re.search(r"\bsolution_\w+|\w+_solution\b|# Solution", code)
    # Every exercise of the chapter is still checked, each check in an answer cell left as a stub.
    keys = [k for c in cells if c["cell_type"] == "code" for k in CHECK.findall(_source(c))]
    chapter = [k for k in EXERCISES if k[:2] == original.name[:2]]
    assert sorted(set(keys)) == sorted(chapter), original.name
    for cell in cells:
        if CHECK.search(_source(cell)):
            assert re.search(r"^answer_\d+ = None|^\s+\.\.\.", _source(cell), re.M), _source(cell)
    # Outputs, counts and the stored widget state are cleared; everything else is kept in order.
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in cells if c["cell_type"] == "code")
    assert "widgets" not in nb["metadata"]
    kept = [_source(c) for c in source_nb["cells"] if "solution" not in c.get("metadata", {}).get("tags", [])]
    assert [_source(c) for c in cells] == kept
    assert len(cells) == len(source_nb["cells"]) - len(chapter)  # one solution cell per exercise


def test_fails_loudly_when_a_check_cell_is_lost(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = json.loads((ROOT / "notebooks" / "02_attention_masks.ipynb").read_text())
    # An answer cell tagged solution by mistake: its check would vanish from the student version.
    broken = copy.deepcopy(nb)
    answer = next(c for c in broken["cells"] if '"02.mask_row", mask_row' in _source(c)
                  and "solution" not in c["metadata"].get("tags", []))
    answer["metadata"]["tags"] = ["solution"]
    (src / "02_attention_masks.ipynb").write_text(json.dumps(broken))
    with pytest.raises(SystemExit, match="02.mask_row has no check cell left"):
        make_student.make_student(src, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-checked is written


def test_fails_loudly_when_an_answer_cell_holds_a_solution(tmp_path):
    src = tmp_path / "notebooks"
    src.mkdir()
    nb = json.loads((ROOT / "notebooks" / "02_attention_masks.ipynb").read_text())
    answer = next(c for c in nb["cells"] if _source(c).startswith("answer_2 = None"))
    answer["source"] = ["solution_2 = 12\n", "answer_2 = solution_2\n", _source(answer).split("\n", 1)[1]]
    (src / "02_attention_masks.ipynb").write_text(json.dumps(nb))
    with pytest.raises(SystemExit) as err:
        make_student.make_student(src, tmp_path / "out")
    assert "02.summary_keys is not a stub" in str(err.value) and "solution text" in str(err.value)
