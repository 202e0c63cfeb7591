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
  view (GitHub, nbconvert) draws the controls and the figure. Each widget view output also gets a static
  fallback (the figure, :func:`add_static_views`): JupyterLab shows views only in trusted notebooks, and a
  notebook a student opens is not trusted.

Usage: python tools/execute_notebooks.py [notebooks/NN_name.ipynb ...]   (default: all)
"""
import html
import sys
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ExecutePreprocessor

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def _drop_widget_cell_images(nb) -> None:
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        if any(WIDGET_VIEW in o.get("data", {}) for o in outputs):
            cell.outputs = [o for o in outputs if "image/png" not in o.get("data", {})]


def add_static_views(nb) -> None:
    """Give every widget view output a static fallback beside the view, from the stored widget state: the
    widget's current figure (``image/png``), or for a widget without one (09's progress bar) a line of HTML.

    JupyterLab renders a widget view only in trusted output, and a notebook a student opens is not trusted:
    without this it shows the view's ``text/plain``, ``VBox(children=(HBox(...``. With it, the figure; running
    the cell brings the live widget. nbval compares neither ``image/png`` nor widget views, and ``text/plain``
    is kept as the kernel wrote it.
    """
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def models(model_id):  # the model and all its descendants
        model = state.get(model_id)
        if model is None:
            return []
        return [model] + [m for child in model["state"].get("children", [])
                          for m in models(child.removeprefix("IPY_MODEL_"))]

    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(WIDGET_VIEW)
            if not view:
                continue
            found = models(view["model_id"])
            pngs = [o["data"]["image/png"] for m in found for o in m["state"].get("outputs", [])
                    if "image/png" in o.get("data", {})]
            if pngs:
                out["data"]["image/png"] = pngs[-1]
                continue
            parts = []
            for m in found:
                s = m["state"]
                if m["model_name"] == "IntProgressModel":
                    parts.append(f'{html.escape(s.get("description", ""))} <progress value="{s.get("value", 0)}" '
                                 f'max="{s.get("max", 100)}"></progress>')
                elif m["model_name"] in ("LabelModel", "HTMLModel"):
                    parts.append(html.escape(s.get("value", "")))
            if parts:
                out["data"]["text/html"] = "<div>" + " ".join(parts) + "</div>"


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
    add_static_views(nb)  # after the drop above, which removes outputs holding image/png
    _merge_streams(nb)
    nbformat.write(nb, path)
    return took


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    paths = [Path(p) for p in sys.argv[1:]] or sorted((root / "notebooks").glob("*.ipynb"))
    for p in paths:
        print(f"{p.name}: executed in {execute(p):.1f} s", flush=True)
