# smartstream: two commands for a newcomer.
#   make demo   installs everything, then materialises the whole graph on data/
#   make test   installs everything, then runs the full test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := 2.13.0

# The embedded default: the Dagster instance is this folder's dagster.yaml
# (sqlite under .smartstream/), the lake a local folder under .smartstream/.
# An exported DAGSTER_HOME wins (`eval "$(... local_stack env)"`: the production instance).
DAGSTER_HOME ?= $(CURDIR)
export DAGSTER_HOME
export HF_HUB_OFFLINE := 1

.PHONY: install demo test stack stack-down workers bench ui mlflow-ui serve clean

install: $(STAMP)

$(STAMP): setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	# torch's CPU build first: anything that later asks for torch finds it satisfied
	# instead of pulling the multi-GB CUDA build.
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==$(TORCH)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/python -m smartstream_assets.demo

test: install
	$(BIN)/python -m pytest

# The quick loop while editing: no real servers or subprocesses (`integration`) and no
# test over ~3 s (`slow`); markers in pytest.ini, applied in smartstream_assets_tests/conftest.py.
.PHONY: test-fast
test-fast: install
	$(BIN)/python -m pytest -m "not slow and not integration"

# A local REAL stack on 127.0.0.1: SeaweedFS as S3 (with access keys) and an MLflow
# server; `.venv/bin/python -m smartstream_assets.local_stack env` prints its variables.
stack: install
	$(BIN)/python -m smartstream_assets.local_stack up

stack-down:
	$(BIN)/python -m smartstream_assets.local_stack down

# Two Celery workers for runs with SMARTSTREAM_EXECUTOR=celery, on the stack's Redis,
# PostgreSQL instance, lake and MLflow (their variables from `local_stack env`); Ctrl-C stops them.
workers: install
	eval "$$($(BIN)/python -m smartstream_assets.local_stack env)" && \
		$(BIN)/python -m smartstream_assets.celery_worker --workers 2

# The benchmarks, each with its baseline measured in the same run (figures in the README).
bench: install
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/delta_merge.py
	$(BIN)/python benchmarks/delta_writers.py
	$(BIN)/python benchmarks/sensor_tick.py
	$(BIN)/python benchmarks/employees_lineage.py
	$(BIN)/python benchmarks/evaluate_attrition.py
	$(BIN)/python benchmarks/co2_quality.py
	$(BIN)/python benchmarks/hpo_strategies.py
	$(BIN)/python benchmarks/reviews_quality.py
	$(BIN)/python benchmarks/reviews_drift.py
	$(BIN)/python benchmarks/reviews_embeddings.py
	$(BIN)/python benchmarks/vitals_quality.py
	$(BIN)/python benchmarks/vitals_latency.py
	$(BIN)/python benchmarks/closed_loop.py

# dagster dev, and beside it the local lake's reports/ on 127.0.0.1:3001 (the drift
# report links; SMARTSTREAM_REPORTS_URL moves it). The server runs in the background
# (where sh ignores Ctrl-C) and is stopped when dagster dev exits, Ctrl-C included.
ui: install
	$(BIN)/python -m smartstream_assets.reports_server & pid=$$!; \
		trap 'kill $$pid 2>/dev/null' EXIT; trap 'exit 130' INT TERM; \
		$(BIN)/dagster dev

# Serve a registered model's champion over HTTP (POST /invocations):
# `make serve MODEL=<registered model>`; MLFLOW_TRACKING_URI picks the registry.
# mlflow execs uvicorn by name, hence the venv's bin on PATH.
MODEL ?= smartstream-employees-attrition
serve: install
	PATH=$(CURDIR)/$(BIN):$$PATH MLFLOW_TRACKING_URI=$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/.smartstream/mlflow.db} \
		$(BIN)/mlflow models serve -m 'models:/$(MODEL)@champion' --env-manager local \
		-h 127.0.0.1 -p 5001 -w 1

# The embedded MLflow store (runs, registry, aliases); with `make stack`, its server's UI instead.
mlflow-ui: install
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(CURDIR)/.smartstream/mlflow.db

clean:
	-test -x $(BIN)/python && $(BIN)/python -c "from smartstream_assets.local_stack import postgres_workdir, STACK_DIR; import shutil; shutil.rmtree(postgres_workdir(STACK_DIR), ignore_errors=True)"
	rm -rf .smartstream
