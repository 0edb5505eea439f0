# One-command entry points. `make run` and `make test` set up .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
STAGE ?= local

.PHONY: run test venv lint fmt typecheck clean
.DEFAULT_GOAL := help

help:
	@echo "make run    - start the local stack (shop on http://127.0.0.1:8000)"
	@echo "make test   - run every check and test"

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
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

typecheck: $(STAMP)
	$(VENV)/bin/mypy

test: $(STAMP) lint
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) .devstack build artifacts

-include infra/deploy.mk
