# orderflow: the front door. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK := deploy/local/stack.sh
CODE := orderflow schemas shopee producers consumers
# Scripts outside the packages that are type-checked too.
SCRIPTS := deploy/prometheus/catalogue.py deploy/compose/sandbox_setup.py deploy/local/live_view.py
# Reuse a stack started with `make up`; otherwise the tests start (and stop) their own.
STACK_ENV = if $(STACK) status 2>/dev/null | grep -q '^kafka: running'; then eval "$$($(STACK) env)"; fi

.PHONY: help setup lint format typecheck test test-unit up down env status run bench chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed ## create .venv and install orderflow with its dev tools

lint: setup ## ruff, check only
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## ruff, rewriting files
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup ## mypy --strict on our packages
	$(VENV)/bin/mypy $(CODE)
	$(VENV)/bin/mypy $(SCRIPTS)
	$(VENV)/bin/mypy benchmarks chaos

test: setup ## every test: unit, then integration and e2e on the real stack
	$(STACK) fetch
	@$(STACK_ENV); $(PY) -m pytest

test-unit: setup ## the fast, broker-free tests only
	$(PY) -m pytest tests/unit

up: ## start Kafka, the schema registry and PostgreSQL (no-op when running)
	@$(STACK) up

down: ## stop everything `make up` started
	@$(STACK) down

env: ## print the ORDERFLOW_* exports of the running stack (eval the output)
	@$(STACK) env

status: ## which parts of the local stack are running
	@$(STACK) status

run: setup ## start the pipeline on the local stack against the Shopee sandbox
	@deploy/local/run.sh

bench: setup ## benchmarks against same-run baselines (BENCH="codec e2e" runs a subset)
	$(STACK) fetch
	@$(STACK_ENV); $(PY) -m benchmarks $(BENCH)

chaos: setup ## fault scenarios, each with its numbers and PASS/FAIL (SCENARIOS="..." a subset)
	$(STACK) fetch
	@$(STACK_ENV); $(PY) -m chaos $(SCENARIOS)

clean: down ## stop the stack and remove its state and downloads
	@# PostgreSQL's files, when stack.sh had to put them outside the checkout (its pg-home).
	rm -rf "$$(grep -s '^/var/tmp/orderflow-postgres-' deploy/local/.stack/pg-home || true)"
	rm -rf deploy/local/.stack deploy/local/target
