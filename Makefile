VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install dev run test lint format services services-stop bench-import bench-scale

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

# One org with 1,000,000 leads on PostgreSQL: search, deep pages by page and by cursor, count.
# CRM_BENCH_DATABASE_URL names a database *bench* (recreated) of a running PostgreSQL.
BENCH_DATABASE_URL ?= $(or $(CRM_BENCH_DATABASE_URL),postgresql://crm@127.0.0.1:55432/crm_scale_bench)
bench-scale: dev
	$(BIN)/python bench/scale_bench.py $(BENCH_DATABASE_URL) --explain
