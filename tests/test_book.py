"""cramlab.lab.book (`make book`) without a kernel or a browser: a made-up executed notebook becomes a page whose
plotly figure, links and widget note are right; tests/test_browser.py draws a real book in Chromium."""
import json
from pathlib import Path

import nbformat
import pytest

from cramlab.errors import BadInputError


def test_the_book_draws_plotly_json_links_pages_and_needs_no_network(tmp_path):
    """cramlab.lab.book on a made-up executed notebook: the plotly JSON output becomes a drawable figure, links
    to notebooks point at their pages, a widget's dead output is named, plotly.js is written once and no page
    loads a script from the network (the browser test draws it: tests/test_browser.py)."""
    import plotly.graph_objects as go

    from cramlab.lab.book import PLOTLY_JS, WIDGET_NOTE, build_book
    run = tmp_path / "run"
    run.mkdir()
    for stem in ("00_a", "01_b"):
        nb = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_markdown_cell(f"# {stem} · Title\n\nNext: [01](01_b.ipynb), term: "
                                          "[L_max](00_a.ipynb#l-max)"),
            nbformat.v4.new_code_cell("fig", outputs=[nbformat.v4.new_output(
                "display_data", data={"application/vnd.plotly.v1+json": go.Figure(go.Bar(y=[1, 2])).to_plotly_json(),
                                      "text/plain": "Figure"})]),
            nbformat.v4.new_code_cell("w", outputs=[nbformat.v4.new_output(
                "display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                      "text/plain": "VBox()"})]),
        ])
        nbformat.write(nb, run / f"{stem}.ipynb")
    (run / "summary.json").write_text(json.dumps({"mode": "fast", "notebooks": {"00_a": {"ok": True,
                                                                                       "duration_s": 3.2}}}))
    book = build_book(run, tmp_path / "site")
    assert [p["page"] for p in book["pages"]] == ["00_a.html", "01_b.html"]
    assert [p["figures"] for p in book["pages"]] == [1, 1] and book["pages"][0]["title"] == "00_a · Title"
    page = (tmp_path / "site" / "00_a.html").read_text()
    assert 'class="plotly-graph-div"' in page and "Plotly.newPlot" in page
    assert f'<script src="{PLOTLY_JS}"></script>' in page and 'src="http' not in page
    assert 'href="01_b.html"' in page and 'href="00_a.html#l-max"' in page and ".ipynb" not in page
    assert WIDGET_NOTE in page
    assert (tmp_path / "site" / PLOTLY_JS).stat().st_size > 1_000_000
    index = Path(book["index"]).read_text()
    assert index.index('href="00_a.html"') < index.index('href="01_b.html"')
    assert "ran, 3 s, 1 figure(s)" in index and "not in summary.json" in index
    with pytest.raises(BadInputError, match="no executed notebooks"):
        build_book(tmp_path / "site", tmp_path / "other")
