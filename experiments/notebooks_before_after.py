"""Do the notebooks record the same figures with an older package? Two folders of `cramlab notebooks run` output, compared.

    python experiments/notebooks_before_after.py OUT.json --before DIR [DIR ...] --after DIR [DIR ...]

Each DIR is an `--out` folder of `cramlab notebooks run`: it holds `<notebook>.figures.json`, the figures the
notebook recorded. Run the same notebooks (an older revision's, so that both packages can run them) once with
each package, e.g. for issue 10 with 3e6ad70, the last commit before the redesign:

    git archive 3e6ad70 | tar -x -C OLD
    cd OLD && PYTHONPATH=OLD python -P -m cramlab notebooks run --fast --out before
    PYTHONPATH=REPO python -P -m cramlab notebooks run --fast --notebooks OLD/notebooks --out after

(same kernel threads on both sides: CPU matmuls may round differently with another thread count). Figures
are compared exactly; wall times (names containing `seconds`) are left out. A figure that differs on purpose
(a later issue's deliberate change, `ON_PURPOSE`) is listed with its reason, not counted as a difference.
Exit code 1 when some figure both sides recorded differs for no listed reason.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: (notebook, figure) -> why it differs on purpose. Keys name the notebook by its number.
ON_PURPOSE = {
    ("02", "random_bits_per_token"): "issue 11: random texts are words from the 100k word list (a new source)",
    ("05", "random_mean_gain_nats"): "issue 11: new random source",
    ("05", "random_predicted_tokens"): "issue 11: new random source",
    ("05", "slope"): "fitted over unseen and random texts: issue 11's new random source",
    ("05", "constant_gain_nats"): "fitted over unseen and random texts: issue 11's new random source",
    ("05", "unseen_predicted_tokens"): "C / CE per token, with C fitted over unseen and random texts (issue 11)",
    ("07", "progressive"): "issue 13: progressive cramming runs on the growing engine (compaction, decode)",
    ("08", "peak_mem_layer"): "attention on the vector of 08's progressive run: issues 11 and 13 changed that run "
                              "(growing engine, converged texts frozen), so its vectors differ; its token counts do not",
    ("08", "peak_mem_share"): "as peak_mem_layer",
}


def figures(dirs: list[Path]) -> dict[str, dict]:
    """{notebook stem: figures} from every `*.figures.json` in the folders (a later folder wins)."""
    found: dict[str, dict] = {}
    for d in dirs:
        for path in sorted(Path(d).glob("*.figures.json")):
            found[path.name.removesuffix(".figures.json")] = json.loads(path.read_text())
    return found


def compare(before: dict, after: dict, notebook: str) -> dict:
    shared = sorted(k for k in set(before) & set(after) if "seconds" not in k)
    differ = [k for k in shared if before[k] != after[k]]
    reasons = {k: ON_PURPOSE.get((notebook[:2], k)) for k in differ}
    return {"shared": len(shared), "differ": [k for k in differ if not reasons[k]],
            "differ_on_purpose": {k: r for k, r in reasons.items() if r},
            "only_before": sorted(set(before) - set(after)), "only_after": sorted(set(after) - set(before)),
            "before": before, "after": after}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--before", nargs="+", type=Path, required=True)
    p.add_argument("--after", nargs="+", type=Path, required=True)
    p.add_argument("--note", default="", help="what was run, recorded in the report")
    args = p.parse_args(argv)
    before, after = figures(args.before), figures(args.after)
    rows = {nb: compare(before[nb], after[nb], nb) for nb in sorted(set(before) & set(after))}
    ok = all(not r["differ"] for r in rows.values())
    for nb, r in rows.items():
        print(f"{'same' if not r['differ'] else 'DIFFERENT':<9} {nb:<28} {r['shared']:>3} figures, "
              f"{len(r['differ'])} differ {r['differ'] or ''} ({len(r['differ_on_purpose'])} more on purpose)")
    missing = sorted(set(before) ^ set(after))
    if missing:
        print(f"recorded by one side only: {', '.join(missing)}")
    Path(args.out).write_text(json.dumps({"note": args.note, "all_same": ok, "one_side_only": missing,
                                          "notebooks": rows}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
