# One-command entry points. `make run` and `make test` set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= local

.PHONY: run test venv lint fmt clean feed bounce complaint sweep suppression
.DEFAULT_GOAL := help

help:
	@echo "make run    - start the local stack (shop on http://127.0.0.1:8000)"
	@echo "make test   - run every check and test"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'pip>=23,<26.3'
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack.run

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP) lint static scan-venv
	$(PY) -m pytest -q

# --- local feedback loop (chalice local has no SNS or schedule); see docs/feedback.md ---
feed: $(STAMP)          ## make feed FIXTURE=tests/fixtures/ses/bounce-permanent-general.json
	$(PY) -m devstack.cli feed $(FIXTURE)

bounce: $(STAMP)        ## make bounce EMAIL=jane@deliverable.test [TRANSIENT=1]
	$(PY) -m devstack.cli bounce $(EMAIL) $(if $(TRANSIENT),--transient,)

complaint: $(STAMP)     ## make complaint EMAIL=jane@deliverable.test
	$(PY) -m devstack.cli complaint $(EMAIL)

sweep: $(STAMP)         ## run the outbox sweeper once against the local stack
	$(PY) -m devstack.cli sweep

suppression: $(STAMP)   ## list the local suppression table
	$(PY) -m devstack.cli suppression

clean:
	rm -rf $(VENV) .devstack build artifacts

-include infra/deploy.mk
-include bench/bench.mk
-include tools/static.mk
