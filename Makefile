# Two commands do all the set-up on a fresh machine:
#   make demo   installs into .venv and runs the offline smoke audit through the Prefect flow
#   make test   installs into .venv (and Debian's chromium for the report's browser tests)
#               and runs the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export DO_NOT_TRACK ?= 1
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install browser test demo lint bench clean coverage-grid

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip check
	touch $(STAMP)

# The report tests open reports in headless Chromium: Debian's package, never a downloaded browser.
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $(CHROMIUM)"; \
	else $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; fi

test: install browser
	T2IAUDIT_CHROMIUM=$(CHROMIUM) $(PY) -m pytest

# The smoke audit through the Prefect flow, on Prefect's embedded server (SQLite under
# PREFECT_HOME, default ~/.prefect): nothing to start by hand. `t2iaudit audit` is the in-process path.
demo: install
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(PY) flows/audit.py audits/smoke.yaml --out outputs/smoke

# flows/ is linted once it exists.
LINT_PATHS := t2iaudit tests benchmarks $(wildcard flows)

lint: install
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	$(VENV)/bin/mypy t2iaudit $(wildcard flows)

bench: install
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_generation.py
	$(PY) benchmarks/bench_report.py
	$(PY) benchmarks/bench_flow.py
	$(PY) benchmarks/crash_safety.py --kills 20 --tiny 3
	$(PY) benchmarks/bench_overhead.py
	$(PY) benchmarks/bench_judging.py
	$(PY) benchmarks/bench_resume.py
	$(PY) benchmarks/bench_memory.py

# Coverage of the metrics' intervals over the full simulated grid (about an hour on 2 cores;
# `--quick` for minutes); kept out of `make bench`, which times the pipeline.
coverage-grid: install
	$(PY) benchmarks/bench_coverage.py --sims 100 --jobs 2

clean:
	rm -rf outputs/smoke .pytest_cache
