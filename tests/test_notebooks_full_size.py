"""Issue 30: the teaching assertions of `make test` hold at full size too — checked on the recorded full-size runs.

Each notebook 00-06, 08 and 09 was run at its full size on the 2-core CPU (`cramlab notebooks run --only NN`,
2026-12-06; docs/performance.md, "Notebooks"), and its runner summary, with the figures the run recorded, is kept
under docs/data. This file applies the same lessons as tests/test_notebooks.py (tests/notebook_lessons.py) to
those figures, with the full-size budget each notebook's parameters cell sets (`full_values`). No notebook runs
here: the runs took 3 to 1,001 s each, and their figures are the record.
"""
import json
from pathlib import Path

import notebook_lessons as lessons
import pytest
from notebook_background import NOTEBOOKS

from cramlab.lab.notebook_runner import full_values

DATA = Path(__file__).resolve().parents[1] / "docs" / "data"
# Where each notebook's full-size CPU run is recorded (the files docs/performance.md's notebook table cites; for
# 08 and 09 the re-run on the session's final code, for 04 the Run All without solutions).
FULL_SIZE_RUNS = {
    "00_welcome": "notebooks_full_cpu_00-02_2026-12-06.json",
    "01_bits_in_a_vector": "notebooks_full_cpu_00-02_2026-12-06.json",
    "02_how_surprising_is_text": "notebooks_full_cpu_00-02_2026-12-06.json",
    "03_first_cram": "notebooks_full_cpu_03-09_2026-12-06.json",
    "04_how_many_tokens_fit": "notebook_04_full_cpu_run_all_2026-12-06.json",
    "05_capacity_is_entropy": "notebooks_full_cpu_05-06_2026-12-06.json",
    "06_more_vectors": "notebooks_full_cpu_05-06_2026-12-06.json",
    "08_beyond": "notebooks_full_cpu_08-09_2026-12-06.json",
    "09_in_practice": "notebooks_full_cpu_08-09_2026-12-06.json",
}
CPU_CAP_TOKENS_08 = 16     # 08's max_tokens = None means 16 on a CPU (its section 1 says why)


def _run(name):
    summary = json.loads((DATA / FULL_SIZE_RUNS[name]).read_text(encoding="utf-8"))
    entry = summary["notebooks"][name]
    assert entry["ok"] and entry["mode"] == "full" and not entry["parameters"].get("fast"), entry.get("error")
    assert "CPU" in summary["card"] or "cpu" in summary["card"].lower()
    return entry["figures"], full_values(NOTEBOOKS / f"{name}.ipynb")


@pytest.mark.parametrize("name", [n for n in FULL_SIZE_RUNS if n != "08_beyond"])
def test_a_full_size_run_shows_the_lesson_make_test_checks(name):
    figures, values = _run(name)
    getattr(lessons, f"lesson_{name[:2]}")(figures, values)


def test_08_full_size_run_shows_its_lesson():
    figures, values = _run("08_beyond")
    assert values["max_tokens"] is None
    lessons.lesson_08(figures, values, CPU_CAP_TOKENS_08)


def test_every_notebook_a_cpu_runs_has_a_recorded_full_size_run():
    """00-06, 08 and 09 (07 is not for a CPU): a new notebook needs its full-size run recorded here."""
    from cramlab.lab.notebook_runner import find_notebooks
    names = [p.stem for p in find_notebooks(NOTEBOOKS) if p.stem != "07_gpu_scale"]
    assert sorted(FULL_SIZE_RUNS) == names
