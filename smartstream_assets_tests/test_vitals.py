"""The vitals domain on the sample (data/raw/icu/): labelled history → features (rolling,
past readings only) → a sepsis candidate split by patient, F1-searched, registered with
its scaler in one pipeline → the gate → an hour's live readings with their features
(earlier hours as history) → predictions → the drift report."""

import io
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from smartstream_assets import keys
from smartstream_assets.assets.vitals import HOURLY_KEY
from smartstream_assets.definitions import build_definitions
from smartstream_assets.domains import vitals
from smartstream_assets.domains.vitals import VITALS_DOMAIN, latest_hour
from smartstream_assets.ml.vitals import feature_columns
from smartstream_assets.tables import load_tables

from .helpers import LakeProject, current_table

pytestmark = pytest.mark.slow

TABLES = load_tables(extra="")
SPECS = [TABLES["vitals"], TABLES["vitals_labelled"]]
DEFS = build_definitions([vitals.PLUGIN], SPECS)
K = keys.asset_keys(VITALS_DOMAIN)
FAST = {"ops": {"vitals__sepsis_candidate": {"config": {"trials": 2}}}}


class VitalsProject(LakeProject):
    def __init__(self, root: Path):
        super().__init__(root)
        self.copy_sample("icu")

    def materialize(self, *selected, partition=None, run_config=None, ok=True) -> dict:
        return self.materialize_metadata(DEFS.assets, selected, partition=partition, run_config=run_config, ok=ok)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = VitalsProject(tmp_path_factory.mktemp("vitals"))
    p.ingest(*SPECS)
    p.trained = p.materialize(K["features"], K["model"], K["deployment"], run_config=FAST)
    return p


def test_the_sample_trains_a_sepsis_model_split_by_patient(project):
    candidate = project.trained[K["model"]]
    assert candidate["task"] == "binary" and candidate["estimator"] in ("random_forest", "xgboost")
    assert candidate["roc_auc"] > 0.8 and 0 <= candidate["average_precision"] <= 1
    window = candidate["holdout_window"]
    assert window["split"] == "group" and window["group_column"] == "patient_id" and window["groups"]["holdout"] > 10
    evaluation = json.loads(project.lake.read_bytes(keys.evaluation_key(VITALS_DOMAIN, candidate["model_version"])))
    assert evaluation["task"]["group_split"] == {"column": "patient_id"}
    assert project.trained[K["deployment"]]["status"] == "promoted"
    # scaler and model in one pipeline, every rolling feature among its inputs
    pipeline = project.registry.load_pipeline(VITALS_DOMAIN.registered_model, candidate["model_version"])
    assert set(feature_columns()) <= set(pipeline.feature_names_in_)


def test_an_hour_of_live_readings_is_scored_with_its_patients_history(project):
    hour = latest_hour(project.lake)
    assert hour == "2026-11-24-02:00"
    out = project.materialize(HOURLY_KEY, K["predictions"], K["drift"], partition=hour)
    hourly = out[HOURLY_KEY]
    assert hourly["history_rows"] > 0 and hourly["patients"] > 5
    predicted = project.lake.read_parquet(keys.predictions_key(VITALS_DOMAIN, hour)).to_pandas()
    assert len(predicted) == hourly["dagster/row_count"] and predicted["probability"].between(0, 1).all()
    assert pd.to_datetime(predicted["ts"], utc=True).dt.floor("h").eq(pd.Timestamp("2026-11-24T02:00Z")).all()
    # the first reading of the hour saw the patient's earlier readings: its 6-reading window is full
    current = current_table(project.lake, "vitals").to_pandas()
    first = predicted.sort_values("ts").groupby("patient_id").head(1).iloc[0]
    earlier = current.loc[(current["patient_id"] == first["patient_id"]) & (pd.to_datetime(current["ts"], utc=True) < pd.Timestamp("2026-11-24T02:00Z"))]
    expected = earlier.assign(t=pd.to_datetime(earlier["ts"], utc=True)).sort_values("t")["HR"].tail(5).tolist() + [first["HR"]]
    assert first["HR_max_6"] == pytest.approx(pd.Series(expected).max())
    drift = out[K["drift"]]
    assert drift["test_level"] < 0.05  # 5% shared over the signals


def test_the_sample_clean_hours_are_not_flagged(project):
    """The live patients come from the same generator as the labelled ones: their hours
    must not read as drift (at 5,000 reference rows, every column of such an hour did)."""
    flagged = []
    for hour in ("2026-11-24-00:00", "2026-11-24-01:00", "2026-11-24-02:00"):
        drift = project.materialize(HOURLY_KEY, K["predictions"], K["drift"], partition=hour)[K["drift"]]
        flagged.append(drift["drift_share"] >= VITALS_DOMAIN.drift_share_threshold)
    assert sum(flagged) == 0, flagged


# ------------------------------------------------------------------ scored as data lands


def _tick(project, cursor=None):
    from smartstream_assets.resources import LakeResource

    sensor = DEFS.get_sensor_def("vitals_raw_sensor")
    with dg.build_sensor_context(instance=project.instance, cursor=cursor, definitions=DEFS,
                                 resources={"lake": LakeResource(url=project.lake.url)}) as context:  # fmt: skip
        return sensor(context)


def _launch(project, result) -> dict:
    """What the daemon does with a tick: add the partitions, run each request; partition ->
    the metadata of its materialisation."""
    from smartstream_assets.assets.vitals_stream import BATCHES, STREAM_ASSETS

    for request in result.dynamic_partitions_requests:
        project.instance.add_dynamic_partitions(BATCHES.name, list(request.partition_keys))
    out = {}
    for request in result.run_requests:
        run = project.run(DEFS.assets, dg.AssetSelection.assets(STREAM_ASSETS[0].key), partition=request.partition_key, tags=request.tags)
        assert run.success, project.failures(run)
        for event in run.get_asset_materialization_events():
            out[event.partition] = {k: v.value for k, v in event.materialization.metadata.items()}
    return out


def test_each_micro_batch_is_scored_as_it_lands(project, monkeypatch):
    """sensor → one partition per raw object → scores in predictions/vitals/stream/; a new
    object gets its own run keyed by its key and digest; a replay is not scored again; a
    malformed message is quarantined and the rest of its batch scored."""
    from smartstream_assets.ml.stream import read_scores
    from smartstream_assets.producers.vitals import to_jsonl

    spec = TABLES["vitals"]
    objects = sorted(o.key for o in project.lake.list(spec.raw_prefix))
    first = _tick(project)
    # nothing in flight: two runs (the default), the sample's 12 objects shared between them
    assert len(first.run_requests) == 2 and sorted(first.dynamic_partitions_requests[0].partition_keys) == [k.removeprefix(spec.raw_prefix) for k in objects]
    metadata = _launch(project, first)
    assert len(metadata) == len(objects)
    messages = sum(len(project.lake.read_bytes(k).splitlines()) for k in objects)
    assert sum(m["scored"] for m in metadata.values()) == messages and all(m["quarantined"] == 0 for m in metadata.values())
    scores = read_scores(project.lake, "vitals")
    assert len(scores) == messages and not scores.duplicated(["patient_id", "ts"]).any()
    assert scores["probability"].between(0, 1).all() and scores["model_version"].nunique() == 1
    # the hour layout, and a high-risk score alerted once per patient at most
    assert {h for h in scores["hour"]} <= {f"2026-11-2{d}T{h:02d}" for d in (2, 3, 4) for h in range(24)}
    # the same tick again: nothing new
    again = _tick(project, first.cursor)
    assert not again.run_requests and "no new micro-batch" in again.skip_reason.skip_message

    # a new batch: its own run, keyed by the object's key and digest
    live = pd.read_json(io.BytesIO(project.lake.read_bytes(objects[-1])), lines=True, dtype={"patient_id": str})
    later = live.assign(ts=pd.to_datetime(live["ts"], utc=True) + pd.Timedelta(hours=1), ICULOS=live["ICULOS"] + 1)
    later["ts"] = later["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = to_jsonl(later).decode().splitlines()
    lines[0] = lines[0].replace('"patient_id":"', '"patient_ref":"')  # no patient_id
    row = json.loads(lines[1])
    row["HR"] = "tachy"  # text in a number
    lines[1] = json.dumps(row)
    new_key = spec.raw_prefix + "2026/11/24/04/vitals-20261124T040000-000012.jsonl"
    project.lake.write_bytes(new_key, ("\n".join(lines) + "\n").encode())
    tick = _tick(project, first.cursor)
    assert len(tick.run_requests) == 1 and tick.run_requests[0].run_key.startswith(f"vitals:{new_key}:")
    meta = _launch(project, tick)[new_key.removeprefix(spec.raw_prefix)]
    assert (meta["messages"], meta["malformed"], meta["scored"]) == (len(lines), 2, len(lines) - 2)
    # no patient_id: the message's fields are not the table's; "tachy": not a number
    assert meta["quarantine_reasons"] == {"schema_mismatch": 1, "bad_value": 1}
    # the same batch sent again under a new key: quarantined as replays, nothing rescored
    replay_key = spec.raw_prefix + "2026/11/24/04/vitals-20261124T040500-000013.jsonl"
    project.lake.write_bytes(replay_key, project.lake.read_bytes(new_key))
    tick = _tick(project, tick.cursor)
    meta = _launch(project, tick)[replay_key.removeprefix(spec.raw_prefix)]
    assert (meta["scored"], meta["replayed_not_rescored"], meta["malformed"]) == (0, len(lines) - 2, 2)
    assert len(read_scores(project.lake, "vitals")) == messages + len(lines) - 2


def test_the_cli_previews_the_sensor_and_scores_a_batch_range(project, tmp_path):
    """The real CLI on the trained project: `dagster sensor preview` lists one request per
    object while nothing is in flight, and `dagster asset materialize --partition-range`
    scores a range of batch partitions in one run."""
    import subprocess
    import sys

    from smartstream_assets.assets.vitals_stream import BATCHES, raw_partitions
    from smartstream_assets.ml.stream import read_scores

    lake_dir = tmp_path / "lake"
    from smartstream_assets.lake import LocalLake

    from smartstream_assets.demo import SAMPLE_DIR

    lake = LocalLake(lake_dir)
    spec = TABLES["vitals"]
    for path in sorted((SAMPLE_DIR / spec.raw_prefix).rglob("*.jsonl")):  # the sample's 12 objects only
        lake.write_bytes(path.relative_to(SAMPLE_DIR).as_posix(), path.read_bytes())
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**project.env(DAGSTER_HOME=str(home), SMARTSTREAM_STREAM_RUNS_IN_FLIGHT="20"), "SMARTSTREAM_LAKE": str(lake_dir)}
    dagster = str(Path(sys.executable).with_name("dagster"))

    def cli(*args):
        proc = subprocess.run([dagster, *args], cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    out = cli("sensor", "preview", "vitals_raw_sensor", "-m", "smartstream_assets")
    assert "Sensor returning run requests for 12 run(s)" in out  # 20 may be in flight: one run per object
    partitions = raw_partitions(lake)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.add_dynamic_partitions(BATCHES.name, partitions)
    out = cli("asset", "materialize", "-m", "smartstream_assets", "--select", "vitals/scores",
              "--partition-range", f"{partitions[0]}...{partitions[5]}")  # fmt: skip
    assert out.count("RUN_SUCCESS") == 1
    scored = read_scores(lake, "vitals")
    assert set(scored["batch"]) == {spec.raw_prefix + p for p in partitions[:6]}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        done = instance.get_materialized_partitions(dg.AssetKey(["vitals", "scores"]))
    assert done == set(partitions[:6])
