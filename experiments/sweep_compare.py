"""Compare sweeps of the same jobs run on one GPU and on several (issue 13's two-GPU target).

    python experiments/sweep_compare.py --label NAME --one A.jsonl [--one B.jsonl] --many C.jsonl
        [--wall-one-ms MS ...] [--wall-many-ms MS] [--seconds-one S ...] [--seconds-many S] [--out FILE.json]

Prints (and with --out writes, appending one JSON object per label to a JSON list) how many jobs have the
same step count, convergence and stop reason in each pair of runs, the converged count and mean accuracy
of each run, the wall and in-process times given on the command line and their ratio, and a compact
per-job table (n_tokens, text_id, steps, converged, accuracy, rank) so the raw result files need not be kept.
"""
from __future__ import annotations

import argparse
import itertools
import json
import statistics
from pathlib import Path


def load(path):
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return {(r["n_tokens"], r["text_id"]): r for r in rows}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True)
    ap.add_argument("--one", action="append", required=True, help="results file of a one-GPU run (repeatable)")
    ap.add_argument("--many", required=True, help="results file of the multi-GPU run")
    ap.add_argument("--wall-one-ms", type=float, nargs="*", default=[])
    ap.add_argument("--wall-many-ms", type=float)
    ap.add_argument("--seconds-one", type=float, nargs="*", default=[])
    ap.add_argument("--seconds-many", type=float)
    ap.add_argument("--command", default="")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    runs = {f"one_gpu_{i}": load(p) for i, p in enumerate(args.one)} | {"many_gpu": load(args.many)}
    keys = set.intersection(*(set(r) for r in runs.values()))
    pairs = {}
    for (na, a), (nb, b) in itertools.combinations(runs.items(), 2):
        pairs[f"{na} vs {nb}"] = {f: sum(a[k][f] == b[k][f] for k in keys)
                                  for f in ("steps", "converged", "stop_reason", "greedy_exact")}
    per_run = {name: {"jobs": len(r), "converged": sum(v["converged"] for v in r.values()),
                      "mean_accuracy": statistics.fmean(v["teacher_forced_accuracy"] for v in r.values())}
               for name, r in runs.items()}
    out = {"label": args.label, "command": args.command, "jobs_in_all": len(keys), "pairs": pairs, "runs": per_run,
           "wall_one_gpu_ms": args.wall_one_ms, "wall_many_gpu_ms": args.wall_many_ms,
           "seconds_one_gpu": args.seconds_one, "seconds_many_gpu": args.seconds_many}
    if args.wall_one_ms and args.wall_many_ms:
        out["wall_ratio"] = statistics.fmean(args.wall_one_ms) / args.wall_many_ms
    if args.seconds_one and args.seconds_many:
        out["in_process_ratio"] = statistics.fmean(args.seconds_one) / args.seconds_many
    print(json.dumps({k: v for k, v in out.items()}, indent=1))
    out["jobs"] = {name: [[k[0], k[1], r[k]["steps"], r[k]["converged"], round(r[k]["teacher_forced_accuracy"], 4),
                           r[k].get("rank")] for k in sorted(keys)] for name, r in runs.items()}
    if args.out:
        path = Path(args.out)
        existing = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps([e for e in existing if e["label"] != args.label] + [out]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
