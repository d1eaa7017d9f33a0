"""Mutation check for the core rules: flip one rule at a time in a scratch copy and show which test catches it.

Owns: the list of rules flipped (`MUTANTS`), how each is found in the source (a function, by name, through
`ast`, then one regular expression inside that function's lines), the run of a fixed set of fast tests against
each mutant, and the table of results (printed as Markdown; written to runs/mutation_check.{md,json}).
Does not: change the repository (the copy lives in a temporary folder), run the notebooks or the slow tier.

Each rule is located by a pattern that must match exactly once inside its function; if the code moved or
changed shape the script stops at once with a one-line error naming the rule, the file and the function, so
that the pattern is updated rather than a mutant silently not applied. The unmutated copy is tested first and
must pass: a failure there is the tree's, not a mutant's.

    .venv/bin/python tools/mutation_check.py             # every rule (about 10 min on 2 idle cores)
    .venv/bin/python tools/mutation_check.py --only sink_token --only max_threshold
    .venv/bin/python tools/mutation_check.py --check      # only locate every pattern (seconds)

Exit code: 0 when every mutant was caught, 1 when one survived (the table says which), 2 on a setup error.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The tests run against every mutant, cheapest first (with -x the first failure ends the run), the
# mutation-specific ones (tests/test_bite.py) last so that the table shows which older test bites first.
TESTS = ["tests/test_capacity.py", "tests/test_report.py", "tests/test_models.py", "tests/test_texts.py",
         "tests/test_step.py", "tests/test_cram.py", "tests/test_bite.py"]
MARKERS = "not slow and not notebooks and not browser and not gpu"
# Left out: tests of the tree, not of the rules (the placeholder check would fail a copy for another reason),
# and the six slowest of these files (40-60 s each on 2 cores, three quarters of the set's time): comparisons of
# two schedules that a flipped rule changes on both sides alike.
DESELECT_K = ("not placeholder and not trajectory and not batched_equals_one_by_one and not carry_over and "
              "not engines_agree and not growing_batch_equals and not same_seed_same_results and "
              "not result_is_plain_data")
TIMEOUT_S = 1800
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "runs", "__pycache__", ".pytest_cache", ".ruff_cache",
                                     ".hypothesis", "*.egg-info", ".ipynb_checkpoints", "experiments", "docs")


@dataclass(frozen=True)
class Mutant:
    name: str
    rule: str          # what the rule is, in words
    file: str          # relative to the repository
    function: str      # the function whose body holds the rule ("a|b": whichever of the names exists)
    pattern: str       # a regular expression that must match exactly once inside that function
    replacement: str   # re.sub replacement


MUTANTS = [
    Mutant("max_threshold", "Max: a length fits when mean accuracy >= threshold (flipped to >)",
           "cramlab/science/report.py", "length_fits", r"mean_accuracy\s*>=\s*threshold", "mean_accuracy > threshold"),
    Mutant("retire_check", "retire: a text converges when best accuracy >= target (flipped to >)",
           "cramlab/engine/step.py", "stop_codes|stop_reason", r"(best_acc(?:\.double\(\))?)\s*>=\s*s\.target_accuracy",
           r"\1 > s.target_accuracy"),
    Mutant("scored_positions_pc", "pc scores from the last vector's position (first_pos + 1)",
           "cramlab/engine/step.py", "prepare_group",
           r"n_sink\s*\+\s*s\.n_mem\s*-\s*1\s+if\s+s\.protocol\s*==\s*\"pc\"",
           'n_sink + s.n_mem if s.protocol == "pc"'),
    Mutant("scored_positions_hc", "hc scores from the first text position (first_pos - 1)",
           "cramlab/engine/step.py", "prepare_group", r"else\s+n_sink\s*\+\s*s\.n_mem\s*$",
           "else n_sink + s.n_mem - 1"),
    Mutant("scored_targets_hc", "hc targets are tokens 2..N (flipped to tokens 1..N-1)",
           "cramlab/engine/step.py", "prepare_group", r"else\s+ids\[:,\s*1:\]", "else ids[:, :-1]"),
    Mutant("sink_token", "the sink-first token is <|endoftext|> (flipped to the next id)",
           "cramlab/models/load.py", "sink_token_id", r"return int\(vocab\[\"<\|endoftext\|>\"\]\)",
           'return int(vocab["<|endoftext|>"]) + 1'),
    Mutant("sink_embedding", "the sink embedding is the sink token's row (flipped to the next row)",
           "cramlab/engine/step.py", "prepare_group", r"torch\.tensor\(\[sink_token_id\]",
           "torch.tensor([sink_token_id + 1]"),
    Mutant("capacity_formula", "capacity divides by log2|V| bits a token (flipped to ln|V|)",
           "cramlab/capacity.py", "bits_per_token", r"math\.log2\(vocab_size\)", "math.log(vocab_size)"),
    Mutant("length_grouping", "texts are crammed in groups of one length (flipped: one group for all)",
           "cramlab/engine/plain.py", "cram", r"groups\.setdefault\(len\(row\),", "groups.setdefault(0,"),
]


class SetupError(Exception):
    pass


def function_span(source: str, name: str, path: str) -> tuple[int, int]:
    """(first, last) line numbers (1-based) of the one function called `name` (or one of "a|b") in `source`."""
    names = set(name.split("|"))
    nodes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
             and n.name in names]
    if len(nodes) != 1:
        raise SetupError(f"{path}: expected one function {name}(), found {len(nodes)}; update MUTANTS in "
                         f"{Path(__file__).name}")
    return nodes[0].lineno, nodes[0].end_lineno


def mutate(source: str, m: Mutant) -> str:
    """`source` with the mutant's rule flipped; SetupError when the pattern is not found exactly once."""
    first, last = function_span(source, m.function, m.file)
    lines = source.splitlines(keepends=True)
    body = "".join(lines[first - 1:last])
    new_body, n = re.subn(m.pattern, m.replacement, body, flags=re.MULTILINE)
    if n != 1:
        raise SetupError(f"mutant {m.name}: pattern {m.pattern!r} matched {n} times in {m.file}:{m.function}() "
                         f"(expected 1); the rule moved or changed: update MUTANTS in {Path(__file__).name}")
    out = "".join(lines[:first - 1]) + new_body + "".join(lines[last:])
    ast.parse(out)       # a mutant must still be Python: a syntax error would be caught for the wrong reason
    return out


def run_tests(copy: Path, tests: list[str], timeout_s: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE", "-m", MARKERS, "-k",
           DESELECT_K, *tests]
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"returncode": None, "caught_by": None, "seconds": round(time.monotonic() - t0, 1),
                "summary": f"timed out after {timeout_s} s"}
    out = proc.stdout + proc.stderr
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", out, flags=re.MULTILINE)
    summary = next((line for line in reversed(out.splitlines()) if line.strip()), "")
    return {"returncode": proc.returncode, "caught_by": failed[0] if failed else None,
            "seconds": round(time.monotonic() - t0, 1), "summary": summary, "tail": out[-3000:]}


def check_import_path(copy: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(copy))
    where = subprocess.run([sys.executable, "-c", "import cramlab; print(cramlab.__file__)"], cwd=copy, env=env,
                           capture_output=True, text=True).stdout.strip()
    if not where.startswith(str(copy)):
        raise SetupError(f"the tests would import cramlab from {where!r}, not from the scratch copy {copy}")


def table(rows: list[dict]) -> str:
    out = ["| rule flipped | file:function | caught by (first failing test) | seconds |", "|---|---|---|---|"]
    for r in rows:
        caught = f"`{r['caught_by']}`" if r["caught_by"] else f"**NOT CAUGHT** ({r['summary']})"
        cells = [f"{r['name']}: {r['rule']}", f"{r['file']}:{r['function']}", caught, str(r["seconds"])]
        out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")   # a | inside a cell
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", default=[], help="run only this mutant (repeatable)")
    p.add_argument("--check", action="store_true", help="only locate every rule's pattern, run nothing")
    p.add_argument("--tests", nargs="+", default=TESTS, help="test files, in order (default: %(default)s)")
    p.add_argument("--out", default=str(REPO / "runs" / "mutation_check"), help="writes OUT.md and OUT.json")
    p.add_argument("--timeout-s", type=int, default=TIMEOUT_S, help="per test run")
    args = p.parse_args(argv)
    unknown = set(args.only) - {m.name for m in MUTANTS}
    if unknown:
        print(f"error: unknown mutant(s) {sorted(unknown)}; choose from {[m.name for m in MUTANTS]}",
              file=sys.stderr)
        return 2
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    try:
        originals = {m.file: (REPO / m.file).read_text() for m in chosen}
        mutated = {m.name: mutate(originals[m.file], m) for m in chosen}   # every pattern found, before any run
        if args.check:
            print(f"all {len(chosen)} patterns found once: {', '.join(m.name for m in chosen)}")
            return 0
        with tempfile.TemporaryDirectory(prefix="cramlab-mutants-") as tmp:
            copy = Path(tmp) / "repo"
            shutil.copytree(REPO, copy, ignore=COPY_IGNORE)
            check_import_path(copy)
            base = run_tests(copy, args.tests, args.timeout_s)
            print(f"unmutated copy: {base['summary']} ({base['seconds']} s)", flush=True)
            if base["returncode"] != 0:
                raise SetupError(f"the unmutated copy fails its tests ({base['summary']}): fix the tree first\n"
                                 f"{base.get('tail', '')}")
            rows = []
            for m in chosen:
                target = copy / m.file
                target.write_text(mutated[m.name])
                try:
                    res = run_tests(copy, args.tests, args.timeout_s)
                finally:
                    target.write_text(originals[m.file])
                row = {"name": m.name, "rule": m.rule, "file": m.file, "function": m.function, **res}
                rows.append(row)
                print(f"{m.name:<22} {'caught by ' + res['caught_by'] if res['caught_by'] else 'NOT CAUGHT'} "
                      f"({res['seconds']} s)", flush=True)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    md = table(rows)
    print("\n" + md)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"tests": args.tests, "markers": MARKERS, "deselected": DESELECT_K, "baseline_seconds": base["seconds"],
         "rows": [{k: v for k, v in r.items() if k != "tail"} for r in rows]}, indent=1))
    survivors = [r["name"] for r in rows if not r["caught_by"]]
    if survivors:
        print(f"\nNOT CAUGHT: {', '.join(survivors)}: add a test that fails for each (tests/test_bite.py)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
