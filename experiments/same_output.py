"""Does the package still print what an older revision printed? The learner's commands, old and new, side by side.

    python experiments/same_output.py 3e6ad70 OUT.json   (recorded: docs/data/redesign_same_output_2026-11-28.json)

Takes the package as it was at a git revision (`git archive`, nothing installed), runs the same `cramlab`
commands on the bundled texts with it and with the working tree (same Python, same dependencies, same
embedded model, CPU, float32), and compares their JSON output field by field. Timing fields (`seconds`,
`finished_at`) and file paths are left out; histories are compared at the steps both sides sampled. A field
that only one side prints is listed, not failed: a redesign may add fields, it must not change the ones both
print. A difference made on purpose is listed with its reason (`explained`), not failed. Exit code 1 when a
shared field differs for no listed reason.

Written for issue 10 (the one-loop / one-settings-object redesign): its "same CLI output on the bundled texts"
is this script run against the last commit before the redesign (3e6ad70).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORED = {"seconds", "path", "file", "output", "out", "finished_at"}   # wall time and where files went

TEXT = "The old lighthouse keeper counted every ship that passed the rocks at night"
CRAM = ["--no-progress", "--json", "--device", "cpu"]
# (name, argv): each prints JSON on stdout; {out} is a fresh folder per side
COMMANDS = [
    ("capacity", ["capacity", "--model", "smollm2-135m", "--json"]),
    ("cram unseen sink-first/pc", ["cram", "--source", "unseen", "--n-tokens", "8", "--n-texts", "2",
                                   "--max-steps", "60", "--lr", "0.05", "--seed", "0", *CRAM]),
    ("cram unseen mem-first/hc", ["cram", "--source", "unseen", "--n-tokens", "8", "--n-texts", "2",
                                  "--max-steps", "60", "--lr", "0.05", "--seed", "0", "--layout", "mem-first",
                                  "--protocol", "hc", *CRAM]),
    ("cram own text, 2 vectors", ["cram", "--text", TEXT, "--n-tokens", "10", "--n-mem", "2", "--max-steps", "40",
                                  "--lr", "0.05", "--seed", "1", "--out", "{out}/cram", *CRAM]),
    ("decode the saved vectors", ["decode", "{out}/cram/*.safetensors", "--json"]),
    ("search grid", ["search", "grid", "--source", "unseen", "--lengths", "6,10", "--n-texts", "2",
                     "--max-steps", "50", "--lr", "0.1", "--seed", "0", "--device", "cpu", "--json"]),
    ("sweep", ["sweep", "--out", "{out}/sweep.jsonl", "--models", "smollm2-135m", "--sources", "unseen",
               "--lengths", "6,10", "--n-texts", "2", "--max-steps", "50", "--lr", "0.1", "--layouts",
               "sink-first,mem-first", "--device", "cpu"]),
    ("report", ["report", "{out}/sweep.jsonl", "--json"]),
]


def package_at(revision: str, into: Path) -> Path:
    """The tree of `revision` (its cramlab/ package and data) unpacked into a folder."""
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), revision], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into / "tree", filter="data")
    return into / "tree"


def run(tree: Path, argv: list[str], out: Path) -> tuple[object, float, str]:
    """One command with `tree`'s package first on the path (-P: not the current folder); JSON, seconds, stderr."""
    args = [_expand(a.replace("{out}", str(out))) for a in argv]
    env = dict(os.environ, PYTHONPATH=str(tree), TOKENIZERS_PARALLELISM="false")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-P", "-m", "cramlab", *args], capture_output=True, text=True,
                          env=env, cwd=out, check=False)
    seconds = time.perf_counter() - t0
    if argv[0] == "sweep":        # prints progress, not JSON: its product is the results file
        lines = (out / "sweep.jsonl").read_text().splitlines() if (out / "sweep.jsonl").exists() else []
        return [json.loads(x) for x in lines], seconds, proc.stderr[-400:]
    try:
        return json.loads(proc.stdout), seconds, proc.stderr[-400:]
    except json.JSONDecodeError:
        return {"exit_code": proc.returncode, "stdout": proc.stdout[-400:]}, seconds, proc.stderr[-400:]


def _expand(arg: str) -> str:
    """An argument with a `*` names the first file it matches (e.g. the vector file a cram wrote)."""
    if "*" not in arg:
        return arg
    matches = sorted(Path(arg).parent.glob(Path(arg).name))
    return str(matches[0]) if matches else arg


def flatten(value, prefix="") -> dict:
    """{'a.0.b': leaf}; ignored keys left out at any depth. A `history` ([step, loss, acc] rows) is keyed by
    its steps, so that two sides sampling it at different steps are compared where both sampled."""
    if prefix.endswith("history.") and isinstance(value, list) and all(
            isinstance(r, list) and len(r) == 3 for r in value):
        return {f"{prefix}step {r[0]}.{i}": x for r in value for i, x in enumerate(r[1:], 1)}
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() if key not in IGNORED
                for k, v in flatten(sub, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, sub in enumerate(value) for k, v in flatten(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def explained(key: str, before, after) -> str | None:
    """Why a field differs on purpose (a deliberate change, named), or None: a difference to fail on."""
    field = key.rsplit(".", 1)[-1]
    if field == "settings_digest":
        return "the digest hashes the settings object, which records more fields than the old settings dict"
    if field == "stop_reason" and (before, after) == ("patience", "max_steps"):
        return ("an unset patience now means no patience (CramSettings); the old loop set it to max_steps, so a text "
                "that had not improved since step 0 when its budget ran out was labelled 'patience'")
    return None


def sweep_key(line: dict) -> tuple:
    """A sweep's lines come in the order jobs finish: compare them by job, not by position."""
    return tuple(str(line.get(k)) for k in ("model", "source", "layout", "protocol", "n_mem", "n_tokens", "text_id"))


def compare(before, after) -> dict:
    if isinstance(before, list) and before and isinstance(before[0], dict) and "text_id" in before[0] \
            and "layout" in before[0] and isinstance(after, list):
        before, after = sorted(before, key=sweep_key), sorted(after, key=sweep_key)
    a, b = flatten(before), flatten(after)
    shared = sorted(set(a) & set(b))
    differ = {k: [a[k], b[k]] for k in shared if a[k] != b[k]}
    reasons = {k: explained(k, *v) for k, v in differ.items()}
    return {"shared_fields": len(shared), "differing": {k: v for k, v in differ.items() if not reasons[k]},
            "differing_on_purpose": {k: [*v, reasons[k]] for k, v in differ.items() if reasons[k]},
            "only_before": sorted(set(a) - set(b)), "only_after": sorted(set(b) - set(a))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("revision", help="the git revision to compare with (e.g. the commit before a redesign)")
    p.add_argument("out", help="JSON report")
    p.add_argument("--only", action="append", default=[], help="run only the commands of this name (repeat)")
    args = p.parse_args(argv)
    commands = [c for c in COMMANDS if not args.only or c[0] in args.only]
    with tempfile.TemporaryDirectory(prefix="cramlab-same-") as tmp_name:
        tmp = Path(tmp_name)
        old_tree = package_at(args.revision, tmp)
        sides = {"before": (old_tree, tmp / "before"), "after": (ROOT, tmp / "after")}
        for _, out in sides.values():
            out.mkdir()
        rows, ok = [], True
        for name, argv_ in commands:
            outputs = {side: run(tree, argv_, out) for side, (tree, out) in sides.items()}
            verdict = compare(outputs["before"][0], outputs["after"][0])
            same = not verdict["differing"] and verdict["shared_fields"] > 0
            ok &= same
            rows.append(dict(command=name, argv=argv_, same=same, **verdict,
                             seconds={s: round(o[1], 1) for s, o in outputs.items()},
                             stderr_tail={s: o[2] for s, o in outputs.items() if not same}))
            print(f"{'same' if same else 'DIFFERENT':<9} {name:<28} {verdict['shared_fields']:>4} shared fields, "
                  f"{len(verdict['differing'])} differ ({len(verdict['differing_on_purpose'])} more on purpose), "
                  f"{len(verdict['only_before'])} only before, "
                  f"{len(verdict['only_after'])} only after", flush=True)
    report = dict(revision=args.revision, head=subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short",
                                                               "HEAD"], capture_output=True, text=True, check=False).stdout.strip(),
                  python=sys.version.split()[0], all_same=ok, commands=rows)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"{'all shared fields equal' if ok else 'some shared fields differ'}; report: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
