# retrainer — developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
RETRAINER := $(BIN)/retrainer
PYTEST_ARGS ?=
# Test processes running at once (pytest-xdist; every test owns its topics and database). More
# than the cores: most service tests wait on brokers, timers and child processes, not the CPU.
TEST_WORKERS ?= 4

.PHONY: help setup bytecode system-deps lock lint format test test-unit test-integration test-e2e stack-up stack-down stack-status demo bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "retrainer needs Python 3.11+; found " + sys.version.split()[0] + ". Set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
	@# Bytecode at install: with PYTHONDONTWRITEBYTECODE set (common in CI and images) every
	@# process would otherwise recompile pandas/scikit-learn/scipy at start (imports 2.4x slower).
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -c $(LOCK) -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) system-deps bytecode ## create .venv and install retrainer with its locked dependencies (no-op when nothing changed)

# The editable install leaves our own packages as sources: with PYTHONDONTWRITEBYTECODE set, every
# process (worker, trainer, each CLI command, each test's service) compiled them again at start.
# Files already compiled and unchanged are skipped; an edited one is recompiled here (Python ignores
# a stale .pyc, so forgetting this step only costs time).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 schemas edge streams trainer retrainer

system-deps: ## install the Debian packages the tests use as real peers (kcat, prometheus), if missing
	@bash deploy/local/system-deps.sh

lock: ## re-resolve requirements.lock from pyproject.toml
	@test -x $(BIN)/uv || $(MAKE) setup
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --universal pyproject.toml -o $(LOCK)

lint: setup ## ruff + mypy --strict
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack-up: setup ## start (or reuse) the local Kafka broker and PostgreSQL
	$(RETRAINER) stack up

stack-down: setup ## stop the local stack; nothing of ours keeps running
	$(RETRAINER) stack down

stack-status: setup ## show the local stack
	$(RETRAINER) stack status

test: setup ## every test tier against the real local stack (started when needed)
	@$(RETRAINER) stack up; status=$$?; \
	if [ $$status -eq 0 ]; then $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); status=$$?; fi; \
	if [ -n "$$CI" ]; then $(RETRAINER) stack down; fi; \
	exit $$status

test-unit: setup ## unit tests only (no stack needed)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: stack-up ## integration tests only
	$(BIN)/pytest tests/integration $(PYTEST_ARGS)

test-e2e: stack-up ## end-to-end tests only
	$(BIN)/pytest tests/e2e $(PYTEST_ARGS)

demo: stack-up ## every retraining trigger end to end, live, in under 3 minutes (DEMO_ARGS=--keep)
	$(RETRAINER) demo $(DEMO_ARGS)

bench: stack-up ## run every benchmark; prints BENCH lines and the JSON file they were written to
	$(BIN)/python -m tests.bench

clean: ## remove build artefacts (not the stack's data: see `retrainer stack down --purge`)
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
