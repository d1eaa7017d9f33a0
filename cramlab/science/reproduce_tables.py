"""The tables of `cramlab reproduce`, from its raw lines only: JSON, markdown, and a results-page section.

Owns: the 2025 Table-1 rows (`table_2025`: Max, gain tokens, IG nats and utilisation in Kuratov et al.'s
convention, mean ± std over the texts that did not fit, the spread over replicates, the kit's `scored`
convention beside it, labelled), the 2026 progressive rows (`table_2026`: longest length mean ± std over
texts, the spread of the replicate means, the paper's IG in bits), their markdown, and `write_tables`,
which writes `tables_<paper>.json`, `tables_<paper>.md` and `results_section_<paper>.md` into the run's
folder (the section is what docs/results.md takes). Does not own: the Max rule or the gain conventions
(cramlab.science.report), the published figures (cramlab.science.paper), running anything (cramlab.science.reproduce).
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

from cramlab.capacity import capacity_tokens
from cramlab.science import paper as published
from cramlab.science.report import (
    PAPER_THRESHOLD,
    did_not_fit,
    length_fits,
    max_tokens_by_drawn_length,
    paper_accuracy,
    text_gains,
)

THRESHOLD_NOTE = "Max = largest length whose mean best accuracy >= 0.99"
HC_MODELS = ("pythia-160m", "pythia-410m")


def _mean_std(values) -> tuple[float | None, float | None, int]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None, None, 0
    return statistics.fmean(vals), (statistics.pstdev(vals) if len(vals) > 1 else 0.0), len(vals)


def _spread(values) -> dict:
    """min, max and population std of the replicates' values; `n` replicates, `n_none` of them without a value."""
    values = list(values)
    vals = [v for v in values if v is not None]
    if not vals:
        return dict(min=None, max=None, std=None, n=len(values), n_none=len(values))
    return dict(min=min(vals), max=max(vals), std=statistics.pstdev(vals) if len(vals) > 1 else 0.0,
                n=len(values), n_none=len(values) - len(vals))


def _by(rows, key) -> dict:
    out: dict = {}
    for r in rows:
        out.setdefault(r[key], []).append(r)
    return dict(sorted(out.items()))


def grid_summary(rows: list[dict], d: int, vocab: int, variant: str = "paper-code") -> dict:
    """One replicate of one source: Max (lengths = each line's own n_tokens, i.e. the DRAWN length for
    random text), and gain / IG mean ± std over the texts with accuracy <= 0.99, pooled over lengths. The paper's
    convention judges by their best training accuracy (`paper_accuracy`), `scored` by the returned vectors'."""
    acc = paper_accuracy if variant != "scored" else (lambda r: r["teacher_forced_accuracy"])
    per_len = [dict(n_tokens=n, mean_accuracy=statistics.fmean(acc(x) for x in rs),
                    n_texts=len(rs), n_converged=sum(x["converged"] for x in rs))
               for n, rs in _by(rows, "n_tokens").items()]
    not_fit = [r for r in rows if did_not_fit(acc(r))]
    gains = [text_gains(r, variant) for r in not_fit]
    g_mean, g_std, _ = _mean_std(g for g, _ in gains)
    i_mean, i_std, _ = _mean_std(i for _, i in gains)
    l_max = capacity_tokens(d, vocab)
    return dict(max_tokens=max_tokens_by_drawn_length(rows, accuracy=acc), lengths=[p["n_tokens"] for p in per_len],
                per_length=per_len, n_results=len(rows), n_not_fit=len(not_fit), gain_tokens=g_mean,
                gain_tokens_std=g_std, info_gain_nats=i_mean, info_gain_nats_std=i_std, capacity_tokens=l_max,
                capacity_utilisation=None if g_mean is None else g_mean / l_max, variant=variant)


def table_2025(rows: list[dict], d: int, vocab: int) -> dict:
    """Per source: each replicate's summary (paper-code and scored), and the spread over replicates."""
    out = {}
    for source, src_rows in _by(rows, "source").items():
        reps = {r: dict(paper=grid_summary(rs, d, vocab, "paper-code"), scored=grid_summary(rs, d, vocab, "scored"))
                for r, rs in _by(src_rows, "replicate").items()}
        spread = {k: _spread([v["paper"][k] for v in reps.values()])
                  for k in ("max_tokens", "gain_tokens", "info_gain_nats", "capacity_utilisation")}
        grids = {r.get("grid_tokens") for r in src_rows} if source == "random" else {None}
        out[source] = dict(replicates=reps, spread=spread, n_texts=len({r["text_id"].split("#")[0] for r in src_rows}),
                           n_grid_lengths=len(grids))
    return out


def table_2026(rows: list[dict]) -> dict:
    """Per layout/protocol: longest length mean ± std over texts (per replicate and pooled), the replicate
    means' spread, how many texts reach the same length in every replicate, greedy exact, the paper's IG."""
    out = {}
    for setting, rs in _by([r | {"setting": f"{r['layout']}/{r['protocol']}"} for r in rows], "setting").items():
        reps = _by(rs, "replicate")
        rep_means = {r: statistics.fmean(x["longest_tokens"] for x in xs) for r, xs in reps.items()}
        rep_stds = {r: statistics.pstdev([x["longest_tokens"] for x in xs]) if len(xs) > 1 else 0.0
                    for r, xs in reps.items()}
        per_text: dict = {}
        for x in rs:
            per_text.setdefault(x["text_id"].split("#")[0], []).append(x["longest_tokens"])
        mean, std, n = _mean_std(x["longest_tokens"] for x in rs)
        ig, ig_std, n_ig = _mean_std(x.get("paper_info_gain_bits") for x in rs)
        scored, _, _ = _mean_std(x.get("scored_info_gain_nats") for x in rs)
        longest = sorted(x["longest_tokens"] for x in rs)
        s = rs[0]["settings"]
        out[setting] = dict(
            texts=len(per_text), replicates=len(reps), mean_tokens=mean, std_tokens=std, n_results=n,
            median_tokens=statistics.median(longest), min_tokens=longest[0], max_tokens=longest[-1],
            replicate_means=rep_means, replicate_stds=rep_stds, replicate_spread=_spread(list(rep_means.values())),
            same_in_every_replicate=sum(len(set(v)) == 1 for v in per_text.values()) if len(reps) > 1 else None,
            greedy_exact=sum(bool(x.get("greedy_exact")) for x in rs),
            n_fitted=sum(x["longest_tokens"] > 0 for x in rs),
            hit_cap=sum(x["stop_reason"] == "max_tokens" for x in rs),
            mean_steps=statistics.fmean(x["total_steps"] for x in rs), paper_info_gain_bits=ig,
            paper_info_gain_bits_std=ig_std, n_info_gain=n_ig, scored_info_gain_nats=scored,
            preset=s.get("preset"), lr=s.get("lr"), carry_optimizer=s.get("carry_optimizer"),
            max_steps=s.get("max_steps"), max_total_steps=s.get("max_total_steps"))
    return out


# --- markdown ----------------------------------------------------------------------------------------------

def _f(v, fmt=".1f") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _pm(m, s, fmt=".1f") -> str:
    return "—" if m is None else f"{_f(m, fmt)} ± {_f(s, fmt)}"


def _range(sp: dict, fmt=".1f") -> str:
    if sp["n"] <= 1:
        return "1 replicate"
    if sp["min"] is None:
        return f"none in {sp['n']} replicates"
    none = f", none in {sp['n_none']}" if sp.get("n_none") else ""
    return f"{_f(sp['min'], fmt)}–{_f(sp['max'], fmt)} (std {_f(sp['std'], fmt)}, {sp['n']} replicates{none})"


def markdown_2025(t: dict) -> str:
    lines = ["| source | texts | lengths run (replicate 0) | Max | gain tokens | IG nats | utilisation | not fit | "
             "spread over replicates (Max; gain) | scored convention: gain / IG nats |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for source, row in t.items():
        rep0 = row["replicates"][min(row["replicates"])]
        p, sc = rep0["paper"], rep0["scored"]
        lengths = ", ".join(str(n) for n in p["lengths"]) if source != "random" else \
            f"drawn {p['lengths'][0]}–{p['lengths'][-1]} ({len(p['lengths'])} lengths)"
        texts = row["n_texts"] if source != "random" else \
            f"{row['n_texts']} ({row['n_texts'] // row['n_grid_lengths']} per grid length)"
        lines.append(f"| {source} | {texts} | {lengths} | {p['max_tokens'] or 'none'} | "
                     f"{_pm(p['gain_tokens'], p['gain_tokens_std'])} | "
                     f"{_pm(p['info_gain_nats'], p['info_gain_nats_std'], '.0f')} | "
                     f"{_f(p['capacity_utilisation'], '.4f')} | {p['n_not_fit']} of {p['n_results']} | "
                     f"{_range(row['spread']['max_tokens'], '.0f')}; {_range(row['spread']['gain_tokens'])} | "
                     f"{_f(sc['gain_tokens'])} / {_f(sc['info_gain_nats'], '.0f')} |")
    for m in HC_MODELS:
        r = published.TABLE1[m]
        lines.append(f"| *{m}, PG-19 (published)* | 50 | 8 … | {r['max_tokens']} (random {r['random_max_tokens']}) | "
                     f"{r['gain_tokens']} | {r['info_gain_nats']} | {r['capacity_utilisation']} | — | — | — |")
    per_len = []
    for source, row in t.items():
        if source == "natural":
            rep0 = row["replicates"][min(row["replicates"])]["paper"]
            per_len.append("natural, mean best training accuracy per length (their `best_accuracy`): " + ", ".join(
                f"{p['n_tokens']}: {p['mean_accuracy']:.3f} ({p['n_converged']}/{p['n_texts']} fit)"
                for p in rep0["per_length"]))
        if source == "random":           # their Max over drawn lengths: say how few texts it rests on
            rep0 = row["replicates"][min(row["replicates"])]["paper"]
            counts = sorted(p["n_texts"] for p in rep0["per_length"])
            meeting = [p for p in rep0["per_length"] if length_fits(p["mean_accuracy"])]     # report's rule
            at_max = next((p for p in meeting if p["n_tokens"] == rep0["max_tokens"]), None)
            per_len.append(
                f"random, texts per drawn length: median {statistics.median(counts):g} (1–{counts[-1]}); drawn "
                f"lengths whose mean best accuracy reached {PAPER_THRESHOLD}: "
                + ", ".join(f"{p['n_tokens']} ({p['n_texts']})" for p in meeting) + " (texts in brackets)"
                + (f"; the Max, {at_max['n_tokens']}, rests on {at_max['n_texts']} text"
                   f"{'s' if at_max['n_texts'] != 1 else ''}" if at_max else ""))
    return "\n".join(lines + [""] + per_len)


def markdown_2026(t: dict) -> str:
    lines = ["| layout / protocol | texts × replicates | longest: mean ± std over texts | median | min–max | "
             "replicate means (spread) | texts equal in every replicate | greedy exact (fitted texts) | "
             "IG bits (paper) | IG nats (scored) | mean steps / text |", "|---" * 11 + "|"]
    for setting, r in t.items():
        means = ", ".join(f"{v:.1f}" for v in r["replicate_means"].values())
        same = "—" if r["same_in_every_replicate"] is None else f"{r['same_in_every_replicate']}/{r['texts']}"
        lines.append(f"| {setting} | {r['texts']} × {r['replicates']} | {_pm(r['mean_tokens'], r['std_tokens'])} | "
                     f"{r['median_tokens']:g} | {r['min_tokens']}–{r['max_tokens']} | {means} "
                     f"({_range(r['replicate_spread'])}) | {same} | {r['greedy_exact']}/{r['n_fitted']} | "
                     f"{_pm(r['paper_info_gain_bits'], r['paper_info_gain_bits_std'], '.0f')} | "
                     f"{_f(r['scored_info_gain_nats'], '.0f')} | {r['mean_steps']:.0f} |")
    pc = published.PROGRESSIVE_TOKENS["smollm2-135m"]
    lines.append(f"| *{pc['setting']}, Tarasov et al. (published; {pc['checkpoint']}, {pc['texts']})* | 50 × 1 | "
                 f"{pc['mean']} ± {pc['std']} | "
                 + "— | " * 8)
    return "\n".join(lines)


def _jobs(n: int) -> str:
    return f"{n} job" + ("" if n == 1 else "s")


def _header(rows: list[dict], timings: list[dict]) -> str:
    """Where the figures come from: the raw file, the card, and every call that wrote to it (`timing_<paper>*.json`,
    one per call kept), with the engine seconds of all jobs summed from the raw lines themselves."""
    r = rows[0]
    over = r.get("protocol_overrides") or {}
    job_seconds = {row["job"]: row["job_seconds"] for row in rows if "job_seconds" in row}
    out = [f"Raw lines: `raw_{r['paper']}.jsonl` ({len(rows)} lines, {len(job_seconds)} jobs, "
           f"{sum(job_seconds.values()):.0f} s of engine time summed over the jobs). Card: {r['card']}; model "
           f"{r['model']} ({r['model_dtype']} weights); date {r['date']}."]
    for timing in timings:
        out.append(f"- call of {timing.get('date', '?')}: `{timing.get('command', '')}`; "
                   f"{timing.get('total_seconds', 0):.0f} s ({_jobs(len(timing.get('jobs', [])))} run, "
                   f"{timing.get('skipped_done', 0)} already done"
                   + (f", {len(timing['stopped_by_budget'])} left for lack of budget"
                      if timing.get("stopped_by_budget") else "")
                   + ").")
    if over:
        out.append(f"**NOT the paper's protocol** — overrides: {json.dumps(over)}. Do not quote these figures "
                   "beside the papers'.")
    return "\n".join(out)


def write_tables(out: Path, paper: str, rows: list[dict]) -> dict:
    """`tables_<paper>.json`, `tables_<paper>.md` and `results_section_<paper>.md` in `out`."""
    out = Path(out)
    timings = sorted((json.loads(f.read_text(encoding="utf-8")) for f in out.glob(f"timing_{paper}*.json")),
                     key=lambda timing: timing.get("date", ""))
    if paper == "2025":
        d, vocab = rows[0]["d"], rows[0]["vocab_size"]
        table = table_2025(rows, d, vocab)
        md = markdown_2025(table)
        title = ("### Table 1 row, `grid-2025` preset (Kuratov et al., ACL 2025, as their code runs it)\n\n"
                 f"Convention of the paper's code: gain = (best acc − acc without vector) × N, IG = (CE without − "
                 f"minimum training CE) × N in nats, averaged over the texts with accuracy ≤ 0.99 pooled over all "
                 f"lengths; {THRESHOLD_NOTE}; random text grouped by each text's drawn length. Published rows: "
                 "different models (Pythia) and texts (PG-19).")
    else:
        table = table_2026(rows)
        md = markdown_2026(table)
        title = ("### Progressive cramming, `progressive-2026` preset (Tarasov et al., ICML 2026, as their code "
                 "runs it)\n\n"
                 "Longest = largest length that reached 100 % teacher-forced accuracy. IG (paper) = their "
                 "information_gain.py: CE without − CE with the final vectors at the longest length, bits, summed "
                 "over t_2..t_N (t_1 unscored in both terms). Published figure: the base SmolLM2-135M on 50 PG-19 "
                 "samples; ours the Instruct checkpoint on the kit's own passages.")
    section = f"{title}\n\n{_header(rows, timings)}\n\n{md}\n"
    (out / f"tables_{paper}.json").write_text(json.dumps(table, indent=1, default=str), encoding="utf-8")
    (out / f"tables_{paper}.md").write_text(md + "\n", encoding="utf-8")
    (out / f"results_section_{paper}.md").write_text(section, encoding="utf-8")
    return table
