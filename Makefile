# The two commands a newcomer needs: `make demo` and `make test`. Both install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
UV := python3 -m uv
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export FEEDBACK_DATA_DIR ?= $(CURDIR)/data
DEMO_DAYS ?= 7
DEMO_END ?= $(shell date -u -d yesterday +%F)
DEMO_START := $(shell date -u -d "$(DEMO_END) - $$(( $(DEMO_DAYS) - 1 )) days" +%F)
# The first day the landing zone holds: where `make dev` starts the daily partitions.
LANDED_START = $(shell ls -d $(FEEDBACK_DATA_DIR)/landing/*/dt=* 2>/dev/null | sed 's/.*dt=//' | sort | head -1)
DEV_PORT ?= 3000
# make test runs the suite on this many worker processes (pytest-xdist), one test file each at a
# time (the files on the generated week as one) so shared fixtures are built once: ~9 min on 2 cores.
TEST_WORKERS ?= 2

.PHONY: install system-deps demo dev test lint bench clean

# Bytecode is compiled once here (~25 s): every Python process then starts ~4 s sooner (a
# Dagster step, a CLI call), also where PYTHONDONTWRITEBYTECODE keeps Python from caching it.
$(VENV)/.installed: pyproject.toml requirements.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.8
	@test -x $(PY) || $(UV) venv --quiet --python 3.11 $(VENV)
	$(UV) pip sync --quiet --compile-bytecode -p $(PY) requirements.lock
	$(UV) pip install --quiet -p $(PY) --no-deps -e .
	@touch $@

install: $(VENV)/.installed

# Debian packages the tests use for real: headless Chromium (the report) and PostgreSQL.
system-deps:
	@bash scripts/system-deps.sh

# The demo's daily partitions start where its data starts (FEEDBACK_START_DATE, unless you set
# it), so the UI shows the demo week rather than a thousand missing days since 2024-01-01.
demo: install
	@mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true
	$(VENV)/bin/feedback-pipelines generate --days $(DEMO_DAYS) --end $(DEMO_END) --out $(FEEDBACK_DATA_DIR)/landing
	FEEDBACK_START_DATE=$${FEEDBACK_START_DATE:-$(DEMO_START)} $(VENV)/bin/feedback-pipelines run --start $(DEMO_START) --end $(DEMO_END)
	@$(VENV)/bin/feedback-pipelines summary --end $(DEMO_END)
	@echo "Browse the runs, assets and checks: make dev (the Dagster UI on http://127.0.0.1:$(DEV_PORT))"

# The Dagster UI over what `make demo` or `feedback-pipelines run` recorded in DAGSTER_HOME, with
# the partitions starting at the first landed day. It starts idle: the sensor knows those files ran.
dev: install
	FEEDBACK_START_DATE=$${FEEDBACK_START_DATE:-$(or $(LANDED_START),$(DEMO_START))} $(VENV)/bin/dagster dev -h 127.0.0.1 -p $(DEV_PORT)

test: install system-deps
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf data .dagster_home
