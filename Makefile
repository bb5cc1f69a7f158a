# Two entry points work on a fresh machine with only Python 3.11+ and make:
#   make serve   install everything, then serve the bundled policies and plugins
#   make test    install everything, then run the whole test suite
PYTHON ?= python3
HOST ?= 127.0.0.1
PORT ?= 8000
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install serve check test test-tools typecheck bench bench-population bench-records bench-bulk bench-cluster bench-tools bench-server clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,formats,cluster]' $(foreach p,$(wildcard plugins/*/pyproject.toml),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/kinerja serve --host $(HOST) --port $(PORT)

check: install
	$(BIN)/kinerja check policies

# Debian's chromium: the tests open the impact report (HTML) in it, headless.
# (PostgreSQL for the decision-store tests comes with the test dependencies: pgserver.)
test-tools:
	command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq chromium; }

# mypy strict, then every test on every core (pytest-xdist; the slow ones too)
test: install test-tools
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

# wrk drives the server benchmark; Debian's package, installed with apt-get (root or sudo).
bench-tools:
	command -v wrk >/dev/null || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq wrk; }

bench-server: install bench-tools
	$(BIN)/python bench/bench_server.py

clean:
	rm -rf $(VENV) build *.egg-info
