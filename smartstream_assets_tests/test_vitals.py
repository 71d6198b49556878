"""The vitals domain on the sample (data/raw/icu/): labelled history → features (rolling,
past readings only) → a sepsis candidate split by patient, F1-searched, registered with
its scaler in one pipeline → the gate → an hour's live readings with their features
(earlier hours as history) → predictions → the drift report."""

import json
from pathlib import Path

import pandas as pd
import pytest

from smartstream_assets import keys
from smartstream_assets.assets.vitals import HOURLY_KEY
from smartstream_assets.definitions import build_definitions
from smartstream_assets.domains import vitals
from smartstream_assets.domains.vitals import VITALS_DOMAIN, latest_hour
from smartstream_assets.ml.vitals import feature_columns
from smartstream_assets.tables import load_tables

from .helpers import LakeProject

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
    current = project.lake.read_parquet(keys.current_key("vitals")).to_pandas()
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
