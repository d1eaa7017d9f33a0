"""Strip outputs from notebooks/*.ipynb except the cells nbval compares (pre-commit's output strip).

Owns: the one exception to "notebooks ship without outputs": cells marked `# NBVAL_CHECK_OUTPUT`
(cramlab.lab.notebook_runner.CHECKED_OUTPUT_MARK) keep their outputs and execution counts, because `make test`
compares them (`make notebooks-outputs` refills them). Everything else is nbstripout's own `strip_output`
(outputs, execution counts, volatile metadata), applied through its per-cell `keep_output` switch.
Does not: run notebooks or touch the .py twins (jupytext's hook syncs those).

    .venv/bin/python tools/strip_outputs.py notebooks/*.ipynb   # rewrites only files that change; exit 1 if any did
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
from nbstripout import strip_output

from cramlab.lab.notebook_runner import CHECKED_OUTPUT_MARK


def strip(path: Path) -> bool:
    """Strip one notebook in place; True when the file changed."""
    before = path.read_text(encoding="utf-8")
    nb = nbformat.reads(before, as_version=nbformat.NO_CONVERT)
    counts = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and CHECKED_OUTPUT_MARK in cell.source:
            cell.metadata["keep_output"] = True          # nbstripout's per-cell switch
            counts[i] = cell.get("execution_count")
    strip_output(nb, keep_output=False, keep_count=False, keep_id=True)
    for i, count in counts.items():
        nb.cells[i].metadata.pop("keep_output", None)
        nb.cells[i]["execution_count"] = count
    if json.loads(before) == json.loads(nbformat.writes(nb)):
        return False                                      # nothing to strip: leave the file's bytes alone
    nbformat.write(nb, str(path))
    return True


def main(argv: list[str]) -> int:
    changed = [p for p in map(Path, argv) if p.suffix == ".ipynb" and strip(p)]
    for p in changed:
        print(f"stripped outputs: {p}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
