"""The notebooks as sources, checked without a kernel (fast: part of `make test-fast` too).

- Every `notebooks/NN_*.ipynb` has its jupytext twin `NN_*.py` (percent format, jupytext.toml) and the two
  carry the same cells, cell tags and `cramlab` metadata: editing one and forgetting `make notebooks-sync`
  fails here.
- Notebooks are committed without heavy outputs: only the cells nbval compares keep theirs.
- Every notebook has the series' shape: a header with the Colab badge, goals and measured CPU/GPU times; a
  first cell that installs the kit only on Colab; a `parameters` cell; exercises marked with difficulty
  and minutes; one solution cell per exercise; a recap; and a "next" link.
- No name is used that the notebook never defines or imports (ruff F821 over the .py twins).

That the solution cells *run* and pass their checks is tested on the executed notebooks
(tests/test_notebooks.py::test_solution_cells_run_and_pass_their_checks, and nbval in smoke mode).
"""
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import NotebookDifference, compare_notebooks

from cramlab.notebook_runner import CHECKED_OUTPUT_MARK

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^### Exercise (\d+) · (★{1,3}☆{0,2}) · ~(\d+) min", re.MULTILINE)
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
ids = [p.stem for p in IPYNBS]


def _pair(ipynb: Path):
    return jupytext.read(ipynb.with_suffix(".py")), jupytext.read(ipynb)


def test_the_series_is_there_and_every_notebook_has_a_twin():
    assert len(IPYNBS) >= 9
    assert {p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")} == {p.stem for p in IPYNBS}
    assert not list(NOTEBOOKS.glob("_build*.py")), "notebooks are jupytext pairs now, not generated"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_every_notebook_pair_is_in_sync(ipynb):
    text_nb, ipynb_nb = _pair(ipynb)
    try:
        compare_notebooks(text_nb, ipynb_nb, fmt="py:percent")
    except NotebookDifference as exc:
        pytest.fail(f"{ipynb.name} and its .py differ (run `make notebooks-sync`): {str(exc)[:600]}")
    assert text_nb.metadata["cramlab"] == ipynb_nb.metadata["cramlab"]
    assert [c.metadata.get("tags", []) for c in text_nb.cells] == [c.metadata.get("tags", []) for c in ipynb_nb.cells]


def test_the_sync_check_sees_an_edit():
    text_nb, ipynb_nb = _pair(NOTEBOOKS / "03_first_cram.ipynb")
    param = next(c for c in ipynb_nb.cells if "parameters" in c.metadata.get("tags", []))
    param.source += "\nextra = 1"
    with pytest.raises(NotebookDifference):
        compare_notebooks(text_nb, ipynb_nb, fmt="py:percent")
    text_nb, ipynb_nb = _pair(NOTEBOOKS / "03_first_cram.ipynb")
    next(c for c in ipynb_nb.cells if "parameters" in c.metadata.get("tags", [])).metadata["tags"] = []
    with pytest.raises(NotebookDifference):
        compare_notebooks(text_nb, ipynb_nb, fmt="py:percent")


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_committed_without_heavy_outputs(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    with_outputs = [c.source.splitlines()[0] for c in nb.cells
                    if c.cell_type == "code" and c.outputs and not c.source.startswith(CHECKED_OUTPUT_MARK)]
    assert not with_outputs, f"{ipynb.name}: outputs outside the nbval-checked cells: {with_outputs}"
    assert ipynb.stat().st_size < 100_000


def _markdown(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_every_notebook_has_the_series_shape(ipynb):
    nb = nbformat.read(ipynb, as_version=4)
    header = nb.cells[0]
    assert header.cell_type == "markdown" and header.source.startswith(f"# {ipynb.stem[:2]} · ")
    assert COLAB_BADGE in header.source and f"/notebooks/{ipynb.name})" in header.source
    assert "Time on a 2-core CPU (measured" in header.source and "Time on a GPU (measured)" in header.source
    assert "After this notebook you will be able to" in header.source
    colab = nb.cells[1]
    assert colab.cell_type == "code" and '"google.colab" in sys.modules' in colab.source and "pip" in colab.source
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1

    text = "\n".join(_markdown(nb))
    exercises = [int(n) for n, _, _ in EXERCISE.findall(text)]
    assert exercises == list(range(1, len(exercises) + 1)) and exercises, \
        f"{ipynb.name}: exercises must be '### Exercise N · ★★☆ · ~M min', numbered 1, 2, ..."
    assert re.search(r"^## Recap", text, re.MULTILINE) and re.search(r"^## Solutions", text, re.MULTILINE)
    solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
    assert all(c.cell_type == "code" and c.metadata.get("jupyter", {}).get("source_hidden") for c in solutions)
    assert [int(re.match(r"# Exercise (\d+)", c.source).group(1)) for c in solutions] == exercises, \
        f"{ipynb.name}: one solution cell per exercise, each starting '# Exercise N'"
    assert all("exercises.check_" in c.source for c in solutions)
    first_solution = nb.cells.index(solutions[0])
    assert nb.cells[first_solution - 1].source.startswith("## Solutions")

    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## Next")
    link = re.search(r"\*\*Next: \[[^]]+\]\(([0-9][0-9]_\w+\.ipynb)\)", last.source)
    assert link, f"{ipynb.name}: the last cell links the next notebook"
    later = [p.name for p in IPYNBS if p.stem > ipynb.stem]
    if later:
        assert link.group(1) == later[0]
    assert "arxiv.org/abs/2502.13063" in last.source


def test_roadmap_lists_every_notebook_with_times_and_the_glossary():
    nb = nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4)
    text = "\n".join(_markdown(nb))
    for p in IPYNBS:
        assert f"]({p.name})" in text, f"00's roadmap misses {p.name}"
    assert "github.com/yurakuratov/hidden_capacity" in text and "github.com/FusionBrainLab/progressive_cramming" in text
    for term in ("nats, bits", "teacher forcing", "greedy decoding", "IG", "gain tokens", "L_max", "utilisation",
                 "pc / hc", "sink"):
        assert f"**{term}**" in text, f"glossary misses {term}"


def test_colab_cells_and_badges_name_one_repository():
    """Every badge and install cell points at the same repository, so moving it is one search-and-replace."""
    repos = set()
    for p in IPYNBS:
        nb = nbformat.read(p, as_version=4)
        repos |= set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", nb.cells[0].source))
        repos |= set(re.findall(r"git\+https://github\.com/([\w.-]+/[\w.-]+)\"", nb.cells[1].source))
    assert len(repos) == 1, repos


def test_no_undefined_names_in_the_notebooks():
    """ruff's F821 over the .py twins: a solution using `math` that nothing imports fails here."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F821,E9",
                           "--output-format", "concise", *map(str, sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")))],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]
