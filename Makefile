# Two commands: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The contract validators integrators use (npm): reinstalled only when the lock changes.
VALIDATORS := tools/validators
VALIDATORS_STAMP := $(VALIDATORS)/node_modules/.installed

.PHONY: install validators run test lint docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(VALIDATORS_STAMP): $(VALIDATORS)/package.json $(VALIDATORS)/package-lock.json
	cd $(VALIDATORS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

validators: $(VALIDATORS_STAMP)

run: $(STAMP)
	$(BIN)/leads dev --demo

test: $(STAMP) $(VALIDATORS_STAMP)
	$(BIN)/ruff format --check contracts services tests bench
	$(BIN)/ruff check contracts services tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/leads docs --out docs/contract

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py --leads 2000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(VALIDATORS)/node_modules
