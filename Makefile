# Everything runs from a fresh clone: each target creates the venvs it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
export PYTHONPATH := layers/shared:.
export AWS_DEFAULT_REGION ?= eu-north-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help run test unit lint lint-template openapi bench soak clean

help:
	@echo "make run    - the whole service locally (moto, HTTP API, queues, provider simulators)"
	@echo "make test   - lint and every test, from nothing"
	@echo "make bench  - benchmarks: cold start, batch latency, AWS calls per SMS, sizes"
	@echo "make soak   - the long fault-injection and concurrency suites"
	@echo "make openapi - rewrite openapi.json from the code"

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(TOOLS)/.installed: requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

run: $(VENV)/.installed
	$(PY) -m devstack $(ARGS)

lint: $(VENV)/.installed lint-template
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

lint-template: $(TOOLS)/.installed
	$(TOOLS)/bin/cfn-lint --regions $(AWS_DEFAULT_REGION) -- template.yaml

unit: $(VENV)/.installed
	$(PY) -m pytest -m "not e2e"

test: lint $(VENV)/.installed
	$(PY) -m pytest

soak: $(VENV)/.installed
	SOAK=1 $(PY) -m pytest -q -s -p no:logging tests/test_faults.py > .soak.log 2>&1; status=$$?; \
	grep -E '^\{"suite"|^[0-9]+ (passed|failed)' .soak.log; exit $$status

openapi: $(VENV)/.installed
	$(PY) scripts/openapi.py

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(PY) -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
