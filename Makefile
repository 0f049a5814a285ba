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

# Debian's Chromium for the UI test (huracan_assets_tests/integration/test_ui_browser.py drives it with Playwright;
# no browser download): apt-get installs it when /usr/bin/chromium is missing, as root or with passwordless sudo.
# When it cannot, it says so and carries on (the test then skips, or fails under CI).
setup-browser:
	@if [ -x /usr/bin/chromium ]; then \
		echo "setup-browser: /usr/bin/chromium is installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "setup-browser: /usr/bin/chromium is missing and there is no apt-get: install Chromium at /usr/bin/chromium for the UI test"; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		echo "setup-browser: installing chromium with apt-get"; \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null ) \
			|| echo "setup-browser: apt-get could not install chromium; the UI test will not run"; \
	else \
		echo "setup-browser: /usr/bin/chromium is missing and installing it needs root: run 'sudo apt-get install -y chromium'"; \
	fi

# Debian's Caddy for the proxy test (huracan_assets_tests/integration/test_ui_proxy.py runs docker/proxy/Caddyfile;
# compose runs the official image): installed like Chromium above, and the test skips (fails under CI) without it.
setup-proxy:
	@if command -v caddy >/dev/null 2>&1; then \
		echo "setup-proxy: caddy is installed"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "setup-proxy: caddy is missing and there is no apt-get: install Caddy 2 for the proxy test"; \
	elif [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; then \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
		echo "setup-proxy: installing caddy with apt-get"; \
		( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq caddy >/dev/null ) \
			|| echo "setup-proxy: apt-get could not install caddy; the proxy test will not run"; \
	else \
		echo "setup-proxy: caddy is missing and installing it needs root: run 'sudo apt-get install -y caddy'"; \
	fi

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
