# `make test` is the whole set-up on a fresh Debian/Ubuntu machine: system packages (as root),
# a virtualenv in .venv, the package with its test extra, then lint, types and the test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test setup lint types unit bench clean

test: setup lint types
	$(BIN)/pytest -q

setup: $(VENV)/.installed
	@bash scripts/setup-system.sh

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench examples

types: $(VENV)/.installed
	$(BIN)/mypy

bench: setup
	$(BIN)/python bench/startup.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
