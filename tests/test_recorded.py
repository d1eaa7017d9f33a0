"""cramlab.lab.recorded: the recorded runs a notebook's "what you should have seen" cell reads, on small files
made here (answers known in advance), and that every summary kept in docs/data names its provenance."""
import json
from pathlib import Path

import pytest

from cramlab.errors import BadInputError
from cramlab.lab.recorded import (
    MISSING,
    PROVENANCE,
    figure_at,
    provenance,
    recorded_range,
    recorded_runs,
    what_you_should_have_seen,
)

DATA = Path(__file__).resolve().parents[1] / "docs" / "data"


def _summary(folder: Path, name: str, figures: dict, mode="fast", **extra) -> None:
    entry = {"notebook": "03_x.ipynb", "mode": mode, "parameters": {"fast": True, "record_path": "/t", "lr": 0.1},
             "ok": True, "figures": figures}
    (folder / name).write_text(json.dumps({"mode": mode, "notebooks": {"03_x": entry}} | extra))


@pytest.fixture
def data(tmp_path):
    run = dict(command="cramlab notebooks run --fast", card="a test CPU")
    _summary(tmp_path, "a_2026-01-01.json", {"steps": 70, "ok": True, "acc": {"2": 0.5}}, **run)
    _summary(tmp_path, "b_2026-01-02.json", {"steps": 110, "ok": True, "acc": {"2": 0.75}}, **run)
    _summary(tmp_path, "c_2026-01-03.json", {"steps": 999}, mode="full", **run)
    _summary(tmp_path, "unnamed_2026-01-04.json", {"steps": 1})           # no command, no card: not read
    (tmp_path / "other.json").write_text("[1, 2]")
    return tmp_path


def test_ranges_come_from_the_runs_of_the_same_mode(data):
    fast = [r for r in recorded_runs("03_x", data) if r.mode == "fast"]
    assert [r.file for r in fast] == ["a_2026-01-01.json", "b_2026-01-02.json"]
    assert fast[0].date == "2026-01-01" and fast[0].machine == "a test CPU" and fast[0].budget == {"lr": 0.1}
    assert recorded_range(fast, "steps") == "70 - 110 (2 runs)"
    assert recorded_range(fast, "acc.2") == "0.5 - 0.75 (2 runs)"
    assert recorded_range(fast, "ok") == "true (2 runs)"
    assert recorded_range(fast, "nothing") is None


def test_the_printed_table_names_its_files_and_says_when_no_range_exists(data):
    lines = []
    rows = what_you_should_have_seen("03_x", {"steps": 90, "acc": {"2": 1.0}}, ["steps", "acc.2", "loss"],
                                     fast=True, folder=data, echo=lines.append)
    assert [r["recorded"] for r in rows] == ["70 - 110 (2 runs)", "0.5 - 0.75 (2 runs)", "no recorded range exists"]
    assert [r["this_run"] for r in rows] == ["90", "1", "not recorded"]
    text = "\n".join(lines)
    assert "a_2026-01-01.json: `cramlab notebooks run --fast`, a test CPU, 2026-01-01" in text
    assert "unnamed" not in text and "c_2026" not in text
    full = what_you_should_have_seen("03_x", {"steps": 5}, ["steps"], fast=False, folder=data, echo=lines.append)
    assert full[0]["recorded"] == "999 (1 run)"
    none = []
    what_you_should_have_seen("04_y", {"steps": 5}, ["steps"], fast=True, folder=data, echo=none.append)
    assert "no recorded fast run of 04_y exists" in none[-1]
    with pytest.raises(BadInputError, match="at least one"):
        what_you_should_have_seen("03_x", {}, [], fast=True, folder=data)


def test_figure_paths_reach_into_dicts_and_lists():
    figures = {"progressive": [{"mean_tokens": 9.0}], "max_tokens": {"m/sink-first/pc": 6}}
    assert figure_at(figures, "progressive.0.mean_tokens") == 9.0
    assert figure_at(figures, "max_tokens.m/sink-first/pc") == 6
    assert figure_at(figures, "progressive.1.mean_tokens") is MISSING


def test_every_runner_summary_in_docs_data_names_its_provenance():
    """A summary kept in docs/data is read only when its command, machine and date are known: a new one
    without them (and not in PROVENANCE) fails here instead of silently leaving the notebooks' ranges."""
    summaries = {}
    for path in sorted(DATA.glob("*summary*.json")) + sorted(DATA.glob("notebook*_*.json")):
        document = json.loads(path.read_text())
        if isinstance(document, dict) and isinstance(document.get("notebooks"), dict):
            summaries[path.name] = provenance(path.name, document)
    assert set(PROVENANCE) <= set(summaries), set(PROVENANCE) - set(summaries)
    assert summaries and all(summaries.values()), [k for k, v in summaries.items() if not v]


def test_without_docs_data_only_the_learners_figures_are_printed(monkeypatch):
    """An installed wheel (Colab) has no docs/data: the last cell still runs and says so."""
    import cramlab.lab.recorded as recorded
    monkeypatch.setattr(recorded, "data_dir", lambda: None)
    lines = []
    rows = recorded.what_you_should_have_seen("03_first_cram", {"steps": 70}, ["steps"], fast=True, echo=lines.append)
    assert rows == [{"figure": "steps", "this_run": "70", "recorded": "no recorded range exists"}]
    assert "docs/data is in the source checkout" in lines[-1]


def test_a_figure_measured_under_an_older_definition_is_left_out_of_the_range_and_named(data, monkeypatch):
    """SUPERSEDED: run b's `steps` was measured otherwise; the range is a's alone and the printout says why."""
    from cramlab.lab import recorded
    monkeypatch.setitem(recorded.SUPERSEDED, "b_2026-01-02.json", {"03_x": (("steps",), "counted otherwise then")})
    runs = [r for r in recorded_runs("03_x", data) if r.mode == "fast"]
    steps = recorded_range(runs, "steps")
    assert "70" in steps and "110" not in steps
    assert recorded_range(runs, "acc.2") is not None and "0.75" in recorded_range(runs, "acc.2")   # others stay
    printed = []
    what_you_should_have_seen("03_x", {"steps": 80}, ["steps"], fast=True, folder=data, echo=printed.append)
    assert any("left out of the ranges: steps (counted otherwise then)" in line for line in printed)


def test_layout_comparison_prints_the_share_from_the_recorded_tables(tmp_path):
    """print_layout_comparison on a tables_2026.json made here: mem-first 20 of sink-first 40 tokens = 50 %."""
    from cramlab.lab.recorded import print_layout_comparison

    def row(mean, lo, hi):
        return dict(mean_tokens=mean, std_tokens=5.0, texts=50, replicates=3, lr=0.1, max_steps=1000,
                    replicate_spread=dict(min=lo, max=hi))
    (tmp_path / "tables_2026.json").write_text(json.dumps({"mem-first/pc": row(20.0, 18.0, 22.0),
                                                           "sink-first/pc": row(40.0, 39.0, 41.0)}))
    (tmp_path / "timing_2026.json").write_text(json.dumps(dict(device="a test GPU", date="2026-01-05T00:00:00Z",
                                                               model="m", model_dtype="bfloat16")))
    printed = []
    held = print_layout_comparison(tmp_path, echo=printed.append)
    assert set(held) == {("mem-first", "pc"), ("sink-first", "pc")}
    assert "a test GPU" in printed[0] and "2026-01-05" in printed[0]
    assert any("mem-first holds 50% of sink-first" in line for line in printed)
    assert print_layout_comparison(tmp_path / "absent", echo=printed.append) is None
