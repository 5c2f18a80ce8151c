# One-command set-up: every target that needs the virtual environment creates it first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
SERVER ?= daphne
STAMP  := $(VENV)/.installed-stamp
LOCK_VENV := /tmp/backtest-playback-lock

.DEFAULT_GOAL := help

# Refuse an unknown server before doing anything (no venv, no migration).
ifneq ($(filter start-backend,$(MAKECMDGOALS)),)
ifeq ($(filter $(SERVER),daphne uvicorn),)
$(error SERVER must be daphne or uvicorn, not '$(SERVER)')
endif
endif
.PHONY: help start-backend worker test lint fmt migrate superuser demo bench bench-transport bench-catalog bench-engine bench-data bench-jobs bench-playback bench-pages bench-sweeps soak lock clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# Logs for people when run from here; the service's own default is JSON lines.
start-backend: export LOG_FORMAT ?= console
start-backend: migrate ## Migrate, then serve on 127.0.0.1:8000 with one worker (HOST=, PORT=; SERVER=daphne or uvicorn)
	exec $(BIN)/python bin/serve.py --server $(SERVER) --host $(HOST) --port $(PORT)

worker: migrate ## One more worker: runs queued backtests (start as many as you like)
	exec $(BIN)/python manage.py run_worker

test: $(STAMP) ## Run the whole test suite
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP) ## Format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(STAMP) ## Apply database migrations
	$(BIN)/python manage.py migrate --no-input

superuser: migrate ## Create an admin user interactively
	$(BIN)/python manage.py createsuperuser

demo: migrate ## Load the demo catalog, with synthetic bars and engine-computed runs (safe to run twice)
	$(BIN)/python manage.py load_demo

bench: bench-transport bench-catalog bench-engine bench-data bench-jobs bench-playback bench-pages bench-sweeps ## Every benchmark (docs/performance.md)

bench-transport: $(STAMP) ## WebSocket and /healthz against the reference server, side by side
	$(BIN)/python -m bench.transport $(TRANSPORT_ARGS)

bench-catalog: $(STAMP) ## Catalog REST latency with 100,000 runs, on SQLite and PostgreSQL
	$(BIN)/python -m bench.catalog $(CATALOG_ARGS)

bench-engine: $(STAMP) ## The engine over one year of one-minute bars, every strategy
	$(BIN)/python -m bench.engine $(ENGINE_ARGS)

bench-data: $(STAMP) ## Importing 1M one-minute rows (CSV, Parquet, POST /datasets) against pyarrow's bare read
	$(BIN)/python -m bench.data $(DATA_ARGS)

bench-playback: $(STAMP) ## Frames at 30 a second: intervals, CPU per frame, latencies, memory
	$(BIN)/python -m bench.playback $(PLAYBACK_ARGS)

bench-jobs: $(STAMP) ## POST -> DONE latency and runs per second with two workers
	$(BIN)/python -m bench.jobs $(JOBS_ARGS)

bench-pages: $(STAMP) ## The run list's server time at 100,000 runs; a 10,000-trade run's first chart in chromium
	$(BIN)/python -m bench.pages $(PAGES_ARGS)

bench-sweeps: $(STAMP) ## 10,000 SMA variants over 100,000 one-minute bars on two workers, against the engine alone and backtesting.py
	$(BIN)/python -m bench.sweeps $(SWEEPS_ARGS)

soak: $(STAMP) ## Transport soak (RSS must come back), then SOAK_SECONDS (600) of mixed load with workers killed: nothing lost
	$(BIN)/python -m bench.soak

lock: ## Re-resolve pyproject.toml's dependencies into the exact pins of requirements*.txt
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(PYTHON) bin/direct_deps.py > $(LOCK_VENV)/runtime.txt
	$(PYTHON) bin/direct_deps.py dev > $(LOCK_VENV)/dev.txt
	$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(LOCK_VENV)/runtime.txt
	{ sed -n '1,2p' requirements.txt; $(LOCK_VENV)/bin/pip freeze; } > $(LOCK_VENV)/requirements.txt
	$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(LOCK_VENV)/dev.txt
	{ sed -n '1,3p' requirements-dev.txt; $(LOCK_VENV)/bin/pip freeze \
	  | grep -vxFf $(LOCK_VENV)/requirements.txt; } > requirements-dev.txt
	cp $(LOCK_VENV)/requirements.txt requirements.txt

clean: ## Remove the virtual environment and local state (database, dev secret key)
	rm -rf $(VENV) var
