"""The planned move of cramlab's flat modules into folders that show the architecture (issue 27, section 3).

Usage: python tools/move_to_folders.py ROOT [--git]   (ROOT: a checkout that has not been moved; run it once)
Rewrites imports (relative -> absolute, old names -> new), dotted references (`cramlab.cram` ->
`cramlab.engine.plain`, monkeypatch targets included), `cramlab/x.py` path strings in docs, writes each new
package's __init__ docstring, then moves the files (`git mv` with --git). Not applied yet: after it, by hand,
pyproject's package list, the front door's EXPORTS (and the removal of its `__setattr__`, no longer needed once
`cram` and `decode` are no longer module names), a layering test, docs/architecture.md's picture, and
`jupytext --sync` of every notebook. Tried on a scratch copy on 2026-12-06: the unit tests it reached passed.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve()
GIT = "--git" in sys.argv

# old module (under cramlab.) -> new module (under cramlab.)
MOVES = {
    "settings": "engine.settings", "step": "engine.step", "cram": "engine.plain", "fast": "engine.fast",
    "grow": "engine.grow", "kernels": "engine.kernels", "decode": "engine.decode", "vectors": "engine.vectors",
    "models": "models.load", "model_cache": "models.cache", "texts": "models.texts",
    "paper": "science.paper", "surprisal": "science.surprisal", "search": "science.search",
    "report": "science.report", "sweep": "science.sweep", "results_file": "science.results_file",
    "attention": "science.attention", "trajectory": "science.trajectory", "bench": "science.bench",
    "reproduce": "science.reproduce", "reproduce_tables": "science.reproduce_tables", "publish": "lab.publish",
    "practice": "poc.run", "practice_corpus": "poc.corpus", "practice_retrieval": "poc.retrieval",
    "practice_privacy": "poc.privacy", "practice_report": "poc.report",
    "widgets": "lab.widgets", "plots": "lab.plots", "exercises": "lab.exercises",
    "notebook_runner": "lab.notebook_runner", "practice_exercises": "lab.poc_exercises",
}
# new practice_*.py modules that a helper may have added: practice_X -> poc.X
for p in sorted((ROOT / "cramlab").glob("practice_*.py")):
    MOVES.setdefault(p.stem, "poc." + p.stem[len("practice_"):])
MOVES = {k: v for k, v in MOVES.items() if (ROOT / "cramlab" / f"{k}.py").exists()}
PACKAGES = sorted({v.split(".")[0] for v in MOVES.values()})

PACKAGE_DOCS = {
    "engine": "The engine: settings and presets, the one step, its three schedulers (plain, fast, grow), decoding and\n"
              "vector files.\n\nOwns: how a text is crammed into vectors and read back. Does not: load models, choose\n"
              "lengths, aggregate results or draw.\n",
    "models": "Frozen models and exact-N-token texts: loading (embedded GGUF, hub, folders, tiny fixtures), the\n"
              "on-disk cache, the text sources.\n\nOwns: what is crammed into what. Does not: train or report.\n",
    "science": "What is measured and how it is reported: searches (grid, bisection, progressive), sweeps and their\n"
               "results files, reproduce, the Max rule and Table 1, the papers' figures, surprisal, attention,\n"
               "trajectories, the benchmark.\n\nOwns: protocols over the engine and the numbers they give. Does not:\n"
               "define the step (engine) or draw (lab).\n",
    "poc": "The proof of concept on one's own records: reading, cramming, bytes, precision, alternatives, retrieval,\n"
           "privacy, cost and the report (`cramlab poc`).\n\nOwns: the practitioner's question. Does not: define the\n"
           "engine or the papers' science.\n",
    "lab": "The notebook side: widgets, plots, exercises and their checks, the papermill runner.\n\nOwns: drawing\n"
           "and checking. Does not: compute results or define a rule (it calls engine and science).\n",
}
NAMES = "|".join(sorted(MOVES, key=len, reverse=True))


def module_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT)
    if rel.parts[0] != "cramlab":
        return None
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def package_of(path: Path) -> str:
    mod = module_of(path)
    return mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]


def absolutise(text: str, path: Path) -> str:
    """Relative imports of a cramlab module -> absolute, old names."""
    pkg = package_of(path)

    def repl(m):
        dots, rest = m.group(1), m.group(2)
        base = pkg.split(".")
        base = base[: len(base) - (len(dots) - 1)]
        target = ".".join(base + ([rest] if rest else []))
        return f"from {target} import"
    return re.sub(r"\bfrom (\.+)([A-Za-z_][\w.]*)? import", repl, text)


def rename_from_cramlab(text: str) -> str:
    """`from cramlab import a, b as c` where a, b moved -> one line per new package."""
    def repl(m):
        indent, names = m.group(1), m.group(2)
        if names.strip().startswith("("):
            return m.group(0)
        stay, moved = [], {}
        for item in names.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, alias = item.partition(" as ")
            name, alias = name.strip(), alias.strip()
            if name in MOVES:
                pkg, _, base = MOVES[name].rpartition(".")
                alias = alias or (name if base != name else "")
                moved.setdefault(pkg, []).append(base + (f" as {alias}" if alias else ""))
            else:
                stay.append(item)
        lines = []
        if stay:
            lines.append(f"{indent}from cramlab import {', '.join(stay)}")
        for pkg, items in moved.items():
            lines.append(f"{indent}from cramlab.{pkg} import {', '.join(items)}")
        return "\n".join(lines)
    return re.sub(r"^([ \t]*)from cramlab import ([^\n#]+)$", repl, text, flags=re.M)


def rename_dotted(text: str) -> str:
    return re.sub(rf"\bcramlab\.({NAMES})\b", lambda m: "cramlab." + MOVES[m.group(1)], text)


def rename_paths(text: str) -> str:
    return re.sub(rf"\bcramlab/({NAMES})\.py\b", lambda m: "cramlab/" + MOVES[m.group(1)].replace(".", "/") + ".py",
                  text)


def main():
    files = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".md", ".toml", ".yml", ".yaml",
                                                                         ".cfg", ".txt")
             and not any(part in (".venv", ".git", "runs", ".gpu-model", ".whl", "node_modules", "_build")
                         for part in p.relative_to(ROOT).parts)]
    for p in files:
        text = p.read_text(encoding="utf-8")
        new = text
        if p.suffix == ".py" and module_of(p):
            new = absolutise(new, p)
        new = rename_dotted(new)
        new = rename_paths(new)
        if p.suffix == ".py":
            new = rename_from_cramlab(new)
        if new != text:
            p.write_text(new, encoding="utf-8")
    for pkg in PACKAGES:
        (ROOT / "cramlab" / pkg).mkdir(exist_ok=True)
        init = ROOT / "cramlab" / pkg / "__init__.py"
        if not init.exists():
            init.write_text(f'"""{PACKAGE_DOCS[pkg]}"""\n', encoding="utf-8")
    for old, new in MOVES.items():
        src = ROOT / "cramlab" / f"{old}.py"
        dst = ROOT / "cramlab" / (new.replace(".", "/") + ".py")
        if GIT:
            subprocess.run(["git", "mv", str(src), str(dst)], cwd=ROOT, check=True)
        else:
            src.rename(dst)
    for rel, old, new in (("lab/notebook_runner.py", "parents[1]", "parents[2]"),
                          ("poc/privacy.py", "parents[1]", "parents[2]"),
                          ("lab/publish.py", "parents[1]", "parents[2]")):
        f = ROOT / "cramlab" / rel
        if f.exists():
            f.write_text(f.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    print("moved", len(MOVES), "modules into", PACKAGES)


main()
