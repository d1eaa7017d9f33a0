"""The paper's Table 1 and its two rules, from result lines or a length sweep: the one place they live.

Owns:
- the Max rule (`length_fits`, `max_tokens_that_fit`): Max = the largest length whose mean best
  teacher-forced accuracy over the texts is >= the threshold (0.99 in the paper, `PAPER_THRESHOLD`);
- the Table-1 aggregation (`not_fit_averages`): gain tokens and information gain averaged over the
  (text, length) results that did NOT fit (best accuracy <= threshold), pooled over all lengths; when
  every text fit there is nothing to average, and the averages are None with the reason saying so;
- `table1_columns` (both rules plus capacity and utilisation), used by `report` (a results file of
  `cramlab sweep`) and `table1_row_from_grid` (a `GridResult` of `cramlab.science.search`);
- per-length records of a results file (`length_records`), the report's text, CSV and JSON columns;
- C of the paper's slope-1 line CE_mem = CE_orig - C (`constant_gain_nats`, notebook 05's figure).

Does not own: running anything (cramlab.science.search, cramlab.science.sweep), the results file's format
(cramlab.science.results_file), the published figures (cramlab.science.paper), drawing (cramlab.lab.plots).
search, sweep, exercises and plots import the rules from here; nothing here imports them.
"""
from __future__ import annotations

import csv
import io
import math
import os
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cramlab.engine.settings import PRESETS
from cramlab.errors import BadInputError, OutputPathError
from cramlab.science.results_file import read_results

#: The paper's threshold for "fits" in the grid protocol (mean best accuracy over the texts): the
#: grid-2025 preset's, so the value is written once (cramlab.engine.settings).
PAPER_THRESHOLD = PRESETS["grid-2025"].threshold

REPORT_COLUMNS = ("model", "source", "layout", "protocol", "n_mem", "n_texts", "max_tokens", "gain_tokens",
                  "info_gain_nats", "info_gain_bits", "capacity_tokens", "capacity_utilisation",
                  "greedy_exact_at_max", "n_not_fit", "gain_variant", "paper_max_tokens", "paper_gain_tokens",
                  "paper_info_gain_nats", "paper_capacity_utilisation", "paper_source")

#: Why Table 1's averages are None for a group where no text failed to fit.
EVERY_TEXT_FIT = ("every text fit (accuracy > {threshold} at every length): the vector was never full, so there "
                  "is nothing to average; add longer lengths to the grid")


def _get(row, key, default=None):
    if isinstance(row, dict):
        return row.get(key, default)
    return getattr(row, key, default)


# --- the two rules ----------------------------------------------------------------------------------------

def length_fits(mean_accuracy: float, threshold: float = PAPER_THRESHOLD) -> bool:
    """A length fits when the mean best accuracy of its texts reaches the threshold."""
    return mean_accuracy >= threshold


def did_not_fit(accuracy: float, threshold: float = PAPER_THRESHOLD) -> bool:
    """Table 1 averages over the texts whose best accuracy is <= the threshold (the paper's rule, as its code)."""
    return accuracy <= threshold


def max_tokens_that_fit(records: Iterable[Any], threshold: float = PAPER_THRESHOLD) -> int | None:
    """The paper's Max: the largest `n_tokens` of the records whose `mean_accuracy` fits (None: none fits).

    `records`: one per length, dicts or objects with n_tokens and mean_accuracy (`GridResult.records`,
    `length_records(...)[key]`, or their `to_dict()`).
    """
    fits = [_get(r, "n_tokens") for r in records if length_fits(_get(r, "mean_accuracy"), threshold)]
    return max(fits) if fits else None


@dataclass
class NotFitAverages:
    """Table 1's averages over the results that did not fit; None (and `reason`) when there are none."""
    n_not_fit: int
    gain_tokens: float | None
    info_gain_nats: float | None
    reason: str | None = None

    @property
    def info_gain_bits(self) -> float | None:
        return None if self.info_gain_nats is None else self.info_gain_nats / math.log(2)

    def to_dict(self) -> dict:
        return asdict(self) | {"info_gain_bits": self.info_gain_bits}


#: How per-text gains are totalled. `paper-code` (the default wherever a number sits beside Kuratov et al.'s):
#: as their code computes Table 1 — gain = (best acc - acc without mem) x N, IG = (CE/token without mem -
#: MINIMUM training loss/token) x N, in nats, N not the N - 1 tokens `hc` scores. `paper-code-final`: the same
#: with the returned vectors' loss instead of the minimum (for lines that carry no minimum, e.g. sweep files
#: written before it was kept; labelled wherever it is used). `scored`: the kit's own convention, over the
#: scored tokens, IG from the returned vectors (the CramResult fields).
GAIN_VARIANTS = ("paper-code", "paper-code-final", "scored")
DEFAULT_VARIANT = "paper-code"


def text_gains(r, variant: str = DEFAULT_VARIANT) -> tuple[float | None, float | None]:
    """(gain tokens, information gain in nats) of one result under a `GAIN_VARIANTS` convention."""
    if variant == "scored":
        return _get(r, "gain_tokens"), _get(r, "info_gain_nats")
    if variant not in GAIN_VARIANTS:
        raise ValueError(f"unknown gain variant {variant!r}; use one of {', '.join(GAIN_VARIANTS)}")
    n = _get(r, "n_tokens")
    loss_key = "min_ce_per_token_nats" if variant == "paper-code" else "final_ce_per_token_nats"
    min_ce, base_ce = _get(r, loss_key), _get(r, "baseline_ce_per_token_nats")
    info = None if min_ce is None or base_ce is None else (base_ce - min_ce) * n
    return (paper_accuracy(r) - _get(r, "baseline_accuracy")) * n, info


def paper_accuracy(r) -> float:
    """Kuratov et al.'s `best_accuracy`: the best accuracy of the training forwards (`train_accuracy`), where a
    line has it; else the returned vectors' re-evaluated accuracy (the same vectors, equal up to rounding)."""
    train = _get(r, "train_accuracy")
    if train is not None and math.isfinite(train):
        return train
    return _get(r, "teacher_forced_accuracy")


def usable_variant(results: Sequence[Any], variant: str = DEFAULT_VARIANT) -> str:
    """`variant`, or the nearest one the results can give: lines without a minimum training loss (sweep
    files) fall back from `paper-code` to `paper-code-final`, lines without per-token losses to `scored`.
    The tables print the convention actually used."""
    def has(key):
        return any(_get(r, key) is not None for r in results)
    if variant == "paper-code" and not has("min_ce_per_token_nats"):
        variant = "paper-code-final"
    if variant == "paper-code-final" and not has("final_ce_per_token_nats"):
        variant = "scored"
    return variant


def not_fit_averages(results: Iterable[Any], threshold: float = PAPER_THRESHOLD,
                     variant: str = DEFAULT_VARIANT) -> NotFitAverages:
    """The Table-1 aggregation: mean gain tokens and information gain (nats) over the results with
    teacher-forced accuracy <= threshold, pooled over lengths (values that are None or not finite are
    left out of a mean). `variant`: see `GAIN_VARIANTS`."""
    not_fit = [r for r in results if did_not_fit(_get(r, "teacher_forced_accuracy"), threshold)]
    if not not_fit:
        return NotFitAverages(0, None, None, EVERY_TEXT_FIT.format(threshold=threshold))
    pairs = [text_gains(r, variant) for r in not_fit]
    gain, info = _mean(g for g, _ in pairs), _mean(i for _, i in pairs)
    reason = None if gain is not None and info is not None else "no finite gain recorded for the texts that did not fit"
    return NotFitAverages(len(not_fit), gain, info, reason)


def table1_columns(records: Sequence[Any], *, d: int, vocab_size: int, n_mem: int = 1,
                   threshold: float = PAPER_THRESHOLD, variant: str = DEFAULT_VARIANT) -> dict:
    """Our Table-1 figures from per-length records (each with n_tokens, mean_accuracy and the per-text
    `results`): Max, the not-fit averages, L_max = d * 16 * n_mem / log2|V| and utilisation = gain / L_max."""
    from cramlab.capacity import capacity_tokens
    results = [res for rec in records for res in (_get(rec, "results") or [])]
    variant = usable_variant(results, variant)
    averages = not_fit_averages(results, threshold, variant)
    l_max = capacity_tokens(int(d), int(vocab_size), n_mem=int(n_mem))
    gain = averages.gain_tokens
    return dict(max_tokens=max_tokens_that_fit(records, threshold), n_not_fit=averages.n_not_fit, gain_tokens=gain,
                info_gain_nats=averages.info_gain_nats, info_gain_bits=averages.info_gain_bits,
                capacity_tokens=l_max, capacity_utilisation=None if gain is None else gain / l_max,
                averages_note=averages.reason, gain_variant=variant)


def table1_row_from_grid(grid, model: str, d: int, vocab_size: int, threshold: float = PAPER_THRESHOLD) -> dict:
    """Our row for the paper's Table 1 from a length sweep (`GridResult`, its `to_dict()`, or its records):
    `table1_columns` with L_max rounded to whole tokens. Averages None (see `averages_note`) when every
    text fit."""
    records = _get(grid, "records", grid)
    n_mem = _get(grid, "n_mem", 1) if not isinstance(grid, (list, tuple)) else 1
    cols = table1_columns(records, d=d, vocab_size=vocab_size, n_mem=n_mem or 1, threshold=threshold)
    return dict(model=f"{model} (ours)", d=d, vocab_size=vocab_size, capacity_tokens=round(cols["capacity_tokens"]),
                max_tokens=cols["max_tokens"], gain_tokens=cols["gain_tokens"], info_gain_nats=cols["info_gain_nats"],
                capacity_utilisation=cols["capacity_utilisation"], n_not_fit=cols["n_not_fit"],
                averages_note=cols["averages_note"], gain_variant=cols["gain_variant"])


def max_tokens_by_drawn_length(rows: Iterable[Any], threshold: float = PAPER_THRESHOLD,
                               accuracy=lambda r: _get(r, "teacher_forced_accuracy")) -> int | None:
    """Random text's Max as Kuratov et al.'s code groups it: by each text's DRAWN length (its own
    `n_tokens`, uniform in [2, L] at grid length L), not by the grid length L (`grid_tokens`) it was made for.
    `accuracy(line)`: which accuracy counts (`paper_accuracy` for their best training accuracy)."""
    by_len: dict[int, list[float]] = {}
    for r in rows:
        by_len.setdefault(_get(r, "n_tokens"), []).append(accuracy(r))
    return max_tokens_that_fit([dict(n_tokens=n, mean_accuracy=statistics.fmean(a)) for n, a in by_len.items()],
                               threshold)


def constant_gain_nats(points: Sequence[Any]) -> float:
    """C of the slope-1 line CE_mem = CE_orig - C: the mean information gain over texts that did NOT fit
    (all texts if every one fit)."""
    rows = [p for p in points if not _get(p, "converged", False)] or list(points)
    if not rows:
        return math.nan
    return statistics.fmean(_get(p, "baseline_ce_nats") - _get(p, "final_ce_nats") for p in rows)


# --- a results file as Table 1 ------------------------------------------------------------------------------

@dataclass
class ReportRow:
    """One (model, source, layout, protocol, n_mem): the paper's Table 1 columns, ours and theirs."""
    model: str
    source: str
    layout: str
    protocol: str
    n_mem: int
    n_texts: int
    lengths: list[int]
    max_tokens: int | None          # largest N with mean accuracy >= threshold
    n_not_fit: int                  # texts x lengths with accuracy <= threshold (the averages below)
    gain_tokens: float | None       # mean over those, (acc - acc_without_mem) * N; None: every text fit
    info_gain_nats: float | None
    info_gain_bits: float | None
    capacity_tokens: float          # L_max = d * 16 * n_mem / log2|V|
    capacity_utilisation: float | None   # gain_tokens / L_max
    greedy_exact_at_max: float | None
    paper: dict = field(default_factory=dict)    # the published figures for this model (cramlab.science.paper)
    averages_note: str | None = None             # why the averages are None (every text fit)
    gain_variant: str = DEFAULT_VARIANT          # the convention of gain and IG (GAIN_VARIANTS)

    def to_dict(self) -> dict:
        return asdict(self)


def _rows(rows_or_path) -> list[dict]:
    if isinstance(rows_or_path, (str, os.PathLike)):
        return read_results(rows_or_path, repair=False)
    return list(rows_or_path)


def _group_key(r: dict) -> tuple:
    return (r["model"], r["source"], r["layout"], r["protocol"], r["n_mem"])


def length_records(rows_or_path) -> dict[tuple, list[dict]]:
    """Per (model, source, layout, protocol, n_mem): one record per length with n_tokens, n_texts,
    mean_accuracy, std_accuracy, greedy_exact_fraction and the per-text lines (`results`), lengths
    ascending: the shape of `GridResult.records`, for plots and tables."""
    out: dict[tuple, dict[int, list[dict]]] = {}
    for r in _rows(rows_or_path):
        out.setdefault(_group_key(r), {}).setdefault(r["n_tokens"], []).append(r)
    records = {}
    for key, by_len in out.items():
        records[key] = []
        for n in sorted(by_len):
            accs = [x["teacher_forced_accuracy"] for x in by_len[n]]
            greedy = [x["greedy_exact"] for x in by_len[n] if x.get("greedy_exact") is not None]
            records[key].append(dict(n_tokens=n, n_texts=len(accs), mean_accuracy=statistics.fmean(accs),
                                     std_accuracy=statistics.pstdev(accs) if len(accs) > 1 else 0.0,
                                     greedy_exact_fraction=sum(map(bool, greedy)) / len(greedy) if greedy else None,
                                     results=by_len[n]))
    return records


def report(rows_or_path, threshold: float = PAPER_THRESHOLD, variant: str = DEFAULT_VARIANT) -> list[ReportRow]:
    """Table 1 from result lines (or a results file): `table1_columns` per (model, source, layout,
    protocol, n_mem), beside the paper's figures, in the paper's convention by default (`GAIN_VARIANTS`;
    lines without a minimum loss fall back to `paper-code-final`, and the row says so). Lengths are each
    line's own `n_tokens`, so random text with drawn lengths is grouped by its drawn length, as
    Kuratov et al.'s code does. Averages None (with `averages_note`) where every text fit."""
    from cramlab import capacity as cap
    from cramlab.science import paper
    rows = _rows(rows_or_path)
    if not rows:
        raise BadInputError("no result lines to report; run `cramlab sweep CONFIG --out results.jsonl` first")
    out = []
    for (model, source, layout, protocol, n_mem), records in length_records(rows).items():
        members = [r for rec in records for r in rec["results"]]
        d, vocab = members[0].get("d"), members[0].get("vocab_size")
        if not d or not vocab:
            shape = cap.get_shape(model)
            d, vocab = shape.d, shape.vocab_size
        cols = table1_columns(records, d=d, vocab_size=vocab, n_mem=n_mem, threshold=threshold, variant=variant)
        at_max = [rec for rec in records if rec["n_tokens"] == cols["max_tokens"]]
        out.append(ReportRow(model=model, source=source, layout=layout, protocol=protocol, n_mem=n_mem,
                             n_texts=len({r["text_id"] for r in members}), lengths=[r["n_tokens"] for r in records],
                             max_tokens=cols["max_tokens"], n_not_fit=cols["n_not_fit"],
                             gain_tokens=cols["gain_tokens"], info_gain_nats=cols["info_gain_nats"],
                             info_gain_bits=cols["info_gain_bits"], capacity_tokens=cols["capacity_tokens"],
                             capacity_utilisation=cols["capacity_utilisation"],
                             greedy_exact_at_max=at_max[0]["greedy_exact_fraction"] if at_max else None,
                             paper=paper.published(model, source=source, n_mem=n_mem),
                             averages_note=cols["averages_note"], gain_variant=cols["gain_variant"]))
    return out


def report_table(rows: list[ReportRow]) -> list[dict]:
    """Flat dicts with REPORT_COLUMNS (for CSV and printing)."""
    flat = []
    for r in rows:
        d = r.to_dict()
        p = d.pop("paper") or {}
        d.pop("lengths")
        d |= {"paper_max_tokens": p.get("max_tokens"), "paper_gain_tokens": p.get("gain_tokens"),
              "paper_info_gain_nats": p.get("info_gain_nats"),
              "paper_capacity_utilisation": p.get("capacity_utilisation"), "paper_source": p.get("source")}
        flat.append({k: d.get(k) for k in REPORT_COLUMNS})
    return flat


def format_report(rows: list[ReportRow], threshold: float = PAPER_THRESHOLD) -> str:
    """The table as text: ours, and the paper's figure in brackets where the model matches."""
    buf = io.StringIO()

    def num(v, fmt):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    def ours_theirs(v, p, fmt):
        return num(v, fmt) + (f" [{num(p, fmt)}]" if p is not None else "")
    variants = ", ".join(sorted({r.gain_variant for r in rows})) or DEFAULT_VARIANT
    buf.write(f"Table 1 (Max: largest N with mean accuracy >= {threshold}; gain, IG and utilisation averaged over "
              f"the texts that did not fit, convention {variants}; [paper])\n")
    head = (f"{'model':<16}{'source':<8}{'layout':<11}{'prot':<5}{'k':>2} {'texts':>5} {'Max':>12} "
            f"{'gain tok':>14} {'IG nats':>14} {'IG bits':>8} {'L_max':>7} {'util':>14} {'greedy@Max':>10}")
    buf.write(head + "\n")
    notes, empty = [], []
    for r in rows:
        p = r.paper or {}
        buf.write(f"{r.model[:15]:<16}{r.source[:7]:<8}{r.layout:<11}{r.protocol:<5}{r.n_mem:>2} {r.n_texts:>5} "
                  f"{ours_theirs(r.max_tokens, p.get('max_tokens'), 'd'):>12} "
                  f"{ours_theirs(r.gain_tokens, p.get('gain_tokens'), '.1f'):>14} "
                  f"{ours_theirs(r.info_gain_nats, p.get('info_gain_nats'), '.0f'):>14} "
                  f"{num(r.info_gain_bits, '.0f'):>8} {r.capacity_tokens:>7.0f} "
                  f"{ours_theirs(r.capacity_utilisation, p.get('capacity_utilisation'), '.3f'):>14} "
                  f"{num(r.greedy_exact_at_max, '.2f'):>10}\n")
        if p.get("note"):
            notes.append(f"  {r.model}: {p['note']}")
        if r.averages_note:
            empty.append(f"  {r.model} {r.source} {r.layout} {r.protocol} k={r.n_mem}: {r.averages_note}")
    if notes:
        buf.write("paper figures:\n" + "\n".join(dict.fromkeys(notes)) + "\n")
    if empty:
        buf.write("no averages (-):\n" + "\n".join(empty) + "\n")
    return buf.getvalue()


def write_csv(rows: list[ReportRow], path: str | os.PathLike) -> None:
    path = Path(path)
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=REPORT_COLUMNS)
            writer.writeheader()
            writer.writerows(report_table(rows))
    except OSError as exc:
        raise OutputPathError(f"cannot write {path}: {exc.strerror}; choose another --csv") from None


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.fmean(vals) if vals else None
