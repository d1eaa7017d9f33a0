"""The notebooks as sources, checked without a kernel (fast: part of `make test-fast` too).

- Every `notebooks/NN_*.ipynb` has its jupytext twin `NN_*.py` (percent format, jupytext.toml) and the two
  carry the same cells, cell tags and `cramlab` metadata: editing one and forgetting `make notebooks-sync`
  fails here.
- Notebooks are committed without heavy outputs: only the cells nbval compares keep theirs.
- Every notebook has the series' shape: a header with goals and measured CPU/GPU times (and, only once the
  repository's address is set by `make publish-links`, a Colab badge and a first cell that installs the kit
  on Colab); a `parameters` cell; exercises marked with difficulty
  and minutes; one solution per exercise, in a markdown `<details>` block that Run All never executes; a
  recap; and a "next" link.
- Every notebook with a `fast` parameter defines its fast budget once, in its own cell tagged `fast` right
  after the `parameters` cell (literal values under `if fast:`), and keeps no fast budget in its metadata.
- 00's roadmap repeats each notebook's level and CPU times exactly as its header states them.
- Every notebook ends (before "## Next") with "What you should have seen": a call of
  cramlab.lab.recorded.what_you_should_have_seen naming figures that a recorded run in docs/data holds.
- No name is used that the notebook never defines or imports (ruff F821 over the .py twins).

That the solutions *run* and pass their checks is tested on the executed notebooks: the runner executes every
solution block where it stands (tests/test_notebooks.py::test_solution_cells_run_and_pass_their_checks).
"""
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.compare import NotebookDifference, compare_notebooks

from cramlab.errors import BadInputError
from cramlab.lab.notebook_runner import CHECKED_OUTPUT_MARK, FAST_TAG, fast_values, solution_blocks
from cramlab.lab.publish import publish, repository, set_repository, with_links

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
    assert "Time on a 2-core CPU (measured" in header.source and "Time on a GPU (measured)" in header.source
    assert "After this notebook you will be able to" in header.source
    repo = repository(ROOT / "pyproject.toml")
    colab = nb.cells[1]
    if repo:          # badge and Colab install cell only once the public address is set (cramlab.lab.publish)
        assert COLAB_BADGE in header.source and f"github/{repo}/blob/main/notebooks/{ipynb.name})" in header.source
        assert colab.cell_type == "code" and '"google.colab" in sys.modules' in colab.source and repo in colab.source
    else:
        assert "colab.research.google.com" not in header.source and "google.colab" not in colab.source
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1

    text = "\n".join(_markdown(nb))
    exercises = [int(n) for n, _, _ in EXERCISE.findall(text)]
    assert exercises == list(range(1, len(exercises) + 1)) and exercises, \
        f"{ipynb.name}: exercises must be '### Exercise N · ★★☆ · ~M min', numbered 1, 2, ..."
    assert re.search(r"^## Recap", text, re.MULTILINE) and re.search(r"^## Solutions", text, re.MULTILINE)
    # solutions wait for the learner: markdown blocks that Run All never executes
    assert not [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]
    blocks = [(i, code) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
              for code in solution_blocks(c.source)]
    solutions = [code for _, code in blocks]
    first_solution = blocks[0][0] if blocks else -1
    assert [int(re.match(r"# Exercise (\d+)", code).group(1)) for code in solutions] == exercises, \
        f"{ipynb.name}: one solution per exercise, each starting '# Exercise N'"
    assert all("exercises.check_" in code for code in solutions)
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


def test_colab_links_appear_exactly_when_the_repository_is_set():
    """The address is one setting ([project.urls] Repository); every badge and install cell names it, and
    none exists while it is unset (tests/test_bite.py checks that no placeholder address ships)."""
    repo = repository(ROOT / "pyproject.toml")
    for p in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        text = p.read_text()
        named = set(re.findall(r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/", text))
        named |= set(re.findall(r"git\+https://github\.com/([\w.-]+/[\w.-]+)\"", text))
        assert named == ({repo} if repo else set()), (p.name, named)
        assert text == with_links(text, p.stem, repo), f"{p.name}: run `make publish-links` (cramlab.lab.publish)"


def test_publish_links_writes_and_removes_the_badge_and_the_colab_cell(tmp_path):
    source = (NOTEBOOKS / "03_first_cram.py").read_text()
    bare = with_links(source, "03_first_cram", None)
    linked = with_links(bare, "03_first_cram", "someone/cramlab")
    assert "colab.research.google.com/github/someone/cramlab/blob/main/notebooks/03_first_cram.ipynb" in linked
    assert 'git+https://github.com/someone/cramlab"' in linked and linked.count("google.colab") == 1
    assert with_links(linked, "03_first_cram", None) == bare                 # removes exactly what it wrote
    assert with_links(linked, "03_first_cram", "someone/cramlab") == linked  # idempotent
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    set_repository("someone/cramlab", pyproject)
    assert repository(pyproject) == "someone/cramlab"
    set_repository(None, pyproject)
    assert repository(pyproject) is None and pyproject.read_text() == '[project]\nname = "x"\n'
    with pytest.raises(BadInputError, match="owner/name"):
        publish("OWNER/cramlab", tmp_path, pyproject)


def test_no_undefined_names_in_the_notebooks():
    """ruff's F821 over the .py twins: a solution using `math` that nothing imports fails here."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--select", "F821,E9",
                           "--output-format", "concise", *map(str, sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")))],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-1000:]


def _header_level_and_times(nb) -> tuple[str, str]:
    """(level, "full / fast") from a notebook's header table: `| N of 3 | full: X (...) / fast: Y (...) | ...`."""
    row = next(line for line in nb.cells[0].source.splitlines() if re.match(r"\| \d of 3 \|", line))
    level = re.match(r"\| (\d) of 3 \|", row).group(1)
    full = re.search(r"full: (.+?)(?: \(|,| /)", row).group(1)
    fast = re.search(r"fast: (.+?)(?: \(|,|;| \|)", row).group(1)
    return level, f"{full} / {fast}"


def test_roadmap_levels_and_times_agree_with_every_header():
    """00's roadmap repeats each notebook's level and CPU times; a header changed alone fails here."""
    roadmap = {}
    for line in "\n".join(_markdown(nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4))).splitlines():
        m = re.match(r"\| \[\d\d [^]]+\]\((\d\d_\w+)\.ipynb\) \| (\d) \| [^|]+ \| ([^|]+) \|", line)
        if m:
            roadmap[m.group(1)] = (m.group(2), re.sub(r" \([^)]*\)", "", m.group(3).strip()))
    assert set(roadmap) == set(ids)
    for ipynb in IPYNBS:
        assert roadmap[ipynb.stem] == _header_level_and_times(nbformat.read(ipynb, as_version=4)), ipynb.stem


def test_the_roadmap_check_sees_a_changed_level():
    nb = nbformat.read(NOTEBOOKS / "09_in_practice.ipynb", as_version=4)
    level, _ = _header_level_and_times(nb)
    nb.cells[0].source = nb.cells[0].source.replace(f"| {level} of 3 |", f"| {int(level) % 3 + 1} of 3 |")
    assert _header_level_and_times(nb)[0] != level


def test_solution_blocks_are_read_from_markdown():
    md = ("## Solutions\n\n<details><summary>Solution to exercise 1</summary>\n\n```python\n# Exercise 1\n"
          "answer = 2\n```\n\n</details>\n"
          "<details><summary>Hint</summary>\n\n```python\nnot_a_solution()\n```\n</details>")
    assert solution_blocks(md) == ["# Exercise 1\nanswer = 2\n"]


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_every_solution_block_compiles(ipynb):
    for cell in _markdown(nbformat.read(ipynb, as_version=4)):
        for code in solution_blocks(cell):
            compile(code, f"{ipynb.name} solution", "exec")


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_every_notebook_ends_with_previous_and_next_links(ipynb):
    """The last line of every notebook: ← the previous notebook, the roadmap, the next one → (09 → 00)."""
    last_line = nbformat.read(ipynb, as_version=4).cells[-1].source.rstrip().splitlines()[-1]
    assert last_line.startswith("**Navigation:**"), last_line
    i = IPYNBS.index(ipynb)
    previous = re.search(r"← \[[^]]+\]\((\d\d_\w+\.ipynb)\)", last_line)
    following = re.search(r"\[[^]]+\]\((\d\d_\w+\.ipynb)\)[^[]* →$", last_line)
    assert (previous.group(1) if previous else None) == (IPYNBS[i - 1].name if i else None)
    assert following and following.group(1) == IPYNBS[(i + 1) % len(IPYNBS)].name
    assert i == 0 or "](00_welcome.ipynb)" in last_line          # back to the roadmap (00 is the roadmap)


def test_glossary_terms_are_linked_and_every_link_has_its_anchor():
    """Each glossary term of 00 carries an anchor that a later notebook links where it first uses the term;
    every `00_welcome.ipynb#...` link lands on one of them."""
    glossary = "\n".join(_markdown(nbformat.read(NOTEBOOKS / "00_welcome.ipynb", as_version=4)))
    anchors = set(re.findall(r'<a id="([\w-]+)"></a>\*\*', glossary))
    assert len(anchors) >= 10
    linked = {a for p in IPYNBS[1:] for a in re.findall(r"\]\(00_welcome\.ipynb#([\w-]+)\)",
                                                         "\n".join(_markdown(nbformat.read(p, as_version=4))))}
    assert linked <= anchors, linked - anchors
    assert linked == anchors, f"glossary terms no later notebook links: {sorted(anchors - linked)}"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_the_fast_budget_is_the_notebooks_own_cell(ipynb):
    """`fast = True` by hand does what `--fast` does: the budget sits in a cell tagged `fast` right after the
    `parameters` cell, and nowhere else (no `fast_parameters` in the metadata for papermill to inject)."""
    nb = nbformat.read(ipynb, as_version=4)
    assert "fast_parameters" not in nb.metadata.get("cramlab", {}), f"{ipynb.name}: move the fast budget to a cell"
    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert re.search(r"^fast = False", nb.cells[params].source, re.MULTILINE), ipynb.name
    fast_cells = [i for i, c in enumerate(nb.cells) if FAST_TAG in c.metadata.get("tags", [])]
    if not fast_cells:            # 00, 01: seconds long already; the parameters cell says so
        assert "fast mode changes nothing here" in nb.cells[params].source, f"{ipynb.name}: no `fast` cell"
        return
    assert fast_cells == [params + 1], f"{ipynb.name}: one `fast` cell, right after `parameters`"
    values = fast_values(ipynb)
    assert values, f"{ipynb.name}: the `fast` cell sets nothing"
    declared = set(re.findall(r"^(\w+) = ", nb.cells[params].source, re.MULTILINE))
    assert set(values) <= declared, f"{ipynb.name}: the fast cell sets undeclared names {set(values) - declared}"


@pytest.mark.parametrize("ipynb", IPYNBS, ids=ids)
def test_every_notebook_ends_with_what_you_should_have_seen(ipynb):
    """Just before "## Next": this run's figures beside the recorded runs' range (cramlab.lab.recorded), for
    figures that a recorded run of this notebook holds (a misspelt name would print "no recorded range")."""
    from cramlab.lab.recorded import MISSING, figure_at, recorded_runs
    nb = nbformat.read(ipynb, as_version=4)
    heading, cell = nb.cells[-3], nb.cells[-2]
    assert heading.cell_type == "markdown" and heading.source.startswith("## What you should have seen")
    call = re.search(r'what_you_should_have_seen\("(\w+)", record\.figures,\s*\[([^]]*)\], fast=fast\)', cell.source)
    assert cell.cell_type == "code" and call and call.group(1) == ipynb.stem, cell.source
    names = re.findall(r'"([^"]+)"', call.group(2))
    runs = recorded_runs(ipynb.stem)
    assert runs, f"{ipynb.name}: no recorded run in docs/data"
    missing = [n for n in names if all(figure_at(r.figures, n) is MISSING for r in runs)]
    assert names and not missing, f"{ipynb.name}: no recorded run holds {missing}"


def test_solution_seconds_counts_only_the_cells_tagged_solution(tmp_path):
    """A header quotes Run All (duration - solutions): the solutions' seconds come from papermill's own
    per-cell durations of the same run."""
    import nbformat

    from cramlab.lab.notebook_runner import solution_seconds
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a", metadata={"papermill": {"duration": 10.5}}),
                nbformat.v4.new_code_cell("b", metadata={"papermill": {"duration": 4.25}, "tags": ["solution"]}),
                nbformat.v4.new_code_cell("c", metadata={"papermill": {"duration": None}, "tags": ["solution"]}),
                nbformat.v4.new_markdown_cell("d")]
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert solution_seconds(tmp_path / "x.ipynb") == 4.25
