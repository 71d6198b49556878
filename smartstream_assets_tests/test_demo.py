"""`make demo`'s program, run as a newcomer runs it: a fresh lake, Dagster instance and MLflow store."""

import subprocess
import sys

import dagster as dg

from smartstream_assets import ingestion
from smartstream_assets.lake import PROJECT_ROOT, LocalLake

from .helpers import fresh_project_env, tick


def test_the_demo_materialises_the_graph_into_the_instance_and_is_safe_to_rerun(tmp_path):
    env = fresh_project_env(tmp_path)
    home = env["DAGSTER_HOME"]
    cmd = [sys.executable, "-m", "smartstream_assets.demo"]

    first = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "copied 61 sample objects" in first.stdout
    assert "| employees | 61 | 61 |" in first.stdout and "make ui" in first.stdout

    lake = LocalLake(tmp_path / "lake")
    current = lake.read_parquet(ingestion.current_key("employees"))
    assert current.num_rows > 1000
    with dg.DagsterInstance.from_config(home) as instance:
        runs = instance.get_runs()
        assert len(runs) == 2 and all(run.is_success for run in runs)  # ingestion, then the ML graph
        for key in (["current", "employees"], ["deployments", "employees_attrition"], ["reports", "employees_drift"],
                    ["reports", "employees_dashboard"], ["forecasts", "employees_headcount"]):  # fmt: skip
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        assert instance.get_latest_materialization_event(dg.AssetKey(["approvals", "employees_attrition"])) is None
        # switching the raw sensor on now re-ingests nothing: every date is built from exactly these objects
        first_tick = tick(lake, instance=instance)
        assert first_tick.run_requests == []
        assert "dates already ingested from exactly these objects" in first_tick.skip_reason.skip_message
    assert "| smartstream-employees-attrition | v1 |" in first.stdout
    assert (tmp_path / "mlflow.db").exists()

    again = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "copied 0 sample objects" in again.stdout
    assert lake.read_parquet(ingestion.current_key("employees")).equals(current)
    # the same data trains an equally good candidate: the gate holds it for a person
    assert "| smartstream-employees-attrition | v1 |" in again.stdout
