"""docs/results.md's tables from the raw lines `experiments/gpu_science.py` wrote (nothing typed by hand).

    python experiments/science_tables.py docs/data/h200_*_2026-11-28.jsonl > docs/data/science_tables_2026-11-28.md

Progressive rows: one per (layout, protocol, tag). Table 1 rows: the grid-2025 preset's lengths, Max by
`cramlab.science.report.max_tokens_that_fit`, the averages by `cramlab.science.report.not_fit_averages` under both gain
conventions (`paper-code`: IG from the minimum training loss, x N, as Kuratov et al.'s code; `scored`:
x scored tokens, from the returned vectors).
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

from cramlab.capacity import capacity_tokens
from cramlab.science.report import max_tokens_that_fit, not_fit_averages

D, VOCAB = 576, 49152            # SmolLM2-135M (the embedded model)


def _lines(paths):
    for p in paths:
        with open(p) as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)


def progressive_table(rows) -> str:
    out = ["| layout / protocol | run | texts | mean ± std | median | min–max | greedy exact | mean steps / text | "
           "wall (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["tag"] != "main", r["layout"], r["protocol"], r["tag"])):
        s = r["settings"]
        run = f"{s['preset']}, lr {s['lr']}, carry {'on' if s['carry_optimizer'] else 'off'}"
        out.append(f"| {r['layout']} / {r['protocol']} | {run} | {r['n_texts']} | {r['mean_tokens']:.1f} ± "
                   f"{r['std_tokens']:.1f} | {r['median_tokens']:g} | {r['min_tokens']}–{r['max_tokens_seen']} | "
                   f"{r['greedy_exact']}/{r['n_texts']} | {r['mean_steps_per_text']:.0f} | {r['seconds']:.0f} |")
    return "\n".join(out)


def grid_tables(rows) -> str:
    by_source = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by_source[r["source"]][r["grid_tokens"]].append(r)
    l_max = capacity_tokens(D, VOCAB)
    out = ["| source | lengths run | mean accuracy per length | Max | texts not fit | gain tokens (paper-code / scored) "
           "| IG nats (paper-code / scored) | utilisation (paper-code) | L_max |",
           "|---|---|---|---|---|---|---|---|---|"]
    for source, per_length in sorted(by_source.items()):
        records = [{"n_tokens": n, "mean_accuracy": statistics.fmean(x["teacher_forced_accuracy"] for x in res)}
                   for n, res in sorted(per_length.items())]
        pooled = [x for res in per_length.values() for x in res]
        paper, scored = not_fit_averages(pooled, variant="paper-code"), not_fit_averages(pooled, variant="scored")
        accs = ", ".join(f"{r['n_tokens']}: {r['mean_accuracy']:.3f}" for r in records)

        def fmt(v, f=".1f"):
            return "—" if v is None else format(v, f)
        util = None if paper.gain_tokens is None else paper.gain_tokens / l_max
        out.append(f"| {source} | {', '.join(str(r['n_tokens']) for r in records)} | {accs} | "
                   f"{max_tokens_that_fit(records) or 'none'} | {paper.n_not_fit} of {len(pooled)} | "
                   f"{fmt(paper.gain_tokens, '.2f')} / {fmt(scored.gain_tokens, '.2f')} | "
                   f"{fmt(paper.info_gain_nats)} / {fmt(scored.info_gain_nats)} | {fmt(util, '.4f')} | {l_max:.1f} |")
    return "\n".join(out)


def main(paths):
    rows = list(_lines(paths))
    prog = [r for r in rows if r.get("job") == "progressive"]
    grid = [r for r in rows if r.get("job") == "grid"]
    if prog:
        card = prog[0]["card"]
        print(f"### Progressive cramming ({card}, {prog[0]['date']}, model dtype {prog[0]['model_dtype']}, "
              f"kernels {prog[0]['kernels']})\n")
        print(progressive_table(prog))
    if grid:
        print(f"\n### Table 1 row, grid-2025 preset ({grid[0]['card']}, {grid[0]['date']})\n")
        print(grid_tables(grid))


if __name__ == "__main__":
    main(sys.argv[1:])
