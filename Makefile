# Bobrapet for Python — developer entry points.
#   make run    create the venv if needed, install, run the hello example and print its result
#   make test   install, start what the tests need, run the whole suite
#   make lint   ruff, mypy (strict) and the import-linter layer contracts
#   make bench  the benchmark workloads of bench/README.md (BENCH_ARGS=--quick)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOME_DIR ?= .bobrapet
BENCH_ARGS ?=
SHARED ?= $(abspath ../shared)
export BOBRAPET_TEST_APISERVER ?= $(SHARED)/k8s/bin/apiextensions-apiserver

.PHONY: install run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/bobrapet --home $(HOME_DIR) run -f examples/catalog.yaml -f examples/hello.yaml

test: install
	bash scripts/test-services.sh
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache .mypy_cache .ruff_cache
