"""The figures of recorded notebook runs, printed beside the learner's own ("what you should have seen").

A recorded run is a runner summary (`cramlab notebooks run ... --out DIR` writes `DIR/summary.json`) kept
under docs/data/ with its date in its name. A file that names its command, card and date itself (keys
`command`, `card`, `date`) is read as it stands; the older summaries name them only in docs/performance.md,
so `PROVENANCE` states them once, here, for the files this module reads. A summary in docs/data that is in
neither form is not read (tests/test_recorded.py checks that none is left out).

The last cell of every notebook calls `what_you_should_have_seen(...)`: for each figure it prints this run's
value beside the range (min - max, or the values seen) over the recorded runs of the same mode (fast or full)
and names every file the range came from, with its command, machine, date and budget. Where no recorded run
holds a figure, it says so and prints only the learner's value: no measured number is typed into a notebook.

Figures a run measured under an older definition than today's cell (`SUPERSEDED`: the random source before
94893b7, 03's sampled equal-budget accuracy, 07's pre-preset progressive row, 09's smallest representation when
it still counted the bound) are left out of the ranges, and the printout names them and why.
`print_layout_comparison` prints the `cramlab reproduce --paper 2026` tables kept in docs/data/reproduce
(mem-first against sink-first), the one place notebooks 03 and 07 read them from.

Owns: reading recorded summaries, their provenance and superseded figures, a figure's range over runs and the
printed comparison; reading and printing the recorded reproduction's layout comparison.
Does not own: running notebooks or recording figures (cramlab.lab.notebook_runner), the files themselves.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cramlab.errors import BadInputError

# Files whose command and machine are stated in docs/performance.md ("## Notebooks"), not inside the file.
PROVENANCE: dict[str, dict[str, str]] = {
    "notebooks_fast_summary_2026-11-28.json": dict(
        mode="fast", command="cramlab notebooks run --fast", machine="2-core AMD EPYC CPU, one notebook at a time"),
    "notebooks_fast_summary_2026-11-29.json": dict(
        mode="fast", command="cramlab notebooks run --fast --jobs 2",
        machine="2-core AMD EPYC CPU, two notebooks at a time, one thread each"),
    "notebooks_fast_summary_make_test_2026-11-29.json": dict(
        mode="fast", command="make test (the series fixture of tests/test_notebooks.py, two at a time)",
        machine="2-core AMD EPYC CPU, beside the unit tests"),
    "notebooks_full_summary_2026-11-28.json": dict(
        mode="full", command="cramlab notebooks run", machine="2-core AMD EPYC CPU, one notebook at a time"),
    "notebook_03_full_cpu_2026-11-29.json": dict(
        mode="full", command="cramlab notebooks run --only 03", machine="2-core AMD EPYC CPU, beside the test suite"),
    "notebook_08_full_summary_2026-11-28.json": dict(
        mode="full", command="cramlab notebooks run --only 08", machine="2-core AMD EPYC CPU"),
    "notebook_09_full_summary_2026-11-28.json": dict(
        mode="full", command="cramlab notebooks run --only 09", machine="2-core AMD EPYC CPU, alone"),
    "notebooks_gpu_h200_round5_2026-11-28.json": dict(mode="full"),     # names command, card and date itself
    "notebooks_gpu_h200_2026-11-28.json": dict(mode="full"),            # 08 and 09 on an H200: the same
}

# Figures a recorded run measured under an older definition than the notebook's cell computes today. They stay
# in their files but are left out of the ranges, and the printed table says which and why: a range never sets
# the learner's figure beside a different measurement. {file: {notebook stem: (figure prefixes, reason)}}.
_OLD_RANDOM = ("random text was then words drawn from the tokenizer's vocabulary; since 94893b7 (2026-11-28) it is "
               "the paper's protocol, words from the 100,000 most frequent English words")
_RANDOM_02 = (("random_bits_per_token", "random_costs_more_than_unseen"), _OLD_RANDOM)
_RANDOM_05 = (("slope", "constant_gain_nats", "random_mean_gain_nats", "random_predicted_tokens",
               "unseen_predicted_tokens", "n_not_fit"), _OLD_RANDOM + " (C and the slope are fitted over both sources)")
_BEST_WITHIN = (("accuracy_at_equal_budget",), "then read from a history sampled every 10 steps (it could miss a "
                "convergence between samples); since 541efac (2026-12-06) each layout's final vector at the budget")
_OLD_PROGRESSIVE = (("progressive",), "section 5 then ran the kit's own progressive settings (constant lr, no "
                    "carry-over); since 7ce5c69 (2026-12-06) the progressive-2026 preset")
_WITH_BOUND = (("smallest_method",), "it then counted `lm` (the sum of -log2 p, a bound, not a coder) among the "
               "representations; since 5a7a596 (2026-12-06) the bound is left out")
SUPERSEDED: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "notebooks_fast_summary_2026-11-28.json": {"02_how_surprising_is_text": _RANDOM_02,
                                               "05_capacity_is_entropy": _RANDOM_05},
    "notebooks_full_summary_2026-11-28.json": {"02_how_surprising_is_text": _RANDOM_02,
                                               "05_capacity_is_entropy": _RANDOM_05},
    "notebooks_fast_summary_2026-11-29.json": {"03_first_cram": _BEST_WITHIN, "07_gpu_scale": _OLD_PROGRESSIVE,
                                               "09_in_practice": _WITH_BOUND},
    "notebooks_fast_summary_make_test_2026-11-29.json": {"03_first_cram": _BEST_WITHIN,
                                                         "07_gpu_scale": _OLD_PROGRESSIVE,
                                                         "09_in_practice": _WITH_BOUND},
    "notebook_09_full_summary_2026-11-28.json": {"09_in_practice": _WITH_BOUND},
    "notebook_03_full_cpu_2026-11-29.json": {"03_first_cram": _BEST_WITHIN},
    "notebooks_gpu_h200_round5_2026-11-28.json": {"03_first_cram": _BEST_WITHIN, "07_gpu_scale": _OLD_PROGRESSIVE},
}
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NOT_BUDGET = {"record_path", "fast"}


@dataclass
class RecordedRun:
    """One notebook's entry in one recorded summary."""
    file: str
    command: str
    machine: str
    date: str
    mode: str
    figures: dict
    budget: dict = field(default_factory=dict)
    superseded: tuple[tuple[str, ...], str] = ((), "")     # (figure prefixes, reason): see SUPERSEDED

    def is_superseded(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.superseded[0])

    def describe(self) -> str:
        budget = f"; budget {json.dumps(self.budget)}" if self.budget else ""
        return f"{self.file}: `{self.command}`, {self.machine}, {self.date}{budget}"


def data_dir() -> Path | None:
    """docs/data of the source checkout this package runs from (notebooks run with notebooks/ as cwd); None
    where there is none (a package installed from a wheel, as on Colab, carries no recorded runs)."""
    for folder in (Path(__file__).resolve().parents[2], Path.cwd(), Path.cwd().parent):
        if (folder / "docs" / "data").is_dir():
            return folder / "docs" / "data"
    return None


def provenance(name: str, document: dict) -> dict | None:
    """{mode, command, machine, date} of a summary file, or None when the file does not say and
    `PROVENANCE` does not either."""
    known = PROVENANCE.get(name, {})
    command = document.get("command") or known.get("command")
    machine = document.get("card") or document.get("machine") or known.get("machine")
    date = document.get("date") or (DATE.search(name).group(0) if DATE.search(name) else None)
    mode = document.get("mode") or known.get("mode")
    if not (command and machine and date and mode in ("fast", "full")):
        return None
    return dict(mode=mode, command=command, machine=machine, date=date)


def _entry_figures(entry: Any) -> dict | None:
    if not isinstance(entry, dict):
        return None
    figures = entry.get("figures")
    if not isinstance(figures, dict) and isinstance(entry.get("second_run"), dict):   # a run resumed once
        figures = entry["second_run"].get("figures")
    return figures if isinstance(figures, dict) else None


def recorded_runs(notebook: str, folder: str | os.PathLike | None = None) -> list[RecordedRun]:
    """Every recorded run of `notebook` (a stem like `03_first_cram`) in `folder` (default docs/data), oldest first."""
    folder = Path(folder) if folder else data_dir()
    if folder is None:
        return []
    runs = []
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(document, dict) or not isinstance(document.get("notebooks"), dict):
            continue
        where = provenance(path.name, document)
        if where is None:
            continue
        entries = document["notebooks"]
        entry = entries.get(notebook, entries.get(notebook[:2]))
        figures = _entry_figures(entry)
        if figures is None:
            continue
        params = entry.get("parameters")            # older GPU summaries keep them as one string: no budget
        budget = {k: v for k, v in (params if isinstance(params, dict) else {}).items() if k not in _NOT_BUDGET}
        budget |= entry.get("fast_values") or {}
        superseded = SUPERSEDED.get(path.name, {}).get(notebook, ((), ""))
        runs.append(RecordedRun(path.name, figures=figures, budget=budget, superseded=superseded, **where))
    return sorted(runs, key=lambda r: (r.date, r.file))


MISSING = object()


def figure_at(figures: dict, name: str) -> Any:
    """A figure by its dotted path (`accuracy_by_n_mem.2`, `progressive.0.mean_tokens`); `MISSING` if absent."""
    value: Any = figures
    for part in name.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _show(value: Any) -> str:
    if value is MISSING:
        return "not recorded"
    if isinstance(value, float):
        return f"{value:.3g}"
    return json.dumps(value) if not isinstance(value, str) else value


def recorded_range(runs: list[RecordedRun], name: str) -> str | None:
    """The figure over the runs: "lo - hi (n runs)" for numbers, the values seen otherwise; None if no run has it."""
    values = [v for v in (figure_at(r.figures, name) for r in runs if not r.is_superseded(name)) if v is not MISSING]
    if not values:
        return None
    if all(_number(v) for v in values):
        lo, hi = min(values), max(values)
        span = _show(lo) if lo == hi else f"{_show(lo)} - {_show(hi)}"
        return f"{span} ({len(values)} run{'s' if len(values) > 1 else ''})"
    seen = sorted({_show(v) for v in values})
    return f"{' or '.join(seen)} ({len(values)} run{'s' if len(values) > 1 else ''})"


def what_you_should_have_seen(notebook: str, mine: dict, names: list[str], *, fast: bool,
                              folder: str | os.PathLike | None = None, echo=print) -> list[dict]:
    """Print this run's figures `names` (from `mine`, the notebook's `Recorder.figures`) beside their range
    over the recorded runs of the same mode, then the files the ranges come from. Returns the table's rows."""
    if not names:
        raise BadInputError("name at least one recorded figure to compare (a key of the notebook's Recorder)")
    mode = "fast" if fast else "full"
    runs = [r for r in recorded_runs(notebook, folder) if r.mode == mode]
    rows = [dict(figure=name, this_run=_show(figure_at(mine, name)),
                 recorded=recorded_range(runs, name) or "no recorded range exists") for name in names]
    width = max(len(r["figure"]) for r in rows) + 2
    mine_width = max(len(r["this_run"]) for r in rows + [dict(this_run="this run")]) + 2
    echo(f"What you should have seen ({mode} mode): this run beside the recorded {mode} runs of {notebook}")
    echo(f"{'figure':<{width}}{'this run':<{mine_width}}recorded (min - max)")
    for r in rows:
        echo(f"{r['figure']:<{width}}{r['this_run']:<{mine_width}}{r['recorded']}")
    if runs:
        echo("recorded runs (docs/data; each budget is that run's, yours may differ):")
        for run in runs:
            echo(f"  {run.describe()}")
            left_out = [n for n in names if run.is_superseded(n) and figure_at(run.figures, n) is not MISSING]
            if left_out:
                echo(f"    left out of the ranges: {', '.join(left_out)} ({run.superseded[1]})")
    else:
        where = "docs/data" if data_dir() or folder else "this installation (docs/data is in the source checkout)"
        echo(f"no recorded {mode} run of {notebook} exists in {where}: only this run's figures are printed")
    return rows


def reproduced_2026(folder: str | os.PathLike | None = None) -> dict | None:
    """The progressive-2026 tables that `cramlab reproduce --paper 2026` keeps in docs/data/reproduce
    (`tables_2026.json`: one row per layout/protocol, mean ± std over texts and the replicate spread) with the
    cards, dates and models of the calls that wrote them (`timing_2026*.json`); None where they are not here."""
    folder = Path(folder) if folder else (data_dir() / "reproduce" if data_dir() else None)
    if folder is None or not (folder / "tables_2026.json").is_file():
        return None
    rows = json.loads((folder / "tables_2026.json").read_text(encoding="utf-8"))
    calls = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("timing_2026*.json"))]
    calls.sort(key=lambda c: c.get("date", ""))
    return dict(rows=rows, folder=str(folder), cards=sorted({c.get("device", "?") for c in calls}),
                dates=sorted({c.get("date", "")[:10] for c in calls}), n_calls=len(calls),
                models=sorted({f"{c.get('model')} ({c.get('model_dtype')} weights)" for c in calls}))


def print_layout_comparison(folder: str | os.PathLike | None = None, echo=print) -> dict | None:
    """Print, from `reproduced_2026`, what position 0 costs the vector: mem-first against sink-first under
    each protocol (`hc`: t_1 given and unscored; `pc`: every token scored), mean ± std over texts, the ratio
    and the replicate means. Returns {(layout, protocol): row}, or None (and says so) without the files."""
    found = reproduced_2026(folder)
    if found is None:
        echo("the recorded reproduction (docs/data/reproduce/tables_2026.json) is not here: it ships with the "
             "repository, not the wheel")
        return None
    rows = found["rows"]
    any_row = next(iter(rows.values()))
    echo(f"recorded: `cramlab reproduce --paper 2026` on {', '.join(found['cards'])}, {', '.join(found['dates'])} "
         f"({found['n_calls']} calls), {', '.join(found['models'])}; {any_row['texts']} texts x "
         f"{any_row['replicates']} replicates (seeds), lr {any_row['lr']}, {any_row['max_steps']} steps per length "
         f"({found['folder']}/tables_2026.json)")
    held = {}
    for protocol, what in (("hc", "t_1 given, not scored"), ("pc", "every token scored")):
        m, s = rows.get(f"mem-first/{protocol}"), rows.get(f"sink-first/{protocol}")
        if not (m and s):
            continue
        held["mem-first", protocol], held["sink-first", protocol] = m, s
        spread = {k: f"{r['replicate_spread']['min']:.1f}-{r['replicate_spread']['max']:.1f}"
                  for k, r in (("m", m), ("s", s))}
        share = m["mean_tokens"] / s["mean_tokens"]
        echo(f"  {protocol} ({what}): mem-first {m['mean_tokens']:.1f} ± {m['std_tokens']:.1f} tokens, sink-first "
             f"{s['mean_tokens']:.1f} ± {s['std_tokens']:.1f}: mem-first holds {share:.0%} of sink-first "
             f"(replicate means {spread['m']} against {spread['s']})")
    return held
