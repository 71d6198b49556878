"""`make demo`'s program, run as a newcomer runs it: a fresh lake, Dagster instance and MLflow store."""

import json
import subprocess
import sys

import dagster as dg

from smartstream_assets import delta, ingestion
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.lake import PROJECT_ROOT, LocalLake

from .helpers import current_table, fresh_project_env, tick


def test_the_demo_materialises_the_graph_into_the_instance_and_is_safe_to_rerun(tmp_path):
    env = fresh_project_env(tmp_path)
    # the reviews encoder fine-tuned for 1 epoch on 300 rows (make demo: 2 epochs on all, ~90 s), 2 sepsis trials (8)
    env["SMARTSTREAM_DEMO_OPS_CONFIG"] = json.dumps(
        {"reviews__absa_candidate": {"fine_tune_epochs": 1, "fine_tune_rows": 300}, "vitals__sepsis_candidate": {"trials": 2}}
    )
    home = env["DAGSTER_HOME"]
    cmd = [sys.executable, "-m", "smartstream_assets.demo"]

    first = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    assert "copied 116 sample objects" in first.stdout
    assert "| employees | 61 | 61 |" in first.stdout and "| co2 | 11 | 11 | 2225 | 0 | 2225 |" in first.stdout
    assert "| reviews | 24 | 1 | 687 | 0 | 687 |" in first.stdout and "| reviews_labelled | 4 | 4 | 2400 | 0 | 2400 |" in first.stdout
    assert "make ui" in first.stdout

    lake = LocalLake(tmp_path / "lake")
    # the least-privilege policy (deploy/iam-policy.json) is enough: the whole graph wrote
    # nowhere but the zones it owns (and read the raw prefixes the demo seeded)
    from smartstream_assets.iam import OWNED_ZONES
    from smartstream_assets.tables import load_tables

    raw = tuple(spec.raw_prefix for spec in load_tables(extra="").values())
    elsewhere = [o.key for o in lake.list("") if not o.key.startswith((*raw, *OWNED_ZONES))]
    assert not elsewhere, elsewhere[:10]
    current = current_table(lake, "employees").sort_by("EmployeeID")
    assert current.num_rows > 1000
    version = delta.table_version(lake, ingestion.current_key("employees"))
    with dg.DagsterInstance.from_config(home) as instance:
        runs = instance.get_runs()
        # ingestion of each table, the unpartitioned ML graph, then each domain's scoring of
        # its latest partition (employees: the last month; co2: the last hour; reviews: the
        # sample's last hour of reviews; vitals: the last hour of live readings), and vitals'
        # micro-batches scored as they land (one run over every sample object's partition)
        assert len(runs) == 12 and all(run.is_success for run in runs)
        batches = instance.get_dynamic_partitions("vitals_batches")
        assert len(batches) == 12
        stream = instance.get_latest_materialization_event(dg.AssetKey(["vitals", "scores"]))
        assert stream is not None and stream.asset_materialization.partition in batches
        scorings = {run.tags["dagster/partition"] for run in runs if run.tags.get("dagster/partition") and not run.tags["dagster/partition"].endswith(".jsonl")}
        partition = ATTRITION.scoring_cadence.partitions_def().get_last_partition_key()
        assert partition in scorings and "2026-11-24-23:00" in scorings and "2026-11-24-02:00" in scorings and len(scorings) == 4
        for key in (["reviews", "absa_champion"], ["reviews", "embeddings"], ["reviews", "drift_report"]):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        for key in (["co2", "regressor_champion"], ["co2", "predictions"], ["co2", "model_quality_monitor"]):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        for key in (["employees", "current"], ["employees", "attrition_champion"], ["employees", "drift_report"],
                    ["employees", "dashboard"], ["employees", "headcount_forecast"]):  # fmt: skip
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None, key
        assert instance.get_latest_materialization_event(dg.AssetKey(["employees", "attrition_approval"])) is None
        drift = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["employees", "drift_report"]), asset_partitions=[partition]), limit=1
        ).records
        assert drift and drift[0].asset_materialization.metadata["model_version"].value == "1"
        # switching the raw sensor on now re-ingests nothing: every date is built from exactly these objects
        first_tick = tick(lake, instance=instance)
        assert first_tick.run_requests == []
        assert "dates already ingested from exactly these objects" in first_tick.skip_reason.skip_message
    assert "| smartstream-employees-attrition | v1 |" in first.stdout
    assert "| smartstream-co2-regressor | v1 |" in first.stdout
    assert "| smartstream-reviews-absa | v1 |" in first.stdout
    assert "| smartstream-vitals-sepsis | v1 |" in first.stdout
    assert (tmp_path / "mlflow.db").exists()

    again = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "copied 0 sample objects" in again.stdout
    assert current_table(lake, "employees").sort_by("EmployeeID").equals(current)
    assert delta.table_version(lake, ingestion.current_key("employees")) == version  # a replay commits nothing
    # the same data trains an equally good candidate: the gate holds it for a person
    assert "| smartstream-employees-attrition | v1 |" in again.stdout


def test_the_demo_gives_run_config_only_to_the_ops_of_each_step(monkeypatch):
    import pytest

    from smartstream_assets import demo

    candidate = dg.AssetKey(["reviews", "absa_candidate"])
    monkeypatch.setenv("SMARTSTREAM_DEMO_OPS_CONFIG", json.dumps({"reviews__absa_candidate": {"fine_tune_epochs": 1}}))
    config = demo._ops_config()
    assert demo._step_ops(config, {candidate, dg.AssetKey(["reviews", "labelled"])}) == {
        "ops": {"reviews__absa_candidate": {"config": {"fine_tune_epochs": 1}}}
    }
    assert demo._step_ops(config, {dg.AssetKey(["reviews", "predictions"])}) == {}
    monkeypatch.setenv("SMARTSTREAM_DEMO_OPS_CONFIG", "{not json")
    with pytest.raises(SystemExit, match="not JSON"):
        demo._ops_config()
    monkeypatch.setenv("SMARTSTREAM_DEMO_OPS_CONFIG", '{"reviews__absa_candidate": 3}')
    with pytest.raises(SystemExit, match="op names to configs"):
        demo._ops_config()
