"""Scoring raw micro-batches as they land (``ml.stream``), without Dagster: the same
scores however the stream is cut, replays and malformed messages quarantined with their
reason, nothing scored twice, catch-up of objects whose run has not happened, alerts at
most once per patient per N hours, and a commit that loses a race starts over."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from smartstream_assets.domains.vitals import stream_scorer, stream_settings
from smartstream_assets.lake import LocalLake, PreconditionFailed
from smartstream_assets.ml import stream
from smartstream_assets.ml.vitals import feature_columns, rolling_features
from smartstream_assets.producers.vitals import batch_key, population, to_jsonl
from smartstream_assets.tables import load_tables

SPEC = load_tables()["vitals"]
FEATURES = feature_columns()
START = datetime(2026, 11, 24, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def model():
    history = population(40, seed=[7, 1], start=START - timedelta(days=3), id_prefix="T")
    frame = rolling_features(history)
    return make_pipeline(SimpleImputer(), LogisticRegression(max_iter=500)).fit(frame[FEATURES], frame["SepsisLabel"])


@pytest.fixture(scope="module")
def readings():
    frame = population(12, seed=[7, 2], start=START, id_prefix="L", labelled=False)
    frame["_t"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values(["_t", "patient_id"], kind="stable").drop(columns="_t").reset_index(drop=True)


def _put(lake, rows: pd.DataFrame, seq: int, *, body: bytes | None = None) -> str:
    key = SPEC.raw_prefix + batch_key(START + timedelta(seconds=seq), seq)
    lake.write_bytes(key, to_jsonl(rows) if body is None else body)
    return key


def _run(lake, own, model, *, settings=None, version="1"):
    return stream.run_stream(lake, SPEC, own, domain="vitals", settings=settings or stream_settings(),
                             score=stream_scorer(model, FEATURES), model_version=version)  # fmt: skip


def _scores(lake) -> pd.DataFrame:
    out = stream.read_scores(lake, "vitals")
    return out.sort_values(["patient_id", "ts"]).reset_index(drop=True)


def test_one_batch_or_fifty_gives_the_same_probabilities(tmp_path, readings, model):
    whole, cut = LocalLake(tmp_path / "one"), LocalLake(tmp_path / "fifty")
    _run(whole, [_put(whole, readings, 0)], model)
    for i, part in enumerate(np.array_split(np.arange(len(readings)), 50)):
        _run(cut, [_put(cut, readings.iloc[part], i)], model)
    a, b = _scores(whole), _scores(cut)
    assert len(a) == len(b) == len(readings)
    assert (a["patient_id"] == b["patient_id"]).all() and (a["ts"] == b["ts"]).all()
    np.testing.assert_allclose(a["probability"], b["probability"], rtol=0, atol=1e-12)
    # each patient's later readings really did use history from earlier batches
    assert b["batch"].nunique() == 50
    # and the probabilities are those of the training function on the whole stream
    direct = rolling_features(readings)
    direct = direct.assign(p=model.predict_proba(direct[FEATURES])[:, 1]).sort_values(["patient_id", "ts"])
    np.testing.assert_allclose(a["probability"], direct["p"].to_numpy(), atol=1e-12)


def test_the_output_carries_the_message_and_both_class_probabilities(tmp_path, readings, model):
    lake = LocalLake(tmp_path)
    key = _put(lake, readings.head(20), 0)
    run = _run(lake, [key], model, version="7")
    out = _scores(lake)
    assert run.outcomes[0].scored == 20 and run.high_water == key
    pairs = np.stack(out["prediction_probabilities"].to_numpy())
    np.testing.assert_allclose(pairs.sum(axis=1), 1.0)
    np.testing.assert_allclose(pairs[:, 1], out["probability"])
    assert set(out["model_version"]) == {"7"} and set(out["batch"]) == {key}
    first = json.loads(out["original"].iloc[0])
    assert first["patient_id"] == out["patient_id"].iloc[0] and pd.Timestamp(first["ts"]) == out["ts"].iloc[0]
    files = [o.key for o in lake.list("predictions/vitals/stream/")]
    assert files and all("/hour=2026-11-2" in k for k in files)


def test_malformed_messages_are_quarantined_and_the_rest_scored(tmp_path, readings, model):
    lake = LocalLake(tmp_path)
    good = to_jsonl(readings.head(10)).decode().splitlines()
    bad_id = good[3].replace('"patient_id":"', '"patient_idx":"')  # no patient_id
    row = readings.iloc[4].to_dict()
    row["HR"] = "fast"  # text in a number
    text_hr = json.dumps({k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()})
    body = "\n".join([*good[:3], bad_id, text_hr, *good[5:]]).encode() + b"\n"
    key = _put(lake, readings.head(0), 0, body=body)
    run = _run(lake, [key], model)
    outcome = run.outcomes[0]
    assert (outcome.messages, outcome.scored, outcome.malformed) == (10, 8, 2)
    quarantine = lake.read_parquet(outcome.quarantine_file).to_pandas()
    assert sorted(quarantine["_source_line"]) == [4, 5]
    assert "patient_id" in " ".join(quarantine["_reason"]) and "fast" in " ".join(quarantine["_raw"])
    assert len(_scores(lake)) == 8


def test_a_replayed_batch_is_not_scored_twice(tmp_path, readings, model):
    lake = LocalLake(tmp_path)
    rows = readings.head(15)
    first = _put(lake, rows, 0)
    _run(lake, [first], model)
    before = _scores(lake)
    # the same run again (a re-execution): nothing new, nothing quarantined
    again = _run(lake, [first], model).outcomes[0]
    assert (again.scored, again.previously_scored, again.quarantined) == (0, 15, 0)
    # the same messages in a new object (a producer retry): quarantined as replays
    replay = _put(lake, rows, 1)
    outcome = _run(lake, [replay], model).outcomes[0]
    assert (outcome.scored, outcome.replayed) == (0, 15)
    assert outcome.reasons == {"already_scored": 15}
    after = _scores(lake)
    pd.testing.assert_frame_equal(before.drop(columns="scored_at"), after.drop(columns="scored_at"))


def test_a_run_scores_earlier_objects_whose_run_has_not_happened(tmp_path, readings, model):
    lake, parts = LocalLake(tmp_path), np.array_split(np.arange(60), 3)
    keys = [_put(lake, readings.iloc[p], i) for i, p in enumerate(parts)]
    _run(lake, [keys[0]], model)
    run = _run(lake, [keys[2]], model)  # keys[1]'s run failed or is still queued
    assert [o.key for o in run.outcomes] == keys[1:] and run.outcomes[0].caught_up
    late = _run(lake, [keys[1]], model).outcomes[0]  # then its own run: nothing left to do
    assert (late.scored, late.previously_scored) == (0, len(parts[1]))
    whole = LocalLake(tmp_path / "whole")
    _run(whole, [_put(whole, readings.iloc[:60], 0)], model)
    np.testing.assert_allclose(_scores(lake)["probability"], _scores(whole)["probability"], atol=1e-12)


def test_alerts_at_most_once_per_patient_per_period(tmp_path, readings, model):
    lake = LocalLake(tmp_path)
    settings = stream_settings(alert_threshold=0.0, alert_every_hours=6.0)  # every score is high risk
    keys = [_put(lake, readings.iloc[p], i) for i, p in enumerate(np.array_split(np.arange(len(readings)), 4))]
    alerts = pd.concat([_run(lake, [k], model, settings=settings).alerts for k in keys], ignore_index=True)
    assert not alerts.duplicated(["patient_id", "ts"]).any()
    for patient, times in alerts.groupby("patient_id")["ts"]:
        gaps = pd.to_datetime(times).sort_values().diff().dropna()
        assert (gaps >= pd.Timedelta(hours=6)).all(), patient
    # one alert per started 6 hours of each patient's readings
    expected = 0
    for _, times in readings.groupby("patient_id")["ts"]:
        stamps, last = pd.to_datetime(times, utc=True).sort_values(), None
        for s in stamps:
            if last is None or s - last >= pd.Timedelta(hours=6):
                expected, last = expected + 1, s
    assert len(alerts) == expected


def test_a_commit_that_lost_a_race_starts_over(tmp_path, readings, model, monkeypatch):
    lake = LocalLake(tmp_path)
    a, b = _put(lake, readings.head(10), 0), _put(lake, readings.iloc[10:20], 1)
    real_commit, raced = stream.commit_state, []

    def racing_commit(store, key, state):
        if not raced:  # another run commits object a while this one scored b
            raced.append(True)
            _run(lake, [a], model)
        return real_commit(store, key, state)

    monkeypatch.setattr(stream, "commit_state", racing_commit)
    run = stream.run_stream(lake, SPEC, [b], domain="vitals", settings=stream_settings(),
                            score=stream_scorer(model, FEATURES), model_version="1")  # fmt: skip
    assert run.conflicts == 1 and run.high_water == b
    assert len(_scores(lake)) == 20 and not _scores(lake).duplicated(["patient_id", "ts"]).any()


def test_a_stale_state_cannot_be_committed(tmp_path):
    lake, key = LocalLake(tmp_path), stream.state_key("vitals")
    settings = stream_settings()
    first = stream.load_state(lake, key, settings)
    stream.commit_state(lake, key, first)
    with pytest.raises(PreconditionFailed):
        stream.commit_state(lake, key, first)  # read before the first commit


def test_runs_are_planned_one_per_object_until_runs_are_busy():
    from smartstream_assets.assets.vitals_stream import plan_runs

    objects = list("abcdefg")
    assert plan_runs(objects[:2], free=2, per_run=10) == [["a"], ["b"]]  # one run per object
    assert plan_runs(objects, free=2, per_run=10) == [list("abcd"), list("efg")]  # a backlog: shared, in key order
    assert plan_runs(objects, free=1, per_run=3) == [list("abc")]  # the rest waits for the next tick
    assert plan_runs(objects, free=0, per_run=10) == []  # every run busy: all wait
    assert [o for run in plan_runs(objects, free=3, per_run=2) for o in run] == list("abcdef")
