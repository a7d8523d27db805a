# The two commands a new user needs: `make demo` and `make test`.
# Each creates .venv when missing and installs exactly what it needs from the repo's own pins.

PATIENTS ?= 500
SEED ?= 42
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_FLAGS := --disable-pip-version-check --quiet
CONSTRAINTS := requirements/constraints.txt

export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DBT_PROFILES_DIR := $(CURDIR)

.PHONY: demo test lint format install install-dev clean help

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-12s %s\n", $$1, $$2}'

demo: $(VENV)/.core-installed  ## Run the whole pipeline end to end on the embedded default
	$(BIN)/mmlake demo --patients $(PATIENTS) --seed $(SEED)

test: $(VENV)/.dev-installed  ## Run the whole test suite (installs test tools first)
	$(BIN)/pytest

lint: $(VENV)/.dev-installed  ## ruff + sqlfluff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	LAKEHOUSE_ROOT=$$(mktemp -d) $(BIN)/sqlfluff lint models data_tests

format: $(VENV)/.dev-installed  ## Apply ruff formatting and sqlfluff fixes
	$(BIN)/ruff format .
	LAKEHOUSE_ROOT=$$(mktemp -d) $(BIN)/sqlfluff fix models data_tests

install: $(VENV)/.core-installed  ## Runtime only (generate, ingest, dbt on DuckDB)
install-dev: $(VENV)/.dev-installed  ## Runtime + Spark/Databricks adapters + test tools

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(PIP_FLAGS) install --upgrade 'pip>=24'

CORE_REQS := requirements/torch.txt requirements/core.txt requirements/nlp.txt \
	requirements/nlp-nodeps.txt requirements/ml.txt requirements/radiomics.txt

# torch first (its CPU wheel), medspaCy without its stale spacy<3.8 pin, pyradiomics from source.
$(VENV)/.core-installed: $(BIN)/python $(CORE_REQS) $(CONSTRAINTS) pyproject.toml
	$(PIP) $(PIP_FLAGS) install -c $(CONSTRAINTS) -r requirements/torch.txt
	$(PIP) $(PIP_FLAGS) install -c $(CONSTRAINTS) -r requirements/core.txt
	$(PIP) $(PIP_FLAGS) install --no-deps -c $(CONSTRAINTS) -r requirements/nlp-nodeps.txt
	$(PIP) $(PIP_FLAGS) install --no-build-isolation -c $(CONSTRAINTS) -r requirements/radiomics.txt
	$(PIP) $(PIP_FLAGS) install --no-deps -e .
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.core-installed requirements/spark.txt requirements/dev.txt
	$(PIP) $(PIP_FLAGS) install -c $(CONSTRAINTS) -r requirements/dev.txt
	@touch $@

clean:  ## Remove generated data, the lakehouse and dbt artefacts (keeps .venv)
	rm -rf lakehouse data/raw target logs dbt_packages .pytest_cache
