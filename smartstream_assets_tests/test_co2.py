"""The co2 domain end to end, on the real Mauna Loa sample (data/raw/noaa/co2/): raw
objects → trusted → current → features (time windows per split) → an anchored XGBoost
candidate with evaluation.json → the gate (no approval) with its Model Monitor
baselines → hourly predictions and the four monitors → ``smartstream produce co2
--drift`` (the real CLI) → the monitors flag it → one retrain request → a gated
candidate; a gap in the readings, a station with too little history, the cleanup job's
dry run against what its real run deletes, and the endpoint test."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartstream_assets import delta, ingestion, keys
from smartstream_assets.definitions import build_definitions
from smartstream_assets.domains import co2
from smartstream_assets.domains.co2 import CO2, co2_features
from smartstream_assets.ml.registry import CHALLENGER, CHAMPION
from smartstream_assets.ml.timeseries import SeriesTooShort
from smartstream_assets.producers.co2 import Co2Drift, continue_series, mauna_loa, to_csv
from smartstream_assets.tables import load_tables

from .helpers import LakeProject, current_table, write_current

pytestmark = pytest.mark.slow

SPEC = load_tables(extra="")["co2"]
DEFS = build_definitions([co2.PLUGIN], [SPEC])
K = keys.asset_keys(CO2)
FAST = {"ops": {"co2__regressor_candidate": {"config": {"trials": 4}}}}
HOURS = CO2.scoring_cadence.partitions_def()
SMARTSTREAM = str(Path(sys.executable).with_name("smartstream"))


class Co2Project(LakeProject):
    def __init__(self, root: Path):
        super().__init__(root)
        self.copy_sample("noaa")

    def ingest(self) -> None:
        super().ingest(SPEC)

    def materialize(self, *roles, partition=None, run_config=None) -> dict:
        return self.materialize_metadata(DEFS.assets, [K[r] for r in roles], partition=partition, run_config=run_config)

    def train(self) -> dict:
        return self.materialize("features", "model", "deployment", run_config=FAST)

    def score(self, partition: str) -> dict:
        return self.materialize("features", "predictions", "drift", "data_quality_monitor", "model_quality_monitor",
                                "bias_drift_monitor", partition=partition)  # fmt: skip

    def tick(self, cursor=None):
        return super().tick(DEFS, "co2_retrain_sensor", cursor)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = Co2Project(tmp_path_factory.mktemp("co2"))
    p.ingest()
    p.trained = p.train()
    return p


def test_the_sample_is_the_real_series_and_trains_a_champion_that_beats_both_baselines(project):
    current = current_table(project.lake, "co2").to_pandas()
    assert len(current) == len(mauna_loa()) == 2225 and set(current["station"]) == {"MLO"}

    features = project.trained[K["features"]]
    windows = features["split_windows"]
    assert windows["test"]["rows"] == 104 and windows["validation"]["rows"] == 104
    assert windows["train"]["to"] < windows["validation"]["from"] <= windows["validation"]["to"] < windows["test"]["from"]
    assert windows["test"]["to"].startswith("2001-12-22")  # the last origin with a measured next week
    # the windows as Parquet, as the seed's preprocessing writes them: every labelled row once
    splits = {s: project.lake.read_parquet(keys.features_split_key(CO2, s)).to_pandas() for s in ("train", "validation", "test")}
    assert sum(len(f) for f in splits.values()) == features["labelled_rows"]
    assert splits["train"]["measured_at"].max() < splits["validation"]["measured_at"].min()
    assert splits["validation"]["measured_at"].max() < splits["test"]["measured_at"].min()

    candidate = project.trained[K["model"]]
    version = candidate["model_version"]
    evaluation = json.loads(project.lake.read_bytes(keys.evaluation_key(CO2, version)))
    assert evaluation["model_version"] == version and evaluation["holdout"]["rows"] == 104
    assert set(evaluation["metrics"]) >= {"r2", "mse", "rmse", "mae"}
    base = evaluation["baselines"]
    assert set(base) == {"persistence", "seasonal_naive", "persistence_seasonal_step"}
    # persistence on the test window is this week's reading: measured from the split file
    test = splits["test"]
    assert base["persistence"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((test["target"] - test["co2_ppm"]) ** 2))))
    assert base["seasonal_naive"]["rmse"] > base["persistence"]["rmse"]
    assert evaluation["metrics"]["rmse"] < 0.85 * base["persistence"]["rmse"]  # measured 0.69x with 10 trials
    assert candidate["estimator"] == "xgboost"  # the domain's default estimators

    gate = project.trained[K["deployment"]]
    assert gate["status"] == "promoted" and gate["requires_approval"] is False
    assert "beats baseline persistence" in gate["reasons"] and "beats baseline seasonal_naive" in gate["reasons"]
    # Model Monitor's baselines and the bias baseline, stored with the version at promotion
    run_id = project.registry.get_version(CO2.registered_model, version).run_id
    constraints = project.registry.load_dict(run_id, "baselines/constraints.json")
    assert {f["name"] for f in constraints["features"]} == set(CO2.features)
    statistics = project.registry.load_dict(run_id, "baselines/statistics.json")
    assert statistics["dataset"]["item_count"] == 104  # the newest two fitted years: the drift reference
    bias = project.registry.load_dict(run_id, "baselines/bias.json")
    assert set(bias) == {"station", "season"} and set(bias["season"]["by_group"]) == {"DJF", "MAM", "JJA", "SON"}
    assert "label_difference" in bias["season"]  # pre-training: the labels' difference by season


def test_a_gap_in_the_readings_is_never_a_target():
    readings = mauna_loa()
    frame = co2_features(readings)
    measured = set(readings["measured_at"])
    labelled = frame[frame["target"].notna()]
    next_week = labelled["measured_at"] + pd.Timedelta(days=7)
    assert next_week.isin(measured).all()  # each target is a reading as measured
    unlabelled = frame[frame["target"].isna()]
    # the real series misses 59 weeks: origins before a gap are not trained on (the latest one is scored)
    assert len(unlabelled) == 1 and unlabelled["measured_at"].iloc[0] == readings["measured_at"].max()
    grid = pd.date_range(frame["measured_at"].min(), frame["measured_at"].max(), freq="7D")
    before_a_reading = [t for t in grid if t + pd.Timedelta(days=7) in measured]
    assert len(labelled) == len(before_a_reading) < len(grid) - 40


def test_a_station_with_too_little_history_is_left_out_with_its_reason(project):
    fresh = pd.DataFrame({"station": "NEW", "measured_at": pd.date_range("2001-01-06", periods=20, freq="7D", tz="UTC"),
                          "co2_ppm": 370.0 + np.arange(20) * 0.04})  # fmt: skip
    frame = co2_features(pd.concat([mauna_loa(), fresh], ignore_index=True))
    assert set(frame["station"]) == {"MLO"}
    assert "'NEW' has 20 periods" in frame.attrs["series_skipped"]["NEW"]
    with pytest.raises(SeriesTooShort, match="'NEW' has 20 periods"):
        co2_features(fresh)

    # through the asset: the features asset says so in its metadata and the run succeeds
    key = ingestion.current_key("co2")
    saved = delta.table_version(project.lake, key)
    current = current_table(project.lake, "co2").to_pandas()
    with_new = pd.concat([current, fresh.assign(**{c: current[c].iloc[0] for c in current.columns if c not in fresh.columns})], ignore_index=True)
    write_current(project.lake, "co2", with_new[current.columns])
    try:
        out = project.materialize("features")[K["features"]]
        assert set(out["series_skipped"]) == {"NEW"} and "at least" in out["series_skipped"]["NEW"]
    finally:
        delta.open_table(project.lake, key).restore(saved)  # current as ingestion left it (a new version)
        project.materialize("features")
    restored = current_table(project.lake, "co2")
    assert restored.sort_by("measured_at").equals(current_table(project.lake, "co2", version=saved).sort_by("measured_at"))


def test_drifted_readings_are_flagged_by_the_monitors_and_retrain_once(project):
    first = HOURS.get_last_partition_key()
    clean = project.score(first)
    predictions = project.lake.read_parquet(keys.predictions_key(CO2, first)).to_pandas()
    assert len(predictions) == co2.MONITOR_WEEKS and predictions["reading_id"].iloc[-1] == "MLO@2001-12-29"
    assert "MLO@2001-12-29" in clean[K["predictions"]]["forecasts"]  # next week's forecast, shown
    assert clean[K["drift"]]["dataset_drift"] is False
    assert clean[K["data_quality_monitor"]]["violations"] == 0
    quality = clean[K["model_quality_monitor"]]
    assert quality["degraded"] is False and quality["labelled_rows"] == co2.MONITOR_WEEKS - 1 and quality["pending_rows"] == 1
    assert clean[K["bias_drift_monitor"]]["drifted"] is False
    for kind in ("data_quality", "model_quality", "bias_drift"):
        assert project.lake.exists(keys.monitor_report_key(CO2, kind, first, "html"))
        assert json.loads(project.lake.read_bytes(keys.monitor_report_key(CO2, kind, first, "json")))["model_version"] == "1"
    quiet = project.tick()
    assert quiet.run_requests == [] and "no retraining" in quiet.skip_reason.skip_message

    # a year of readings with the level up 3 ppm and three times the noise, through the real CLI
    produced = subprocess.run(
        [SMARTSTREAM, "produce", "co2", "--weeks", "52", "--drift", "level=+3,noise=x3", "--seed", "7"],
        env=project.env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert "52 weeks x 1 stations" in produced.stdout
    project.ingest()
    second = HOURS.get_partition_keys()[-2]
    drifted = project.score(second)
    quality = drifted[K["model_quality_monitor"]]
    assert quality["degraded"] is True and quality["ratio"] > 1.5, quality
    assert quality["retrain_requested"] is True

    request = project.tick()
    assert len(request.run_requests) == 1
    run = request.run_requests[0]
    assert run.tags["smartstream/trigger"] in ("monitor", "drift")
    cursor = request.cursor
    again = project.tick(cursor=cursor)
    assert again.run_requests == [] and "already decided" in again.skip_reason.skip_message

    # the retrain run: a new candidate, gated on the new test window
    retrained = project.train()
    gate = retrained[K["deployment"]]
    assert gate["candidate_version"] == "2" and gate["status"] in ("promoted", "rejected")
    # judged on the new test window (half of it the drifted year), beside the baselines there
    assert "persistence" in gate["comparison"] and gate["reasons"].startswith("- ")


def test_produce_co2_refuses_what_it_cannot_read(project):
    bad = subprocess.run([SMARTSTREAM, "produce", "co2", "--drift", "level=lots"], env=project.env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "level='lots' is not a number" in bad.stderr
    assert Co2Drift.parse("level=+3,noise=x2") == Co2Drift(3.0, 2.0)
    more = continue_series(mauna_loa(), 4, seed=1)
    assert len(more) == 4 and (more["measured_at"].diff().dropna() == pd.Timedelta(days=7)).all()
    assert more["measured_at"].iloc[0] == mauna_loa()["measured_at"].max() + pd.Timedelta(days=7)


def test_the_cleanup_dry_run_lists_exactly_what_the_real_run_deletes(project):
    # one more version (so one is neither champion nor challenger), searched with Hyperband
    hyperband = {"ops": {"co2__regressor_candidate": {"config": {"trials": 6, "strategy": "hyperband"}}}}
    third = project.materialize("features", "model", "deployment", run_config=hyperband)[K["model"]]
    assert third["search"] == "tpe sampler, hyperband pruner" and third["trials"] == 6
    champion = project.registry.version(CO2.registered_model, CHAMPION)
    challenger = project.registry.version(CO2.registered_model, CHALLENGER)
    job = DEFS.resolve_job_def("co2_cleanup")

    def run(dry_run: bool) -> dict:
        config = {"ops": {"co2__cleanup": {"config": {"dry_run": dry_run, "keep_newest": 0, "retention_days": 0}}}}
        result = job.execute_in_process(run_config=config, resources=project.resources, instance=project.instance)
        assert result.success
        return result.output_for_node("co2__cleanup")

    before_versions = {v.version for v in project.registry.versions(CO2.registered_model)}
    before_objects = {o.key for o in project.lake.list("predictions/co2/")} | {o.key for o in project.lake.list("reports/co2/")}
    plan = run(True)
    assert {v.version for v in project.registry.versions(CO2.registered_model)} == before_versions  # the dry run deletes nothing
    planned_versions = {v["version"] for v in plan["versions"]}
    planned_objects = {o["key"] for o in plan["objects"]}
    assert planned_versions and champion.version not in planned_versions and challenger.version not in planned_versions
    assert planned_objects and all("run_date=" in k for k in planned_objects)

    result = run(False)
    after_versions = {v.version for v in project.registry.versions(CO2.registered_model)}
    after_objects = {o.key for o in project.lake.list("predictions/co2/")} | {o.key for o in project.lake.list("reports/co2/")}
    assert before_versions - after_versions == planned_versions == set(result["deleted_versions"])
    assert before_objects - after_objects == planned_objects
    assert project.registry.version(CO2.registered_model, CHAMPION).version == champion.version
    # evaluation documents are not partitions: kept
    assert project.lake.exists(keys.evaluation_key(CO2, champion.version))


def test_a_broken_reading_is_a_data_quality_violation_that_alerts_but_does_not_retrain(project):
    current = current_table(project.lake, "co2").to_pandas()
    latest = pd.to_datetime(current["measured_at"], utc=True).max()
    glitch = pd.DataFrame({"station": ["MLO"], "measured_at": [latest + pd.Timedelta(days=7)], "co2_ppm": [0.0]})
    project.lake.write_bytes(f"raw/noaa/co2/{pd.Timestamp.now(tz='UTC'):%Y/%m/%d}/glitch.csv", to_csv(glitch))
    project.ingest()
    partition = HOURS.get_partition_keys()[-3]
    out = project.score(partition)[K["data_quality_monitor"]]
    assert out["violations"] >= 1 and "range_check" in out["violated_checks"]
    assert "`co2_ppm` range_check" in out["violation_details"]
    assert out["retrain_requested"] is False
    report = json.loads(project.lake.read_bytes(keys.monitor_report_key(CO2, "data_quality", partition, "json")))
    assert report["rows_checked"] == co2.MONITOR_WEEKS and any(v["feature_name"] == "co2_ppm" for v in report["violations"])


def test_a_version_without_its_bias_baseline_fails_the_bias_monitor_instead_of_passing_it(project):
    champion = project.registry.version(CO2.registered_model, CHAMPION)
    saved = project.registry.load_dict(champion.run_id, "baselines/bias.json")
    project.registry.log_bytes(champion.run_id, json.dumps({"missing": "the candidate's run has no fairness.json"}).encode(), "baselines/bias.json")
    partition = HOURS.get_partition_keys()[-4]
    try:
        project.materialize("features", "predictions", partition=partition)
        failure = project.materialize_metadata(DEFS.assets, [K["bias_drift_monitor"]], partition=partition, ok=False)["failures"]
        assert f"v{champion.version} has no bias baseline (the candidate's run has no fairness.json)" in failure
    finally:
        project.registry.log_bytes(champion.run_id, json.dumps(saved).encode(), "baselines/bias.json")
    assert project.registry.load_dict(champion.run_id, "baselines/bias.json") == saved


@pytest.mark.integration
def test_the_endpoint_test_asks_the_served_champion_and_fails_clearly_when_nothing_answers(project):
    from smartstream_assets import local_stack

    from .test_serving import MLFLOW, wait_until_up

    port = local_stack.free_port()
    nothing = subprocess.run([SMARTSTREAM, "endpoint", "test", "co2", "--url", f"http://127.0.0.1:{port}"],
                             env=project.env(), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert nothing.returncode == 1 and "nothing answers" in nothing.stderr and "make serve MODEL=smartstream-co2-regressor" in nothing.stderr

    env = dict(project.env(), PATH=f"{Path(MLFLOW).parent}:{os.environ['PATH']}")
    cmd = [MLFLOW, "models", "serve", "-m", f"models:/{CO2.registered_model}@champion", "--env-manager", "local",
           "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/ping", server)
        answer = subprocess.run([SMARTSTREAM, "endpoint", "test", "co2", "--url", f"http://127.0.0.1:{port}"],
                                env=project.env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    assert answer.returncode == 0, answer.stderr
    line = [x for x in answer.stdout.splitlines() if x.startswith("MLO@")][-1]
    served = float(line.rsplit(" ", 1)[1])
    features = project.lake.read_parquet(keys.features_key(CO2)).to_pandas()
    latest = features[features["target"].isna()]
    local = project.registry.load_pyfunc(CO2.registered_model, project.registry.version(CO2.registered_model, CHAMPION).version)
    assert served == pytest.approx(float(local.predict(latest[CO2.features])[0]), abs=1e-3)
    assert abs(served - float(latest["co2_ppm"].iloc[0])) < 5  # a next-week level, not a change
