# The README's commands. Everything installs from the project's own files (uv.lock pins every version).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
UV_VERSION := 0.13.8
BOOTSTRAP := .venv-bootstrap
UV := $(BOOTSTRAP)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
export GX_ANALYTICS_ENABLED := false
export DAGSTER_HOME := $(CURDIR)

.PHONY: setup chromium demo test dev lint clean bench chaos

$(UV):
	$(PYTHON) -m venv $(BOOTSTRAP)
	$(BOOTSTRAP)/bin/pip install --quiet uv==$(UV_VERSION)

# Creates .venv with exactly the locked versions (the project itself installed editable).
setup: $(UV)
	$(UV) sync --locked --python $(PYTHON)

# Debian's headless Chromium for the browser tests, installed when it is missing (Playwright drives
# it; Playwright downloads no browser of its own). Only `make test` needs it.
chromium:
	@command -v $${CHROMIUM_PATH:-chromium} >/dev/null || { \
		if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
		else \
			echo "The browser tests need Chromium: install Debian's 'chromium' package (sudo apt-get install chromium), or set CHROMIUM_PATH to a Chromium binary." >&2; exit 1; \
		fi; }

demo: setup
	$(VENV)/bin/integration-assets demo

test: setup chromium
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile

# The Christmas-peak benchmark (benchmarks/README.md): `make bench BENCH_ORDERS=20000` for a smaller day.
BENCH_ORDERS ?= 200000
bench: setup
	BENCH_ORDERS=$(BENCH_ORDERS) $(VENV)/bin/python -m benchmarks.run

# Faults injected into the sandbox systems, every invariant checked (docs/reliability.md).
chaos: setup
	$(VENV)/bin/integration-assets chaos

dev: setup
	$(VENV)/bin/integration-assets dev

lint: setup
	$(VENV)/bin/ruff check integration_assets integration_assets_tests benchmarks
	$(VENV)/bin/ruff format --check integration_assets integration_assets_tests benchmarks

clean:
	rm -rf data/raw data/warehouse.duckdb data/warehouse.duckdb.wal data/dagster
