# Set-up and the two quick-start commands (see README). Everything runs in ./.venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test reliability lint clean

# (Re)install when the package metadata changes; the package itself is installed editable.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: install, generate demo data, run the pipeline, show its KPIs and write the report
demo: $(STAMP)
	$(BIN)/rentalctl demo-data
	$(BIN)/rentalctl run
	$(BIN)/rentalctl report

## test: install, then run the whole test suite (the command CI runs)
test: $(STAMP)
	$(BIN)/python -m pytest

## reliability: run the reliability suite and rewrite docs/reliability.md from its outcomes
reliability: $(STAMP)
	$(BIN)/python -m pytest tests/reliability --reliability-report docs/reliability.md

## lint: ruff and mypy
lint: $(STAMP)
	$(BIN)/ruff check rentalctl tests
	$(BIN)/ruff format --check rentalctl tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .rentalctl .pytest_cache .ruff_cache .mypy_cache dist build
