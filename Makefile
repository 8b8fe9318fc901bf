# Every target sets up .venv from the requirement files when they change; nothing to install by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ORDERS ?= 50
REPORT ?=

.PHONY: help venv demo chaos test lint unit start bench clean checkov

help:
	@echo "make demo   run the order lifecycle end to end on this machine (ORDERS=50, REPORT=path)"
	@echo "make chaos  the lifecycle under injected faults, judged order by order (ORDERS=2000)"
	@echo "make test   lint and run every test"
	@echo "make start  serve the function app and the stand-ins on 127.0.0.1"
	@echo "make lint   ruff, mypy and import-linter"
	@echo "make checkov  scan the Bicep in infra/ with checkov (its own .venv-checkov)"
	@echo "make bench  run the benchmarks and write bench-report.json"

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $(STAMP)

# Azurite (the Table Storage emulator) for the state store's contract tests.
NODE_STAMP := node_modules/.installed

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

# checkov pins dependencies the project's tools do not share, so it has its own venv.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $(CHECKOV_STAMP)

venv: $(STAMP) $(NODE_STAMP)

demo: $(STAMP)
	$(PY) -m local.demo --orders $(ORDERS) $(if $(REPORT),--report $(REPORT))

# ORDERS is 2000 here unless given (make chaos ORDERS=200); the report is chaos-report.json.
CHAOS_ORDERS = $(if $(filter command line environment,$(origin ORDERS)),$(ORDERS),2000)

chaos: $(STAMP)
	$(PY) -m local.chaos --orders $(CHAOS_ORDERS) $(if $(REPORT),--report $(REPORT))

start: $(STAMP)
	$(PY) -m local.host

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict shared
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

checkov: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python infra/parse_bicep.py
	$(CHECKOV_VENV)/bin/checkov --config-file infra/checkov.yaml

test: lint checkov $(NODE_STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m bench $(if $(REPORT),--report $(REPORT))

clean:
	rm -rf .local .pytest_cache .mypy_cache .ruff_cache bench-report.json demo-report.json chaos-report.json
