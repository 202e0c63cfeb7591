"""The static course site (tools/build_site.py, `make site`).

Pure-Python tests of its preprocessors (widget figures, links, collapsed solutions, goals), then one build of
the real site checked in Chromium over http://127.0.0.1: every page loads with no console error and no failed
or outside request, every figure is there and drawn, every relative link resolves, solutions sit in closed
<details>, and equations are typeset by the site's own MathJax (a screenshot is saved).
"""
import functools
import http.server
import json
import pathlib
import re
import sys
import threading
import time
import urllib.parse

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import build_site  # noqa: E402

CHROMIUM = pathlib.Path("/usr/bin/chromium")
VIEW = build_site.WIDGET_VIEW
STATE = build_site.WIDGET_STATE


# ------------------------------------------------------------------------------------- pure-Python tests

def _widget_nb(models, view_id, extra_outputs=()):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("w", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        VIEW: {"model_id": view_id, "version_major": 2, "version_minor": 0},
        "text/plain": "VBox(children=(HBox(children=(IntSlider(value=0),)), Output()))"}), *extra_outputs]
    nb.cells = [cell]
    nb.metadata["widgets"] = {STATE: {"state": models, "version_major": 2, "version_minor": 0}}
    return nb


def _model(name, **state):
    return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0",
            "state": state}


PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_widget_view_becomes_its_stored_figure():
    figure = {"output_type": "display_data", "metadata": {}, "data": {"image/png": PNG, "text/plain": "<Figure>"}}
    models = {
        "box": _model("VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_out"]),
        "row": _model("HBoxModel", children=["IPY_MODEL_slider"]),
        "slider": _model("IntSliderModel", description="chunk", value=3),
        "out": _model("OutputModel", outputs=[figure]),
        "layout": _model("LayoutModel"),
    }
    stream = nbformat.v4.new_output("stream", name="stdout", text="after\n")
    nb, _ = build_site.WidgetSnapshotPreprocessor().preprocess(_widget_nb(models, "box", [stream]), {})
    outputs = nb.cells[0].outputs
    assert "widgets" not in nb.metadata  # no widget JavaScript on the page
    assert not any(VIEW in o.get("data", {}) for o in outputs)
    assert [o.data["image/png"] for o in outputs if "image/png" in o.get("data", {})] == [PNG]
    assert outputs[-1] == stream  # other outputs kept, in order
    note = outputs[0].data["text/plain"]
    assert "chunk = 3" in note and "VBox" not in note


def test_widget_without_a_figure_or_state_gets_a_note():
    models = {"bar": _model("HBoxModel", children=["IPY_MODEL_p", "IPY_MODEL_l"]),
              "p": _model("IntProgressModel", description="train", value=150, max=150),
              "l": _model("LabelModel", value="step 150/150, loss 0.333")}
    nb, _ = build_site.WidgetSnapshotPreprocessor().preprocess(_widget_nb(models, "bar"), {})
    (note,) = nb.cells[0].outputs
    assert "train = 150/150" in note.data["text/plain"] and "loss 0.333" in note.data["text/plain"]
    assert 'class="widget-note"' in note.data["text/html"]
    nb, _ = build_site.WidgetSnapshotPreprocessor().preprocess(_widget_nb({}, "missing"), {})
    (note,) = nb.cells[0].outputs
    assert "not saved" in note.data["text/plain"] and VIEW not in note.data


def test_links_to_notebooks_point_at_pages():
    pre = build_site.NotebookLinkPreprocessor(["00_tour", "03_memory_bank"], current="00_tour")
    src = ("See [the bank](03_memory_bank.ipynb), [again](notebooks/03_memory_bank.ipynb#The-bank) and "
           "[paper](https://arxiv.org/abs/2010.10759); notebook 03 explains it, notebook 00 is this one, "
           "`notebook 03` is code, $notebook 03$ is maths, <a href=\"03_memory_bank.ipynb\">html</a>.\n"
           "```\nnotebook 03\n```\n")
    out = pre.rewrite(src)
    assert "[the bank](03_memory_bank.html)" in out
    assert "[again](03_memory_bank.html#The-bank)" in out
    assert "[paper](https://arxiv.org/abs/2010.10759)" in out
    assert "[notebook 03](03_memory_bank.html) explains" in out
    assert "notebook 00 is this one" in out  # no link to the page itself
    assert "`notebook 03`" in out and "$notebook 03$" in out and "```\nnotebook 03\n```" in out
    assert 'href="03_memory_bank.html"' in out and ".ipynb" not in out
    with pytest.raises(ValueError, match="no notebook 07_missing.ipynb"):
        pre.rewrite("[x](07_missing.ipynb)")


def _course_nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 05 · A title\n\nIntro.\n\n**After this notebook you will understand:**\n\n"
                                      "1. the first goal,\n   continued;\n2. the second goal $x^2$.\n\n"
                                      "**Sources.** arXiv:2010.10759."),
        nbformat.v4.new_code_cell("answer_1 = None", execution_count=1),
        nbformat.v4.new_code_cell("# Solution (collapsed: open it only after trying).\nanswer_1 = 3",
                                  execution_count=2, metadata={"tags": ["solution"]}),
    ]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="[05.a] correct!\n")]
    return nb


def test_title_and_goals_from_the_first_cell():
    title, lead, goals = build_site.title_and_goals(_course_nb(), "x")
    assert title == "05 · A title" and lead == "After this notebook you will understand:"
    assert goals == "1. the first goal,\n   continued;\n2. the second goal $x^2$."
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# T\n\nNo goals here.")])
    with pytest.raises(ValueError, match="After this notebook"):
        build_site.title_and_goals(bad, "bad.ipynb")


def test_solution_cells_are_collapsed_in_details():
    resources = {"metadata": {"name": "t"}, "site": {"prev": None, "next": {"href": "06_x.html", "title": "06"}}}
    body, _ = build_site.make_exporter().from_notebook_node(_course_nb(), resources=resources)
    details = re.findall(r"<details[^>]*>(.*?)</details>", body, re.S)
    assert len(details) == 1 and "<summary>Solution</summary>" in details[0]
    assert "celltag_solution" in details[0] and "correct!" in details[0]
    assert "<details open" not in body
    assert "answer_1 = None" not in details[0]  # the exercise cell stays outside
    assert 'href="06_x.html"' in body and 'href="index.html"' in body
    # Nothing from a CDN: no require.js, no widget manager, MathJax from the site's folder.
    assert "cdn" not in body.lower() and "require.js" not in body
    assert 'src="mathjax/MathJax.js' in body


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no NN_name.ipynb"):
        build_site.build_site(tmp_path / "out", tmp_path)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="did not make"):
        build_site.build_site(tmp_path / "keep")
    assert (tmp_path / "keep" / "mine.txt").exists()
    nb = _course_nb()
    nb.cells[1].execution_count = None
    nbformat.write(nb, tmp_path / "05_x.ipynb")
    with pytest.raises(ValueError, match="not executed"):
        build_site.build_site(tmp_path / "out", tmp_path)


# --------------------------------------------------------------------------------------- the real site

def _expected_figures(path):
    """Images per notebook: image outputs plus the figures stored in the Output widgets its views show."""
    nb = json.loads(path.read_text())
    models = nb["metadata"].get("widgets", {}).get(STATE, {}).get("state", {})
    png, svg = 0, 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if VIEW in data:
                for _, model in build_site._walk_widget(data[VIEW]["model_id"], models, set()):
                    for o in model["state"].get("outputs", []) if model["model_name"] == "OutputModel" else []:
                        png += "image/png" in o.get("data", {}) or "image/jpeg" in o.get("data", {})
                        svg += "image/svg+xml" in o.get("data", {})
            else:
                png += "image/png" in data or "image/jpeg" in data
                svg += "image/svg+xml" in data
    return png, svg


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site") / "site"
    report = build_site.build_site(out)
    print(f"\nsite: {len(report.pages)} pages built in {report.seconds:.1f} s")
    assert report.seconds < 60
    return report


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site.out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_build_is_deterministic(site, tmp_path):
    again = build_site.build_site(tmp_path / "again")
    for page in ["index.html"] + [p.href for p in site.pages]:
        assert (site.out / page).read_bytes() == (again.out / page).read_bytes(), page


def test_site_in_chromium(site, server, tmp_path):
    if not CHROMIUM.exists():
        print(f"SKIP: {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    local = urllib.parse.urlsplit(server).netloc
    notebooks = {p.stem: p for p in build_site.course_notebooks()}
    pages = ["index.html"] + [p.href for p in site.pages]
    assert len(pages) == len(notebooks) + 1
    start = time.perf_counter()
    totals = dict(pages=0, images=0, links=0, solutions=0, maths=0)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            problems = []

            def guard(route):
                # Nothing may leave the site: a request to any other host is recorded and refused.
                if urllib.parse.urlsplit(route.request.url).netloc != local:
                    problems.append(f"outside request {route.request.url}")
                    route.abort()
                else:
                    route.continue_()

            context.route("**/*", guard)
            page = context.new_page()
            page.on("console", lambda m: m.type == "error" and problems.append(f"console error: {m.text}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("requestfailed", lambda r: problems.append(f"failed request {r.url}: {r.failure}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} for {r.url}"))

            for name in pages:
                problems.clear()
                page.goto(f"{server}/{name}", wait_until="load")
                # MathJax 2: wait until it has started, then until everything queued before us is typeset.
                page.wait_for_function("() => window.MathJax && MathJax.isReady", timeout=30_000)
                page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
                page.wait_for_load_state("networkidle")
                assert not problems, f"{name}: {problems}"
                totals["pages"] += 1

                body_text = page.inner_text("body")
                assert not re.search(r"\b(VBox|HBox|IntSlider|IntProgress)\(", body_text), f"{name}: widget text"
                assert "Error displaying widget" not in body_text
                assert page.locator(".MathJax_Error, .noError, merror").count() == 0, f"{name}: a TeX error"

                # Every figure is present and actually decoded.
                if name != "index.html":
                    png, svg = _expected_figures(notebooks[name[:-5]])
                    images = page.eval_on_selector_all(
                        ".jp-OutputArea img", "els => els.map(e => e.complete && e.naturalWidth > 0)")
                    assert len(images) >= png and all(images), f"{name}: {sum(images)} of {png} images drawn"
                    assert page.locator(".jp-RenderedSVG svg").count() >= svg
                    totals["images"] += len(images)

                    # Solutions: as many as tagged cells, each inside a closed <details>, its content hidden.
                    tagged = sum("solution" in c.get("metadata", {}).get("tags", [])
                                 for c in json.loads(notebooks[name[:-5]].read_text())["cells"])
                    states = page.eval_on_selector_all(
                        ".celltag_solution", "els => els.map(e => { const d = e.closest('details');"
                        " return d !== null && !d.open && e.checkVisibility() === false; })")
                    assert len(states) == tagged >= 1 and all(states), f"{name}: solutions {states}"
                    totals["solutions"] += len(states)
                    nav = page.locator("nav.course-nav-top a").evaluate_all("els => els.map(e => e.textContent)")
                    assert any("Course index" in t for t in nav)

                # Every relative link resolves: the file exists, and so does the #anchor it names.
                hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
                for href in hrefs:
                    if urllib.parse.urlsplit(href).scheme:  # https://arxiv.org/...: a link, not a request
                        continue
                    target, _, fragment = href.partition("#")
                    target = target or name
                    path = site.out / urllib.parse.unquote(target)
                    assert path.is_file(), f"{name}: link {href} -> missing {target}"
                    if fragment:
                        # As a browser does: the fragment as written, then percent-decoded (nbconvert's ids
                        # of non-ASCII headings are themselves percent-encoded).
                        tries = [fragment, urllib.parse.unquote(fragment)]
                        if target == name:
                            found = page.evaluate("fs => fs.some(f => document.getElementById(f) !== null)", tries)
                        else:
                            text = path.read_text(encoding="utf-8")
                            found = any(f'id="{f}"' in text for f in tries)
                        assert found, f"{name}: link {href} names no anchor"
                    totals["links"] += 1
                totals["maths"] += page.locator(".MathJax, .MathJax_Display").count()

            # One page's screenshot shows rendered equations: typeset maths, drawn in dark pixels.
            page.goto(f"{server}/02_attention_masks.html", wait_until="load")
            page.wait_for_function("() => window.MathJax && MathJax.isReady", timeout=30_000)
            page.evaluate("() => new Promise(done => MathJax.Hub.Queue(() => done(true)))")
            display = page.locator(".MathJax_Display").first
            assert display.count() == 1, "no display equation typeset on 02"
            display.scroll_into_view_if_needed()
            shot = tmp_path / "02_equations.png"
            page.screenshot(path=str(shot))
            crop = display.screenshot(path=str(tmp_path / "02_first_equation.png"))
            assert shot.stat().st_size > 10_000
            import io
            from PIL import Image
            pixels = Image.open(io.BytesIO(crop)).convert("L")
            dark = sum(pixels.histogram()[:100])
            assert dark > 50, f"the typeset equation is blank ({dark} dark pixels)"
        finally:
            browser.close()
    seconds = time.perf_counter() - start
    print(f"\nsite in Chromium: {totals['pages']} pages, {totals['images']} images, {totals['links']} links, "
          f"{totals['solutions']} collapsed solutions, {totals['maths']} typeset equations, {seconds:.1f} s; "
          f"screenshot {shot}")
    assert totals["maths"] > 20
