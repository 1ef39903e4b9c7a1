# The front door. `make run` starts everything; `make test` runs the suite; both set themselves up.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
INFRA  := $(PY) deploy/local/infra.py
PYTEST_ARGS ?=

.PHONY: help install lock lint format test test-unit test-integration test-slow infra-up infra-down \
        infra-status infra-reset topics contracts bench bench-pipeline chaos run up down demo clean \
        deploy-check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# --- Python environment ------------------------------------------------------------------------
# Re-installs only when pyproject.toml or constraints.txt changed since the last install.
install: $(STAMP) ## create .venv and install the project with its dev tools (pinned)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip install --quiet --python $(PY) -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# Existing pins are kept (uv prefers the versions already in its output file); only what
# pyproject.toml added or no longer allows is resolved anew. `make lock UPGRADE=1` re-pins all.
lock: ## re-pin constraints.txt from pyproject.toml, keeping existing pins (then commit it)
	@test -x $(VENV)/bin/uv || $(MAKE) install
	cp constraints.txt constraints.txt.new
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header \
	  --no-annotate --quiet $(if $(UPGRADE),--upgrade) --output-file constraints.txt.new
	{ echo "# Pinned versions of every dependency (runtime + dev), used as pip/uv constraints by 'make install'."; \
	  echo "# Regenerate after changing pyproject.toml: make lock"; \
	  grep -v '^#' constraints.txt.new; \
	} > constraints.txt && rm constraints.txt.new

# --- Quality ----------------------------------------------------------------------------------
lint: install ## ruff + mypy --strict + the import rule between services (pyproject.toml)
	$(VENV)/bin/ruff check services contracts tests deploy/local benchmarks
	$(VENV)/bin/mypy services contracts tests deploy/local benchmarks
	$(VENV)/bin/lint-imports

deploy-check: install ## validate deploy/: Kubernetes + KEDA + Prometheus Operator schemas, Pod Security restricted, compose, hadolint, promtool on the alerts and dashboard
	bash deploy/check/run.sh

format: install ## apply ruff's formatter and import sorting
	$(VENV)/bin/ruff check --fix services contracts tests deploy/local benchmarks
	$(VENV)/bin/ruff format services contracts tests deploy/local benchmarks

# --- Tests ------------------------------------------------------------------------------------
# Integration tests get Kafka and Mongo from the environment, testcontainers, or the local infra
# scripts (started by the test session and stopped at its end if it started them).
test: install ## everything except long chaos runs (starts the infrastructure it needs)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-unit: install ## fast tests without I/O
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: install ## tests against the real broker and Mongo-compatible server
	$(PY) -m pytest -m integration $(PYTEST_ARGS)

chaos: install ## kill -9 / restart runs, including the long 500-turn one
	$(PY) -m pytest -m chaos $(PYTEST_ARGS)

test-slow: install ## the long runs left out of `make test` (500-turn chaos, 1,000 sessions x 20 commands)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: install infra-up ## benchmark scripts under benchmarks/ (they print their figures)
	@shopt -s nullglob; scripts=(benchmarks/*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "bench: no scripts under benchmarks/ yet"; fi; \
	for script in "$${scripts[@]}"; do \
	  case "$$script" in */_*) continue;; esac; \
	  echo "== $$script"; $(PY) "$$script" || exit 1; done

bench-pipeline: install infra-up ## per-turn cost: pipeline vs raw-Kafka relay (BENCH_ARGS=--quick: a short run)
	$(PY) benchmarks/pipeline.py $(BENCH_ARGS)

# --- Infrastructure ---------------------------------------------------------------------------
infra-up: install ## start Kafka (KRaft) + the Mongo-compatible server, provision topics
	$(INFRA) up

infra-down: install ## stop exactly the processes infra-up started
	$(INFRA) down

infra-status: install ## health of Kafka and Mongo (exit 1 when one is down)
	$(INFRA) status

infra-reset: install ## stop and wipe all data (downloads stay cached)
	$(INFRA) reset

topics: install ## create the project's topics (idempotent)
	$(PY) -m services.admin.topics

contracts: install ## regenerate JSON Schema + AsyncAPI + the gateway's OpenAPI from the models
	$(PY) -m contracts.generate
	$(PY) -m services.gateway.openapi

# --- Running the system -----------------------------------------------------------------------
# The services run as separate processes (python -m services.<name>), pid files and logs in .run/.
run: infra-up ## infrastructure + topics + the five consumers + the HTTP gateway, then a chat; Ctrl-C stops them
	$(VENV)/bin/agent-runtime run

up: infra-up ## infrastructure + topics + the five consumers + the HTTP gateway in the background (logs in .run/logs)
	$(VENV)/bin/agent-runtime up

down: install ## stop exactly the services `up`/`run` started (infrastructure stays up)
	$(VENV)/bin/agent-runtime down

demo: up ## a scripted conversation through the running pipeline; exits 0 on success
	$(VENV)/bin/agent-runtime demo

clean: ## remove caches of the Python tools (not .venv, not downloads)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
