# The two entry points of the README: `make demo` and `make test`. Both build their own virtual
# environment and start local PostgreSQL and RabbitMQ when installed but stopped.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv services lint test test-fast demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

services:
	@scripts/ensure-services.sh

lint: venv
	$(BIN)/ruff check allegro_sync tests bench scripts
	$(BIN)/ruff format --check allegro_sync tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

test: venv services lint
	$(BIN)/pytest

# The suite without the slow broker/daemon restarts, for a quick loop while developing.
test-fast: venv services
	$(BIN)/pytest -m "not slow" -x

demo: venv services
	$(BIN)/python scripts/demo.py

bench: venv services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
