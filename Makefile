VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install dev upgrade lock run test lint format services services-stop bench bench-import bench-scale soak fuzz

install: $(VENV)/.installed

# Exactly the versions in the lock files (hashes checked), then the project itself.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.lock
	$(BIN)/pip install -q --require-hashes -r requirements-dev.lock
	touch $@

# Re-resolves pyproject.toml's ranges to the newest releases and rewrites both lock files.
upgrade: dev
	$(BIN)/uv pip compile -q --upgrade --generate-hashes --python-version 3.11 \
	  pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile -q --upgrade --generate-hashes --python-version 3.11 \
	  --extra dev pyproject.toml -o requirements-dev.lock

# After editing pyproject.toml: the lock files take the change, keeping every other pin.
lock: dev
	$(BIN)/uv pip compile -q --generate-hashes --python-version 3.11 \
	  pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile -q --generate-hashes --python-version 3.11 \
	  --extra dev pyproject.toml -o requirements-dev.lock

# make run HOST=0.0.0.0 PORT=8001 for another address or port.
HOST ?= 127.0.0.1
PORT ?= 8000
run: install
	$(BIN)/crm serve --host $(HOST) --port $(PORT)

test: dev
	$(BIN)/pytest -n auto

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

# The hot endpoints under wrk, beside a bare ASGI app (bench/baseline.py), on PostgreSQL and
# SQLite; writes bench/RESULTS.md. One case: .venv/bin/python bench/http_bench.py --help
bench: dev
	$(BIN)/python bench/http_bench.py --write

# 100,000 leads uploaded over HTTP to crm serve on SQLite and PostgreSQL, against COPY.
bench-import: dev
	$(BIN)/python bench/import_bench.py

# Two crm serve processes on one PostgreSQL and Redis, one SIGKILLed midway; every write checked.
soak: dev
	$(BIN)/python bench/soak.py

# Schemathesis at length against crm serve on SQLite and PostgreSQL (figures into
# bench/RESULTS.md), then the hypothesis tests of hostile input with their larger profile.
fuzz: dev
	$(BIN)/python bench/fuzz.py
	$(BIN)/pytest -q --hypothesis-profile=fuzz tests/test_hostile_input.py

# One org with 1,000,000 leads on PostgreSQL: search, deep pages by page and by cursor, count.
# CRM_BENCH_DATABASE_URL names a database *bench* (recreated) of a running PostgreSQL.
BENCH_DATABASE_URL ?= $(or $(CRM_BENCH_DATABASE_URL),postgresql://crm@127.0.0.1:55432/crm_scale_bench)
bench-scale: dev
	$(BIN)/python bench/scale_bench.py $(BENCH_DATABASE_URL) --explain
