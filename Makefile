# Two commands: `make run` and `make test`. Each installs what it needs first:
# exactly the versions pinned in uv.lock, into .venv.
PYTHON ?= python3
# uv comes from PyPI with pip; uv.lock pins the same version (a dev dependency),
# and tests/deploy checks that this line, the lock and deploy/Dockerfile agree.
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
# Fails clearly when pyproject.toml changed but uv.lock was not re-locked.
CHECK_LOCK = @$(UV) lock --check --quiet || { \
	echo "uv.lock is out of sync with pyproject.toml: run 'make lock' and commit uv.lock" >&2; \
	exit 1; }

# The contract validators integrators use (npm): reinstalled only when the lock changes.
VALIDATORS := tools/validators
VALIDATORS_STAMP := $(VALIDATORS)/node_modules/.installed
# The Leads page's JavaScript, formatted by the Prettier pinned there: `make format-js`.
PRETTIER := $(VALIDATORS)/node_modules/.bin/prettier --config $(VALIDATORS)/prettier.config.mjs
PAGE_JS := services/lifecycle/entrypoints/web/leads/*.js
CHECK_JS = @$(PRETTIER) --check --log-level=warn $(PAGE_JS) || { \
	echo "the Leads page's JavaScript is not formatted: run 'make format-js'" >&2; \
	exit 1; }

.PHONY: install lock validators format-js run test lint docs bench clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(CHECK_LOCK)
	$(UV) sync --locked --extra dev
	touch $(STAMP)

install: $(STAMP)

# Re-lock after changing dependencies in pyproject.toml (keeps the other pins).
lock: | $(UV)
	$(UV) lock

$(VALIDATORS_STAMP): $(VALIDATORS)/package.json $(VALIDATORS)/package-lock.json
	cd $(VALIDATORS) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

validators: $(VALIDATORS_STAMP)

format-js: $(VALIDATORS_STAMP)
	$(PRETTIER) --write --log-level=warn $(PAGE_JS)

run: $(STAMP)
	$(BIN)/leads dev --demo

test: $(STAMP) $(VALIDATORS_STAMP)
	$(BIN)/ruff format --check contracts services tests bench examples
	$(CHECK_JS)
	$(BIN)/ruff check contracts services tests bench examples
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/leads docs --out docs/contract

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py --leads 2000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(VALIDATORS)/node_modules
