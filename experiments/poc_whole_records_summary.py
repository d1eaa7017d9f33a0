"""Summarise a `cramlab poc --per-vector auto` run's documents.jsonl (issue 29: whole records on a GPU).

Reads the per-chunk lines (plain or .gz) and prints, per batch, the cram and decode seconds the lines record
(`encode_seconds` and `decode_seconds` are per chunk, shared by the chunks crammed together), then the exact
rates of chunks and of whole records (a record is exact when all its chunks are), per group, and the steps.
Used for docs/practice.md's whole-records section; writes the figures to OUT.json when given.

    python experiments/poc_whole_records_summary.py docs/data/poc_whole_records_h100_2026-12-06.jsonl.gz [OUT.json]
"""
from __future__ import annotations

import gzip
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def read_lines(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def summarise(lines: list[dict]) -> dict:
    batches: dict = {}
    for r in lines:        # the chunks of one batch share crammed_together and the per-chunk seconds
        key = (r["kind"], r["crammed_together"], r["encode_seconds"], r["decode_seconds"])
        batches[key] = batches.get(key, 0) + 1
    batch_rows = [dict(kind=k, chunks=n, cram_seconds=round(e * n, 1), decode_seconds_one_precision=round(d * n, 1))
                  for (k, n, e, d) in batches]
    docs = [r for r in lines if r["kind"] == "document"]
    by_record = defaultdict(list)
    for r in docs:
        by_record[r["record_id"]].append(r)
    groups = {}
    for g in sorted({r["group"] for r in docs}):
        chunks = [r for r in docs if r["group"] == g]
        records = [v for v in by_record.values() if v[0]["group"] == g]
        groups[g] = dict(records=len(records), chunks=len(chunks),
                         chunks_per_record=round(len(chunks) / len(records), 1),
                         chunk_exact=round(sum(r["greedy_exact"] for r in chunks) / len(chunks), 3),
                         record_exact=round(sum(all(c["greedy_exact"] for c in v) for v in records) / len(records), 3))
    steps = [r["steps"] for r in docs]
    budget = docs[0]["cram_settings"]["max_steps"]
    return dict(
        model=docs[0]["model"], device=docs[0]["device"], model_dtype=docs[0]["model_dtype"],
        tokens_per_chunk=docs[0]["cram_settings"].get("n_tokens") or max(r["n_tokens"] for r in docs),
        cram_settings={k: docs[0]["cram_settings"][k] for k in ("lr", "max_steps", "layout", "protocol", "preset")},
        batches=batch_rows, cram_seconds=round(sum(b["cram_seconds"] for b in batch_rows), 1),
        records=len(by_record), chunks=len(docs), queries=sum(r["kind"] == "query" for r in lines),
        chunk_exact=round(sum(r["greedy_exact"] for r in docs) / len(docs), 3),
        record_exact=round(sum(all(c["greedy_exact"] for c in v) for v in by_record.values()) / len(by_record), 3),
        by_group=groups, steps_mean=round(statistics.mean(steps), 1), steps_median=statistics.median(steps),
        chunks_at_step_budget=sum(s >= budget for s in steps), step_budget=budget)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    s = summarise(read_lines(Path(argv[0])))
    for b in s["batches"]:
        print(f"{b['kind']:8s} {b['chunks']:5d} chunks: cram {b['cram_seconds']:6.1f} s, one precision's decode "
              f"{b['decode_seconds_one_precision']:5.1f} s")
    print(f"{s['records']} records in {s['chunks']} chunks (+{s['queries']} queries) on {s['device']} "
          f"({s['model_dtype']}): cram {s['cram_seconds']} s; chunks exact {s['chunk_exact']}, whole records exact "
          f"{s['record_exact']}; steps mean {s['steps_mean']} (median {s['steps_median']}), "
          f"{s['chunks_at_step_budget']} chunks stopped at the {s['step_budget']}-step budget")
    for g, v in s["by_group"].items():
        print(f"  {g:11s} {v['records']} records, {v['chunks_per_record']} chunks each: chunks exact "
              f"{v['chunk_exact']}, records exact {v['record_exact']}")
    if len(argv) > 1:
        Path(argv[1]).write_text(json.dumps(s, indent=1), encoding="utf-8")
    return s


if __name__ == "__main__":
    main()
