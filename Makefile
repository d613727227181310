# Entry points named in the README. Everything runs through uv; the infrastructure (Kafka, SecantusDB) is
# downloaded/built once into ~/.cache/stvs by `make install` (needs Java 17+, Maven and cargo on PATH).

SHELL := /bin/bash
PYTHON ?= python3
# Re-evaluated at each use, so a uv installed by `make install` into ~/.local/bin is found afterwards.
UV = $(shell command -v uv 2>/dev/null || echo $$HOME/.local/bin/uv)
FUZZ_ARGS ?=
REPLICAS ?= 1
CHAOS_REPLICAS ?= 2

.DEFAULT_GOAL := help
include web/console.mk

.PHONY: help install run test lint fmt bench docs demo chaos fuzz clean keys admin deploy-check

help:
	@echo "make install | run [REPLICAS=n] | admin | test | lint | fmt | bench [ONLY=name] | docs | keys | demo | chaos | fuzz | clean"

# uv: already there, else into ~/.local/bin from a private virtual environment (Debian's and Ubuntu's Pythons refuse
# `pip install --user`, PEP 668): infra/bootstrap/uv.sh, checked on the machine's Debian Python by tests/infra.
install:
	@infra/bootstrap/uv.sh $(PYTHON)
	$(UV) sync --frozen
	$(UV) run python -m infra.local install
	$(UV) run python -m infra.tools install
	@$(MAKE) --no-print-directory console

run: install
	STVS_REPLICAS=$(REPLICAS) $(UV) run python -m infra.local run

test: install lint
	$(UV) run pytest

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

fmt:
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

bench: install
	$(UV) run python -m benchmarks $(if $(ONLY),--only $(ONLY))

# The first province admin of the platform `make run` started (asks for the name and the password).
admin:
	$(UV) run python -m services.gateway.create_admin

# Fresh secrets into .env (kept if already there) for docker compose or a deployment.
keys:
	$(PYTHON) -m infra.keys

docs:
	$(UV) run python -m shared.contracts.docs

demo:
	$(UV) run python -m services.registry.demo

# Every fault test (the fast ones too), at full volume (≥ 10,000 events each), with two processes of every service,
# on infrastructure of its own.
chaos: install
	STVS_CHAOS_FULL=1 STVS_CHAOS_REPLICAS=$(CHAOS_REPLICAS) $(UV) run pytest -m 'slow or not slow' tests/resilience

# Starts the platform itself (on STVS_KAFKA_BOOTSTRAP/STVS_MONGO_URL, else the test infrastructure), signs in a
# province admin and runs schemathesis per operation and stateful; e.g. FUZZ_ARGS='--max-examples 50 --max-time 600'.
fuzz:
	$(UV) run python -m tests.gateway.fuzz $(FUZZ_ARGS)

# The Kubernetes chart and the alert rules: helm lint/template, schemas, promtool (make test runs them too).
deploy-check: install
	$(UV) run pytest -q tests/deploy

clean:
	rm -rf .stvs .mypy_cache .ruff_cache .pytest_cache .hypothesis benchmarks/results.json
	find . -name __pycache__ -type d -not -path './.venv/*' -prune -exec rm -rf {} +
