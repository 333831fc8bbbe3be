# Two commands for a fresh machine with Python 3.11+: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 1

.PHONY: serve test lint typecheck pytest bench profile clean vendor-echarts

$(BIN)/activate:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

## serve: install, migrate, seed and serve http://127.0.0.1:8000 on the embedded SQLite
serve: $(VENV)/.installed
	$(BIN)/statsapi migrate
	$(BIN)/statsapi seed
	$(BIN)/statsapi serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

## test: lint, type-check and run the whole suite (SQLite; PostgreSQL when
## STATSAPI_TEST_DATABASE_URL names one)
test: lint typecheck pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: wrk against the app (seed and 1,000,000 synthetic rows), a bare FastAPI app (the
## ceiling) and Datasette; prints one
## table (docs/benchmarks.md). DATABASE_URL=postgresql://... measures PostgreSQL as well.
bench: $(VENV)/.installed .venv-bench/.installed
	@command -v wrk >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null)
	$(BIN)/python bench/run.py $(if $(DATABASE_URL),--database-url $(DATABASE_URL)) $(BENCH_ARGS)

## profile: py-spy on one worker while wrk loads one target (TARGET=filtered by default)
profile: $(VENV)/.installed .venv-bench/.installed
	$(BIN)/python bench/sample.py $(or $(TARGET),filtered) $(PROFILE_ARGS)

.venv-bench/.installed: bench/requirements.txt
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install --quiet -r bench/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) .venv-bench data bench/.data bench/out .pytest_cache .mypy_cache .ruff_cache

## vendor-echarts: refresh the pinned copy of Apache ECharts the dashboard serves
## (app/static/vendor/echarts/) from the npm registry; the tarball must match its pinned
## SHA-256. To upgrade: set ECHARTS_VERSION and ECHARTS_SHA256 (`npm view echarts version`,
## then the sha256sum of the new tarball, checked against the registry's `dist.integrity`).
ECHARTS_VERSION := 6.1.0
ECHARTS_SHA256 := 681aff88cc1038c3fa941a3a53d1b177a52250b05335efc607d6105ae13be481
NPM_REGISTRY ?= https://registry.npmjs.org
ECHARTS_DIR := app/static/vendor/echarts

vendor-echarts:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	curl -fsSL "$(NPM_REGISTRY)/echarts/-/echarts-$(ECHARTS_VERSION).tgz" -o "$$tmp/echarts.tgz" && \
	echo "$(ECHARTS_SHA256)  $$tmp/echarts.tgz" | sha256sum -c --quiet - && \
	tar -xzf "$$tmp/echarts.tgz" -C "$$tmp" package/dist/echarts.min.js package/LICENSE \
		package/NOTICE package/licenses/LICENSE-d3 && \
	mkdir -p $(ECHARTS_DIR) && \
	cp "$$tmp/package/dist/echarts.min.js" "$$tmp/package/LICENSE" "$$tmp/package/NOTICE" \
		"$$tmp/package/licenses/LICENSE-d3" $(ECHARTS_DIR)/ && \
	echo "$(ECHARTS_VERSION)" > $(ECHARTS_DIR)/VERSION && \
	cd $(ECHARTS_DIR) && sha256sum echarts.min.js LICENSE NOTICE LICENSE-d3 VERSION > SHA256SUMS && \
	echo "echarts $(ECHARTS_VERSION) vendored in $(ECHARTS_DIR) (SHA256SUMS written)"
