"""Build the static course site from the executed notebooks: ``make site`` (``python tools/build_site.py --out site``).

One HTML page per notebook in ``notebooks/`` (course order), made by nbconvert's ``HTMLExporter`` with the
``lab`` template extended in ``tools/site/course/``, and an ``index.html`` listing the notebooks with their
learning goals. The site is self-contained: MathJax is copied from the ``jupyter_server_mathjax`` package into
``mathjax/``, and no page asks for anything outside the site folder (no CDN, no widget manager).

What the preprocessors here do to each notebook before export:

* ``WidgetSnapshotPreprocessor``: a widget view output would render as ``VBox(...)`` text in a static page.
  It is replaced by the outputs stored in the widget state (``nb.metadata.widgets``) of the Output widget(s)
  inside that widget: the figure the widget last drew. The widget metadata is then dropped, so no widget
  JavaScript is loaded. A widget without a stored figure gets a short note instead.
* ``NotebookLinkPreprocessor``: Markdown links to ``NN_name.ipynb`` (or ``notebooks/NN_name.ipynb``) point at
  ``NN_name.html``, and a plain "notebook NN" in the prose becomes a link to that page.

Solution cells (tag ``solution``) are wrapped in a closed ``<details>`` by the template.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import html
import pathlib
import re
import shutil
import sys
import time

import jinja2
import nbformat
from nbconvert import HTMLExporter
from nbconvert.filters import markdown2html_mistune
from nbconvert.preprocessors import Preprocessor

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TEMPLATES = pathlib.Path(__file__).resolve().parent / "site"
COURSE_TITLE = "emformer_edu: streaming speech recognition, taken apart"
COURSE_INTRO = ("Emformer RNN-T rebuilt one readable component at a time, taught through executed JupyterLab "
                "notebooks. This site shows each notebook as it ran; open a solution only after trying the "
                "exercise. To move the widgets' sliders, run the notebooks in JupyterLab (make lab).")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/svg+xml")
# MathJax 2 as jupyter_server_mathjax ships it: this combined config is the one the package includes.
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
NOTEBOOK_NAME = re.compile(r"^\d\d_[\w-]+\.ipynb$")
# Written into the output folder, so a rebuild only ever deletes a folder this script made.
MARKER = ".course-site"


# ---------------------------------------------------------------------------------------------- widgets

def _model_ref(value):
    """The model id in an ``IPY_MODEL_<id>`` reference, or None."""
    if isinstance(value, str) and value.startswith("IPY_MODEL_"):
        return value[len("IPY_MODEL_"):]
    return None


def _walk_widget(model_id, models, seen):
    """The models of a widget tree in display order (depth first along ``children``)."""
    if model_id in seen or model_id not in models:
        return []
    seen.add(model_id)
    found = [(model_id, models[model_id])]
    for child in models[model_id].get("state", {}).get("children", []) or []:
        ref = _model_ref(child)
        if ref is not None:
            found += _walk_widget(ref, models, seen)
    return found


def _control_summary(tree):
    """A short 'name = value' text of the tree's controls, e.g. 'chunk = 0, voice = en-us'."""
    parts = []
    for _, model in tree:
        name, state = model.get("model_name", ""), model.get("state", {})
        if name in ("OutputModel", "LayoutModel") or name.endswith("StyleModel") or name.endswith("BoxModel"):
            continue
        label = state.get("description") or ""
        if "_options_labels" in state and isinstance(state.get("index"), int):
            labels = state["_options_labels"]
            value = labels[state["index"]] if 0 <= state["index"] < len(labels) else None
        elif "value" in state:
            value = state["value"]
            if name.endswith("ProgressModel") and "max" in state:
                value = f"{value}/{state['max']}"
        else:
            continue
        if value in (None, ""):
            continue
        parts.append(f"{label} = {value}" if label else str(value))
    return ", ".join(parts)


def _note(text):
    return nbformat.v4.new_output(
        "display_data",
        data={"text/html": f'<p class="widget-note">{html.escape(text)}</p>', "text/plain": text})


class WidgetSnapshotPreprocessor(Preprocessor):
    """Replace every widget view output by the outputs its Output widget(s) stored: the widget's figure."""

    def preprocess(self, nb, resources):
        state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}) or {}
        models = state.get("state", {}) or {}
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = self._replace(cell.outputs, models, depth=0)
        # No widget state left in the page: the lab template then loads no widget manager.
        nb.metadata.pop("widgets", None)
        return nb, resources

    def _replace(self, outputs, models, depth):
        if depth > 8:  # a widget that contains its own view: stop, never loop
            return [_note("Interactive widget: run the notebook in JupyterLab to use it.")]
        result = []
        for output in outputs:
            view = output.get("data", {}).get(WIDGET_VIEW) if output.get("output_type") in (
                "display_data", "execute_result") else None
            if view is None:
                result.append(output)
                continue
            model_id = view.get("model_id")
            tree = _walk_widget(model_id, models, set())
            if not tree:
                result.append(_note("Interactive widget (its state was not saved with the notebook): "
                                    "run the notebook in JupyterLab to see it."))
                continue
            stored = []
            for _, model in tree:
                if model.get("model_name") == "OutputModel":
                    stored += [nbformat.from_dict(copy.deepcopy(o)) for o in model.get("state", {}).get("outputs", [])]
            stored = self._replace(stored, models, depth + 1)
            controls = _control_summary(tree)
            has_figure = any(any(m in o.get("data", {}) for m in IMAGE_MIMES) for o in stored)
            if has_figure:
                caption = "Widget shown as it was saved" + (f" ({controls})" if controls else "") + \
                          "; run the notebook in JupyterLab to move its controls."
                result += [_note(caption)] + stored
            else:
                result += stored + [_note("Interactive widget" + (f": {controls}" if controls else "") +
                                          " (no figure was saved; run the notebook in JupyterLab to use it).")]
        return result


# ------------------------------------------------------------------------------------------------ links

# Tried in order: parts of Markdown that must stay as they are (code, math, existing links), then what we rewrite.
_MARKDOWN_TOKENS = re.compile(
    r"(?P<fence>^(?P<f>```|~~~).*?^(?P=f))"                  # fenced code
    r"|(?P<code>(?P<ticks>`+).+?(?P=ticks))"                 # inline code
    r"|(?P<math>\$\$.+?\$\$|\$[^$\n]+\$)"                    # maths
    r"|(?P<link>\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]*)(?P<title>\s[^)]*)?\))"  # a Markdown link
    r"|(?P<href>href=(?P<q>[\"'])(?P<htarget>[^\"']*)(?P=q))"                     # an HTML link
    r"|(?P<mention>\b[Nn]otebook (?P<num>\d\d)\b)",          # "notebook 03" in prose
    re.S | re.M)
_IPYNB_TARGET = re.compile(r"^(?:\./)?(?:(?:\.\./)?notebooks/)?(?P<stem>\d\d_[\w-]+)\.ipynb(?P<frag>#.*)?$")


class NotebookLinkPreprocessor(Preprocessor):
    """Point Markdown links at the site's pages: ``NN_name.ipynb`` -> ``NN_name.html``; link "notebook NN"."""

    def __init__(self, stems, current=None, **kw):
        super().__init__(**kw)
        self.stems = list(stems)
        self.by_number = {s[:2]: s for s in self.stems}
        self.current = current

    def _page(self, target):
        match = _IPYNB_TARGET.match(target)
        if match is None:
            return None
        if match["stem"] not in self.stems:
            raise ValueError(f"{self.current or 'a notebook'}: link to {target!r}, but there is no notebook "
                             f"{match['stem']}.ipynb (known: {', '.join(self.stems)})")
        return match["stem"] + ".html" + (match["frag"] or "")

    def rewrite(self, source):
        def replace(m):
            if m["link"]:
                page = self._page(m["target"])
                return m[0] if page is None else f"[{m['text']}]({page}{m['title'] or ''})"
            if m["href"]:
                page = self._page(m["htarget"])
                return m[0] if page is None else f"href={m['q']}{page}{m['q']}"
            if m["mention"]:
                stem = self.by_number.get(m["num"])
                if stem is None or stem == self.current:
                    return m[0]
                return f"[{m[0]}]({stem}.html)"
            return m[0]
        return _MARKDOWN_TOKENS.sub(replace, source)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "markdown":
            cell.source = self.rewrite(cell.source)
        return cell, resources


# ------------------------------------------------------------------------------------------------ goals

_GOALS_LEAD = re.compile(r"^\W*(After this notebook you will[^\n]*?)[*_:\s]*$", re.M)
_LIST_ITEM = re.compile(r"^\s*(\d+\.|[-*+])\s+\S")


def title_and_goals(nb, name="notebook"):
    """(title, goals lead line, goals Markdown list) from the notebook's first Markdown cell."""
    first = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if first is None:
        raise ValueError(f"{name}: no Markdown cell, so no title and no learning goals")
    lines = first.source.splitlines()
    title = next((l.lstrip("#").strip() for l in lines if l.startswith("# ")), None)
    if not title:
        raise ValueError(f"{name}: the first Markdown cell has no '# title' line")
    lead = next((i for i, l in enumerate(lines) if _GOALS_LEAD.match(l)), None)
    if lead is None:
        raise ValueError(f"{name}: no 'After this notebook you will ...' line in the first Markdown cell")
    goals, started = [], False
    for line in lines[lead + 1:]:
        if not started:
            if not line.strip():
                continue
            if not _LIST_ITEM.match(line):
                break
            started = True
        elif line.strip() and not line.startswith((" ", "\t")) and not _LIST_ITEM.match(line):
            break  # the paragraph after the list
        goals.append(line)
    while goals and not goals[-1].strip():
        goals.pop()
    if sum(1 for g in goals if _LIST_ITEM.match(g)) < 1:
        raise ValueError(f"{name}: no Markdown list after {lines[lead].strip()!r}")
    return title, _GOALS_LEAD.match(lines[lead]).group(1).strip() + ":", "\n".join(goals)


# ------------------------------------------------------------------------------------------------ build

@dataclasses.dataclass
class Page:
    number: str
    stem: str
    title: str
    goals_lead: str
    goals_markdown: str
    href: str = ""
    goals_html: str = ""


@dataclasses.dataclass
class SiteReport:
    out: pathlib.Path
    pages: list
    seconds: float


def course_notebooks(notebooks=NOTEBOOKS):
    """The course's notebooks ``NN_name.ipynb`` in course order."""
    notebooks = pathlib.Path(notebooks)
    if not notebooks.is_dir():
        raise FileNotFoundError(f"no notebook folder {notebooks}")
    paths = sorted(p for p in notebooks.glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))
    if not paths:
        raise FileNotFoundError(f"no NN_name.ipynb notebooks in {notebooks}")
    numbers = [p.name[:2] for p in paths]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"two notebooks share a number in {notebooks}: {[p.name for p in paths]}")
    return paths


def _check_executed(nb, name):
    unexecuted = [i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and c.source.strip() and c.get("execution_count") is None]
    if unexecuted:
        raise ValueError(f"{name} is not executed (code cells {unexecuted[:5]} have no execution count): "
                         f"run `make execute` first")


def mathjax_source():
    """The static folder of the jupyter_server_mathjax package (MathJax 2)."""
    try:
        import jupyter_server_mathjax
    except ImportError as err:
        raise RuntimeError("the site needs the jupyter-server-mathjax package (see requirements.txt) "
                           "to render equations without a CDN") from err
    static = pathlib.Path(jupyter_server_mathjax.__file__).parent / "static"
    if not (static / "MathJax.js").is_file():
        raise RuntimeError(f"jupyter_server_mathjax has no MathJax.js in {static}")
    return static


def _prepare_out(out):
    out = pathlib.Path(out)
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"--out {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise ValueError(f"--out {out} is a non-empty folder this script did not make; refusing to replace it")
        shutil.rmtree(out)  # rebuilt from scratch: the site never keeps a stale page
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by tools/build_site.py; deleted and rebuilt by it\n")
    return out


def make_exporter():
    exporter = HTMLExporter(template_name="course", extra_template_basedirs=[str(TEMPLATES)])
    exporter.mathjax_url = MATHJAX_URL
    exporter.exclude_anchor_links = False
    return exporter


def build_site(out, notebooks=NOTEBOOKS):
    """Build the site into ``out`` (replacing a previous build there); returns a SiteReport."""
    start = time.perf_counter()
    paths = course_notebooks(notebooks)
    stems = [p.stem for p in paths]

    pages, nbs = [], []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        _check_executed(nb, path.name)
        title, lead, goals = title_and_goals(nb, path.name)
        pages.append(Page(path.name[:2], path.stem, title, lead, goals, href=path.stem + ".html",
                          goals_html=markdown2html_mistune(goals)))
        nbs.append(nb)

    def neighbour(j):
        return dict(href=pages[j].href, title=pages[j].title) if 0 <= j < len(pages) else None

    mathjax = mathjax_source()
    out = _prepare_out(out)  # only once every notebook has been read and checked
    exporter = make_exporter()
    for i, (page, nb) in enumerate(zip(pages, nbs)):
        nb, _ = WidgetSnapshotPreprocessor().preprocess(nb, {})
        nb, _ = NotebookLinkPreprocessor(stems, current=page.stem).preprocess(nb, {})
        resources = {"metadata": {"name": page.title},
                     "site": {"prev": neighbour(i - 1), "next": neighbour(i + 1)}}
        body, _ = exporter.from_notebook_node(nb, resources=resources)
        (out / page.href).write_text(body, encoding="utf-8")

    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(TEMPLATES / "course")]),
                             autoescape=False, undefined=jinja2.StrictUndefined)
    index = env.get_template("index.html.j2").render(
        course_title=COURSE_TITLE, intro=COURSE_INTRO, pages=pages, mathjax_url=MATHJAX_URL)
    (out / "index.html").write_text(index, encoding="utf-8")
    shutil.copy2(TEMPLATES / "course.css", out / "course.css")
    shutil.copytree(mathjax, out / "mathjax")
    return SiteReport(out, pages, time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="site", help="output folder (default: site)")
    parser.add_argument("--notebooks", default=str(NOTEBOOKS), help="folder of executed NN_name.ipynb notebooks")
    args = parser.parse_args(argv)
    try:
        report = build_site(args.out, args.notebooks)
    except (FileNotFoundError, ValueError, RuntimeError) as err:  # bad input: say what, no traceback
        print(f"build_site: error: {err}", file=sys.stderr)
        return 2
    print(f"built {len(report.pages)} pages + index.html in {report.out} in {report.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
