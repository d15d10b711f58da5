# The README's commands. `make demo` runs the pipeline; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# ajv for the JSON Schema parity test; npm ci empties node_modules, so the stamp goes with it.
JS_DIR := tests/js
JS_STAMP := $(JS_DIR)/node_modules/.installed-$(shell cat $(JS_DIR)/package-lock.json | sha1sum | cut -c1-12)

.PHONY: setup native demo test lint unit services-up services-down cluster-up cluster-down cluster-test bench bench-latency bench-restore bench-memory crash-test fault-test clean \
	dashboard-screenshots bench-gateway

setup: $(STAMP) $(JS_STAMP)

# setuptools warns on every editable install of a flat layout (import shadowing, which
# this layout is meant for); PYTHONWARNINGS keeps that noise off the first screen.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS='ignore:::setuptools.command.editable_wheel' $(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(JS_STAMP): $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	npm ci --prefix $(JS_DIR) --no-audit --no-fund --silent
	touch $@

# The worker's hot core compiled with mypyc (common.native): about a minute the first
# time, nothing while the sources are unchanged. Without it the worker runs the sources.
native: setup
	$(BIN)/dossier-stream native build

demo: setup native
	$(BIN)/dossier-stream demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

# The unit tests of the modules the compiled core holds, run on the compiled core.
NATIVE_TESTS := tests/unit/domain tests/unit/stream_apps/test_store.py \
	tests/unit/stream_apps/test_store_alert_history.py tests/unit/stream_apps/test_store_signatures.py \
	tests/unit/stream_apps/test_retirement.py tests/unit/stream_apps/test_partials.py \
	tests/unit/stream_apps/test_alert_history.py tests/unit/stream_apps/test_alerting.py \
	tests/unit/stream_apps/test_stage_restore.py tests/unit/stream_apps/test_stage_rounds.py \
	tests/unit/schemas/test_events.py tests/unit/schemas/test_plain_reader.py

# Lint, the core's unit tests compiled, then every test on the sources (the workers the
# integration tests start run the compiled core); the tests start (and stop) the local
# Kafka and Redis themselves. All but the `serial` tests run in TEST_WORKERS processes
# (pytest-xdist); those stop or restart the shared broker or Redis, or share the secured
# stack's topics and key prefix, so they run after, in one process.
TEST_WORKERS ?= 2
test: lint native
	DOSSIER_NATIVE=require $(BIN)/python -m common.native run pytest -q -p no:cacheprovider $(NATIVE_TESTS)
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal -m 'not serial'
	$(BIN)/pytest -m serial

services-up: setup
	$(BIN)/dossier-stream services up

services-down: setup
	$(BIN)/dossier-stream services down

# The local three-broker cluster (docs/cluster.md), next to the plain stack.
cluster-up: setup
	$(BIN)/dossier-stream services up --brokers 3

cluster-down: setup
	$(BIN)/dossier-stream services down --brokers 3

# A broker SIGKILLed mid-stream on the three-broker cluster: nothing lost, figures exact.
cluster-test: setup
	DOSSIER_CLUSTER_EVENTS=40000 DOSSIER_CLUSTER_OUTAGE_S=30 $(BIN)/pytest tests/integration/test_cluster.py -v -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The throughput benchmark. Headline: a full simulated quarter (about 1.5 M events), one worker
# with two dossier stage processes (one per core here), against
# a raw consumer on the same topic; then the two-week line against a Faust agent too.
bench: setup native
	$(BIN)/dossier-stream services up
	$(BIN)/python -m bench.pipeline --start 2025-07-01 --days 91 --events 0 --runs 1 \
		--skip-faust --stage-processes 2 --out bench/results/quarter.json
	$(BIN)/python -m bench.pipeline --events 200000 --runs 3

# Live latency, publication to figure, at 100, 1,000 and 5,000 events/s (about 4 minutes).
bench-latency: setup native
	$(BIN)/dossier-stream services up
	$(BIN)/python -m bench.latency

# Restore after a restart: 100,000 and 1,000,000 dossiers (about 6 minutes).
bench-restore: setup native
	$(BIN)/dossier-stream services up
	$(BIN)/python -m bench.restore --dossiers 100000 1000000

# The memory curve: the dossier store at 100,000, 1,000,000 and 5,000,000 dossiers, with
# retirement and (to 1,000,000) without; no services needed (about 90 minutes).
bench-memory: setup
	$(BIN)/python -m bench.memory --dossiers 100000 1000000 5000000 --record-size

# The HTTP gateway: events/s and response times in batches of 100 and 1,000 from 4 agencies.
bench-gateway: setup
	$(BIN)/dossier-stream services up
	$(BIN)/python -m bench.gateway

# The full crash test: 200,000+ events, five SIGKILLs, a broker restart, a Redis flush.
crash-test: setup
	DOSSIER_CRASH_EVENTS=200000 DOSSIER_CRASH_KILLS=5 $(BIN)/pytest tests/integration/test_crash.py -v

# The full fault test: Redis (restarted empty) and the broker, each down for 60 s while
# 100,000 events stream in; the worker must ride both out with exact figures.
fault-test: setup
	DOSSIER_FAULT_OUTAGE_S=60 DOSSIER_FAULT_EVENTS=100000 $(BIN)/pytest tests/integration/test_faults.py -v -s

# The dashboard's browser test, saving its screenshots into docs/img/ for the README.
dashboard-screenshots: setup
	DOSSIER_DASHBOARD_SCREENSHOTS=docs/img $(BIN)/pytest tests/integration/test_dashboard_browser.py
