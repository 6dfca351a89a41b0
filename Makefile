# Triptych — one gateway, three frameworks. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PACKAGES := -e shared -e services/asyncio -e services/trio -e services/curio -e tests

.DEFAULT_GOAL := help
.PHONY: help venv test test-core test-contract lint up compare compare-quick floor clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml shared/pyproject.toml services/*/pyproject.toml tests/pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Triptych needs Python 3.11 or newer")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check 'pip>=25.1'
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt $(PACKAGES) --group dev
	@touch $@

venv: $(STAMP)  ## create or update .venv with every package and tool

test: $(STAMP)  ## run every test: core, the three services, the contract suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-core: $(STAMP)  ## core unit tests only (no event loop, no database)
	$(PY) -m pytest tests/core $(PYTEST_ARGS)

test-contract: $(STAMP)  ## the black-box contract suite (IMPL=asyncio|trio|curio to pick one)
	$(PY) -m pytest tests/contract $(if $(IMPL),--impl $(IMPL)) $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

up: $(STAMP)  ## start Postgres, the stub and a gateway (IMPL=asyncio) with a demo key and route
	$(PY) -m harness.up $(if $(IMPL),--impl $(IMPL))

compare: $(STAMP)  ## load-test the three implementations side by side (about 10 minutes)
	$(PY) -m loadtest compare $(ARGS)

compare-quick: $(STAMP)  ## the same comparison, short (about 2 minutes)
	$(PY) -m loadtest compare --quick $(ARGS)

floor: $(STAMP)  ## hello-world h11 servers on each framework's own sockets
	$(PY) -m loadtest floor $(ARGS)

clean:  ## remove the virtualenv, caches and reports
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache reports .run
