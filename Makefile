# Set-up and the two quick-start commands (see README). Everything runs in ./.venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.dev-installed

.PHONY: demo test reliability lint clean

# (Re)install when the package metadata changes; the package itself is installed editable.
# The demo needs the runtime only; the tests and linters add the dev tools on top.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $(STAMP)

$(DEV): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(DEV)

## demo: install the runtime, generate demo data, run the pipeline, show its KPIs and write the report
demo: $(STAMP)
	$(BIN)/rentalctl demo-data
	$(BIN)/rentalctl run
	$(BIN)/rentalctl report

## test: install with the dev tools, then run the whole test suite (the command CI runs)
test: $(DEV)
	$(BIN)/python -m pytest

## reliability: run the reliability suite and rewrite docs/reliability.md from its outcomes
reliability: $(DEV)
	$(BIN)/python -m pytest tests/reliability --reliability-report docs/reliability.md

## lint: ruff, mypy and the import layers (pyproject.toml's [tool.importlinter])
lint: $(DEV)
	$(BIN)/ruff check rentalctl tests
	$(BIN)/ruff format --check rentalctl tests
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .rentalctl .pytest_cache .ruff_cache .mypy_cache dist build
