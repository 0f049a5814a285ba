# Two commands on a fresh machine:  `make demo`  and  `make test`  (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
PY      = $(VENV)/bin/python
PIP     = $(VENV)/bin/pip
# pytest workers (pytest-xdist): one per core, each pinned to its own core (huracan_assets_tests/conftest.py)
WORKERS ?= auto
XDIST   = -n $(WORKERS) --dist loadgroup

.PHONY: setup setup-dev setup-browser setup-proxy demo test test-all test-fast coverage lint bench ui clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

setup: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e .

setup-dev: $(VENV)/bin/python
	$(PIP) install -q -c constraints.txt -e '.[dev]'

# Debian packages some tests run (apt-get, as root or with passwordless sudo, when the command is missing; when it
# cannot, it says so and carries on, and the test then skips, or fails under CI):
# - Chromium for the UI test (huracan_assets_tests/integration/test_ui_browser.py drives it with Playwright; no
#   browser download);
# - Caddy for the proxy test (huracan_assets_tests/integration/test_ui_proxy.py runs docker/proxy/Caddyfile; compose
#   runs the official image).
define apt_install
	@if command -v $(1) >/dev/null 2>&1; then \
		echo "$(2): $(1) is installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "$(2): $(1) is missing and there is no apt-get: install it for $(3)"; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		echo "$(2): installing $(1) with apt-get"; \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(1) >/dev/null ) \
			|| echo "$(2): apt-get could not install $(1); $(3) will not run"; \
	else \
		echo "$(2): $(1) is missing and installing it needs root: run 'sudo apt-get install -y $(1)'"; \
	fi
endef

setup-browser:
	$(call apt_install,chromium,setup-browser,the UI test)

setup-proxy:
	$(call apt_install,caddy,setup-proxy,the proxy test)

demo: setup
	$(VENV)/bin/huracan demo $(ARGS)

# the default suite (pyproject: every test but the benchmarks and the full-size variants), lint first
test: setup-dev setup-browser setup-proxy lint
	$(PY) -m pytest -q $(XDIST) --durations=15 $(ARGS)

# everything a clean machine can run: the default suite and the full-size variants (marker "full")
test-all: setup-dev setup-browser setup-proxy lint
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
