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

.PHONY: install system-deps demo test lint bench clean

$(VENV)/.installed: pyproject.toml requirements.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv==0.13.8
	@test -x $(PY) || $(UV) venv --quiet --python 3.11 $(VENV)
	$(UV) pip sync --quiet -p $(PY) requirements.lock
	$(UV) pip install --quiet -p $(PY) --no-deps -e .
	@touch $@

install: $(VENV)/.installed

# Debian packages the tests use for real: headless Chromium (the report) and PostgreSQL.
system-deps:
	@bash scripts/system-deps.sh

demo: install
	@mkdir -p $(DAGSTER_HOME) && cp -n dagster.yaml $(DAGSTER_HOME)/dagster.yaml 2>/dev/null || true
	$(VENV)/bin/feedback-pipelines generate --days $(DEMO_DAYS) --end $(DEMO_END) --out $(FEEDBACK_DATA_DIR)/landing
	$(VENV)/bin/feedback-pipelines run --start $(DEMO_START) --end $(DEMO_END)
	@$(VENV)/bin/feedback-pipelines summary --end $(DEMO_END)

test: install system-deps
	$(VENV)/bin/pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/ingest.py

clean:
	rm -rf data .dagster_home
