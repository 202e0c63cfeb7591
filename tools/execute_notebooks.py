"""Execute notebooks in place so committed outputs match what a learner gets (used by `make execute`).

Two details about widgets:
* nbclient's stand-in for the ipywidgets Output widget can deadlock (it sends on the shell
  channel while waiting for the reply there; jupyter/nbclient#312: here 7 of 10 runs of a widget
  cell froze until the cell timeout). It is switched off (``widget_registry = {}``), so what a
  widget draws at creation lands in the cell's own outputs; those images are dropped, because
  every notebook shows the widget's default figure statically just above the widget cell.
* Widget state is not stored in the notebook: it would embed every redraw's PNG.

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


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    client = ExecutePreprocessor(timeout=600, kernel_name="python3")
    client.widget_registry = {}
    client.preprocess(nb, {"metadata": {"path": str(path.parent)}})
    took = time.perf_counter() - start
    _drop_widget_cell_images(nb)
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, path)
    return took


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: executed in {execute(p):.1f} s", flush=True)
