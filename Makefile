# Stackyard: the two commands a fresh machine needs are `make up` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUILT  := $(VENV)/.compiled
STACK  ?= examples/shop
# the request path's modules are compiled with mypyc (scripts/compile.py), again whenever a
# source changed: compiled code is built against the package as it was
SOURCES := $(shell find src/stackyard -name '*.py') scripts/compile.py

.PHONY: install compile up test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,redis,postgres]'
	touch $(STAMP)

$(BUILT): $(STAMP) $(SOURCES)
	$(BIN)/python scripts/compile.py
	touch $(BUILT)

install: $(BUILT)

compile: $(BUILT)

up: $(BUILT)
	$(BIN)/stackyard up $(STACK)

test: $(BUILT)
	bash scripts/system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(BUILT)
	bash scripts/system-deps.sh --bench
	$(BIN)/python bench/gateway.py

clean:
	$(PYTHON) scripts/compile.py --clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
