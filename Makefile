# Herald: `make run` starts the whole product, `make test` runs the whole suite.
# Both need only Python 3.11 and the package registries; everything else is installed here.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
## The test suite runs in this many processes side by side (0: in this one).
TEST_PROCESSES ?= 2

.PHONY: run test lint format bench sandbox stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.run-installed $@

## Start web (http://127.0.0.1:$(PORT)), Celery worker + beat and the provider sandbox, with demo data.
run: $(VENV)/.run-installed
	PORT=$(PORT) $(BIN)/python -m config.launcher

## The whole test suite on embedded PostgreSQL and Redis.
test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks (see docs/BENCHMARKS.md); BENCH_SCALE=1.0 for the full-size figures.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench.run_all

## Only the provider sandbox, on port 8025.
sandbox: $(VENV)/.run-installed
	$(BIN)/python manage.py run_sandbox --port 8025

## Stop the embedded PostgreSQL and Redis left running under var/.
stop: | $(BIN)/python
	$(BIN)/python -m config.embedded stop

clean: stop
	rm -rf var $(VENV)
