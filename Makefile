# The README's commands. Each one works on a fresh machine that has only Python 3.11:
# it creates .venv and installs everything it needs first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install test check lint format bench chaos demo dev screenshots clean

install: $(STAMP)

# The console's browser tests drive the system's chromium (Playwright never downloads one):
# installed with apt when it is missing and apt is there (we are root on CI machines).
$(STAMP): pyproject.toml verifier/pyproject.toml devtools/pyproject.toml
	command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
		(apt-get update && apt-get install -y chromium)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./verifier -e ./devtools -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: lint test

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

chaos: $(STAMP)
	$(PY) -m chaos $(CHAOS_ARGS)

demo: $(STAMP)
	$(PY) -m dispatcher demo

dev: $(STAMP)
	$(PY) -m dispatcher dev

screenshots: $(STAMP)
	$(PY) -m devtools.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
