# Two commands do all the set-up on a fresh machine:
#   make demo   installs into .venv and runs the offline smoke audit
#   make test   installs into .venv and runs the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export DO_NOT_TRACK ?= 1

.PHONY: install test demo lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $(STAMP)

test: install
	$(PY) -m pytest

demo: install
	$(VENV)/bin/t2iaudit audit audits/smoke.yaml --out outputs/smoke
	@echo "open outputs/smoke/summary.md"

lint: install
	$(VENV)/bin/ruff check t2iaudit tests flows benchmarks
	$(VENV)/bin/ruff format --check t2iaudit tests flows benchmarks

bench: install
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_generation.py

clean:
	rm -rf outputs/smoke .pytest_cache
