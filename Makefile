# One entry point for setting up, checking, building and demoing vss-restore.
# `make test` is what CI runs (.ci/run); it works from a fresh clone.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# The checks must run in the order listed under `test` and stop at the first failure.
.NOTPARALLEL:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ASL_FILES := $(wildcard statemachine/*.asl.json)
ASL_OUT := out/asl

export PYTHONPATH := functions:.
# Local tools only ever see fake credentials, so nothing here can reach a real account.
OFFLINE := env -u AWS_PROFILE AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
	AWS_SESSION_TOKEN=testing AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0

# `sam build` needs the functions' runtime interpreter (e.g. python3.12) on PATH.
RUNTIME := $(or $(shell grep -oE 'Runtime: *python3\.[0-9]+' template.yaml 2>/dev/null \
	| grep -oE 'python3\.[0-9]+' | head -n 1),python3.12)
RUNTIME_PYTHON = $(shell for p in $$(type -ap $(RUNTIME)) \
	$(HOME)/.pyenv/versions/*/bin/$(RUNTIME); do \
	"$$p" -c '' 2>/dev/null && { echo "$$p"; break; }; done)

.PHONY: help setup demo-setup demo test build clean requirements \
	lint format-check typecheck documents cfn-lint sam-validate asl checkov policy-audit powershell pytest

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

# --- set-up ---------------------------------------------------------------------------

# Two pinned sets, every file hash-checked (--require-hashes): requirements-demo.txt is what
# `make demo` needs (the simulator, the handlers' libraries), requirements-dev.txt adds the
# checks and tests. Both are complete (pip-compile from the .in files: `make requirements`),
# so pip needs no resolver run (--no-deps).
PIP_INSTALL := $(BIN)/pip install --quiet --require-hashes --no-deps

$(VENV)/.demo-installed: requirements-demo.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "$(PYTHON) is older than 3.11; run with PYTHON=python3.11" >&2; exit 1; }
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements-demo.txt
	$(BIN)/pip check
	touch $@

$(VENV)/.installed: $(VENV)/.demo-installed requirements-dev.txt
	$(PIP_INSTALL) -r requirements-dev.txt
	$(BIN)/pip check
	touch $@

# The operator's `vss-restore` command (pyproject's [project.scripts]), editable: offline,
# with the venv's own setuptools; again only when pyproject.toml changes.
$(VENV)/.cli-installed: $(VENV)/.demo-installed pyproject.toml
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --editable .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

demo-setup: $(VENV)/.demo-installed $(VENV)/.cli-installed ## Install what the demo needs only

setup: $(VENV)/.installed $(VENV)/.cli-installed node_modules/.installed ## Install the Python and Node tools

# After editing requirements-*.in: pin and hash both sets again, with pip-tools from the
# index in a throwaway venv (a maintainer's tool, not part of either set).
PIP_COMPILE := out/pip-tools/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links
requirements: ## Compile requirements-dev.txt and requirements-demo.txt with hashes
	test -x out/pip-tools/bin/pip-compile \
		|| { $(PYTHON) -m venv out/pip-tools && out/pip-tools/bin/pip install --quiet pip-tools; }
	$(PIP_COMPILE) -o requirements-dev.txt requirements-dev.in
	$(PIP_COMPILE) -c requirements-dev.txt -o requirements-demo.txt requirements-demo.in

# --- checks (in CI order) ---------------------------------------------------------------

test: setup lint format-check typecheck documents cfn-lint sam-validate asl checkov policy-audit powershell build pytest ## Run every check (sam build included)
	@echo "All checks passed."

lint: setup
	$(BIN)/ruff check

format-check: setup
	$(BIN)/ruff format --check

typecheck: setup
	$(BIN)/mypy

# The SSM documents' scripts live in documents/*.ps1; template.yaml must hold exactly them.
documents: setup
	$(BIN)/python -m tools.documents --check

cfn-lint: setup
	$(BIN)/cfn-lint template.yaml e2e/fixture.yaml

sam-validate: setup
	$(OFFLINE) $(BIN)/sam validate --lint --template-file template.yaml

# asl-validator cannot read ${Placeholders}: it checks copies filled with fake values.
asl: setup
	@test -n "$(ASL_FILES)" || { echo "no statemachine/*.asl.json" >&2; exit 1; }
	$(BIN)/python -m tools.asl_substituted --template template.yaml --out-dir $(ASL_OUT) $(ASL_FILES)
	node_modules/.bin/asl-validator $(foreach f,$(ASL_FILES),--json-path $(ASL_OUT)/$(notdir $(f)))

checkov: setup
	$(BIN)/checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

# parliament, its community auditors included, over every policy of every principal the
# synthesized template creates; each accepted finding has its reason beside its statement.
policy-audit: setup
	$(BIN)/python -m tools.audit_policies --template template.yaml

powershell: setup
	$(BIN)/python -m tools.parse_powershell --template template.yaml

# Two workers (pytest-xdist): the simulated runs are CPU-bound and the machine has 2 cores.
pytest: setup
	$(OFFLINE) $(BIN)/pytest -q -p no:cacheprovider -n 2

# --- running ----------------------------------------------------------------------------

demo: demo-setup ## Run the nightly-fleet scenario (the default HelperMode=fleet) in the simulator
	$(OFFLINE) $(BIN)/vss-restore simulate simulator/scenarios/nightly-fleet.json

# Lambda's /var/task is read-only, so a package without .pyc is compiled again at every cold
# start (our code and Powertools: most of a handler's import time). The runtime's Python
# compiles it once here; unchecked-hash, as a deployed package never changes.
PACKAGE_COMPILE := -m compileall -q --invalidation-mode unchecked-hash

build: setup ## sam build (needs the functions' runtime Python), then compile the package
	@test -n "$(RUNTIME_PYTHON)" || { echo "no working $(RUNTIME) found for sam build" >&2; exit 1; }
	PATH="$(dir $(RUNTIME_PYTHON)):$$PATH" $(OFFLINE) $(BIN)/sam build
	$(RUNTIME_PYTHON) $(PACKAGE_COMPILE) .aws-sam/build

clean: ## Remove the tools and build output
	rm -rf $(VENV) node_modules .aws-sam out .mypy_cache .ruff_cache .pytest_cache
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# --- sam local invoke (#8) --------------------------------------------------------------

# Every function in a Lambda container with its events/ sample, against the simulator's
# moto server; skips (status 0) where no Docker engine can run, unless LOCAL_INVOKE_STRICT=1.
.PHONY: local-invoke
local-invoke: setup ## sam build, then sam local invoke every function with its samples
	@test -n "$(RUNTIME_PYTHON)" || { echo "no working $(RUNTIME) found for sam build" >&2; exit 1; }
	PATH="$(dir $(RUNTIME_PYTHON)):$$PATH" $(OFFLINE) $(BIN)/python -m local.invoke \
		--runtime-python "$(RUNTIME_PYTHON)" $(if $(filter 1 true yes,$(LOCAL_INVOKE_STRICT)),--strict)

# --- performance (#7, #13) ---------------------------------------------------------------

# Overhead, cost, cold start, the 300-snapshot fleet, the all-in cost in fleet mode and the
# fast model's 10,000-instance night, overload and backup window, on the simulator's virtual
# clock: one table, and bench/results.json rewritten. About 20 minutes of real time on 2 cores.
.PHONY: bench
bench: setup ## Measure overhead, cost, cold start, a fleet's night and its scale (bench/README.md)
	$(OFFLINE) $(BIN)/python -m bench --json bench/results.json

# --- your account -----------------------------------------------------------------------

# With the project's own pinned SAM CLI (.venv/bin/sam). The first deploy is guided (Region,
# parameters, confirmation), and writes your answers into samconfig.toml for the next ones.
STACK ?= vss-restore
.PHONY: deploy destroy
deploy: build ## Deploy to your account (guided the first time; README "Quickstart")
	@if grep -qE '^region *=' samconfig.toml; then $(BIN)/sam deploy --stack-name $(STACK); \
	else $(BIN)/sam deploy --guided --stack-name $(STACK); fi

# sam delete asks before deleting. Snapshots are never stack resources: the backups and the
# consistent snapshots stay, with their verdict tags; the ledger table goes with the stack.
destroy: setup ## Remove the stack (asks first); every snapshot stays
	$(BIN)/sam delete --stack-name $(STACK)

# --- the acceptance kit on a real account (#14) -----------------------------------------

# Never part of `test` or CI: it creates billed resources. It prints its cost and time
# first, then refuses unless E2E_ACCOUNT_OK=yes, credentials and a Region (E2E_REGION or
# AWS_REGION) are all there. Its steps' simulator twin is tests/e2e (in make test).
.PHONY: e2e
e2e: build ## Prove it on a real account (opt-in, docs/real-account.md: E2E_ACCOUNT_OK=yes ...)
	$(BIN)/python -m e2e $(if $(E2E_REGION),--region $(E2E_REGION))
