# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo sandbox dist test lint typecheck unit e2e bench bench-fast bench-polls-100k report activate clean \
	dagster-demo bench-tenants image-steps

$(STAMP): requirements-dev.txt $(wildcard */pyproject.toml packages/*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/meltano install
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python scripts/demo.py

# Both emulators until Ctrl-C or SIGTERM (which stops them too); a port 0 = any free port
# (printed). SANDBOX_DIR: their data (seeded when missing; `make demo` leaves its data there).
FACTUSOL_PORT  ?= 8765
CLIENTIFY_PORT ?= 8766
SANDBOX_DIR    ?= .sandbox/demo
sandbox: setup
	$(BIN)/python scripts/serve_sandbox.py --factusol-port $(FACTUSOL_PORT) --clientify-port $(CLIENTIFY_PORT) --data-dir $(SANDBOX_DIR)

# dist/: per connector, one wheel that carries our libraries (no dependency on a name that no
# index holds) and its plugin definition, whose pip_url is DIST_PREFIX/<wheel> (root README,
# "Using the connectors in another Meltano project"). DIST_PREFIX: where that project keeps it.
DIST_PREFIX ?= ./fcsync
dist: setup
	$(BIN)/python scripts/dist.py --out dist --pip-prefix $(DIST_PREFIX)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy packages/factusol_api/factusol_api packages/clientify_api/clientify_api packages/customer_sync/customer_sync \
		packages/sync_ledger/sync_ledger packages/sync_report/sync_report packages/sync_activation/sync_activation \
		packages/customer_records/customer_records orchestration/fcsync_orchestration \
		packages/target_runtime/target_runtime target-clientify/target_clientify target-factusol/target_factusol \
		tap-clientify/tap_clientify tap-factusol/tap_factusol packages/sandbox/sandbox

unit: setup
	$(BIN)/pytest -m "not e2e" -q

e2e: setup
	$(BIN)/pytest -m e2e -q

# Two pytest workers (pytest-xdist): most of the suite waits on subprocesses and sandboxes, so two
# workers on 2 cores take ~11 minutes where one takes ~17. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2
test: lint typecheck
	$(BIN)/pytest -q -n $(TEST_WORKERS)

bench: setup
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

bench-fast: setup
	$(BIN)/python scripts/bench.py --records 300 --latency-ms 0 --out output/bench-fast

# Issue 24 at N=100,000: idle polls and probes only, both sides seeded already linked; compared
# with the idle figures of the last `make bench` (output/bench/results.json).
bench-polls-100k: setup
	$(BIN)/python scripts/bench.py --records 100000 --polls-only --no-baseline \
		--compare output/bench/results.json --out output/bench-polls-100k $(BENCH_ARGS)

# The report page of the last runs: output/report.html (OUTPUT=dir for another output directory).
OUTPUT ?= output
report: setup
	$(BIN)/fcsync-report --output-dir $(OUTPUT)

# Check the accounts before the first sync: `make activate ENV=prod`.
ENV ?= dev
activate: setup
	$(BIN)/fcsync-activate --environment $(ENV)

# Dagster UI (http://127.0.0.1:3000) over two demo companies on local sandboxes (tenants.demo.yaml).
dagster-demo: setup
	$(BIN)/python scripts/dagster_demo.py

# 20 companies x 1,000 clients through Dagster + PostgreSQL (docs/benchmark.md, "Many companies").
bench-tenants: setup
	$(BIN)/python scripts/bench_tenants.py $(BENCH_ARGS)

# The Dockerfile's install steps in a plain venv (needs the package registry, not Docker).
image-steps:
	PYTHON=$(PYTHON) scripts/check_image_steps.sh

clean:
	rm -rf $(VENV) .meltano output .sandbox
