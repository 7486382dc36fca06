VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install dev run test lint format services services-stop bench-import fuzz

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

run: install
	$(BIN)/crm serve --host 127.0.0.1 --port 8000

test: dev
	$(BIN)/pytest

lint: dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

format: dev
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

services:
	@bash scripts/services start

services-stop:
	@bash scripts/services stop

# 100,000 leads uploaded over HTTP to crm serve on SQLite and PostgreSQL, against COPY.
bench-import: dev
	$(BIN)/python bench/import_bench.py

# Schemathesis at length against crm serve on SQLite and PostgreSQL (figures into
# bench/RESULTS.md), then the hypothesis tests of hostile input with their larger profile.
fuzz: dev
	$(BIN)/python bench/fuzz.py
	$(BIN)/pytest -q --hypothesis-profile=fuzz tests/test_hostile_input.py
