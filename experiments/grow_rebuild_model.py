"""What the progressive engine's rebuild rule would cost on a recorded 2026 run: a model, not a timing.

Replays each job of a `cramlab reproduce --paper 2026` raw-lines file through grow.py's batch schedule (a host read
every 50 steps, the fed length a 16-token bucket above the longest live length) under two rules for dropping
stopped texts: the old one (rebuild when half the batch or fewer is live) and `fast.worth_rebuilding`, the rule
grow() now uses. Each text's length at every step comes from its raw line's `records` (steps at each length);
waiting for a wider fed length is left out. A step is priced at `--fixed-ms` plus `--us-per-row-token` a
row-token (the fit to the 50-row shapes of rebuild_cost_h100_2026-12-07.json), a rebuild at the rule's own
capture price. The modelled seconds are compared with the recorded job seconds to show how far to trust them.

    python experiments/grow_rebuild_model.py \
        docs/data/reproduce_batched/raw_2026_whole_h100_2026-12-07.jsonl.gz OUT.json

Owns: the replay and the two rules' modelled cost. Does not own: either rule (grow.py, fast.py), the bucket
(grow._feed_tokens, grow.feed_moved) or a rebuild's price (fast.rebuild_row_tokens), which it calls.
"""
import argparse
import gzip
import json
from collections import defaultdict

import cramlab.engine.fast as fast
from cramlab.engine.grow import _feed_tokens, feed_moved
from cramlab.engine.settings import CramSettings

RULES = ("half", "priced")


def length_steps(line: dict) -> list[tuple[int, int]]:
    """(the step at which the text starts a length, that length) for every length it tried."""
    out, t = [], 0
    for rec in line["records"]:
        out.append((t, rec["n_tokens"]))
        t += rec["steps"]
    return out


def length_at(starts: list[tuple[int, int]], step: int) -> int:
    return max((n for t, n in starts if t <= step), default=starts[0][1])


def replay(lines: list[dict], rule: str, *, fixed_ms: float, us_per_row_token: float, n_prefix: int,
           check: int = 50, bucket: int = 16, max_tokens: int = 128) -> dict:
    """Modelled seconds, rebuilds and steps of one job's batch under `rule`."""
    texts = [(length_steps(x), x["total_steps"]) for x in lines]
    here, step, built_at, rebuilds, ms = list(range(len(texts))), 0, 0, 0, 0.0
    feed = _feed_tokens(lines[0]["start_tokens"], max_tokens, bucket)

    def step_ms(rows, width):
        return fixed_ms + us_per_row_token * 1e-3 * rows * width
    while True:
        width = feed + n_prefix
        ms += check * step_ms(len(here), width)
        step += check
        live = [i for i in here if texts[i][1] > step]
        if not live:
            return {"seconds": ms / 1000, "rebuilds": rebuilds, "steps": step}
        want = _feed_tokens(max(length_at(texts[i][0], step) for i in live), max_tokens, bucket)
        if rule == "half":
            shrink = len(live) <= len(here) // 2
        else:
            shrink = fast.worth_rebuilding(len(here), len(live), width, step - built_at, 10**9)
        if shrink or feed_moved(want, feed, bucket):
            here, feed, built_at, rebuilds = live, want, step, rebuilds + 1
            ms += fast.rebuild_row_tokens(len(here), feed + n_prefix) * us_per_row_token * 1e-3


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("raw", help="a raw_2026 lines file (.jsonl or .jsonl.gz)")
    p.add_argument("out", help="JSON file to write")
    p.add_argument("--fixed-ms", type=float, default=4.8, help="a step's fixed cost (default 4.8 ms)")
    p.add_argument("--us-per-row-token", type=float, default=2.1, help="a step's cost a row-token (default 2.1 us)")
    a = p.parse_args(argv)
    opener = gzip.open if a.raw.endswith(".gz") else open
    jobs = defaultdict(list)
    with opener(a.raw, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            jobs[row["job"]].append(row)
    result = {"raw": a.raw, "fixed_ms": a.fixed_ms, "us_per_row_token": a.us_per_row_token,
              "capture_row_tokens": fast.CAPTURE_ROW_TOKENS, "jobs": []}
    for job, lines in sorted(jobs.items()):
        entry = {"job": job, "texts": len(lines), "recorded_seconds": lines[0]["job_seconds"]}
        n_prefix = CramSettings.from_preset("progressive-2026", layout=lines[0]["layout"]).n_prefix
        for rule in RULES:
            entry[rule] = replay(lines, rule, fixed_ms=a.fixed_ms, us_per_row_token=a.us_per_row_token,
                                 n_prefix=n_prefix)
        result["jobs"].append(entry)
        print(f"{job}: recorded {entry['recorded_seconds']:.1f} s; modelled, half rule "
              f"{entry['half']['seconds']:.1f} s ({entry['half']['rebuilds']} rebuilds), priced rule "
              f"{entry['priced']['seconds']:.1f} s ({entry['priced']['rebuilds']} rebuilds)")
    totals = {k: sum(j[k]["seconds"] if k in RULES else j[k] for j in result["jobs"])
              for k in ("recorded_seconds", *RULES)}
    result["totals"] = totals
    print(f"together: recorded {totals['recorded_seconds']:.1f} s; modelled {totals['half']:.1f} s (half) and "
          f"{totals['priced']:.1f} s (priced), {totals['priced'] / totals['half']:.3f}x")
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
