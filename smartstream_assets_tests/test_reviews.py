"""The reviews domain end to end on the sample (data/raw/reviews/): raw hourly and labelled
CSV → trusted → current → reviews/labelled (targets, cached embeddings) → features → a
multi-output XGBoost candidate registered as ONE pyfunc that answers raw text → the gate
(a bar per output) → an hour's embeddings → predictions → the drift report (the
embedding as one signal) → ``smartstream produce reviews --drift topic=laptops`` (the
real CLI) → drift flagged → one retrain request; a schema violation quarantined whole,
a text embedded once across reruns, and the same model served by ``mlflow models serve``,
PostgreSQL as the training source and the predictions sink."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from smartstream_assets import ingestion, keys
from smartstream_assets.assets.reviews import EMBEDDINGS_KEY, LABELLED_KEY, LABELLED_TABLE
from smartstream_assets.definitions import build_definitions
from smartstream_assets.domains import reviews
from smartstream_assets.domains.reviews import REVIEWS, latest_hour
from smartstream_assets.ml.absa import OUTPUTS
from smartstream_assets.ml.registry import CHAMPION
from smartstream_assets.tables import load_tables

from .helpers import LakeProject, current_table, quarantine_day
from .postgres import postgres_server  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.slow

TABLES = load_tables(extra="")
SPECS = [TABLES["reviews"], TABLES["reviews_labelled"]]
DEFS = build_definitions([reviews.PLUGIN], SPECS)
K = keys.asset_keys(REVIEWS)
# the encoder fine-tuned for 1 epoch on 200 rows (the domain's: 2 epochs on all, ~90 s on the sample)
FAST = {"ops": {"reviews__absa_candidate": {"config": {"trials": 2, "fine_tune_epochs": 1, "fine_tune_rows": 200}}}}
SMARTSTREAM = str(Path(sys.executable).with_name("smartstream"))
MLFLOW = str(Path(sys.executable).with_name("mlflow"))


class ReviewsProject(LakeProject):
    def __init__(self, root: Path):
        super().__init__(root)
        self.copy_sample("reviews")

    def ingest(self) -> None:
        super().ingest(*SPECS)

    def materialize(self, *selected, partition=None, run_config=None, resources=None, ok=True) -> dict:
        return self.materialize_metadata(DEFS.assets, selected, partition=partition, run_config=run_config, resources=resources, ok=ok)

    def train(self, **kwargs) -> dict:
        return self.materialize(LABELLED_KEY, K["features"], K["model"], K["deployment"], run_config=FAST, **kwargs)

    def score(self, partition: str, **kwargs) -> dict:
        return self.materialize(EMBEDDINGS_KEY, K["predictions"], K["drift"], partition=partition, **kwargs)

    def tick(self, cursor=None):
        return super().tick(DEFS, "reviews_retrain_sensor", cursor)

    def env(self) -> dict:
        return super().env(HF_HUB_OFFLINE="1")

    def produce_hour(self, drift: str, seed: int) -> None:
        """One more hour of reviews through the real CLI (``smartstream produce reviews``), ingested."""
        produced = subprocess.run(
            [SMARTSTREAM, "produce", "reviews", "--hours", "1", "--drift", drift, "--seed", str(seed)],
            env=self.env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert produced.returncode == 0, produced.stderr
        self.ingest()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    p = ReviewsProject(tmp_path_factory.mktemp("reviews"))
    p.ingest()
    p.trained = p.train()
    return p


def test_the_sample_trains_one_text_model_with_a_bar_per_output(project):
    labelled = project.trained[LABELLED_KEY]
    assert labelled["rows_read"] == 2400 and labelled["rows_refused"] == 0
    assert 0 < labelled["rows_without_aspects"] < 240  # not trained on (~5%)
    assert labelled["dagster/row_count"] == 2400 - labelled["rows_without_aspects"]
    # the templated sample repeats some texts: each distinct text is encoded once
    assert labelled["texts_encoded"] == labelled["unique_texts"] < labelled["texts"]

    candidate = project.trained[K["model"]]
    version = candidate["model_version"]
    for output in OUTPUTS:
        assert f"r2_{output}" in candidate and f"mae_{output}" in candidate
    assert candidate["estimator"] == "xgboost" and candidate["task"] == "multi_output_regression"
    tuned = candidate["fine_tuned_encoder"]
    assert tuned["fine_tuned"] and tuned["epochs"] == 1 and tuned["rows"] == 200 and len(tuned["losses"]) == 1
    evaluation = json.loads(project.lake.read_bytes(keys.evaluation_key(REVIEWS, version)))
    assert evaluation["baselines"]["mean"]["r2"] < 0.01 < evaluation["metrics"]["r2"]

    gate = project.trained[K["deployment"]]
    assert gate["status"] == "promoted", gate["reasons"]
    for output in OUTPUTS:
        assert f"R² ({output})" in gate["reasons"]
    # ONE registered model: a pyfunc that takes raw text, its encoder among its artifacts
    info = project.registry.client.get_model_version(REVIEWS.registered_model, version)
    assert "data/holdout.parquet" in {f.path for f in project.registry.client.list_artifacts(info.run_id, "data")}
    model = project.registry.load_pyfunc(REVIEWS.registered_model, version)
    assert set(model.metadata.flavors) == {"python_function"}  # not an sklearn model: it takes text
    answer = model.predict(pd.DataFrame({"review_id": ["a", "b"], "text": ["The pasta was superb and the staff lovely.", "Cold food, rude waiter, never again."]}))
    assert list(answer.columns) == ["review_id", *(f"prediction_{o}" for o in OUTPUTS)]
    assert answer["prediction_sentiment_score"].iloc[0] > answer["prediction_sentiment_score"].iloc[1]
    # it ships the TUNED encoder: its vectors are not the packaged encoder's
    from smartstream_assets.ml.embeddings import encode, load_encoder
    from smartstream_assets.ml.fine_tune import tuned_steps
    from smartstream_assets.ml.text_model import unwrap

    (step,) = tuned_steps(unwrap(model))
    sentence = ["The pasta was superb and the staff lovely."]
    assert abs(step.embed(sentence) - encode(sentence, encoder=load_encoder())).max() > 1e-3
    run = project.registry.client.get_run(info.run_id).data
    assert run.params["fine_tune.rows"] == "200" and "fine_tune.loss" in run.metrics
    with pytest.raises(Exception, match=r"missing inputs \['text'\]"):
        model.predict(pd.DataFrame({"review_id": ["a"], "body": ["no text column"]}))


def test_an_hour_is_scored_and_each_text_embedded_once_across_reruns(project):
    hour = latest_hour(project.lake)
    assert hour == "2026-11-24-23:00"
    first = project.score(hour)
    embedded = first[EMBEDDINGS_KEY]
    assert embedded["texts_encoded"] + embedded["cache_hits"] == embedded["unique_texts"]
    again = project.score(hour)[EMBEDDINGS_KEY]
    assert again["cache_hits"] == again["unique_texts"] and again["texts_encoded"] == 0
    # the labelled set again: nothing encoded
    assert project.materialize(LABELLED_KEY)[LABELLED_KEY]["texts_encoded"] == 0

    predicted = project.lake.read_parquet(keys.predictions_key(REVIEWS, hour)).to_pandas()
    assert len(predicted) == embedded["dagster/row_count"] and predicted["model_version"].eq("1").all()
    assert predicted["prediction_sentiment_score"].between(-1.5, 1.5).all()
    # batch scoring encodes with the champion's tuned encoder: the served model answers the same
    served = project.registry.load_pyfunc(REVIEWS.registered_model, "1").predict(predicted[["review_id", "text"]])
    for output in OUTPUTS:
        assert abs(served[f"prediction_{output}"].to_numpy() - predicted[f"prediction_{output}"].to_numpy()).max() < 1e-5
    summary = json.loads(project.lake.read_bytes(keys.drift_report_key(REVIEWS, hour, "json")))
    embedding = [c for c in summary["columns"] if c["column"] == "embedding"]
    assert len(embedding) == 1 and not any(c["column"].startswith("emb_") for c in summary["columns"])


def test_ordinary_hours_are_seldom_flagged(project):
    """The 24 sample hours come from the labelled set's distribution. A report runs three
    tests against the champion's reference (embedding, text length, predicted sentiment)
    and, once the previous hours hold 200 reviews, a fourth: the product mix against
    them; any one flags the hour. The domain bounds that at 5% (each test at 5% / the
    number of tests). Three plain 5% tests flagged 4 of the 24; a reference that is not
    what arrives (the holdout without its repeated texts) flagged 6 (text length K-S p
    0.001 over the day)."""
    flagged, levels, recent = [], {}, {}
    for h in range(24):
        hour = f"2026-11-24-{h:02d}:00"
        drift = project.score(hour)[K["drift"]]
        levels[hour], recent[hour] = drift["test_level"], drift["recent_reference"]
        if drift["dataset_drift"] or drift["prediction_drift"]:
            flagged.append(hour)
    # the first hours: too few earlier reviews for the product mix, three tests
    assert recent["2026-11-24-00:00"].startswith("previous 0 scored partition(s), 0 rows: fewer than 200")
    assert levels["2026-11-24-00:00"] == pytest.approx(0.05 / 3)
    # the last: the 23 hours before it (the day's first hours were scored first), four tests
    assert recent["2026-11-24-23:00"].startswith("previous 23 scored partition(s)")
    assert levels["2026-11-24-23:00"] == pytest.approx(0.05 / 4)
    assert len(flagged) <= 2, flagged
    summary = json.loads(project.lake.read_bytes(keys.drift_report_key(REVIEWS, "2026-11-24-23:00", "json")))
    [product] = [c for c in summary["columns"] if c["column"] == "product"]
    # two products: Evidently's two-proportion Z-test (chi-square with more), a p-value; the
    # two-sample chi-square's p beside it
    assert product["reference"].startswith("previous 23") and product["statistic_method"] == "Z-test p_value"
    assert product["value_kind"] == "p_value" and product["chi2_two_sample_p"] is not None
    assert project.lake.exists(keys.drift_report_key(REVIEWS, "2026-11-24-23:00", "recent.html"))


def test_a_topic_shift_is_flagged_by_the_drift_report_and_requests_one_retrain(project):
    project.produce_hour("topic=laptops", seed=3)
    hour = latest_hour(project.lake)
    assert hour == "2026-11-25-00:00"
    drifted = project.score(hour)[K["drift"]]
    assert drifted["dataset_drift"] is True, drifted["drifted_columns"]
    assert "embedding" in drifted["drifted_columns"]
    request = project.tick()
    assert len(request.run_requests) == 1
    again = project.tick(cursor=request.cursor)
    assert again.run_requests == []


def test_a_product_mix_shift_is_judged_against_the_previous_hours(project):
    project.produce_hour("topic=delivery", seed=4)
    hour = latest_hour(project.lake)
    drift = project.score(hour)[K["drift"]]
    predicted = project.lake.read_parquet(keys.predictions_key(REVIEWS, hour)).to_pandas()
    assert set(predicted["product"]) == {"delivery"}  # the product travels with the predictions
    summary = json.loads(project.lake.read_bytes(keys.drift_report_key(REVIEWS, hour, "json")))
    [product] = [c for c in summary["columns"] if c["column"] == "product"]
    assert product["drifted"] is True and product["statistic"] < summary["test_level"]
    assert product["reference"].startswith("previous 24 scored partition(s)")
    assert drift["dataset_drift"] is True and "product (vs previous 24" in drift["drifted_columns"]


def test_a_file_with_other_columns_is_quarantined_whole(project):
    spec = TABLES["reviews"]
    bad = b"review_id,created_at,text\nX1,2026-11-24 10:00:00,no product column\n"
    day = pd.Timestamp("2026-11-24")
    key = f"{spec.raw_prefix}2026/11/24/10/bad-header.csv"
    project.lake.write_bytes(key, bad)
    try:
        objects = ingestion.raw_objects_by_date(project.lake, spec, [day.date()])[day.date()]
        ingestion.build_trusted_partition(project.lake, spec, day.date(), objects)
        quarantined = quarantine_day(project.lake, "reviews", day.date()).to_pandas()
        rows = quarantined[quarantined.astype(str).apply(lambda r: "bad-header.csv" in " ".join(r), axis=1)]
        assert len(rows) == 1
        reason = " ".join(rows.astype(str).iloc[0])
        assert "review_id,created_at,text" in reason and "review_id,created_at,product,text" in reason
    finally:
        project.lake.delete(key)
        objects = ingestion.raw_objects_by_date(project.lake, spec, [day.date()])[day.date()]
        ingestion.build_trusted_partition(project.lake, spec, day.date(), objects, allow_shrink=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_mlflow_models_serve_answers_texts(project):
    port = _free_port()
    env = {**project.env(), "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [MLFLOW, "models", "serve", "-m", f"models:/{REVIEWS.registered_model}@{CHAMPION}", "--env-manager", "local",
         "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        body = json.dumps({"dataframe_split": {"columns": ["review_id", "text"], "data": [["r1", "Lovely terrace, superb wine."], ["r2", "The courier was late and the soup cold."]]}}).encode()
        deadline, answer = time.monotonic() + 180, None
        while time.monotonic() < deadline and answer is None:
            if server.poll() is not None:
                pytest.fail(f"mlflow models serve exited: {server.stderr.read().decode()[-2000:]}")
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer = json.loads(response.read())
            except OSError:
                time.sleep(1)
        assert answer is not None, "the server never answered"
        rows = answer["predictions"]
        assert [r["review_id"] for r in rows] == ["r1", "r2"]
        assert rows[0]["prediction_sentiment_score"] > rows[1]["prediction_sentiment_score"]
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.integration
def test_postgres_is_the_training_source_and_the_predictions_sink(project, postgres_server, monkeypatch):  # noqa: F811
    import sqlalchemy as sa

    labelled = current_table(project.lake, "reviews_labelled").to_pandas()
    rows = labelled[["review_id", "created_at", "text", "aspect_terms", "aspect_categories"]].head(600)
    rows = pd.concat([rows, pd.DataFrame([{"review_id": "BAD1", "created_at": rows["created_at"].iloc[0], "text": "x", "aspect_terms": "[{", "aspect_categories": "[]"}])])
    engine = sa.create_engine(postgres_server.url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {LABELLED_TABLE}")
    rows.to_sql(LABELLED_TABLE, engine, index=False)
    engine.dispose()
    monkeypatch.setenv("SMARTSTREAM_REVIEWS_DB", postgres_server.url)
    monkeypatch.setenv("SMARTSTREAM_PREDICTIONS_DB", postgres_server.url)
    out = project.materialize(LABELLED_KEY)[LABELLED_KEY]
    assert out["rows_read"] == 601 and out["rows_refused"] == 1 and "not JSON" in out["refused_reasons"]
    assert out["source"].startswith(f"table {LABELLED_TABLE} at postgresql") and postgres_server.password not in out["source"]

    hour = "2026-11-24-22:00"
    first = project.score(hour)[K["predictions"]]
    assert first["sql_table"] == "review_predictions" and first["sql_rows_upserted"] == first["dagster/row_count"]
    again = project.score(hour)[K["predictions"]]
    assert again["sql_rows_upserted"] == 0  # idempotent
    engine = sa.create_engine(postgres_server.url)
    with engine.connect() as conn:
        stored = pd.read_sql("SELECT * FROM review_predictions", conn)
    engine.dispose()
    assert len(stored) == first["dagster/row_count"] and stored["review_id"].is_unique
    assert {f"prediction_{o}" for o in OUTPUTS} <= set(stored.columns)

    monkeypatch.setenv("SMARTSTREAM_REVIEWS_DB", postgres_server.url_with_password("wrong-password"))
    failed = project.materialize(LABELLED_KEY, ok=False)["failures"]
    assert "labelled_reviews" in failed and "wrong-password" not in failed and postgres_server.password not in failed
