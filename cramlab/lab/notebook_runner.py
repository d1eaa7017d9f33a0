"""Run the notebook series as a regression check: `cramlab notebooks run [--fast] [--out DIR] [--only NN]`.

Every notebook has a cell tagged `parameters` right after its imports (papermill injects new values after
it). Its fast budget is defined once, in the notebook, by a cell tagged `fast` right after it:

    if fast:                                            # `fast = True` by hand, or `--fast` (papermill)
        n_tokens, max_steps = 8, 300

so `--fast` only passes `fast=True` (`fast_values` reads the cell for tests and summaries; parameters
given with `-p` win over it). Every notebook of the series does so (tests/test_notebook_sources.py); a
notebook without a `fast` cell may still keep a fast budget in its metadata, which papermill injects. The
smoke budget lives there:

    metadata["cramlab"] = {"fast_parameters": {...},    # only for notebooks without a `fast` cell
                           "smoke_parameters": {...}}   # seconds-long mechanics check (nbval test)

Notebooks record the figures that matter with `Recorder(record_path)` (or `record(name, value)`); the
runner points `record_path` at `<out>/<notebook>.figures.json` and copies the figures into `summary.json`,
so every number in the summary comes from the run.

Solutions are markdown `<details>` blocks holding a ```python block (Run All never runs them); the runner
executes each one where it stands, as a code cell tagged `solution`, so every reference answer passes its
check in every regression run.

Owns: finding, preparing and executing notebooks (papermill), their parameters and budgets (reading the
`fast` cell), the solution blocks, the figures they record (`Recorder`, `record`) and summary.json.
Does not own: the notebooks' content or
the command line (cramlab.cli.notebooks).
"""
from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from cramlab.errors import BadInputError, writable_folder

RECORD_ENV = "CRAMLAB_RECORD_PATH"
FAST_TAG = "fast"
MODES = ("full", "fast", "smoke")
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 1800


# --- recording figures from inside a notebook -----------------------------------------------------------

def _plain(value: Any) -> Any:
    """JSON-ready copy of a value (numpy / torch scalars become Python numbers; NaN becomes None)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    return str(value)


class Recorder:
    """Keeps the figures a notebook wants reported; writes them to `path` (JSON) after every call.

    `path` empty: $CRAMLAB_RECORD_PATH if set, else the figures stay in memory (`.figures`).
    """

    def __init__(self, path: str | os.PathLike | None = None):
        path = path or os.environ.get(RECORD_ENV) or None
        self.path = Path(path) if path else None
        self.figures: dict[str, Any] = {}
        if self.path is not None and self.path.is_file():
            self.figures = read_figures(self.path)

    def __call__(self, name: str, value: Any) -> None:
        if not isinstance(name, str) or not name:
            raise BadInputError(f"a recorded figure needs a non-empty name, got {name!r}")
        self.figures[name] = _plain(value)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(json.dumps(self.figures, indent=1))
            tmp.replace(self.path)


def record(name: str, value: Any, path: str | os.PathLike | None = None) -> None:
    """Record one figure into the JSON file `path` (default: $CRAMLAB_RECORD_PATH)."""
    Recorder(path)(name, value)


def read_figures(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        return {}
    return json.loads(path.read_text() or "{}")


# --- finding and running notebooks ----------------------------------------------------------------------

def default_notebook_dir() -> Path:
    """`notebooks/` of the current folder, else of the source checkout this package was installed from."""
    here = Path.cwd() / "notebooks"
    if here.is_dir():
        return here
    return Path(__file__).resolve().parents[2] / "notebooks"


def find_notebooks(notebook_dir: str | os.PathLike | None = None, only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks `NN_topic.ipynb`, in order; `only` keeps those whose number or name matches."""
    folder = Path(notebook_dir) if notebook_dir else default_notebook_dir()
    if not folder.is_dir():
        raise BadInputError(f"notebook folder {folder} not found; run from the repository root or pass --notebooks")
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = [str(o).strip() for item in only for o in str(item).split(",") if str(o).strip()]
        keep = [p for p in paths if any(p.stem == w or p.stem.startswith(w.zfill(2) + "_") or p.name == w
                                        for w in wanted)]
        missing = [w for w in wanted if not any(p.stem == w or p.stem.startswith(w.zfill(2) + "_") or p.name == w
                                                for p in paths)]
        if missing:
            raise BadInputError(f"no notebook matches {', '.join(missing)}; have {', '.join(p.stem for p in paths)}")
        paths = keep
    if not paths:
        raise BadInputError(f"no numbered notebooks (NN_topic.ipynb) in {folder}")
    return paths


def notebook_parameters(path: str | os.PathLike, mode: str = "full") -> dict:
    """The parameters papermill injects for a mode, from the notebook's metadata ({} for `full`; for `fast`,
    {} when the notebook defines its fast budget in its own `fast` cell: then `fast=True` is all it gets)."""
    if mode not in MODES:
        raise BadInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "full":
        return {}
    meta = json.loads(Path(path).read_text()).get("metadata", {}).get("cramlab", {})
    return dict(meta.get(f"{mode}_parameters", {}))


def _tagged_cell_source(path: str | os.PathLike, tag: str) -> str | None:
    """The source of the notebook's first cell tagged `tag` (None without one)."""
    nb = json.loads(Path(path).read_text())
    cell = next((c for c in nb.get("cells", []) if tag in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        return None
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _literal_values(path: str | os.PathLike, stmts: list, where: str) -> dict[str, Any]:
    """{name: value} of assignments of literals (`a = 1`, `a, b = 1, [2, 3]`); anything else is a one-line error
    naming `where` in the notebook."""
    values: dict[str, Any] = {}
    for stmt in stmts:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1):
            raise BadInputError(f"{Path(path).name}: the {where} may only assign literal values, "
                                f"got {ast.unparse(stmt)!r}")
        target = stmt.targets[0]
        names = [target] if isinstance(target, ast.Name) else list(getattr(target, "elts", []))
        try:
            value = ast.literal_eval(stmt.value)
        except ValueError:
            raise BadInputError(f"{Path(path).name}: the {where}'s {ast.unparse(stmt)!r} is not a literal; "
                                "write the value itself") from None
        if len(names) == 1 and isinstance(target, ast.Name):
            values[target.id] = value
        elif all(isinstance(n, ast.Name) for n in names) and isinstance(value, tuple) and len(value) == len(names):
            values.update({n.id: v for n, v in zip(names, value)})
        else:
            raise BadInputError(f"{Path(path).name}: cannot read {ast.unparse(stmt)!r} in the {where}; "
                                "assign names to literals (`a, b = 1, 2`)")
    return values


def fast_values(path: str | os.PathLike) -> dict:
    """The values the notebook's `fast` cell sets under `if fast:` ({} without such a cell); only literal
    assignments (`a, b = 1, [2, 3]`) are read, anything else is a one-line error naming the cell."""
    source = _tagged_cell_source(path, FAST_TAG)
    if source is None:
        return {}
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "fast":
            values |= _literal_values(path, node.body, "`fast` cell")
    return values


def full_values(path: str | os.PathLike) -> dict:
    """The values a full-size run uses: the literal assignments of the notebook's `parameters` cell (what Run All
    runs with `fast = False`), without `fast` and `record_path`. The counterpart of `fast_values`."""
    source = _tagged_cell_source(path, "parameters")
    if source is None:
        return {}
    stmts = [node for node in ast.parse(source).body if isinstance(node, ast.Assign)]
    values = _literal_values(path, stmts, "parameters cell")
    return {k: v for k, v in values.items() if k not in ("fast", "record_path")}


SOLUTION_BLOCK = re.compile(r"<details><summary>Solution[^<]*</summary>\s*```python\n(.*?)```\s*</details>", re.DOTALL)


def solution_blocks(markdown: str) -> list[str]:
    """The code of every `<details><summary>Solution ...</summary> ```python ...``` </details>` block."""
    return [code.rstrip() + "\n" for code in SOLUTION_BLOCK.findall(markdown)]


def _prepared_copy(path: Path, out_path: Path, overrides: dict, solutions: bool) -> Path:
    """The notebook as the runner executes it, or `path` itself when nothing changes:
    - after its `fast` cell, a cell setting `overrides` again, so that values given with `-p` win over the
      fast budget (papermill injects them before the `fast` cell);
    - with `solutions`, each solution block (markdown, never run by Run All) followed by a code cell tagged
      `solution` holding its code, so the regression run executes every reference answer and its check."""
    import nbformat
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if overrides and FAST_TAG in cell.metadata.get("tags", []):
            lines = ["# parameters given to the runner: they win over the fast budget above"]
            lines += [f"{name} = {value!r}" for name, value in overrides.items()]
            cells.append(nbformat.v4.new_code_cell("\n".join(lines), metadata={"tags": ["runner-overrides"]}))
        if solutions and cell.cell_type == "markdown":
            cells += [nbformat.v4.new_code_cell(code, metadata={"tags": ["solution"]})
                      for code in solution_blocks(cell.source)]
    if len(cells) == len(nb.cells):
        return path
    nb.cells = cells
    out_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out_path)
    return out_path


def declared_parameters(path: str | os.PathLike) -> dict:
    """Names and default values of the `parameters` cell (papermill's reading of it)."""
    import papermill
    return {name: info.get("default") for name, info in papermill.inspect_notebook(str(path)).items()}


@contextlib.contextmanager
def _environment(**values):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prepare_notebook(path, out_path, parameters: dict) -> Path:
    """Write a copy of the notebook with `parameters` injected, without running it (for nbval)."""
    import papermill
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(path), str(out_path), parameters=parameters, prepare_only=True,
                               kernel_name=KERNEL_NAME, progress_bar=False)
    return out_path


CHECKED_OUTPUT_MARK = "# NBVAL_CHECK_OUTPUT"


def refresh_checked_outputs(path) -> int:
    """Run a notebook in smoke mode and store, in the notebook itself, the outputs of its cells marked
    `# NBVAL_CHECK_OUTPUT` (the only outputs committed: nbval compares them). Returns how many."""
    import tempfile

    import nbformat
    import papermill
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        papermill.execute_notebook(str(path), str(out), parameters=notebook_parameters(path, "smoke"),
                                   kernel_name=KERNEL_NAME, cwd=str(path.parent), progress_bar=False)
        ran = {c.get("id"): c for c in nbformat.read(out, as_version=4).cells}
    nb = nbformat.read(path, as_version=4)
    n = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith(CHECKED_OUTPUT_MARK):
            cell.outputs = [o for o in ran[cell["id"]].outputs if o.get("output_type") == "stream"]
            cell.execution_count = ran[cell["id"]].execution_count   # nbval skips "unrun" cells with outputs
            n += 1
    nbformat.write(nb, path)
    return n


def run_notebook(path, out_dir, *, mode: str = "fast", parameters: dict | None = None,
                 kernel_name: str = KERNEL_NAME, cell_timeout_s: int = CELL_TIMEOUT_S,
                 solutions: bool = True) -> dict:
    """Execute one notebook with papermill; return its summary entry (ok, duration_s, figures, ...).

    Parameters: the mode's (from the notebook's metadata), then `parameters`, then `record_path`; only
    names the notebook declares are passed (others are reported in `ignored_parameters`). `solutions`:
    run every solution block too, where it stands (the learner's Run All never does).
    """
    import papermill
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = (out_dir / f"{path.stem}.figures.json").resolve()
    record_path.unlink(missing_ok=True)
    declared = declared_parameters(path)
    wanted = notebook_parameters(path, mode) | dict(parameters or {}) | {"record_path": str(record_path)}
    if "fast" in declared:
        wanted.setdefault("fast", mode == "fast")     # smoke mode sets every value itself: no fast budget
    passed = {k: v for k, v in wanted.items() if k in declared}
    fast_budget = fast_values(path) if passed.get("fast") else {}
    overrides = {k: v for k, v in (parameters or {}).items() if k in fast_budget}
    source = _prepared_copy(path, out_dir / ".inputs" / path.name, overrides, solutions)
    ignored = sorted(k for k in wanted if k not in declared and k != "record_path")
    out_nb = out_dir / path.name
    entry: dict[str, Any] = {"notebook": path.name, "mode": mode, "parameters": passed, "ok": False,
                             "duration_s": None, "error": None, "output": str(out_nb)}
    if ignored:
        entry["ignored_parameters"] = ignored
    if fast_budget:
        entry["fast_values"] = fast_budget | overrides
    t0 = time.perf_counter()
    try:
        # Plain mime bundles, not plotly.js once per kernel, and no widget state (the FigureWidget's state
        # carries the whole plotly.js bundle): keeps executed notebooks small.
        with _environment(PLOTLY_RENDERER="plotly_mimetype", TOKENIZERS_PARALLELISM="false",
                          **{RECORD_ENV: str(record_path)}):
            papermill.execute_notebook(str(source), str(out_nb), parameters=passed, kernel_name=kernel_name,
                                       cwd=str(path.parent), progress_bar=False, log_output=False,
                                       execution_timeout=cell_timeout_s, store_widget_state=False)
        entry["ok"] = True
    except papermill.PapermillExecutionError as exc:
        entry["error"] = f"cell {exc.exec_count}: {exc.ename}: {str(exc.evalue).splitlines()[0] if exc.evalue else ''}"
    except Exception as exc:  # noqa: BLE001 - a broken notebook is reported, the series goes on
        entry["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    entry["duration_s"] = round(time.perf_counter() - t0, 2)
    if solutions and out_nb.exists():
        # A learner's Run All never runs the solutions: their cells' time, measured in this same run, is
        # reported apart so that a header can quote Run All (duration_s - solutions_s).
        entry["solutions_s"] = round(solution_seconds(out_nb), 2)
    entry["figures"] = read_figures(record_path)
    return entry


def solution_seconds(executed: Path) -> float:
    """Seconds papermill recorded for the cells tagged `solution` of an executed notebook."""
    import nbformat
    nb = nbformat.read(executed, as_version=4)
    return sum((c.metadata.get("papermill") or {}).get("duration") or 0.0 for c in nb.cells
               if "solution" in c.metadata.get("tags", []))


def run_series(notebook_dir=None, out_dir="runs/notebooks", *, mode: str = "fast", only=None,
               parameters: dict | None = None, kernel_name: str = KERNEL_NAME, echo=print,
               jobs: int = 1) -> dict:
    """Run the numbered notebooks; write `<out_dir>/summary.json` and return it (entries in series order).

    `jobs` > 1 runs that many notebooks at once, each kernel with its share of the CPU's threads. On a
    small CPU a step of the embedded model is mostly fixed cost (reading the weights), so two one-thread
    kernels do about 1.7x the work of one two-thread kernel (2 cores: 0.49 s/step each, against 0.42 s
    for one kernel alone; experiments/cpu_step_threads.py, docs/data/cpu_step_threads_2026-11-28.json).
    Several at a time, the last notebook starts first (the heavy ones lead); summary.json is rewritten as each
    one finishes and always lists the notebooks in series order.
    """
    if mode not in MODES:
        raise BadInputError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(jobs, int) or jobs < 1:
        raise BadInputError(f"jobs must be a whole number >= 1, got {jobs!r}; use --jobs 1 to run one at a time")
    paths = find_notebooks(notebook_dir, only)
    out_dir = writable_folder(out_dir)
    summary: dict[str, Any] = {"mode": mode, "fast": mode != "full", "notebooks": {}, "ok": False,
                               "total_duration_s": None, "jobs": jobs}
    t0 = time.perf_counter()

    def finished(path, entry):
        done = summary["notebooks"] | {path.stem: entry}
        summary["notebooks"] = {p.stem: done[p.stem] for p in paths if p.stem in done}      # series order
        if echo:
            status = "ok" if entry["ok"] else f"FAILED: {entry['error']}"
            echo(f"  {path.name}: {status}  ({entry['duration_s']:.0f} s, {len(entry['figures'])} figures)",
                 flush=True)
        summary["total_duration_s"] = round(time.perf_counter() - t0, 2)
        summary["ok"] = all(e["ok"] for e in summary["notebooks"].values())
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))

    if jobs == 1 or len(paths) < 2:
        for path in paths:
            if echo:
                echo(f"running {path.name} ({mode}) ...", flush=True)
            finished(path, run_notebook(path, out_dir, mode=mode, parameters=parameters, kernel_name=kernel_name))
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from multiprocessing import get_context
        threads = max(1, (os.cpu_count() or 1) // jobs)
        if echo:
            echo(f"running {len(paths)} notebooks ({mode}), {jobs} at a time, {threads} thread(s) each ...",
                 flush=True)
        # Worker processes (not threads): papermill's kernel gets its environment from os.environ.
        # Last notebook first: the series gets heavier as it goes (00-02 take seconds, 03-09 minutes), so the
        # heavy ones start at once and the light ones fill the end instead of one heavy notebook running alone
        # (the fast series on 2 cores: 00 first would leave a core idle for about a minute at the end).
        with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(_run_in_worker, path, out_dir, mode, parameters, kernel_name, threads): path
                       for path in reversed(paths)}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    return summary


def _run_in_worker(path, out_dir, mode, parameters, kernel_name, threads: int) -> dict:
    """One notebook in a worker process whose kernels use `threads` CPU threads."""
    os.environ.update({k: str(threads) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")})
    return run_notebook(path, out_dir, mode=mode, parameters=parameters, kernel_name=kernel_name)
