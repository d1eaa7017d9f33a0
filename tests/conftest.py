"""Shared fixtures: each model is loaded once per test run (load_model caches per process), and the
notebook series runs in the background while the other tests run.

`make test` is CPU-bound on a 2-core machine, and the notebooks' fast series (two kernels at a time) takes
most of it: `make test` runs the notebooks it asserts on in fast mode and 04, 07, 09 in smoke mode; their fast
runs belong to `make test-slow` (notebook_background.FAST_IN_SLOW_TIER says why). Each background run the
selected tests need is started as a process when the session starts (not when the first notebook test asks for
it), and with the notebook tests moved to the end, they overlap the unit tests instead of following them; a
session that ends early kills them. Every process then gets one CPU thread: OpenMP
threads of several processes fighting over two cores waste more than they add.
"""
import json
import os

import pytest
from notebook_background import (
    FAST_IN_MAKE_TEST,
    FAST_IN_SLOW_TIER,
    Background,
    checked_notebooks,
    nbval_command,
    series_command,
)
from repo_scripts import load_script

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# fixture a test asks for -> the background run it waits for (started with the session when some test needs it)
BACKGROUND_OF = {"fast_run": "fast_series", "fast_series": "fast_series", "smoke_run": "smoke_series",
                 "smoke_series": "smoke_series", "smoke_nbval": "smoke_nbval",
                 "fast_run_slow_tier": "slow_tier_series", "slow_tier_series": "slow_tier_series"}
SERIES_FIXTURES = set(BACKGROUND_OF)


def pytest_collection_modifyitems(items):
    """Notebook tests last, those waiting for the background series at the very end (stable order)."""
    def rank(item):
        if not item.get_closest_marker("notebooks"):
            return 0
        return 2 if SERIES_FIXTURES & set(item.fixturenames) else 1
    items.sort(key=rank)


@pytest.fixture(scope="session", autouse=True)
def _notebook_series_in_the_background(request):
    """When notebook tests are selected, start their series now and run the rest on one thread beside it."""
    wanted = set().union(*(set(item.fixturenames) for item in request.session.items))
    if wanted & SERIES_FIXTURES:
        import torch
        os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")   # subprocesses started by tests
        torch.set_num_threads(1)
    for background in dict.fromkeys(BACKGROUND_OF[name] for name in BACKGROUND_OF if name in wanted):
        request.getfixturevalue(background)          # only the runs some selected test waits for


@pytest.fixture(scope="session")
def tiny():
    """A tiny random-weight Llama (test fixture: mechanics only, it cannot be steered)."""
    from cramlab.models.load import load_model
    return load_model("tiny-llama", device="cpu")


@pytest.fixture
def fast_builds(monkeypatch):
    """The fast engine as a GPU runs it, on the CPU: retired texts keep their rows (`keep_retired`) and the
    rebuild rule is priced with no fixed costs (a capture and a step's floor at 0 row-tokens), so a rebuild pays
    as soon as a row retires and a small test sees compaction. Returns the list that every built step appends
    its (rows, scored positions of each row or None when unpadded) to."""
    import functools

    import cramlab.engine.fast as fast_module
    builds = []
    original = fast_module.FastStep.__init__

    def spy(self, lm, g, *args, **kwargs):
        builds.append((g.text_emb.shape[0], None if g.row_scored is None else g.row_scored.tolist()))
        original(self, lm, g, *args, **kwargs)
    monkeypatch.setattr(fast_module, "fast_loop", functools.partial(fast_module.fast_loop, keep_retired=True))
    monkeypatch.setattr(fast_module.FastStep, "__init__", spy)
    with load_script("experiments/gpu_check.py").captures_priced_at_zero():
        yield builds


@pytest.fixture(scope="session")
def embedded():
    """The embedded SmolLM2-135M, fp32 on CPU (loaded once per session)."""
    from cramlab.models.load import load_model
    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def smoke_copies(tmp_path_factory):
    """The notebooks with cells nbval compares (`# NBVAL_CHECK_OUTPUT`), smoke parameters injected
    (papermill, not executed). The others run in full in the fast series; every notebook's smoke run is
    `test_every_notebook_runs_in_smoke_mode` (slow): a kernel per notebook costs ~10 s of CPU, mostly imports."""
    from cramlab.lab.notebook_runner import notebook_parameters, prepare_notebook
    folder = tmp_path_factory.mktemp("nbval")
    for path in checked_notebooks():
        prepare_notebook(path, folder / path.name, notebook_parameters(path, "smoke"))
    return folder


@pytest.fixture(scope="session")
def smoke_nbval(smoke_copies):
    """nbval over the smoke copies, started at once in its own process, one CPU thread per kernel."""
    run = Background(nbval_command(smoke_copies), smoke_copies, dict(os.environ, OMP_NUM_THREADS="1"))
    yield run
    run.stop()


def _series_in_background(tmp_path_factory, folder: str, mode: str, names, **jobs):
    """Start `cramlab notebooks run` for `names` in its own process now; yield (folder, process); stop it after."""
    out = tmp_path_factory.mktemp(folder)
    run = Background(series_command(mode, names, out, **jobs), out, dict(os.environ))
    yield out, run
    run.stop()


@pytest.fixture(scope="session")
def smoke_series(tmp_path_factory):
    """04, 07 and 09 in smoke mode (tiny model, every cell), one kernel, started at once."""
    yield from _series_in_background(tmp_path_factory, "notebooks-smoke", "smoke", FAST_IN_SLOW_TIER, jobs=1)


@pytest.fixture(scope="session")
def fast_series(tmp_path_factory):
    """The fast series of `make test`'s notebooks as learners run it (`cramlab notebooks run --fast --jobs
    N`), started in its own process. Returns (folder, process)."""
    yield from _series_in_background(tmp_path_factory, "notebooks-fast", "fast", FAST_IN_MAKE_TEST)


@pytest.fixture(scope="session")
def slow_tier_series(tmp_path_factory):
    """04, 07 and 09 in fast mode (`make test-slow`), started when the session starts."""
    yield from _series_in_background(tmp_path_factory, "notebooks-fast-slow-tier", "fast", FAST_IN_SLOW_TIER)


def _finished(series) -> tuple:
    """(folder, summary) of a finished series (exit code 1 when a notebook failed: the tests say which)."""
    out, run = series
    proc = run.result(timeout_s=3600)
    summary = out / "summary.json"
    assert summary.is_file(), f"the series wrote no summary (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return out, json.loads(summary.read_text())


@pytest.fixture(scope="session")
def fast_run(fast_series):
    """(folder, summary) of `make test`'s fast series."""
    return _finished(fast_series)


@pytest.fixture(scope="session")
def smoke_run(smoke_series):
    """(folder, summary) of 04, 07 and 09's smoke run."""
    return _finished(smoke_series)


@pytest.fixture(scope="session")
def fast_run_slow_tier(slow_tier_series):
    """(folder, summary) of 04, 07 and 09's fast run (`make test-slow`)."""
    return _finished(slow_tier_series)
