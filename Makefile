# Two entry points work on a fresh machine with only Python 3.11+ and make:
#   make serve   install everything, then serve the bundled policies and plugins
#   make test    install everything, then lint, the import layers, mypy and the whole test suite
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock lint serve check test test-tools typecheck bench bench-population bench-records bench-bulk bench-cluster bench-startup bench-tools bench-server clean

PLUGINS := $(dir $(wildcard plugins/*/pyproject.toml))

# Every dependency comes from requirements.lock at the version and with the hashes written
# there (pip included); then the project and its plugins, editable, with nothing more.
$(STAMP): requirements.lock pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . $(foreach p,$(PLUGINS),-e $(p))
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

# Refresh both locks to the newest releases that pyproject.toml allows, for every Python
# from 3.11 on: requirements.lock holds the package with all its extras (what `make install`
# installs), requirements-server.lock the same pins for the service alone (the Dockerfile).
# `make lock UPGRADE=` only follows pyproject.toml and keeps every other pin. Then `make
# test` and commit (README: Upgrading dependencies).
UPGRADE ?= --upgrade
LOCK := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes --quiet
lock: $(BIN)/uv
	$(LOCK) --all-extras --group pyproject.toml:build --group pyproject.toml:lock --group pyproject.toml:plugins \
	  $(UPGRADE) -o requirements.lock
	$(LOCK) --extra postgresql --group pyproject.toml:build --group pyproject.toml:plugins -c requirements.lock \
	  -o requirements-server.lock

# uv alone at its locked version, so a lock can be made even when the install cannot
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	awk '/^uv==/ {p = 1} p {print} p && !/\\$$/ {exit}' requirements.lock > $(VENV)/uv.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r $(VENV)/uv.txt

# ruff (pyflakes, pycodestyle, bugbear, pyupgrade, isort, mccabe), then the layers and no
# import cycles (import-linter); both configured in pyproject.toml
lint: install
	$(BIN)/ruff check
	$(BIN)/lint-imports --no-cache

serve: install
	$(BIN)/kinerja serve --host $(HOST) --port $(PORT)

check: install
	$(BIN)/kinerja check policies

# Debian's chromium: the tests open the impact report (HTML) in it, headless.
# (PostgreSQL for the decision-store tests comes with the test dependencies: pgserver.)
test-tools:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq chromium; }

# ruff, the import layers, mypy strict, then every test on every core (pytest-xdist; the slow ones too)
test: install test-tools
	$(BIN)/ruff check
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --dist worksteal

typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_engine.py

bench-population: install
	$(BIN)/python bench/bench_population.py

bench-records: install bench-tools
	$(BIN)/python bench/bench_records.py

bench-bulk: install
	$(BIN)/python bench/bench_bulk.py

bench-cluster: install
	$(BIN)/python bench/bench_cluster.py

bench-startup: install
	$(BIN)/python bench/bench_startup.py

# wrk drives the server benchmark; Debian's package, installed with apt-get (root or sudo).
bench-tools:
	command -v wrk >/dev/null || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq wrk; }

bench-server: install bench-tools
	$(BIN)/python bench/bench_server.py

clean:
	rm -rf $(VENV) build *.egg-info
