"""The course as a static site: each executed notebook as one HTML page (nbconvert), and an index page.

Why nbconvert and not Jupyter Book: nbconvert is already installed (papermill executes through it), it turns
an executed notebook into one page with every output, and a series of ten notebooks read in order needs no
search or cross-referencing that would be worth Jupyter Book's Sphinx toolchain.

The pages work from disk, with no network:
- the runner stores plotly figures as plotly JSON (mime `application/vnd.plotly.v1+json`), which nbconvert does
  not draw; each gets an HTML rendering (`plotly.io.to_html`) that plotly.js draws, and plotly.js itself is
  in the book once (`plotly.min.js`, from the installed plotly package), loaded by every page;
- no require.js, MathJax or mermaid from a CDN (the notebooks use none of them; offline they only fail);
- links between notebooks (`NN_topic.ipynb`, `00_welcome.ipynb#glossary-term`) point at the pages;
- a widget's output (its live state is not saved) is replaced by a line saying what it was.

Owns: turning a folder of executed notebooks (`cramlab notebooks run --out DIR`) into the site. Does not own:
executing them (cramlab.lab.notebook_runner), or the command line (cramlab.cli.notebooks).
"""
from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path

from cramlab.errors import BadInputError, writable_folder

PLOTLY_MIME = "application/vnd.plotly.v1+json"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PLOTLY_JS = "plotly.min.js"
NOTEBOOK_LINK = re.compile(r"\]\((\d\d_\w+)\.ipynb(#[\w-]+)?\)")
WIDGET_NOTE = "(an interactive control: open the notebook in Jupyter to use it)"

# The lab template without the CDN scripts, with the book's one copy of plotly.js.
TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}<script src="PLOTLY_JS"></script>{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
""".replace("PLOTLY_JS", PLOTLY_JS)


def executed_notebooks(folder: str | os.PathLike) -> list[Path]:
    """The executed `NN_topic.ipynb` of a runner's output folder, in series order."""
    paths = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise BadInputError(f"no executed notebooks (NN_topic.ipynb) in {folder}; run "
                            f"`cramlab notebooks run --fast --out {folder}` first")
    return paths


def for_the_page(nb) -> tuple[int, int]:
    """Prepare an executed notebook (nbformat node, changed in place) for its page; returns (figures, widgets)."""
    import plotly.io as pio
    n_figures = n_widgets = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = NOTEBOOK_LINK.sub(lambda m: f"]({m.group(1)}.html{m.group(2) or ''})", cell.source)
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME in data:
                data["text/html"] = pio.to_html(data[PLOTLY_MIME], include_plotlyjs=False, full_html=False,
                                                validate=False)
                n_figures += 1
            if WIDGET_MIME in data:
                output["data"] = {"text/plain": WIDGET_NOTE}
                n_widgets += 1
    return n_figures, n_widgets


def _title(nb, fallback: str) -> str:
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    line = first.strip().splitlines()[0] if first.strip() else ""
    return line.lstrip("# ").strip() or fallback


def build_book(executed_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
    """Write `out_dir/NN_topic.html` for every executed notebook, `plotly.min.js` once and `index.html`.
    Returns {"index": path, "pages": [{"notebook", "title", "page", "figures", "ok", "duration_s"}, ...]}."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from plotly.offline import get_plotlyjs

    paths = executed_notebooks(executed_dir)
    out = writable_folder(out_dir)
    summary_path = Path(executed_dir) / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    runs = summary.get("notebooks", {})
    (out / PLOTLY_JS).write_text(get_plotlyjs())
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"cramlab_book.html.j2": TEMPLATE})],
                            template_file="cramlab_book.html.j2")
    pages = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        n_figures, _ = for_the_page(nb)
        title = _title(nb, path.stem)
        nb.metadata["title"] = title
        body, _ = exporter.from_notebook_node(nb)
        page = out / f"{path.stem}.html"
        page.write_text(body)
        run = runs.get(path.stem, {})
        pages.append(dict(notebook=path.name, title=title, page=page.name, figures=n_figures, ok=run.get("ok"),
                          duration_s=run.get("duration_s")))
    index = out / "index.html"
    index.write_text(_index_html(pages, summary))
    return {"index": str(index), "pages": pages}


def _index_html(pages: list[dict], summary: dict) -> str:
    mode = summary.get("mode", "unknown")
    rows = []
    for p in pages:
        seconds = f"{p['duration_s']:.0f} s" if isinstance(p["duration_s"], (int, float)) else "not recorded"
        status = {True: "ran", False: "FAILED", None: "not in summary.json"}[p["ok"]]
        rows.append(f'<li><a href="{html.escape(p["page"])}">{html.escape(p["title"])}</a> '
                    f'<span class="run">({status}, {seconds}, {p["figures"]} figure(s))</span></li>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>cramlab: the course</title>
<style>body {{ font-family: sans-serif; max-width: 52em; margin: 2em auto; line-height: 1.5 }}
.run {{ color: #666; font-size: 90% }}</style></head>
<body>
<h1>cramlab: the course</h1>
<p>The notebooks in order, as executed by <code>cramlab notebooks run</code> ({html.escape(mode)} mode); each page
shows every output of that run. To run them yourself: <code>make lab</code>.</p>
<ol class="notebooks">
{chr(10).join(rows)}
</ol>
</body>
</html>
"""
