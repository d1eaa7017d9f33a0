# cramlab — two commands for a fresh machine: `make demo` and `make test`.
# Everything is installed into a local .venv (system Pythons are often externally managed); pip skips
# what is already there. TORCH picks the torch build: the default is the CPU wheel this kind of machine
# keeps on disk. GPU users: make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PY      ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.cramlab-installed
PYTEST  := $(BIN)/python -m pytest

.PHONY: demo test test-fast test-slow test-notebooks test-browser test-gpu lab notebooks notebooks-sync notebooks-outputs bench-cpu install clean

install: $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: $(STAMP)
	$(BIN)/cramlab demo

# The whole suite: unit tests, the embedded-model tests, and every notebook in fast mode (papermill + nbval).
test: $(STAMP)
	$(PYTEST) -m "not browser and not gpu"

test-fast: $(STAMP)
	$(PYTEST) -m "not slow and not notebooks and not browser and not gpu"

test-notebooks: $(STAMP)
	$(PYTEST) -m notebooks

# JupyterLab in headless Chromium (needs Debian's chromium: apt-get install chromium).
test-browser: $(STAMP)
	$(PYTEST) -m browser

# On a machine with a CUDA GPU.
test-gpu: $(STAMP)
	$(PYTEST) -m gpu

notebooks: $(STAMP)
	$(BIN)/cramlab notebooks run --fast --out runs/notebooks

# notebooks/NN_*.py (percent format, what developers edit and ruff lints) and NN_*.ipynb (what learners
# open) are jupytext pairs (jupytext.toml). After editing either, sync the other; `make test` fails on a
# pair out of sync. `notebooks-outputs` refills the outputs nbval compares (cells marked NBVAL_CHECK_OUTPUT).
notebooks-sync: $(STAMP)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py

notebooks-outputs: notebooks-sync
	$(BIN)/python -c "import sys; from cramlab.notebook_runner import find_notebooks, refresh_checked_outputs; \
	[print(p.name, refresh_checked_outputs(p)) for p in find_notebooks('notebooks')]"

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

bench-cpu: $(STAMP)
	$(BIN)/cramlab bench --device cpu --parts embedded --n-texts 8 --n-tokens 16 --race --out runs/bench_cpu.json

clean:
	rm -rf $(VENV) runs .pytest_cache
