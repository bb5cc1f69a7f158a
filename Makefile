# Two entry points work on a fresh machine with only Python 3.11+ and make:
#   make serve   install everything, then serve the bundled policies and plugins
#   make test    install everything, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install serve check test typecheck bench clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' $(foreach p,$(wildcard plugins/*/pyproject.toml),-e $(dir $(p)))
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/kinerja check policies
	@echo "The HTTP server is not part of this release yet: 'make serve' checks the bundled policies."
	@echo "Evaluate with: $(BIN)/kinerja eval nasional --input RECORD.json"

check: install
	$(BIN)/kinerja check policies

test: install
	$(BIN)/python -m pytest -q

typecheck: install
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/bench_engine.py

clean:
	rm -rf $(VENV) build *.egg-info
