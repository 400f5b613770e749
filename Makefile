# The two commands of the quick start: `make run` (the main job) and `make test`.
# Each sets up .venv first. torch is installed first on its own so that a machine without it
# gets the build named by TORCH (pip's default build for this platform: CUDA on Linux x86-64,
# MPS on Apple silicon); CI and CPU-only machines pass a CPU build, e.g. TORCH=torch==2.13.0.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: setup run test test-fast lint clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,track]"
	touch $@

run: setup
	$(PY) run_search.py $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Two workers: the slow tests (Ray, subprocesses) one after another on one of them
# (tests/conftest.py groups them), the fast ones on both.
test: lint
	$(PY) -m pytest -q -n 2 --dist loadgroup

# The inner loop: no Ray, no subprocess, about half a minute.
test-fast: setup
	$(PY) -m pytest -q -m "not slow" -n 2

clean:
	rm -rf $(VENV) data/cache
