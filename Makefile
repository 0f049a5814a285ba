# Two commands on a fresh machine:  `make demo`  and  `make test`  (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip

.PHONY: setup setup-dev demo test test-fast lint bench ui clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

setup: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e .

setup-dev: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e '.[dev]'

demo: setup
	$(VENV)/bin/huracan demo $(ARGS)

test: setup-dev
	$(VENV)/bin/ruff check huracan_assets huracan_assets_tests
	$(VENV)/bin/ruff format --check huracan_assets huracan_assets_tests
	$(PY) -m pytest -q $(ARGS)

test-fast: setup-dev
	$(PY) -m pytest -q -m "not slow and not integration" $(ARGS)

lint: setup-dev
	$(VENV)/bin/ruff check huracan_assets huracan_assets_tests
	$(VENV)/bin/ruff format --check huracan_assets huracan_assets_tests

bench: setup-dev
	$(PY) -m huracan_assets_tests.benchmarks.bench_dagster_overhead $(ARGS)

ui: setup
	DAGSTER_HOME=$${HURACAN_HOME:-$$HOME/.huracan}/dagster $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
