"""The course in a real JupyterLab, in a real browser (issue 12).

One JupyterLab (this interpreter's, the project's ``.venv``) serves a throw-away copy of ``notebooks/``;
Playwright drives Debian's Chromium (``/usr/bin/chromium``; ``apt-get install chromium``). For every notebook:

1. opened as committed, before anything runs: widget cells show a widget or its stored figure (not
   ``VBox(...)`` text, not "Error displaying widget"), and solution cells show nothing but
   ``# Solution (collapsed: open it only after trying).``;
2. Run > Run All Cells through the menu, until the kernel is idle and every code cell has an execution count
   (09, the 40 s training run, is only opened: its widget is a progress bar, checked in step 1);
3. no cell shows an error or stderr output, at least the committed notebook's figures are rendered, collapsed
   solutions still show only their first line and their ``[key] correct!`` verdict;
4. every widget driven through the UI (sliders with the keyboard, the sentence box typed into, the variant
   menu picked): its figure must change, and every slider track must be at least 200 px wide at 1280 px.

Two notebooks run side by side (two pages, two kernels: both cores of the 2-core CI machine), all in one
module fixture; each notebook's test then reports its own result. Failures save a screenshot; its path is
in the assertion message. The module prints a summary line (notebooks run, widgets redrawn, time) at its
end. It skips, with the reason printed, only when Chromium is missing.
"""
import contextlib
import re
import time

import pytest

from browser_lab import (CELLS, SOLUTION_FIRST_LINE, ROOT, all_executed, cells, chromium_path, committed, figure_src,
                         lab_server, open_notebook, run_all, stop_kernel, wait_figure_change)

NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
NOT_RUN = {"09_training.ipynb"}  # 40 s of training; its progress-bar widget is checked before running
WIDTH, HEIGHT = 1280, 900
MIN_TRACK_PX = 200
RUN_TIMEOUT_S = 300
PARALLEL = 2
VERDICT = re.compile(r"^\[\d\d\.\w+\] correct!$")
SUMMARY = {"run": [], "opened": [], "redrawn": [], "tracks": [], "start": time.monotonic()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory, pytestconfig):
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")

    def say(message):  # past pytest's output capture, so `make test` (-q) shows it
        with capture.global_and_fixture_disabled():
            print(message, flush=True)

    chromium = chromium_path()
    if chromium is None:
        reason = "Chromium is not installed (apt-get install chromium): browser tests of JupyterLab skipped"
        say(f"\n{reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    SUMMARY["start"] = time.monotonic()
    work = tmp_path_factory.mktemp("lab")
    shots = tmp_path_factory.mktemp("browser-screenshots")
    with lab_server(work) as (base, token, notebooks), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium)
        try:
            yield dict(browser=browser, base=base, token=token, notebooks=notebooks, shots=shots)
        finally:
            browser.close()
            took = time.monotonic() - SUMMARY["start"]
            tracks = f", slider tracks >= {min(SUMMARY['tracks']):.0f} px" if SUMMARY["tracks"] else ""
            say(f"\nbrowser tests (JupyterLab in Chromium): {len(SUMMARY['opened'])} notebooks opened, "
                f"{len(SUMMARY['run'])} run with Run All, {len(SUMMARY['redrawn'])} widget redraws through the UI "
                f"({', '.join(SUMMARY['redrawn'])}){tracks}, {took:.0f} s")


@contextlib.contextmanager
def screenshot_on_failure(page, shots, name):
    try:
        yield
    except Exception as err:
        path = shots / f"{name}.png"
        with contextlib.suppress(Exception):
            page.screenshot(path=str(path), full_page=True)
        message = str(err) if isinstance(err, AssertionError) else f"{type(err).__name__}: {err}"
        raise AssertionError(f"{message}\nscreenshot: {path}") from err


def _check_widget_views(info, facts, when):
    for i in facts["widgets"]:
        text = info[i]["outputText"]
        for bad in ("VBox(", "HBox(", "Error displaying widget"):
            assert bad not in text, f"widget cell {i} {when} shows {bad!r} text instead of a widget: {text[:200]!r}"
        if i in facts["figure_widgets"]:
            assert info[i]["widgets"] or info[i]["images"], f"widget cell {i} {when} shows neither a widget nor its figure"


def _check_solutions(info, facts, when, verdicts_allowed):
    for i in facts["solutions"]:
        lines = [line.strip() for line in info[i]["visible"].splitlines() if line.strip()]
        lines = [line for line in lines if not re.fullmatch(r"\[[ *\d]*\]:", line)]  # a prompt, if any
        assert lines[:1] == [SOLUTION_FIRST_LINE], f"solution cell {i} {when}: first visible line {lines[:1]}"
        extra = [line for line in lines[1:] if not (verdicts_allowed and VERDICT.match(line))]
        assert not extra, f"collapsed solution cell {i} {when} shows more than its first line: {extra}"


def _slider_tracks(cell):
    return cell.locator(".widget-slider .slider-container").evaluate_all(
        "els => els.map(e => e.getBoundingClientRect().width)")


def _drive(page, cell, name, when_changed):
    """Move every control of the widget in ``cell`` once through the UI; its figure must change each time."""
    cell.scroll_into_view_if_needed()
    tracks = _slider_tracks(cell)
    SUMMARY["tracks"] += tracks
    assert all(w >= MIN_TRACK_PX for w in tracks), f"slider tracks {tracks} px: some under {MIN_TRACK_PX} px at {WIDTH} px"
    handles = cell.locator(".widget-slider .noUi-handle")
    for k in range(handles.count()):
        before = figure_src(cell)
        readout = cell.locator(".widget-slider .widget-readout").nth(k)
        value = readout.inner_text()
        handles.nth(k).focus()
        page.keyboard.press("ArrowRight")
        wait_figure_change(cell, before, 60_000)
        assert readout.inner_text() != value, f"slider {k}: readout stayed {value}"
        when_changed(f"{name[:2]} slider {k + 1}")
    for k in range(cell.locator(".widget-dropdown select").count()):
        if name.startswith("00"):
            continue  # the voice menu: the sentence box below is the recogniser's representative run
        menu = cell.locator(".widget-dropdown select").nth(k)
        before = figure_src(cell)
        options = menu.locator("option").all_inner_texts()
        current = menu.evaluate("e => e.options[e.selectedIndex].text")
        menu.select_option(label=next(o for o in options if o != current))
        wait_figure_change(cell, before, 120_000)
        when_changed(f"{name[:2]} menu")
    boxes = cell.locator(".widget-text input")
    for k in range(boxes.count()):
        before = figure_src(cell)
        boxes.nth(k).fill("please open the window")
        boxes.nth(k).press("Enter")
        wait_figure_change(cell, before, 120_000)
        text = cell.locator(".jp-OutputArea-output").first.inner_text()
        assert "cannot recognise" not in text, text[:300]
        when_changed(f"{name[:2]} sentence")


def _job(lab, name, results):
    """Check one notebook (see the module docstring); a generator that yields while its cells run."""
    facts = committed(name)
    results[name] = None  # until a check fails
    page = lab["browser"].new_page(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        with screenshot_on_failure(page, lab["shots"], name.removesuffix(".ipynb")):
            open_notebook(page, lab["base"], lab["token"], name)
            page.wait_for_timeout(2000)  # the widget manager restores the stored widget state after the kernel starts
            info = cells(page)
            assert len(info) == facts["cells"], f"{len(info)} cells in the page, {facts['cells']} in the notebook"
            try:
                _check_widget_views(info, facts, "before running")
                _check_solutions(info, facts, "before running", verdicts_allowed=False)
            except AssertionError as err:  # reported at the end: the run below still tells what else is wrong
                shot = lab["shots"] / f"{name.removesuffix('.ipynb')}-before-running.png"
                page.screenshot(path=str(shot), full_page=True)
                before_running = f"{err}\nscreenshot: {shot}"
            else:
                before_running = None
            SUMMARY["opened"].append(name)
            if name in NOT_RUN:
                assert before_running is None, before_running
                return

            run_all(page)
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while not all_executed(page, lab["notebooks"] / name):
                prompts = [c["prompt"] for c in cells(page) if c["code"]]
                assert time.monotonic() < deadline, f"not every cell ran in {RUN_TIMEOUT_S} s; prompts {prompts}"
                yield
            info = cells(page)
            failed = {i: c["errors"] + c["stderr"] for i, c in enumerate(info) if c["errors"] or c["stderr"]}
            assert not failed, f"cells with errors or stderr output: {failed}"
            images = sum(c["images"] for c in info)
            assert images >= facts["images"], f"{images} figures rendered, the committed notebook has {facts['images']}"
            _check_widget_views(info, facts, "after Run All")
            _check_solutions(info, facts, "after Run All", verdicts_allowed=True)
            SUMMARY["run"].append(name)

            for i in facts["widgets"]:
                _drive(page, page.locator(CELLS).nth(i), name, SUMMARY["redrawn"].append)
            assert before_running is None, before_running
    except Exception as err:
        results[name] = err
    finally:
        page.close()
        with contextlib.suppress(OSError):  # the server answered all along; a failed stop is not this test's failure
            stop_kernel(lab["base"], lab["token"], name)


@pytest.fixture(scope="module")
def results(lab, request):
    """Every selected notebook checked, PARALLEL at a time: ``{name: None or the failure}``."""
    waiting = [item.callspec.params["name"] for item in request.session.items
               if getattr(item, "originalname", None) == "test_notebook_in_jupyterlab"]
    done, running = {}, []
    while waiting or running:
        while waiting and len(running) < PARALLEL:
            job = _job(lab, waiting.pop(0), done)
            running.append(job)
            next(job, None)  # opens the notebook and starts Run All
        for job in list(running):
            if next(job, StopIteration) is StopIteration:
                running.remove(job)
        time.sleep(1)
    return done


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(results, name):
    if results[name] is not None:
        raise results[name]
