# The two entry points of the README: `make demo` and `make test`. Both build their own virtual
# environment and start local PostgreSQL and RabbitMQ when installed but stopped.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Every dependency, dev tools and pip itself included, pinned with hashes; resolved on CPython 3.11,
# Linux x86_64 (the machines of this project and its CI). `make lock` refreshes it.
LOCK   := requirements-dev.lock
# `make lock LOCK_ARGS=--upgrade` moves every pin to the newest release;
# `LOCK_ARGS='--upgrade-package aiohttp'` moves one. Plain `make lock` keeps the pins it can.
LOCK_ARGS ?=

.PHONY: venv lock services browser lint test test-fast demo bench faults clean

# The lock installs pip and setuptools too, so the project itself is installed without build
# isolation: nothing unpinned is fetched. `pip check` catches a lock older than pyproject.toml.
$(STAMP): $(LOCK) pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 is required" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/pip check || { echo "$(LOCK) does not satisfy pyproject.toml: run 'make lock'" >&2; exit 1; }
	touch $(STAMP)

venv: $(STAMP)

# Refresh the lock from pyproject.toml with the pip-tools pinned in it (installed from the current
# lock if the venv lacks them, so a lock that no longer matches pyproject.toml can still be fixed).
lock:
	@test -x $(BIN)/pip-compile || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --require-hashes -r $(LOCK); }
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
		--strip-extras --extra dev --all-build-deps --no-emit-find-links --no-emit-index-url \
		--no-emit-trusted-host $(LOCK_ARGS) -o $(LOCK) pyproject.toml

services:
	@scripts/ensure-services.sh

# The panel's browser tests drive Debian's chromium (installed here when missing, as root).
browser:
	@scripts/ensure-browser.sh

lint: venv
	$(BIN)/ruff check allegro_sync tests bench scripts
	$(BIN)/ruff format --check allegro_sync tests bench scripts
	$(BIN)/mypy
	$(BIN)/lint-imports --no-logo --no-cache

test: venv services browser lint
	$(BIN)/pytest

# The suite without the slow broker/daemon restarts, for a quick loop while developing.
test-fast: venv services browser
	$(BIN)/pytest -m "not slow" -x

demo: venv services
	$(BIN)/python scripts/demo.py

bench: venv services
	$(BIN)/python -m bench

# The fault suite (bench/faults, README "Fault suite"): PostgreSQL and RabbitMQ nodes of its own,
# about half an hour; not part of `make test`. `make faults FAULTS="cluster-orders --quick"`.
faults: venv
	$(BIN)/python -m bench.faults $(FAULTS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
