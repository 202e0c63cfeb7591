"""A real JupyterLab in a real browser, for tests/test_browser.py.

:func:`lab_server` starts ``jupyter lab`` (this interpreter's, i.e. the project's ``.venv``) on a throw-away
copy of ``notebooks/`` with a random token, waits until it answers and stops it by its process group.
The helpers below drive JupyterLab 4 through its UI and read its stable DOM (``.jp-Notebook``,
``.jp-Cell``, ``.jp-OutputArea-output``, the toolbar's kernel indicator ``[data-status]``).
"""
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
SOLUTION_FIRST_LINE = "# Solution (collapsed: open it only after trying)."


def chromium_path():
    """Debian's Chromium (``apt-get install chromium``), or ``None`` when it is not installed."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(directory: Path) -> None:
    """User settings for the test lab: every cell rendered (no windowing, so off-screen cells are in
    the DOM), no news pop-up over the notebook."""
    for name, value in {"@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
                        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = directory / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@contextlib.contextmanager
def lab_server(workdir: Path, timeout: float = 90.0):
    """Yield ``(base_url, token, notebooks_dir)`` of a JupyterLab serving a copy of the notebooks.

    The copy sits in ``workdir/course/notebooks`` with ``workdir/course/benchmarks/bench_pruned_loss.json``
    beside it (notebook 11 reads ``../benchmarks/``), so the committed notebooks are never touched.
    """
    course = workdir / "course"
    notebooks = course / "notebooks"
    shutil.copytree(ROOT / "notebooks", notebooks)
    (course / "benchmarks").mkdir()
    shutil.copy(ROOT / "benchmarks" / "bench_pruned_loss.json", course / "benchmarks")
    _settings(workdir / "lab-settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               JUPYTERLAB_SETTINGS_DIR=str(workdir / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(workdir / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(workdir / "runtime"))
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--ServerApp.token={token}",
               "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={notebooks}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log_path = workdir / "jupyter-lab.log"
    with open(log_path, "w") as log:
        # Its own process group: the kernels it starts are stopped with it.
        server = subprocess.Popen(command, cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {server.returncode}; log:\n{log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer in {timeout:.0f} s; log:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
        yield base, token, notebooks
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)


# ---------------------------------------------------------------- what the committed notebook promises

def committed(name: str) -> dict:
    """Facts about ``notebooks/<name>`` (cell indices match the order of ``.jp-Cell`` in the page).

    ``figure_widgets``: the widget cells whose stored widget state holds a figure (the FigureWidgets).
    """
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    cells = nb["cells"]
    state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})

    def has_figure(model_id):
        model = state.get(model_id, {}).get("state", {})
        return (any("image/png" in o.get("data", {}) for o in model.get("outputs", []))
                or any(has_figure(c.removeprefix("IPY_MODEL_")) for c in model.get("children", [])))

    images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
    views = {i: [o["data"][WIDGET_VIEW]["model_id"] for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
             for i, c in enumerate(cells)}
    widgets = [i for i, ids in views.items() if ids]
    solutions = [i for i, c in enumerate(cells) if "solution" in c.get("metadata", {}).get("tags", [])]
    code = sum(c["cell_type"] == "code" for c in cells)
    return dict(cells=len(cells), code=code, images=images, widgets=widgets, solutions=solutions,
                figure_widgets=[i for i in widgets if any(map(has_figure, views[i]))])


# ---------------------------------------------------------------- driving JupyterLab

def open_notebook(page, base: str, token: str, name: str, timeout_ms: int = 60_000) -> None:
    """Open ``name`` in JupyterLab and wait until its cells are in the page and its kernel is idle."""
    # A workspace of its own per notebook: nothing else is restored into the page (pages run side by side).
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell", timeout=timeout_ms)
    wait_idle(page, timeout_ms)


def wait_idle(page, timeout_ms: int) -> None:
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=timeout_ms)


def run_all(page) -> None:
    """Run > Run All Cells, through the menu bar as a student would."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible .lm-Menu-itemLabel", has_text="Run All Cells").first.click()


# One JS pass over the notebook: per cell, what a student sees.
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell"
_CELLS_JS = """() => {const CELLS = '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell'; return Array.from(document.querySelectorAll(CELLS)).map(c => ({
  code: c.classList.contains('jp-CodeCell'),
  prompt: (c.querySelector('.jp-InputArea-prompt') || {textContent: ''}).textContent.trim(),
  visible: c.innerText,
  stderr: Array.from(c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).map(e => e.textContent.slice(0, 500)),
  errors: Array.from(c.querySelectorAll('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"], .jp-RenderedText[data-mime-type="application/vnd.jupyter.error"]')).map(e => e.textContent.slice(-800)),
  images: Array.from(c.querySelectorAll('.jp-OutputArea-output img')).filter(e => e.naturalWidth > 0).length,
  widgets: c.querySelectorAll('.jp-OutputArea-output .jupyter-widgets').length,
  outputText: Array.from(c.querySelectorAll('.jp-OutputArea-output')).map(e => e.textContent).join('\\n'),
}))}"""


def cells(page) -> list:
    return page.evaluate(_CELLS_JS)


def save(page) -> None:
    """File > Save (Ctrl+S) and wait until the document is clean."""
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook", timeout=10_000)
    page.wait_for_function("() => !document.querySelector('.lm-TabBar-tab.lm-mod-current.jp-mod-dirty')", timeout=30_000)


def all_executed(page, path: Path) -> bool:
    """Whether the kernel is idle and every code cell has an execution count.

    Collapsed (solution) cells show no prompt, so the counts are read from the notebook saved to ``path``.
    """
    shown = [c["prompt"] for c in cells(page) if c["code"] and c["prompt"]]
    if not (page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').count()
            and all(p[1:-2].strip().isdigit() for p in shown)):
        return False
    save(page)
    return all(c.get("execution_count") for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")


def stop_kernel(base: str, token: str, name: str) -> None:
    """Stop the kernel of notebook ``name`` (its session), so the next notebooks have the CPU."""
    headers = {"Authorization": f"token {token}"}
    sessions = json.load(urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions", headers=headers)))
    for s in sessions:
        if s.get("path") == name:
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/sessions/{s['id']}", method="DELETE",
                                                          headers=headers))


def figure_src(cell) -> str:
    """The ``src`` of the (last) figure inside a widget cell's output area."""
    images = cell.locator(".jp-OutputArea-output .jupyter-widgets img")
    return images.last.get_attribute("src") if images.count() else ""


def wait_figure_change(cell, before: str, timeout_ms: int) -> str:
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        src = figure_src(cell)
        if src and src != before:
            return src
        if time.monotonic() > deadline:
            raise TimeoutError(f"the widget's figure did not change within {timeout_ms / 1000:.0f} s")
        cell.page.wait_for_timeout(250)
