"""Execute notebooks in place so committed outputs match what a learner gets (used by `make execute`).

Two details about widgets:
* nbclient's stand-in for the ipywidgets Output widget can deadlock (it sends on the shell
  channel while waiting for the reply there; jupyter/nbclient#312: here 7 of 10 runs of a widget
  cell froze until the cell timeout). It is switched off (``widget_registry = {}``); the course's
  widgets do not need it, because they set their Output's ``outputs`` from the kernel
  (:class:`emformer_edu.teaching.widgets.FigureWidget`), and stray images in a widget cell's
  own outputs are dropped.
* Widget state is stored in the notebook metadata (``application/vnd.jupyter.widget-state+json``):
  the last state of every widget, so each FigureWidget's current figure (one PNG), and a static
  view (GitHub, nbconvert) draws the controls and the figure.

Usage: python tools/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: all)
"""
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _drop_widget_cell_images(nb) -> None:
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        if any(WIDGET_VIEW in o.get("data", {}) for o in outputs):
            cell.outputs = [o for o in outputs if "image/png" not in o.get("data", {})]


def _merge_streams(nb) -> None:
    """One output per stream per run of prints: the kernel may split a print's text and its newline in two."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if (out.output_type == "stream" and merged and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        cell.outputs = merged


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = ExecutePreprocessor(timeout=600, kernel_name="python3", store_widget_state=True)
    client.widget_registry = {}
    client.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    took = time.perf_counter() - start
    _drop_widget_cell_images(nb)
    _merge_streams(nb)
    nbformat.write(nb, path)
    return took


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: executed in {execute(p):.1f} s", flush=True)
