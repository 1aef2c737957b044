# One obvious way to run each thing. `make serve` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: serve worker test test-pg browser sdk lint fmt bench bench-quick migration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run the API, the workers and the debug tools on ./innkeeper.db (development mode).
serve: $(STAMP)
	$(BIN)/innkeeper serve

## Run the background workers alone (production: next to `innkeeper serve --no-workers`).
worker: $(STAMP)
	$(BIN)/innkeeper worker

## The whole suite on SQLite (PostgreSQL, Chromium and Node tests skip with a hint when absent).
test: $(STAMP)
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

## The whole suite on PostgreSQL (INNKEEPER_TEST_DATABASE_URL, default $(PG_URL)).
test-pg: $(STAMP)
	INNKEEPER_TEST_DATABASE_URL=$${INNKEEPER_TEST_DATABASE_URL:-$(PG_URL)} $(BIN)/pytest -n auto --db=postgres $(PYTEST_ARGS)

## Install the npm SDK packages and bundles the SDK compatibility tests use.
sdk:
	scripts/sdk-setup.sh

## Only the tests that drive real SDKs in Chromium and Node.
browser: $(STAMP) sdk
	$(BIN)/pytest -m browser $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

## Every issue-8 benchmark (ingest, durability, callFlows, batch, sweeper, reads, portal) in one table:
## benchmarks/results/latest.json. `make bench ARGS="--only ingest"`; ARGS=--quick is `make bench-quick`.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(ARGS)

## The same with tiny sizes: checks the benchmark harness still works (CI), not the numbers.
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick $(ARGS)

## New Alembic revision from the models: make migration m="add guest index"
migration: $(STAMP)
	$(BIN)/innkeeper db revision -m "$(m)"

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache tests/sdk/node_modules tests/sdk/dist
