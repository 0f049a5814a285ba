# Two commands on a fresh machine:  `make demo`  and  `make test`  (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
# pytest workers (pytest-xdist): one per core, each pinned to its own core (huracan_assets_tests/conftest.py)
WORKERS ?= auto
XDIST   = -n $(WORKERS) --dist loadgroup

.PHONY: setup setup-dev demo test test-all test-fast coverage lint bench ui clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

setup: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e .

setup-dev: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e '.[dev]'

demo: setup
	$(VENV)/bin/huracan demo $(ARGS)

# the default suite (pyproject: every test but the benchmarks and the full-size variants), lint first
test: setup-dev lint
	$(PY) -m pytest -q $(XDIST) --durations=15 $(ARGS)

# everything a clean machine can run: the default suite and the full-size variants (marker "full")
test-all: setup-dev lint
	$(PY) -m pytest -q $(XDIST) -m "not benchmark" $(ARGS)

test-fast: setup-dev
	$(PY) -m pytest -q $(XDIST) -m "not slow and not integration and not full and not benchmark" $(ARGS)

# line and branch coverage of huracan_assets over the default suite
coverage: setup-dev
	$(PY) -m pytest -q $(XDIST) --cov=huracan_assets --cov-branch --cov-report=term:skip-covered $(ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check huracan_assets huracan_assets_tests
	$(VENV)/bin/ruff format --check huracan_assets huracan_assets_tests

bench: setup-dev
	$(PY) -m huracan_assets_tests.benchmarks.bench_dagster_overhead $(ARGS)

ui: setup
	DAGSTER_HOME=$${HURACAN_HOME:-$$HOME/.huracan}/dagster $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
