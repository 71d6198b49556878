"""Against real servers: an `mlflow server` on 127.0.0.1 holds the runs and the registry,
`mlflow models serve` answers /invocations from the champion alias, and the predictions
land in a real PostgreSQL table."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from smartstream_assets import local_stack
from smartstream_assets.demo import SAMPLE_DIR, seed_raw_zone
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.ml.registry import CHAMPION, Registry
from smartstream_assets.resources import PredictionsDbResource

from .postgres import postgres_server  # noqa: F401  (the session fixture)
from .test_ml_lineage import Project, job_selection, meta

MLFLOW = str(Path(sys.executable).with_name("mlflow"))


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """The server behind MLflow's basic-auth, as `make stack` runs it: the code location,
    the registry client and `mlflow models serve` below log in through MLflow's own
    variables (MLFLOW_TRACKING_USERNAME / _PASSWORD), set for this module only."""
    server = local_stack.start_mlflow(tmp_path_factory.mktemp("mlflow-server"), auth=("admin", "serving-" + os.urandom(8).hex()))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            patch.setenv(name, server.client_env()[name])
        yield server
    server.stop()


@pytest.fixture(scope="module")
def served_project(tracking_server, tmp_path_factory):
    """The sample ingested and a champion trained, all of it logged to the real server."""
    project = Project(tmp_path_factory.mktemp("served"))
    project.tracking_uri = tracking_server.tracking_uri
    project.registry = Registry(tracking_server.tracking_uri)
    project.resources["mlflow"] = type(project.resources["mlflow"])(tracking_uri=tracking_server.tracking_uri)
    seed_raw_zone(project.lake, SAMPLE_DIR)
    project.ingest()
    result = project.materialize(job_selection("employees_retrain"), {"ops": {"employees__attrition_candidate": {"config": {"trials": 2}}}})
    assert meta(result, "employees/attrition_champion")["status"] == "promoted"
    return project


def test_the_tracking_server_holds_the_run_the_version_and_its_artifacts(served_project, tracking_server):
    from .test_s3 import mlflow_api_status

    assert mlflow_api_status(tracking_server.tracking_uri) == 401  # nobody gets in without the login
    registry = Registry(tracking_server.tracking_uri)
    champion = registry.version(ATTRITION.registered_model, CHAMPION)
    assert champion is not None and champion.version == "1"
    run = registry.client.get_run(champion.run_id)
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "fairness.Gender.demographic_parity_difference"} <= set(run.data.metrics)
    artifacts = {a.path for a in registry.client.list_artifacts(champion.run_id)}
    assert {"classification_report.json", "fairness.json", "data", "plots", "reference"} <= artifacts
    children = registry.client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(children) == 2  # one nested run per trial
    assert meta_url(served_project).startswith(f"{tracking_server.tracking_uri}/#/experiments/")


def meta_url(project) -> str:
    record = project.instance.fetch_materializations(dg.AssetKey(["employees", "attrition_candidate"]), limit=1).records[0]
    return record.asset_materialization.metadata["mlflow_run"].value


def test_mlflow_models_serve_answers_probabilities_from_the_champion_alias(served_project, tracking_server):
    port = local_stack.free_port()
    # `mlflow models serve` execs uvicorn by name: the venv's bin must be on PATH (make serve does this)
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_server.tracking_uri, PATH=f"{Path(MLFLOW).parent}:{os.environ['PATH']}")
    cmd = [MLFLOW, "models", "serve", "-m", f"models:/{ATTRITION.registered_model}@champion",
           "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        rows = served_project.lake.read_parquet("features/employees/data.parquet").to_pandas()[ATTRITION.features].head(3)
        body = json.dumps({"dataframe_split": rows.to_dict(orient="split", index=False)}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    served = np.asarray(answer["predictions"])
    assert served.shape == (3, 2)  # P(stay), P(leave) per row
    local = Registry(tracking_server.tracking_uri).load_pipeline(ATTRITION.registered_model, "1").predict_proba(rows)
    np.testing.assert_allclose(served, local, rtol=1e-6)


@pytest.mark.parametrize("model", [None, "smartstream-loans-default"])
def test_make_serve_serves_the_champion_of_the_model_given(model):
    """`make serve MODEL=<registered model>` serves any domain's champion; without
    MODEL, the attrition model's. A dry run (-n) prints the command without running it."""
    root = Path(__file__).resolve().parents[1]
    args = ["make", "-n", "-C", str(root), "serve"] + ([f"MODEL={model}"] if model else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60).stdout
    wanted = model or ATTRITION.registered_model
    assert f"mlflow models serve -m 'models:/{wanted}@champion' --env-manager local" in out
    assert "--env-manager local" in out and "-h 127.0.0.1" in out


def test_predictions_are_upserted_into_postgres_once_per_run_date_and_employee(served_project, postgres_server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("SMARTSTREAM_PREDICTIONS_DB", postgres_server.url)
    served_project.resources["predictions_db"] = PredictionsDbResource()
    scoring = dg.AssetSelection.assets(
        dg.AssetKey(["employees", "anomalies"]), dg.AssetKey(["employees", "predictions"])
    )
    first = meta(served_project.materialize(scoring, partition_key="2026-10-01"), "employees/predictions")
    assert first["sql_table"] == "employee_predictions" and first["sql_rows_upserted"] == first["dagster/row_count"]
    again = meta(served_project.materialize(scoring, partition_key="2026-10-01"), "employees/predictions")
    assert again["sql_rows_upserted"] == 0  # the same scores for the same run date: nothing rewritten
    with postgres_server.connect() as conn:
        count, run_dates, versions = conn.execute(
            'SELECT count(*), count(DISTINCT run_date), min(model_version) FROM employee_predictions'
        ).fetchone()
    assert (count, run_dates, versions) == (first["dagster/row_count"], 1, "1")
    lake_rows = pd.read_parquet(first["path"])
    assert len(lake_rows) == count


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mlflow models serve exited: {process.stdout.read().decode()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow models serve did not answer {url} within {timeout:.0f}s")
