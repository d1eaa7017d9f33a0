"""Helpers for the notebook fixtures in conftest.py: the nbval command and a process read later.

Kept out of conftest.py so that tests/test_notebooks.py can import them (a test module importing
conftest is fragile).
"""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# Two notebooks at a time (one CPU thread per kernel where the CPU has two cores): ~1.6x the throughput.
SERIES_JOBS = max(1, min(4, os.cpu_count() or 1))

# Which notebooks `make test` runs with the embedded model (fast mode) and asserts on: every notebook whose
# lesson it checks (03, 05, 06, 08) and the light ones. 04, 07 and 09 teach no figure `make test` asserts;
# there they run in smoke mode (tiny model, every cell), and in fast mode with their figure tests in
# `make test-slow`. Why: on a 2-core CPU the fast series is most of `make test`, and these three were 39 %
# of it: 563 of 1,451 s (docs/performance.md, "CPU: `make test`").
FAST_IN_MAKE_TEST = ("00_welcome", "01_bits_in_a_vector", "02_how_surprising_is_text", "03_first_cram",
                     "05_capacity_is_entropy", "06_more_vectors", "08_beyond")
FAST_IN_SLOW_TIER = ("04_how_many_tokens_fit", "07_gpu_scale", "09_in_practice")


def series_command(mode: str, names, out: Path, jobs: int = SERIES_JOBS) -> list[str]:
    """`cramlab notebooks run` for the named notebooks, as learners run it."""
    return [sys.executable, "-m", "cramlab", "notebooks", "run", f"--{mode}", "--only", ",".join(names),
            "--jobs", str(jobs), "--notebooks", str(NOTEBOOKS), "--out", str(out)]


def checked_notebooks() -> list[Path]:
    """The notebooks with at least one cell whose output nbval compares (`# NBVAL_CHECK_OUTPUT`)."""
    import nbformat

    from cramlab.lab.notebook_runner import CHECKED_OUTPUT_MARK, find_notebooks
    return [p for p in find_notebooks(NOTEBOOKS)
            if any(c.source.startswith(CHECKED_OUTPUT_MARK) for c in nbformat.read(p, as_version=4).cells)]


def nbval_command(folder: Path) -> list[str]:
    shutil.copy(NOTEBOOKS / "nbval_sanitize.cfg", folder / "nbval_sanitize.cfg")
    return [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(folder / "nbval_sanitize.cfg"), "-p", "no:cacheprovider",
            "-q", "--rootdir", str(folder), "-o", "addopts=", str(folder)]


def nbval(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(nbval_command(folder), capture_output=True, text=True, cwd=folder, timeout=1200)


class Background:
    """A command started now and read later (its output goes to files: a full pipe would stall it), in its
    own process group so that `stop()` ends it with everything it started (notebook kernels included)."""

    def __init__(self, command, cwd: Path, env: dict):
        self.out, self.err = cwd / "stdout.txt", cwd / "stderr.txt"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True, env=env,
                                         start_new_session=True)

    def result(self, timeout_s: float) -> subprocess.CompletedProcess:
        self.proc.wait(timeout=timeout_s)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, self.out.read_text(),
                                           self.err.read_text())

    def stop(self):
        """End the group if it still runs (a test run stopped early must not wait minutes for it)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
