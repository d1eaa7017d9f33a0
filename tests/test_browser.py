"""The real thing: JupyterLab in headless Chromium runs the notebooks with widgets, and their widgets drive them.

Run with `make test-browser` (CI: `.ci/run`). Needs Debian's chromium (`apt-get install chromium`) and the
`playwright` Python package; no browser is downloaded. JupyterLab runs on 127.0.0.1 with a free port, a
random token and its own config, runtime, settings and workspace folders; the notebook runs in the
`python3` kernel of this environment. Screenshots go to each test's tmp folder and `runs/browser/`.

- 01: every cell in full (no model); a dropdown and the n_mem slider redraw the capacity chart.
- 03 and 06: every cell with their smoke parameters (the tiny model: the embedded model's cram would take
  minutes a notebook on a CPU); the controls' printed line must become the line the kit computes for the new
  values (known before the browser runs), and 03's own-text box crams what is typed into it.
- The PoC's report.html (`cramlab poc --demo`, tiny model): it loads without a JavaScript error, has a title,
  and its first heading and first table are visible.
- The book (`make book` on a smoke run of 01 and 02): index.html links the pages in order, and each page draws
  every plotly figure its executed notebook holds, from disk, with no request to the network.

`CRAMLAB_BROWSER_NOTEBOOK=path.ipynb` drives another notebook through the 01 test (for working on the harness).
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "01_bits_in_a_vector.ipynb"
CHROMIUM = os.environ.get("CRAMLAB_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "runs" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
RUN_ALL_TIMEOUT_S = 150

# Lab settings for a quiet, deterministic session: no autosave (the copy is never written back), no news.
LAB_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode())


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server of our own; yields (base_url, token, root folder)."""
    notebook = Path(os.environ.get("CRAMLAB_BROWSER_NOTEBOOK", NOTEBOOK))
    assert notebook.is_file(), f"{notebook} is missing: the browser test drives that notebook"
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in ("python", "python3", sys.executable) or Path(spec.argv[0]).resolve() == \
        Path(sys.executable).resolve(), (f"kernel python3 runs {spec.argv[0]}, not this environment; run "
                                         f"`{sys.executable} -m ipykernel install --user --name python3`")

    root = tmp_path / "lab"
    shutil.copytree(REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if notebook.resolve().parent != (REPO / "notebooks").resolve():
        shutil.copy(notebook, root / "notebooks" / notebook.name)
    env_dirs = {name: tmp_path / "jupyter" / name
                for name in ("config", "runtime", "settings", "workspaces", "ipython")}
    for d in env_dirs.values():
        d.mkdir(parents=True)
    for rel, value in LAB_SETTINGS.items():
        f = env_dirs["settings"] / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(json.dumps(value))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(env_dirs["config"]), JUPYTER_RUNTIME_DIR=str(env_dirs["runtime"]),
               JUPYTERLAB_SETTINGS_DIR=str(env_dirs["settings"]),
               JUPYTERLAB_WORKSPACES_DIR=str(env_dirs["workspaces"]), IPYTHONDIR=str(env_dirs["ipython"]),
               PYTHONUNBUFFERED="1")
    env.pop("JUPYTER_TOKEN", None)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly",
         *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()[-3000:]}"
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                assert time.monotonic() < deadline, "JupyterLab did not start within 90 s"
                time.sleep(0.5)
        yield base, token, root
    finally:
        try:  # polite shutdown first: it also stops the kernels
            req = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=20)
        except Exception:  # noqa: BLE001 - whatever happened, the server must go
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


# JavaScript run inside JupyterLab (window.jupyterapp exists because of expose_app_in_browser).
JS_NOTEBOOK_STATE = """() => {
  const nb = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!nb || !nb.content || !nb.sessionContext) return null;
  const kernel = nb.sessionContext.session && nb.sessionContext.session.kernel;
  const cells = nb.content.widgets.filter(c => c.model.type === 'code' && c.model.sharedModel.getSource().trim());
  const errors = [];
  let pending = 0;
  for (const c of cells) {
    const tags = c.model.getMetadata('tags') || [];
    for (const o of c.model.outputs.toJSON())
      if (o.output_type === 'error' && !tags.includes('raises-exception')) errors.push(o.ename + ': ' + o.evalue);
    const prompt = c.promptNode ? c.promptNode.textContent : '';
    if (c.model.executionCount === null || prompt.includes('*')) pending += 1;
  }
  return {n_cells: cells.length, pending, errors, kernel: kernel ? kernel.status : 'none',
          kernel_name: kernel ? kernel.name : null};
}"""

JS_RUN_ALL = "() => window.jupyterapp.commands.execute('notebook:run-all-cells')"

# Everything a widget drives, as text: plotly figures (their data and the SVG text), tables, HTML and
# Output widgets. The controls themselves (sliders' readouts, dropdowns) are left out.
JS_DRIVEN_STATE = """(outputArea) => {
  const parts = [];
  for (const gd of outputArea.querySelectorAll('.js-plotly-plot')) {
    parts.push(JSON.stringify((gd.data || []).map(t => [t.x, t.y, t.z, t.text, t.values])));
    parts.push(JSON.stringify(gd.layout && gd.layout.title));
    parts.push(gd.textContent);
  }
  for (const el of outputArea.querySelectorAll('table, .widget-html-content, .widget-output, .jp-RenderedText'))
    parts.push(el.textContent);
  return parts.join('\\n');
}"""


JS_FIGURE_STATE = """(outputArea) => JSON.stringify(Array.from(outputArea.querySelectorAll('.js-plotly-plot')).map(
  gd => [(gd.data || []).map(t => [t.y, t.marker && t.marker.line && t.marker.line.width]),
         gd.layout && gd.layout.title && gd.layout.title.text]))"""


def _wait_for(page, js, predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        state = page.evaluate(js)
        if predicate(state):
            return state
        page.wait_for_timeout(500)
    raise AssertionError(f"timed out waiting for {what}; last state: {state}")


def _pick_control(page):
    """The widget to change: a model dropdown if there is one, else an n_mem/vectors slider, else the first."""
    dropdowns = page.locator(".jp-OutputArea .widget-dropdown")
    sliders = page.locator(".jp-OutputArea .widget-slider")
    candidates = [("dropdown", dropdowns.nth(i)) for i in range(dropdowns.count())] + \
                 [("slider", sliders.nth(i)) for i in range(sliders.count())]
    assert candidates, "no ipywidgets dropdown or slider rendered in the notebook's outputs"

    def score(item):
        kind, loc = item
        label = (loc.locator(".widget-label").first.text_content() or "").lower() \
            if loc.locator(".widget-label").count() else ""
        if kind == "dropdown" and "model" in label:
            return 0
        if kind == "slider" and any(w in label for w in ("n_mem", "vector")):
            return 1
        return 2 if kind == "dropdown" else 3
    return min(candidates, key=score)


def _change(kind, control):
    """Move the control to another value, as a user would; return (before, after) as shown."""
    if kind == "dropdown":
        select = control.locator("select")
        options = select.locator("option").all_text_contents()
        before = select.input_value()
        values = select.evaluate("s => Array.from(s.options).map(o => o.value)")
        target = next(v for v in values if v != before)
        select.select_option(value=target)
        return options[values.index(before)], options[values.index(target)]
    readout = control.locator(".widget-readout")
    before = readout.text_content()
    handle = control.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    if readout.text_content() == before:      # at the maximum already
        handle.press("ArrowLeft")
        handle.press("ArrowLeft")
    return before, readout.text_content()


@contextlib.contextmanager
def _chromium(tmp_path, console: list[str]):
    """A page of headless Debian Chromium; JavaScript errors and uncaught exceptions go to `console`."""
    from playwright.sync_api import sync_playwright
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} not found: apt-get install chromium"
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            yield page
        finally:
            context.close()


def _open_and_run_all(page, base: str, token: str, nb_name: str) -> dict:
    """Open notebooks/NB_NAME in JupyterLab, run every cell, wait until the kernel is idle; no cell may raise."""
    page.goto(f"{base}/lab/tree/notebooks/{nb_name}?token={token}", wait_until="domcontentloaded")
    state = _wait_for(page, JS_NOTEBOOK_STATE, lambda s: bool(s) and s["kernel"] == "idle", 90,
                      "the notebook to open with an idle kernel")
    assert state["kernel_name"] == "python3", state
    assert state["n_cells"] > 0
    page.evaluate(JS_RUN_ALL)
    state = _wait_for(page, JS_NOTEBOOK_STATE,
                      lambda s: s["errors"] or (s["pending"] == 0 and s["kernel"] == "idle"),
                      RUN_ALL_TIMEOUT_S, "all cells to run")
    assert not state["errors"], f"cells raised: {state['errors']}"
    return state


def _save_shots(shots, record: dict, stem: str) -> None:
    """Copy the screenshots to runs/browser/ (each must hold a real picture) with a JSON of what was checked."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        assert shot.stat().st_size > 10_000, f"{shot} is too small to show the page"
        shutil.copy(shot, SCREENSHOTS / shot.name)
    (SCREENSHOTS / f"{stem}.json").write_text(json.dumps(record, indent=1))


def test_notebook_01_widgets_drive_the_figure_in_jupyterlab(lab, tmp_path):
    base, token, _root = lab
    nb_name = Path(os.environ.get("CRAMLAB_BROWSER_NOTEBOOK", NOTEBOOK)).name
    console: list[str] = []
    with _chromium(tmp_path, console) as page:
        _open_and_run_all(page, base, token, nb_name)

        page.wait_for_selector(".jp-OutputArea .widget-dropdown, .jp-OutputArea .widget-slider", timeout=30_000)
        kind, control = _pick_control(page)
        output_area = control.locator("xpath=ancestor::div[contains(@class,'jp-OutputArea')][1]")
        output_area.scroll_into_view_if_needed()
        page.wait_for_timeout(1000)                # let plotly finish its first layout
        driven_before = output_area.evaluate(JS_DRIVEN_STATE)
        assert driven_before.strip(), "the widget's cell shows no figure, table or text to drive"
        shown_before, shown_after = _change(kind, control)
        assert shown_before != shown_after, f"the {kind} did not move"
        deadline = time.monotonic() + 30
        driven_after = driven_before
        while driven_after == driven_before and time.monotonic() < deadline:
            page.wait_for_timeout(500)
            driven_after = output_area.evaluate(JS_DRIVEN_STATE)
        assert driven_after != driven_before, (
            f"changing the {kind} from {shown_before!r} to {shown_after!r} did not update the figure or table")
        # the chart under the controls follows them too: move the vectors slider, its bars must change
        figure_before = output_area.evaluate(JS_FIGURE_STATE)
        chart_followed = None
        slider = output_area.locator(".widget-slider").filter(has_text="n_mem")
        if nb_name == Path(NOTEBOOK).name:          # 01 has the chart and the slider; another notebook may not
            assert figure_before != "[]" and slider.count(), "notebook 01's capacity chart or slider is missing"
        if figure_before != "[]" and slider.count():
            _change("slider", slider.first)
            deadline, figure_after = time.monotonic() + 30, figure_before
            while figure_after == figure_before and time.monotonic() < deadline:
                page.wait_for_timeout(500)
                figure_after = output_area.evaluate(JS_FIGURE_STATE)
            assert figure_after != figure_before, "moving the n_mem slider did not redraw the capacity chart"
            chart_followed = dict(before=figure_before[:1000], after=figure_after[:1000])
        page.wait_for_timeout(1000)
        control.scroll_into_view_if_needed()
        shots = [tmp_path / "notebook01_after_widget_change.png", tmp_path / "notebook01_figure.png"]
        page.screenshot(path=str(shots[0]))

        # the plotly figures rendered in the browser (jupyterlab-plotly / anywidget), not just as JSON
        figures = page.locator(".jp-OutputArea .js-plotly-plot")
        assert figures.count() > 0, "no plotly figure rendered in JupyterLab"
        figure = figures.first
        figure.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        figure_info = figure.evaluate(
            "gd => ({traces: (gd._fullData || []).length, title: gd._fullLayout && gd._fullLayout.title "
            "&& gd._fullLayout.title.text, marks: gd.querySelectorAll('.point, .trace path').length})")
        assert figure_info["traces"] > 0 and figure_info["marks"] > 0, figure_info
        page.screenshot(path=str(shots[1]))
    _save_shots(shots, {
        "notebook": nb_name, "control": kind, "from": shown_before, "to": shown_after,
        "driven_before": driven_before[:2000], "driven_after": driven_after[:2000], "figure": figure_info,
        "chart_followed_the_slider": chart_followed,
        "browser_console_errors": console[:50]}, "notebook01_widget_change")


# --- notebooks 03 and 06: their controls print the line the kit computes for the new values -------------------

def _smoke_copy(root: Path, nb_name: str) -> dict:
    """Replace the lab's copy of notebooks/NB_NAME by one with its smoke parameters injected (papermill, not
    run); return every parameter the notebook will run with."""
    from cramlab.lab.notebook_runner import declared_parameters, notebook_parameters, prepare_notebook
    source = REPO / "notebooks" / nb_name
    smoke = notebook_parameters(source, "smoke")
    assert smoke.get("model", "").startswith("tiny-"), f"{nb_name}'s smoke parameters do not pick a tiny model"
    prepare_notebook(source, root / "notebooks" / nb_name, smoke)
    declared = {name: ast.literal_eval(value) for name, value in declared_parameters(source).items()}
    return declared | smoke                      # papermill reads the defaults as source text: '"unseen"'


def _box(page, title: str):
    """The ipywidgets box whose title reads `title` (one, rendered in an output area)."""
    box = page.locator(".jp-OutputArea .widget-vbox").filter(has=page.locator(f"text={title}"))
    assert box.count() >= 1, f"no widget box titled {title!r} rendered"
    return box.first


def _html_lines(box) -> list[str]:
    return [t.strip() for t in box.locator(".widget-html-content").all_text_contents()]


def _wait_for_line(page, box, expected: str, what: str, timeout_s: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout_s
    lines = _html_lines(box)
    while expected not in lines and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        lines = _html_lines(box)
    assert expected in lines, f"{what}: expected the line {expected!r}, the box shows {lines}"
    return lines


def _slider(box, label: str):
    slider = box.locator(".widget-slider").filter(has_text=label)
    assert slider.count() == 1, f"no slider labelled {label!r}"
    return slider.first


def _select(box, label: str, option: str) -> None:
    dropdown = box.locator(".widget-dropdown").filter(has_text=label)
    assert dropdown.count() == 1, f"no dropdown labelled {label!r}"
    dropdown.first.locator("select").select_option(label=option)


def test_notebook_03_controls_and_own_text_box_in_jupyterlab(lab, tmp_path):
    """03 (smoke parameters): the model dropdown and the length slider change the printed line to exactly the
    one `describe_cram_choice` gives for the new values, and the own-text button crams what was typed."""
    from cramlab.lab.widgets import EMBEDDED, OWN_TEXT_MAX_TOKENS, describe_cram_choice
    from cramlab.models.load import load_model
    from cramlab.models.texts import encode
    base, token, root = lab
    nb_name = "03_first_cram.ipynb"
    p = _smoke_copy(root, nb_name)
    typed = "The cat sat on the mat, and the dog watched it."
    tokenizer = load_model(p["model"], device="cpu").tokenizer
    ids = encode(tokenizer, typed)[:OWN_TEXT_MAX_TOKENS]
    expected_own = f"{len(ids)} tokens: {tokenizer.decode(ids)!r}"
    console: list[str] = []
    with _chromium(tmp_path, console) as page:
        _open_and_run_all(page, base, token, nb_name)
        box = _box(page, "What to cram")
        box.scroll_into_view_if_needed()
        before = _html_lines(box)
        assert describe_cram_choice(p["model"], p["n_tokens"], p["n_mem"], p["source"]) in before, before
        _select(box, "model", EMBEDDED)
        _wait_for_line(page, box, describe_cram_choice(EMBEDDED, p["n_tokens"], p["n_mem"], p["source"]),
                       "after choosing the embedded model")
        shown_before, shown_after = _change("slider", _slider(box, "text length"))
        assert shown_before != shown_after, "the text-length slider did not move"
        after = _wait_for_line(page, box, describe_cram_choice(EMBEDDED, int(shown_after), p["n_mem"], p["source"]),
                               f"after moving the text length from {shown_before} to {shown_after}")
        shots = [tmp_path / "notebook03_controls.png", tmp_path / "notebook03_own_text.png"]
        page.screenshot(path=str(shots[0]))

        own = page.locator(".jp-OutputArea .widget-vbox").filter(has=page.locator(".widget-textarea")).first
        own.scroll_into_view_if_needed()
        own.locator("textarea").fill(typed)
        own.locator("button", has_text="cram it and decode it back").click()
        output = own.locator(".widget-output")
        deadline = time.monotonic() + 120
        while "greedy decoding gives your text back exactly" not in (output.text_content() or "") \
                and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        printed = output.text_content() or ""
        assert expected_own in printed and "greedy decoding gives your text back exactly: " in printed, printed
        page.screenshot(path=str(shots[1]))
    _save_shots(shots, {"notebook": nb_name, "parameters": p, "before": before, "after": after,
                        "slider": [shown_before, shown_after], "own_text_output": printed[:2000],
                        "browser_console_errors": console[:50]}, "notebook03_widgets")


def test_notebook_06_capacity_explorer_in_jupyterlab(lab, tmp_path):
    """06 (smoke parameters): the explorer's n_mem slider and dtype dropdown change its line to exactly the one
    `describe_capacity` gives (k vectors: k times the bits, hence k times the tokens)."""
    from cramlab.lab.widgets import EMBEDDED, MODEL_CHOICES, describe_capacity
    base, token, root = lab
    nb_name = "06_more_vectors.ipynb"
    p = _smoke_copy(root, nb_name)
    model = p["model"] if p["model"] in MODEL_CHOICES else EMBEDDED       # as the notebook picks it
    console: list[str] = []
    with _chromium(tmp_path, console) as page:
        _open_and_run_all(page, base, token, nb_name)
        box = _box(page, "Capacity explorer")
        box.scroll_into_view_if_needed()
        before = _wait_for_line(page, box, describe_capacity(model, "bfloat16", max(p["n_mems"])), "as first shown")
        shown_before, shown_after = _change("slider", _slider(box, "n_mem"))
        assert shown_before != shown_after, "the n_mem slider did not move"
        _wait_for_line(page, box, describe_capacity(model, "bfloat16", int(shown_after)),
                       f"after moving n_mem from {shown_before} to {shown_after}")
        _select(box, "dtype", "float32")
        after = _wait_for_line(page, box, describe_capacity(model, "float32", int(shown_after)),
                               "after choosing float32")
        shots = [tmp_path / "notebook06_capacity_explorer.png"]
        page.screenshot(path=str(shots[0]))
    _save_shots(shots, {"notebook": nb_name, "parameters": p, "before": before, "after": after,
                        "slider": [shown_before, shown_after], "browser_console_errors": console[:50]},
                "notebook06_widgets")


# --- the PoC's report.html -------------------------------------------------------------------------------------

def test_poc_report_html_opens_in_chromium(tmp_path):
    """`cramlab poc --demo` on the tiny model writes report.html; Chromium loads it without a JavaScript error,
    and its title, first heading and first table are there and visible."""
    out = tmp_path / "poc"
    cmd = [sys.executable, "-m", "cramlab", "poc", "--demo", "--demo-size", "1", "--model", "tiny-llama",
           "--device", "cpu", "--n-tokens", "6", "--max-steps", "2", "--no-privacy-check", "--no-alternatives",
           "--no-progress", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = out / "report.html"
    assert report.is_file(), f"no report.html in {out}: {sorted(x.name for x in out.iterdir())}"
    console: list[str] = []
    with _chromium(tmp_path, console) as page:
        page.goto(report.as_uri(), wait_until="load")
        page.wait_for_timeout(1500)                  # inlined plotly draws after load
        title = page.title()
        heading = page.locator("h1, h2").first
        table = page.locator("table").first
        assert title.strip(), "report.html has no <title>"
        assert heading.is_visible() and (heading.text_content() or "").strip(), "no visible heading"
        assert table.is_visible() and table.locator("td").count() > 0, "the first table is missing or hidden"
        first_table = table.inner_text()
        shots = [tmp_path / "poc_report.png"]
        page.screenshot(path=str(shots[0]))
    assert not console, f"report.html logged JavaScript errors: {console}"
    _save_shots(shots, {"report": str(report), "title": title, "first_table": first_table[:2000]}, "poc_report")


# --- the book (`make book`) ---------------------------------------------------------------------------------

BOOK_NOTEBOOKS = ["01_bits_in_a_vector", "02_how_surprising_is_text"]


def test_book_pages_draw_their_plotly_figures_offline(tmp_path):
    """`make book`'s two commands on a smoke run of 01 and 02 (the tiny model: seconds): index.html lists the
    pages in series order; each page draws as many plotly figures as its executed notebook holds, links the
    next notebook's page, and asks nothing of the network (plotly.js is the book's own copy)."""
    import re

    import nbformat
    executed, site = tmp_path / "executed", tmp_path / "book"
    for args in (["notebooks", "run", "--smoke", "--only", ",".join(BOOK_NOTEBOOKS), "--out", str(executed)],
                 ["notebooks", "book", "--from", str(executed), "--out", str(site)]):
        proc = subprocess.run([sys.executable, "-m", "cramlab", *args], capture_output=True, text=True, timeout=600,
                              cwd=REPO)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    expected = {stem: sum("application/vnd.plotly.v1+json" in o.get("data", {})
                          for c in nbformat.read(executed / f"{stem}.ipynb", as_version=4).cells
                          for o in c.get("outputs", [])) for stem in BOOK_NOTEBOOKS}
    assert all(n >= 1 for n in expected.values()), expected
    console: list[str] = []
    network: list[str] = []
    drawn = {}
    shots = [tmp_path / "book_index.png"] + [tmp_path / f"book_{stem}.png" for stem in BOOK_NOTEBOOKS]
    with _chromium(tmp_path, console) as page:
        page.route(re.compile(r"^https?://"), lambda route: (network.append(route.request.url), route.abort()))
        page.goto((site / "index.html").as_uri(), wait_until="load")
        links = page.locator("ol.notebooks a")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert hrefs == [f"{stem}.html" for stem in BOOK_NOTEBOOKS]
        page.screenshot(path=str(shots[0]))
        for i, stem in enumerate(BOOK_NOTEBOOKS):
            if i == 0:
                links.nth(i).click()                          # the index's link itself
                page.wait_for_load_state("load")
            else:
                page.goto((site / f"{stem}.html").as_uri(), wait_until="load")
            assert page.url.endswith(f"{stem}.html"), page.url
            page.wait_for_function("n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n",
                                   arg=expected[stem], timeout=30_000)
            drawn[stem] = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(gd =>
                ({traces: (gd.data || []).length, marks: gd.querySelectorAll('.trace').length}))""")
            assert len(drawn[stem]) == expected[stem], (stem, drawn[stem])
            assert all(f["traces"] > 0 and f["marks"] > 0 for f in drawn[stem]), (stem, drawn[stem])
            following = BOOK_NOTEBOOKS[i + 1] if i + 1 < len(BOOK_NOTEBOOKS) else "03_first_cram"
            assert page.locator(f'a[href="{following}.html"]').count() > 0, f"{stem}: no link to {following}.html"
            page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
            page.screenshot(path=str(shots[i + 1]))
    assert not console, f"the book logged JavaScript errors: {console}"
    assert not network, f"the book asked the network for {network}"
    _save_shots(shots, {"site": str(site), "figures_drawn": drawn}, "book")
