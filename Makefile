# Everything runs from a fresh clone: each target creates the venvs it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
ENV ?= default
PIP_INSTALL = bin/pip install --disable-pip-version-check --progress-bar off
export PYTHONPATH := layers/shared:.
export AWS_DEFAULT_REGION ?= eu-north-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help run test unit lint lint-template openapi readme bench soak build deploy redrive clean

help:
	@echo "make run      - the whole service locally (moto, HTTP API, queues, provider simulators);"
	@echo "                PORT=3001 for a second one (the other ports follow), ARGS=... for more"
	@echo "make test     - lint, template checks, every test and the SAM dry run, from nothing"
	@echo "make unit     - the tests without the end-to-end ones (no local stack started)"
	@echo "make lint     - ruff, ruff format --check, mypy, and cfn-lint on the template"
	@echo "make lint-template - cfn-lint on template.yaml only"
	@echo "make build    - sam build (installs SAM CLI in $(SAM_VENV); needs a Python 3.12, found for you)"
	@echo "make deploy   - build, then sam deploy (guided the first time); ENV=prod for prod, GUIDED=1 to re-ask"
	@echo "make bench    - benchmarks: cold start, batch latency, AWS calls per SMS, sizes"
	@echo "make soak     - the long fault-injection and concurrency suites"
	@echo "make openapi  - rewrite functions/docs/openapi.json from the code"
	@echo "make readme   - rewrite README.md's API examples from the API's real answers"
	@echo "make redrive  - move a DLQ's messages back, texting nobody twice: ARGS=\"--stack NAME|--local --queue send|fallback [--dry-run]\""
	@echo "make clean    - remove the venvs, the SAM build and the caches"

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	@echo "Creating $(VENV) (the app, tests and linters; first time only, about a minute)..."
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP_INSTALL) -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	@echo "Creating $(TOOLS) (cfn-lint; first time only)..."
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/$(PIP_INSTALL) -r requirements-tools.txt
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	@echo "Creating $(SAM_VENV) (SAM CLI; first time only, about a minute)..."
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/$(PIP_INSTALL) -r requirements-sam.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m devstack $(ARGS)

lint: $(VENV)/.installed lint-template
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

lint-template: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint --regions $(AWS_DEFAULT_REGION) -- template.yaml

unit: $(VENV)/.installed $(TOOLS)/.installed $(SAM_VENV)/.installed
	$(PY) -m pytest -m "not e2e"

test: lint $(VENV)/.installed $(SAM_VENV)/.installed
	$(PY) -m pytest

build: $(SAM_VENV)/.installed
	@py312="$$(scripts/python312.sh)" || exit 1; \
	echo "sam build with $$py312/python3.12"; \
	PATH="$$py312:$$PATH" $(SAM) build --config-env $(ENV)

deploy: build
	$(SAM_VENV)/bin/python scripts/deploy.py --config-env $(ENV) $(if $(GUIDED),--guided)

soak: $(VENV)/.installed
	SOAK=1 $(PY) -m pytest -q -s -p no:logging tests/test_faults.py tests/test_kill.py \
		"tests/test_limits.py::test_a_storm_ends_with_the_hourly_cap_and_one_summary_per_recipient" > .soak.log 2>&1; status=$$?; \
	grep -E '^\{"suite"|^[0-9]+ (passed|failed)' .soak.log; exit $$status

redrive: $(VENV)/.installed
	$(PY) scripts/redrive.py $(ARGS)

openapi: $(VENV)/.installed
	$(PY) scripts/openapi.py

readme: $(VENV)/.installed
	$(PY) scripts/api_examples.py

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(VENV)/$(PIP_INSTALL) -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache
