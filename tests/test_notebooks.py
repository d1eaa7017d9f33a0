"""The notebook series as a regression check (papermill + nbval).

- The series runs once in fast mode with papermill (session fixtures, the embedded model); every notebook
  must finish and record its key figures, and the figures must say what the notebook teaches (03: the text
  converged and decodes back exactly). `make test` runs 00-03, 05, 06 and 08 so, and 04, 07 and 09 in smoke
  mode (tiny model, every cell); their fast runs and figure tests are marked slow (`make test-slow`).
- nbval (`pytest --nbval-lax`) runs the notebooks with cells marked `# NBVAL_CHECK_OUTPUT` (capacity
  tables) with their smoke parameters (tiny model, a few steps) and compares those cells with their
  committed outputs. Every notebook's smoke run is a slow test (`make test-slow`).
- One notebook runs again with another n_tokens and seed: the recorded figures follow the parameters.
- Every solution (a markdown `<details>` block that Run All never runs; the runner executes it where it
  stands, as a code cell tagged `solution`) ran in the fast series and its check printed ✔, never ✘
  (the smoke runs run them too). The notebooks' shape and the jupytext pairs are checked without a
  kernel in tests/test_notebook_sources.py.
"""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import notebook_lessons as lessons
import pytest
from notebook_background import (
    FAST_IN_MAKE_TEST,
    FAST_IN_SLOW_TIER,
    NOTEBOOKS,
    SERIES_JOBS,
    checked_notebooks,
    nbval,
)

from cramlab.errors import BadInputError
from cramlab.lab.notebook_runner import (
    CHECKED_OUTPUT_MARK,
    fast_values,
    find_notebooks,
    full_values,
    notebook_parameters,
    run_notebook,
    run_series,
)

pytestmark = pytest.mark.notebooks

def figures(fast_run, name):
    entry = fast_run[1]["notebooks"][name]
    assert entry["ok"], f"{name} failed: {entry['error']}"
    return entry["figures"]


def _assert_series_ok(run, mode, names):
    out, summary = run
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk == summary
    assert summary["mode"] == mode
    assert list(summary["notebooks"]) == list(names)          # exactly these, in series order
    for name in names:
        entry = summary["notebooks"][name]
        assert entry["ok"], f"{name}: {entry['error']}"
        assert entry["duration_s"] > 0 and entry["figures"], name
        assert Path(entry["output"]).is_file()
    assert summary["ok"], {k: e["error"] for k, e in summary["notebooks"].items() if not e["ok"]}


def test_every_notebook_is_in_one_tier():
    """A new notebook must be placed: in `make test`'s fast series, or in smoke mode there and fast in the slow
    tier. Nothing is left out and nothing runs twice."""
    every = [p.stem for p in find_notebooks(NOTEBOOKS)]
    assert sorted(FAST_IN_MAKE_TEST + FAST_IN_SLOW_TIER) == every
    assert not set(FAST_IN_MAKE_TEST) & set(FAST_IN_SLOW_TIER)


def test_summary_json_lists_every_notebook_ok(fast_run):
    _assert_series_ok(fast_run, "fast", FAST_IN_MAKE_TEST)
    assert fast_run[1]["fast"] is True


def test_the_other_notebooks_run_every_cell_in_smoke_mode(smoke_run):
    _assert_series_ok(smoke_run, "smoke", FAST_IN_SLOW_TIER)
    _assert_solutions_pass(smoke_run)


@pytest.mark.slow
def test_slow_tier_summary_lists_its_notebooks_ok(fast_run_slow_tier):
    _assert_series_ok(fast_run_slow_tier, "fast", FAST_IN_SLOW_TIER)


def test_fast_parameters_were_injected(fast_run):
    entry = fast_run[1]["notebooks"]["03_first_cram"]
    # papermill only switches `fast`: the budget itself is the notebook's own `fast` cell
    assert entry["parameters"] == {"fast": True, "record_path": entry["parameters"]["record_path"]}
    assert entry["fast_values"] == fast_values(NOTEBOOKS / "03_first_cram.ipynb")
    assert entry["fast_values"]["n_tokens"] == figures(fast_run, "03_first_cram")["n_tokens"]
    executed = nbformat.read(entry["output"], as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def _assert_solutions_pass(run):
    for name, entry in run[1]["notebooks"].items():
        assert entry["ok"], f"{name}: {entry['error']}"
        cells = [c for c in nbformat.read(entry["output"], as_version=4).cells
                 if "solution" in c.metadata.get("tags", [])]
        assert cells, f"{name} has no solution cells"
        printed = []
        for cell in cells:
            assert cell.execution_count is not None, f"{name}: a solution cell did not run"
            assert not [o for o in cell.outputs if o.output_type == "error"], f"{name}: {cell.source[:80]}"
            text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            assert "✘" not in text, f"{name}: a reference answer fails its own check: {text[-400:]}"
            printed.append(text)
        assert any("✔" in t for t in printed), f"{name}: no solution was checked"


def test_solution_cells_run_and_pass_their_checks(fast_run):
    _assert_solutions_pass(fast_run)


@pytest.mark.slow
def test_slow_tier_solution_cells_run_and_pass_their_checks(fast_run_slow_tier):
    _assert_solutions_pass(fast_run_slow_tier)


def test_03_own_loop_matches_cram(fast_run):
    """The reference hand-written loop follows cram() step by step (the check printed ✔ for it)."""
    entry = fast_run[1]["notebooks"]["03_first_cram"]
    cell = next(c for c in nbformat.read(entry["output"], as_version=4).cells
                if "solution" in c.metadata.get("tags", []) and "def my_cram" in c.source)
    text = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    steps = fast_values(NOTEBOOKS / "03_first_cram.ipynb")["hand_steps"]
    assert f"✔ your loop follows cram() for {steps} steps" in text, text


def _fast(name):
    return fast_values(NOTEBOOKS / f"{name}.ipynb")


def test_00_environment_and_embedded_model(fast_run):
    lessons.lesson_00(figures(fast_run, "00_welcome"), _fast("00_welcome"))


def test_01_capacity_figures(fast_run):
    lessons.lesson_01(figures(fast_run, "01_bits_in_a_vector"), _fast("01_bits_in_a_vector"))


def test_02_random_text_is_more_surprising(fast_run):
    lessons.lesson_02(figures(fast_run, "02_how_surprising_is_text"), _fast("02_how_surprising_is_text"))


def test_03_converges_decodes_back_and_sink_first_steers_better(fast_run):
    """03's lessons (tests/notebook_lessons.py): converged and greedy-exact, not exact below 100 % accuracy, the
    own text's bytes, and the vector after the sink steering better than the one in position 0."""
    lessons.lesson_03(figures(fast_run, "03_first_cram"), _fast("03_first_cram"))


@pytest.mark.slow
def test_04_length_sweep(fast_run_slow_tier):
    lessons.lesson_04(figures(fast_run_slow_tier, "04_how_many_tokens_fit"), _fast("04_how_many_tokens_fit"))


def test_05_information_gain(fast_run):
    lessons.lesson_05(figures(fast_run, "05_capacity_is_entropy"), _fast("05_capacity_is_entropy") |
                      {"sources": full_values(NOTEBOOKS / "05_capacity_is_entropy.ipynb")["sources"]})


def test_06_more_vectors(fast_run):
    lessons.lesson_06(figures(fast_run, "06_more_vectors"), _fast("06_more_vectors"))


@pytest.mark.slow
def test_07_sweep_report_and_progressive(fast_run_slow_tier):
    f = figures(fast_run_slow_tier, "07_gpu_scale")
    p = fast_values(NOTEBOOKS / "07_gpu_scale.ipynb")
    assert f["device"] == "cpu"                                # CI has no GPU: fast mode runs on the CPU
    settings = [f"smollm2-135m/{lay}/{pro}" for lay in p["layouts"] for pro in p["protocols"]]
    assert f["n_jobs"] == len(settings) * len(p["lengths"]) * p["n_texts"]
    assert sorted(f["max_tokens"]) == sorted(settings)
    assert all(v is None or v in p["lengths"] for v in f["max_tokens"].values())
    rows = f["progressive"]
    assert [(r["layout"], r["protocol"]) for r in rows] == [(a, b) for a in p["layouts"] for b in p["protocols"]]
    for r in rows:
        assert r["texts"] == p["n_texts"] and 0 <= r["mean_tokens"] <= r["longest"] <= p["progressive_max_tokens"]


def test_08_progressive_attention_and_trajectory(fast_run):
    p = _fast("08_beyond")
    lessons.lesson_08(figures(fast_run, "08_beyond"), full_values(NOTEBOOKS / "08_beyond.ipynb") | p, p["max_tokens"])


@pytest.mark.slow
def test_09_storage_and_reconstruction(fast_run_slow_tier):
    """What 09 answers for a practitioner (tests/notebook_lessons.py), and on its fast corpus one thing more:
    every document comes back exactly from its fp32 vector (at full size one of six did not: the recorded
    full-size run, tests/test_notebooks_full_size.py)."""
    f = figures(fast_run_slow_tier, "09_in_practice")
    lessons.lesson_09(f, _fast("09_in_practice"))
    assert f["reconstruction_rate"] == 1.0, f["by_group"]


def test_changed_parameters_change_the_recorded_figures(fast_run, tmp_path):
    """Another n_tokens and seed: the figures are the run's, not the notebook text's."""
    path = NOTEBOOKS / "02_how_surprising_is_text.ipynb"
    before = figures(fast_run, "02_how_surprising_is_text")
    fast = fast_values(path)
    entry = run_notebook(path, tmp_path, mode="fast", parameters={"n_tokens": fast["n_tokens"] // 2, "seed": 3})
    assert entry["ok"], entry["error"]
    after = entry["figures"]
    assert after["n_tokens"] == fast["n_tokens"] // 2 != before["n_tokens"]
    assert after["text_id"] != before["text_id"]                      # seed 3 picks another passage
    assert after["unseen_total_bits"] != before["unseen_total_bits"]


# --- nbval: deterministic outputs -----------------------------------------------------------------------------

def test_nbval_lax_passes_and_checks_the_capacity_cells(smoke_copies, smoke_nbval):
    checked = sum(c.source.startswith(CHECKED_OUTPUT_MARK) for p in smoke_copies.glob("*.ipynb")
                  for c in nbformat.read(p, as_version=4).cells)
    assert checked >= 4
    proc = smoke_nbval.result(timeout_s=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


@pytest.mark.slow
def test_every_notebook_runs_in_smoke_mode(tmp_path):
    """`cramlab notebooks run --smoke` over the whole series: the tiny model, a few steps, every cell."""
    summary = run_series(NOTEBOOKS, tmp_path, mode="smoke", echo=None, jobs=SERIES_JOBS)
    assert list(summary["notebooks"]) == [p.stem for p in find_notebooks(NOTEBOOKS)]
    assert summary["ok"], {k: e["error"] for k, e in summary["notebooks"].items() if not e["ok"]}
    assert checked_notebooks()          # and nbval has cells to compare in `make test`


def test_nbval_catches_a_changed_capacity_table(smoke_copies, tmp_path):
    """The checked outputs are compared for real: a wrong number in one makes nbval fail."""
    src = smoke_copies / "01_bits_in_a_vector.ipynb"
    nb = nbformat.read(src, as_version=4)
    cell = next(c for c in nb.cells if c.source.startswith(CHECKED_OUTPUT_MARK) and "capacity_table" in c.source)
    assert "3862" in cell.outputs[0]["text"]
    cell.outputs[0]["text"] = cell.outputs[0]["text"].replace("3862", "3863")
    nbformat.write(nb, tmp_path / src.name)
    proc = nbval(tmp_path)
    assert proc.returncode != 0 and "1 failed" in proc.stdout


# --- the runner on small synthetic notebooks --------------------------------------------------------------------

def _write_notebook(path: Path, body: str):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from cramlab.lab.notebook_runner import Recorder"),
        nbformat.v4.new_code_cell('value = 1\nrecord_path = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["cramlab"] = {"fast_parameters": {"value": 5}}
    nbformat.write(nb, path)


def test_runner_reports_failures_and_passes_only_declared_parameters(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _write_notebook(nbs / "00_good.ipynb", 'Recorder(record_path)("twice", value * 2)')
    _write_notebook(nbs / "01_bad.ipynb", 'Recorder(record_path)("before", 1)\nraise ValueError("broken on purpose")')
    # two at a time: the parallel path (last notebook submitted first) still reports in series order
    summary = run_series(nbs, tmp_path / "out", mode="fast", parameters={"unknown": 3}, echo=None, jobs=2)
    assert list(summary["notebooks"]) == ["00_good", "01_bad"] and summary["jobs"] == 2
    good, bad = summary["notebooks"]["00_good"], summary["notebooks"]["01_bad"]
    assert good["ok"] and good["figures"] == {"twice": 10}
    assert good["ignored_parameters"] == ["unknown"] and "unknown" not in good["parameters"]
    assert not bad["ok"] and "ValueError: broken on purpose" in bad["error"]
    assert bad["figures"] == {"before": 1}                   # what was recorded before the failure is kept
    assert summary["ok"] is False
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["ok"] is False


def test_cli_runs_only_the_chosen_notebook(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _write_notebook(nbs / "00_good.ipynb", 'Recorder(record_path)("value", value)')
    _write_notebook(nbs / "01_other.ipynb", 'raise RuntimeError("must not run")')
    proc = subprocess.run([sys.executable, "-m", "cramlab", "notebooks", "run", "--notebooks", str(nbs), "--only", "00",
                           "--out", str(tmp_path / "out"), "-p", "value=7"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert list(summary["notebooks"]) == ["00_good"]
    assert summary["notebooks"]["00_good"]["figures"] == {"value": 7} and summary["mode"] == "full"
    bad = subprocess.run([sys.executable, "-m", "cramlab", "notebooks", "run", "--notebooks", str(nbs), "--only", "9"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stderr.startswith("error: no notebook matches 9")


def _write_fast_cell_notebook(path: Path, fast_cell: str = "if fast:\n    value, other = 5, [1, 2]"):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from cramlab.lab.notebook_runner import Recorder"),
        nbformat.v4.new_code_cell('value = 1\nother = []\nfast = False\nrecord_path = ""',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(fast_cell, metadata={"tags": ["fast"]}),
        nbformat.v4.new_code_cell('Recorder(record_path)("value", value)\nRecorder(record_path)("other", other)'),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_fast_mode_only_switches_the_notebooks_own_fast_cell(tmp_path):
    """`--fast` passes fast=True and nothing else; the values come from the notebook's `fast` cell, and a
    value given with -p wins over that cell."""
    path = tmp_path / "00_fast.ipynb"
    _write_fast_cell_notebook(path)
    assert fast_values(path) == {"value": 5, "other": [1, 2]} and notebook_parameters(path, "fast") == {}
    fast = run_notebook(path, tmp_path / "fast", mode="fast")
    assert fast["ok"], fast["error"]
    assert fast["figures"] == {"value": 5, "other": [1, 2]}
    assert set(fast["parameters"]) == {"fast", "record_path"} and fast["parameters"]["fast"] is True
    full = run_notebook(path, tmp_path / "full", mode="full")
    assert full["figures"] == {"value": 1, "other": []}
    given = run_notebook(path, tmp_path / "given", mode="fast", parameters={"value": 7})
    assert given["ok"], given["error"]
    assert given["figures"] == {"value": 7, "other": [1, 2]} and given["fast_values"] == {"value": 7, "other": [1, 2]}


def test_a_fast_cell_that_is_not_literal_assignments_is_refused(tmp_path):
    path = tmp_path / "00_bad.ipynb"
    _write_fast_cell_notebook(path, "if fast:\n    value = compute()")
    with pytest.raises(BadInputError, match="not a literal"):
        fast_values(path)


def test_the_runner_executes_solution_blocks_that_run_all_skips(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('answer = ...\nrecord_path = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## Solutions\n\n<details><summary>Solution to exercise 1</summary>\n\n"
                                      "```python\n# Exercise 1\nanswer = 42\nprint('checked', answer)\n"
                                      "```\n\n</details>"),
        nbformat.v4.new_code_cell('from cramlab.lab.notebook_runner import Recorder\n'
                                  'Recorder(record_path)("answer", answer)'),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "00_solutions.ipynb"
    nbformat.write(nb, path)
    ran = run_notebook(path, tmp_path / "with", mode="full")
    assert ran["ok"] and ran["figures"] == {"answer": 42}
    cell = next(c for c in nbformat.read(ran["output"], as_version=4).cells if "solution" in c.metadata.get("tags", []))
    assert "checked 42" in "".join(o.get("text", "") for o in cell.outputs)
    skipped = run_notebook(path, tmp_path / "without", mode="full", solutions=False)
    assert skipped["ok"] and skipped["figures"] == {"answer": "Ellipsis"}       # what Run All leaves
