# TrialDesk — `make run` serves the web app, `make test` runs the whole suite.
# Both bootstrap their own virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# make run: demo mode (SQLite file under var/, generated secret key, DEBUG off)
RUN_ENV = TRIALDESK_DEMO=1 TRIALDESK_SQLITE_PATH=$(CURDIR)/var/trialdesk.sqlite3

.PHONY: run test lint format bench docs clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: $(BIN)/.installed
	mkdir -p var
	$(RUN_ENV) $(BIN)/python manage.py migrate --noinput
	$(RUN_ENV) $(BIN)/python manage.py check
	$(RUN_ENV) $(BIN)/trialdesk web demo-setup
	$(RUN_ENV) $(BIN)/trialdesk demo seed
	@echo "TrialDesk (protocol protocols/rumcess.yaml) on http://$(HOST):$(PORT)/"
	$(RUN_ENV) $(BIN)/python manage.py runserver --insecure $(HOST):$(PORT)

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	@if [ -n "$$TRIALDESK_TEST_DATABASE_URL" ]; then \
	  echo "--- database tests again, on PostgreSQL"; \
	  DATABASE_URL="$$TRIALDESK_TEST_DATABASE_URL" $(BIN)/python -m pytest tests/web; \
	else \
	  echo "--- PostgreSQL run skipped: set TRIALDESK_TEST_DATABASE_URL (CI does)"; \
	fi

lint: $(BIN)/.installed
	$(BIN)/ruff check .

format: $(BIN)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(BIN)/.installed
	$(BIN)/python bench/randomize_bench.py
	$(BIN)/python bench/crf_bench.py
	$(BIN)/python bench/dashboard_bench.py
	$(BIN)/python bench/simulation_bench.py
	$(BIN)/python bench/report_bench.py --subjects 1000
	$(BIN)/python bench/prescreen_bench.py
	$(BIN)/python bench/export_bench.py
	$(BIN)/python bench/matrix_bench.py

docs: $(BIN)/.installed
	$(BIN)/python scripts/gen_cli_docs.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
