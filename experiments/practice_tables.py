"""docs/practice.md's verdict, cost, break-even and phase tables, printed from a recorded PoC summary (nothing typed).

    python experiments/practice_tables.py TABLE SUMMARY.json   # verdict_en, verdict_ja, costs, break_even, phases
    python experiments/practice_tables.py --check docs/practice.md   # exit 1 if a table there is stale
    python experiments/practice_tables.py --write docs/practice.md   # reprint every marked table in place

SUMMARY.json is what `cramlab poc ... --json` printed, or the run's report.json (its "summary" is read).
Each table in the page sits under the comment line that printed it, so `--check` reruns that line and compares.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cramlab.poc import verdict as v  # noqa: E402


def load_summary(path: str | Path) -> dict:
    """The run's summary with its costs, break-even and verdict recomputed by today's code from the run's own
    measured figures and prices (a run recorded before a row was added, e.g. zstd's, gets that row too)."""
    data = json.loads((ROOT / path if not Path(path).is_absolute() else Path(path)).read_text(encoding="utf-8"))
    s = data.get("summary", data)
    s["costs"] = v.costs(s, v.CostModel(**s["cost_model"]))
    s["break_even"] = v.break_even(s, s["break_even"]["rows"][0]["d"])
    s["verdict"] = {lang: v.verdict(s, s["costs"], lang) for lang in v.LANGS}
    return s


def _table(head: list[str], body: list[list]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(map(str, b)) + " |"
                                                                          for b in body]


def verdict_en(s: dict) -> list[str]:
    return v.verdict_markdown(s["verdict"]["en"], "en").splitlines()


def verdict_ja(s: dict) -> list[str]:
    return v.verdict_markdown(s["verdict"]["ja"], "ja").splitlines()


def costs(s: dict) -> list[str]:
    body = [[c["representation"], c["machine"], f"{c['bytes_per_record']:,.0f}",
             f"{c['encode_usd_per_1000']:.4f} / {c['encode_usd_per_million']:,.2f}",
             f"{c['decode_usd_per_1000']:.4f} / {c['decode_usd_per_million']:,.2f}",
             f"{c['storage_usd_month_per_million']:.4f}"] for c in s["costs"]]
    return _table(["representation", "machine", "bytes per record", "encode $ per 1,000 / per million",
                   "decode $ per 1,000 / per million", "storage $ per month, per million records"], body)


def break_even(s: dict) -> list[str]:
    body = [[r["point"], f"{r['d']:,}", f"{r['tokens_per_vector']:,.1f}", f"{r['zstd_bytes_for_those_tokens']:,.0f}",
             f"{r['vector_bytes_bf16']:,} / {r['vector_bytes_fp8']:,}",
             f"{r['tokens_to_break_even_bf16']:,.0f} / {r['tokens_to_break_even_fp8']:,.0f}",
             ", ".join(r["storage_wins_at"]) or "none"] for r in s["break_even"]["rows"]]
    return _table(["point", "d", "tokens per vector", "zstd bytes for those tokens", "vector bytes bf16 / fp8",
                   "tokens to break even bf16 / fp8", "storage wins at"], body)


def phases(s: dict) -> list[str]:
    ph = s["phase_seconds"]
    body = [[name, f"{sec:.1f}"] for name, sec in ph.items()] + [["all timed phases", f"{sum(ph.values()):.1f}"]]
    return _table(["phase", "wall seconds"], body)


TABLES = {f.__name__: f for f in (verdict_en, verdict_ja, costs, break_even, phases)}
MARK = re.compile(r"<!-- python experiments/practice_tables.py (\w+) (\S+) -->")


def check(doc: Path) -> list[str]:
    """The tables of `doc` that differ from what their comment's command prints now (empty: all agree)."""
    lines, stale = doc.read_text(encoding="utf-8").splitlines(), []
    for i, line in enumerate(lines):
        m = MARK.fullmatch(line)
        if m:
            table = TABLES[m.group(1)](load_summary(m.group(2)))
            if lines[i + 1:i + 1 + len(table)] != table:
                stale.append(f"{m.group(1)} {m.group(2)}")
    return stale


def write(doc: Path) -> None:
    """Reprint, in place, the table under every marker line of `doc` (a table: the `|` lines after it)."""
    lines, out, i = doc.read_text(encoding="utf-8").splitlines(), [], 0
    while i < len(lines):
        out.append(lines[i])
        m = MARK.fullmatch(lines[i])
        i += 1
        if m:
            while i < len(lines) and lines[i].startswith("|"):
                i += 1
            out += TABLES[m.group(1)](load_summary(m.group(2)))
    doc.write_text("\n".join(out) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--write"]:
        write(Path(argv[1]))
        return 0
    if argv[:1] == ["--check"]:
        stale = check(Path(argv[1]))
        print(f"stale tables in {argv[1]}: {'; '.join(stale)}; reprint them with this script" if stale
              else f"every table of {argv[1]} agrees with its summary file", file=sys.stderr if stale else sys.stdout)
        return 1 if stale else 0
    if len(argv) != 2 or argv[0] not in TABLES:
        print(f"usage: practice_tables.py TABLE SUMMARY.json (TABLE: {', '.join(TABLES)})", file=sys.stderr)
        return 2
    table = TABLES[argv[0]](load_summary(argv[1]))
    print(f"<!-- python experiments/practice_tables.py {argv[0]} {argv[1]} -->", *table, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
