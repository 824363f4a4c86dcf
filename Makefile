# Every target creates the virtualenv on first use (and again when pyproject.toml changes).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: install demo dev prod-local test lint bench home clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	$(VENV)/bin/pip install --quiet --no-deps durable-sync==0.3.0  # read, never imported, by tests/compat (its temporalio dependency is left out)
	touch $@

install: $(VENV)/.installed

home:
	@mkdir -p "$(DAGSTER_HOME)"
	@cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

demo: install home
	$(PY) -m sync_assets.demo

dev: install home
	$(VENV)/bin/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

# The production process layout on this machine: dagster-webserver and dagster-daemon as separate
# processes on PostgreSQL (DAGSTER_PG_URL; default the local server, database durable_sync).
prod-local: install
	$(PY) deploy/run_local.py --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install home
	$(VENV)/bin/ruff format --check sync_assets connectors tests bench deploy
	$(VENV)/bin/ruff check sync_assets connectors tests bench deploy
	$(VENV)/bin/mypy sync_assets connectors
	DAGSTER_HOME="$(DAGSTER_HOME)" $(VENV)/bin/dg check defs

bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
