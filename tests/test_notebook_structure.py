"""What every notebook promises its reader, checked on the committed files (issue 10's rules).

* it opens with learning goals that render as a Markdown list, and cites its sources;
* it pins torch's threads and seeds (deterministic outputs, fast on a 2-core CPU);
* it ends with 2-4 exercises, at least one of them a coding exercise (the learner writes a function
  that ``check`` runs against the library);
* every solution cell is tagged ``solution``, hides its source *and* its outputs, and prints
  nothing but the verdict, so a static view never shows an answer;
* widget notebooks carry their widget state, so a static view shows each widget's figure;
* notebooks 02-08 write their equations in LaTeX.
"""
import json
import pathlib
import re

import pytest

from emformer_edu.teaching.exercises import EXERCISES

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
SOLUTION_FIRST_LINE = "# Solution (collapsed: open it only after trying)."
VERDICT = re.compile(r"^\[\d\d\.\w+\] correct!$")


def _load(path):
    return json.loads(path.read_text())


def _source(cell):
    return "".join(cell["source"])


def _ids(path):
    return path.name[:2]


@pytest.fixture(params=NOTEBOOKS, ids=[p.name[:2] for p in NOTEBOOKS])
def notebook(request):
    return request.param, _load(request.param)


def test_opens_with_learning_goals_as_a_list(notebook):
    path, nb = notebook
    first = "\n".join(_source(c) for c in nb["cells"][:2] if c["cell_type"] == "markdown")
    assert re.search(r"you will (understand|be able|learn|see)", first, re.I), f"{path.name}: no learning goals"
    lines = first.splitlines()
    items = [i for i, line in enumerate(lines) if re.match(r"^\s*(\d+\.|[-*])\s+\S", line)]
    assert len(items) >= 2, f"{path.name}: the goals are not a Markdown list"
    first_item = items[0]
    # A Markdown list needs a blank line (or another list item) above it, else it merges into the paragraph.
    assert first_item == 0 or not lines[first_item - 1].strip(), f"{path.name}: no blank line before the list"


def test_cites_its_sources(notebook):
    path, nb = notebook
    text = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert re.search(r"arXiv:\d{4}\.\d{4,5}|torchaudio", text), f"{path.name}: cites no paper or implementation"


def test_pins_threads_and_seeds(notebook):
    path, nb = notebook
    code = "\n".join(_source(c) for c in nb["cells"] if c["cell_type"] == "code")
    assert "torch.set_num_threads(" in code, f"{path.name}: torch threads are not pinned"
    assert "manual_seed(" in code, f"{path.name}: no seed"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if "02" <= p.name[:2] <= "08"], ids=lambda p: p.name[:2])
def test_maths_notebooks_write_equations(path):
    text = "\n".join(_source(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown")
    assert len(re.findall(r"\$\$.+?\$\$|\$[^$\n]+\$", text, re.S)) >= 3, f"{path.name}: fewer than 3 equations"


def test_two_to_four_exercises_one_of_them_coding(notebook):
    path, nb = notebook
    keys = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "solution" not in cell.get("metadata", {}).get("tags", []):
            keys += re.findall(r"""check\(\s*["'](\d\d\.\w+)["']""", _source(cell))
    keys = list(dict.fromkeys(keys))
    assert 2 <= len(keys) <= 4, f"{path.name}: {len(keys)} exercises"
    assert all(k[:2] == path.name[:2] for k in keys), keys
    assert any(EXERCISES[k].is_coding for k in keys), f"{path.name}: no coding exercise"


def test_solutions_hide_source_and_outputs_and_print_only_the_verdict(notebook):
    path, nb = notebook
    solutions = [c for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    assert solutions, f"{path.name}: no solution cells"
    for cell in solutions:
        # A collapsed cell may still show its first line: it must give nothing away.
        assert _source(cell).split("\n", 1)[0] == SOLUTION_FIRST_LINE, f"{path.name}: a solution's first line"
        hidden = cell["metadata"].get("jupyter", {})
        assert hidden.get("source_hidden") and hidden.get("outputs_hidden"), f"{path.name}: a solution shows itself"
        for out in cell.get("outputs", []):
            assert out["output_type"] == "stream" and out["name"] == "stdout", f"{path.name}: solution output {out}"
            lines = "".join(out["text"]).splitlines()
            assert lines and all(VERDICT.match(line) for line in lines), f"{path.name}: a solution prints {lines}"


def test_widget_notebooks_store_widget_state(notebook):
    path, nb = notebook
    uses_widgets = any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
                       for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))
    if not uses_widgets:
        pytest.skip("no widget")
    state = nb["metadata"].get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    outputs = [m for m in state.values() if m["model_name"] == "OutputModel"]
    assert state, f"{path.name}: no widget state stored"
    assert all(m["state"].get("outputs") for m in outputs), f"{path.name}: widget figures not stored"
