"""The employees ML loop through Dagster, end to end, on a real lake folder, a real MLflow
store and a real HTTP receiver for alerts:

    CDC → current → features → candidate → champion → predictions → drift report (none)
    → drifted CDC → drift report flags it → the retrain sensor requests a run (once,
    then cooldown) → the new candidate is gated.
"""

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from smartstream_assets import ingestion
from smartstream_assets.definitions import defs
from smartstream_assets.demo import SAMPLE_DIR, seed_raw_zone
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.lake import PROJECT_ROOT, LocalLake
from smartstream_assets.ml.registry import CHAMPION, Registry
from smartstream_assets.producers import Drift, produce
from smartstream_assets.producers.employees import EmployeeSimulator
from smartstream_assets.tables import load_tables

from .helpers import current_table, fresh_project_env, http_receiver, ml_resources, write_current

SPEC = load_tables(extra="")["employees"]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
# the employees group holds its whole lineage: everything after the table's ingestion
ML = dg.AssetSelection.groups("employees") - dg.AssetSelection.assets(
    dg.AssetKey(["employees", "trusted"]), dg.AssetKey(["employees", "current"])
)
APPROVAL = dg.AssetKey(["employees", "attrition_approval"])
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SMALL_SEARCH = {"ops": {"employees__attrition_candidate": {"config": {"trials": 4}}}}


class Project:
    """A lake, an MLflow store and a Dagster instance that live for one test."""

    def __init__(self, tmp_path, webhook: str = ""):
        self.lake = LocalLake(tmp_path / "lake")
        self.tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
        self.registry = Registry(self.tracking_uri)
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = ml_resources(self.lake.url, self.tracking_uri, webhook)

    def ingest(self) -> None:
        for day, objects in sorted(ingestion.raw_objects_by_date(self.lake, SPEC).items()):
            ingestion.build_trusted_partition(self.lake, SPEC, day, objects)
        ingestion.update_current(self.lake, SPEC)

    def materialize(self, selection, run_config=None, tags=None, partition_key=None) -> dg.ExecuteInProcessResult:
        """``partition_key``: the scoring partition, when the selection scores (default ``PARTITION``)."""
        config = {**QUIET, **(run_config or {})}
        if partition_key is None and selection.resolve(defs.resolve_asset_graph()) & SCORED:
            partition_key = PARTITION
        result = dg.materialize(
            list(defs.assets), selection=selection, resources=self.resources, instance=self.instance,
            run_config=config, tags=tags, raise_on_error=False, partition_key=partition_key,
        )  # fmt: skip
        failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert result.success, "\n".join(failures)
        return result

    def tick(self, name: str, cursor=None):
        sensor = defs.get_sensor_def(name)
        with dg.build_sensor_context(instance=self.instance, cursor=cursor, definitions=defs) as context:
            return sensor(context)


# the monthly scoring partition the tests score (and the set of partitioned keys)
PARTITION = "2026-10-01"
SCORED = {dg.AssetKey(["employees", "predictions"]), dg.AssetKey(["employees", "drift_report"])}


def meta(result, key: str) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_drifted_cdc_is_detected_retrains_once_and_the_new_candidate_is_gated(tmp_path):
    with http_receiver() as receiver:
        project = Project(tmp_path, webhook=receiver.url())
        seed_raw_zone(project.lake, SAMPLE_DIR)
        project.ingest()

        # 1. the whole graph on the sample: the first champion, scores, no drift
        first = project.materialize(ML - dg.AssetSelection.assets(APPROVAL), SMALL_SEARCH)
        deployment = meta(first, "employees/attrition_champion")
        assert deployment["status"] == "promoted" and deployment["champion_after"] == "1"
        predictions = meta(first, "employees/predictions")
        scored = pd.read_parquet(predictions["path"])
        current = current_table(project.lake, "employees").to_pandas()
        still_here = current[current["LeaveOrNot"] != 1]  # LeaveOrNot = 1 has left (the headcount rule)
        assert len(scored) == predictions["dagster/row_count"] == len(still_here) < len(current)
        assert set(scored["EmployeeID"]) == set(still_here["EmployeeID"])
        # the scored feature rows travel with their scores and the version that made them
        assert set(scored.columns) == {"run_date", "EmployeeID", *ATTRITION.features, "probability", "predicted_class", "model_version", "anomaly"}
        assert scored["model_version"].eq("1").all() and scored["probability"].between(0, 1).all()
        assert 0 < scored["anomaly"].sum() <= 0.1 * len(scored)
        drift = meta(first, "employees/drift_report")
        assert drift["dataset_drift"] is False and drift["drift_share"] < ATTRITION.drift_share_threshold
        assert drift["report_html_path"].endswith("report.html") and "<html" in open(drift["report_html_path"]).read(2000).lower()
        # the link the UI shows opens in a browser: served by `make ui` from the lake's reports/
        assert drift["report_html"] == project.lake.browser_url(
            f"reports/employees/drift/run_date={PARTITION}/report.html"
        ) and drift["report_html"].startswith("http://127.0.0.1:")
        quiet = project.tick("employees_retrain_sensor")
        assert not quiet.run_requests and quiet.skip_reason.skip_message.startswith("no retraining: drift share 0.")

        # 2. a month of hiring older people, mostly in Pune, at a lower pay tier
        produce(project.lake, SPEC, files=3, interval=0, events=600, seed=5, sleep=lambda _: None, log=lambda _: None,
                drift=Drift(age_shift=8, city="Pune", payment_tier_shift=-1))  # fmt: skip
        project.ingest()
        rescored = project.materialize(job_selection("employees_scoring"))
        drifted = meta(rescored, "employees/drift_report")
        assert drifted["dataset_drift"] is True and drifted["drift_share"] >= ATTRITION.drift_share_threshold
        summary = json.loads(open(drifted["report_json"]).read())
        flagged = {c["column"] for c in summary["columns"] if c["drifted"]}
        assert {"Age", "City", "PaymentTier"} <= flagged
        assert all(c["p_value"] is not None for c in summary["columns"] if c["drifted"])

        # 3. the sensor requests one retraining for that report, then holds
        request = project.tick("employees_retrain_sensor", cursor=quiet.cursor)
        [run] = request.run_requests
        assert run.run_key.startswith("employees-retrain-report-") and run.tags["smartstream/trigger"] == "drift"
        again = project.tick("employees_retrain_sensor", cursor=request.cursor)
        assert not again.run_requests and "already decided on report" in again.skip_reason.skip_message

        # 4. the retraining run: a new candidate, gated against the champion
        retrained = project.materialize(job_selection("employees_retrain"), SMALL_SEARCH, tags=run.tags)
        gate = meta(retrained, "employees/attrition_champion")
        assert gate["candidate_version"] == "2" and gate["status"] in ("held for approval", "rejected")
        assert project.registry.version(ATTRITION.registered_model, CHAMPION).version == "1"

        # 5. a second drifted report within the cooldown does not storm (it scores an older
        # partition: the report describes that partition's rows, with the version that scored them)
        report_again = project.materialize(
            dg.AssetSelection.assets(*SCORED), partition_key="2026-01-01",
        )
        again_meta = meta(report_again, "employees/drift_report")
        assert again_meta["dataset_drift"] is True and again_meta["run_date"] == "2026-01-01"
        assert again_meta["model_version"] == "1"  # the champion scored it: its reference
        cooled = project.tick("employees_retrain_sensor", cursor=request.cursor)
        assert not cooled.run_requests and "cooldown holds" in cooled.skip_reason.skip_message

        kinds = [request.json()["smartstream"]["kind"] for request in receiver.requests]
        assert kinds[0] == "promoted" and kinds.count("drift_detected") == 2
        assert {"held_for_approval", "rejected"} & set(kinds)


def test_a_held_candidate_becomes_champion_when_a_person_approves_it(tmp_path):
    project = Project(tmp_path)
    seed_raw_zone(project.lake, SAMPLE_DIR)
    project.ingest()
    config = {"ops": {"employees__attrition_candidate": {"config": {"trials": 4, "estimators": ["xgboost"]}}}}
    train_and_gate = job_selection("employees_retrain")
    project.materialize(train_and_gate, config)
    # the same data and seed: a candidate exactly as good as the champion is not worse, so it waits
    held = project.materialize(train_and_gate, config)
    assert meta(held, "employees/attrition_champion")["status"] == "held for approval", meta(held, "employees/attrition_champion")["reasons"]
    assert project.registry.version(ATTRITION.registered_model, CHAMPION).version == "1"

    with pytest.raises(dg.DagsterInvalidConfigError, match="approved_by"):  # approved_by is required
        dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.assets(APPROVAL), resources=project.resources,
            instance=project.instance, raise_on_error=False, run_config=QUIET,
        )  # fmt: skip
    # the README's approval command, through the real CLI, on the same lake and MLflow store
    env = fresh_project_env(tmp_path / "cli")
    env.update(SMARTSTREAM_LAKE=project.lake.url, MLFLOW_TRACKING_URI=project.tracking_uri)
    config = {"ops": {"employees__attrition_approval": {"config": {"approved_by": "dana", "note": "checked"}}}}
    cli = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "smartstream_assets", "--select", "employees/attrition_approval",
         "--config-json", json.dumps(config)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert cli.returncode == 0 and "RUN_SUCCESS" in cli.stdout + cli.stderr, cli.stderr[-3000:]
    champion = project.registry.version(ATTRITION.registered_model, CHAMPION)
    assert champion.version == "2" and champion.tags["smartstream.approved_by"] == "dana"
    assert "smartstream.reference" in champion.tags

    # the README's scoring backfill: a range of months in one run, through the real CLI;
    # each month is scored by the new champion and its drift report uses v2's reference
    for args in (["--select", "employees/anomalies"],
                 ["--select", "employees/predictions,employees/drift_report", "--partition-range", "2026-08-01...2026-09-01"]):  # fmt: skip
        cli = subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "smartstream_assets", *args],
            cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert cli.returncode == 0 and "RUN_SUCCESS" in cli.stdout + cli.stderr, cli.stderr[-3000:]
    for month in ("2026-08-01", "2026-09-01"):
        scored = project.lake.read_parquet(f"predictions/employees/run_date={month}/data.parquet").to_pandas()
        assert len(scored) > 0 and scored["model_version"].eq("2").all()
        report = json.loads(project.lake.read_bytes(f"reports/employees/drift/run_date={month}/report.json"))
        assert report["n_current"] == len(scored)
    assert not project.lake.exists("predictions/employees/run_date=2026-10-01/data.parquet")  # outside the range


def test_the_fairness_check_fails_with_severity_error_on_a_biased_dataset(tmp_path):
    project = Project(tmp_path)
    staff = EmployeeSimulator(4).full_load(1500, datetime(2026, 6, 1, tzinfo=timezone.utc))
    staff["LeaveOrNot"] = (staff["Gender"] == "Female").astype("int64")  # who leaves is who she is
    _write_current(project.lake, staff)
    result = dg.materialize(
        list(defs.assets), selection=job_selection("employees_retrain"), resources=project.resources,
        instance=project.instance, raise_on_error=False,
        run_config={**QUIET, "ops": {"employees__attrition_candidate": {"config": {"trials": 2}}}},
    )  # fmt: skip
    assert not result.success  # the check is blocking for protected facets: the gate does not run
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "fairness" and check.passed is False
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["worst_facet"].value == "Gender" and check.metadata["worst_difference"].value > 0.9
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "employees/attrition_champion"]
    assert project.registry.version(ATTRITION.registered_model, CHAMPION) is None
    # the gate run on its own decides on that candidate by the same rule: rejected
    gate = meta(project.materialize(dg.AssetSelection.assets(dg.AssetKey(["employees", "attrition_champion"]))), "employees/attrition_champion")
    assert gate["status"] == "rejected" and "demographic-parity difference" in gate["reasons"]


def test_predictions_need_a_champion_and_say_so(tmp_path):
    project = Project(tmp_path)
    _write_current(project.lake, EmployeeSimulator(2).full_load(300, datetime(2026, 6, 1, tzinfo=timezone.utc)))
    result = dg.materialize(
        list(defs.assets),
        selection=dg.AssetSelection.assets(*(dg.AssetKey(["employees", k]) for k in ("features", "anomalies", "predictions"))),
        resources=project.resources, instance=project.instance, raise_on_error=False, run_config=QUIET,
        partition_key=PARTITION,
    )  # fmt: skip
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "has no champion yet: materialise employees/attrition_candidate" in failure.event_specific_data.error.to_string()


def job_selection(name: str) -> dg.AssetSelection:
    """What a job of the code location materialises (as its schedule or sensor would run it)."""
    return next(job for job in defs.jobs if job.name == name).selection


def _write_current(lake, frame: pd.DataFrame) -> None:
    write_current(lake, "employees", frame)
