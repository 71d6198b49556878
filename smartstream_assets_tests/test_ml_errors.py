"""Errors in the ML path read as errors: one line that says what happened and what to do
(or, for rows the model can score but never saw like this, counts in the metadata).

The checks are pure functions (``ml.scoring``, ``ml.deployment``, the domain); the last
tests go through the real assets with a champion in a real sqlite MLflow store.
"""

import logging
from dataclasses import replace
from datetime import datetime, timezone

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from smartstream_assets.definitions import defs
from smartstream_assets.domains.employees import ATTRITION as D
from smartstream_assets.ml import scoring
from smartstream_assets.ml.deployment import GATE_TAG, HELD, DeploymentError, approval_version
from smartstream_assets.ml.registry import CHAMPION, VersionInfo
from smartstream_assets.ml.training import make_pipeline
from smartstream_assets.producers.employees import EmployeeSimulator

from .test_ml_lineage import APPROVAL, PARTITION, QUIET, Project, _write_current, job_selection, meta

WHEN = datetime(2026, 6, 1, tzinfo=timezone.utc)
FEATURES = dg.AssetKey(["employees", "features"])
PREDICTIONS = dg.AssetKey(["employees", "predictions"])
ANOMALY = dg.AssetKey(["employees", "anomalies"])


@pytest.fixture(scope="module")
def employees():
    return EmployeeSimulator(3).full_load(300, WHEN)


@pytest.fixture(scope="module")
def pipeline(employees):
    model = make_pipeline("random_forest", {"n_estimators": 20}, list(D.numeric), list(D.categorical))
    return model.fit(employees[D.features], employees[D.target])


# ------------------------------------------------------------------ 1. no rows to score


def test_an_empty_features_table_says_ingest_first():
    with pytest.raises(scoring.ScoringError) as error:
        scoring.check_rows_to_score(0, 0, source="employees/features", filtered=D.scoring_filter, ingest_job="employees_ingest")
    assert str(error.value) == (
        "no rows to score in employees/features (0 rows); ingest data first (employees_ingest), "
        "then materialise employees/features"
    )


def test_rows_all_filtered_out_say_how_many_and_by_what():
    with pytest.raises(scoring.ScoringError) as error:
        scoring.check_rows_to_score(120, 0, source="employees/features", filtered=D.scoring_filter, ingest_job="employees_ingest")
    message = str(error.value)
    assert message == (
        "no rows to score in employees/features (120 rows, all filtered: LeaveOrNot = 1 (leaves) is not scored); "
        "ingest data with rows to score first (employees_ingest), then materialise employees/features"
    )
    assert "\n" not in message
    scoring.check_rows_to_score(120, 1, source="employees/features", filtered="", ingest_job="employees_ingest")


# ------------------------------------------------------- 2. the champion needs columns


def test_missing_champion_columns_name_the_columns_the_model_and_the_version(pipeline, employees):
    needs = scoring.model_input_columns(pipeline, default=["ignored"])
    assert needs == D.features  # what the pipeline was fitted on, in its order
    available = employees.drop(columns=["City", "Age"]).columns
    assert scoring.missing_columns(needs, available) == ["City", "Age"]
    with pytest.raises(scoring.ScoringError) as error:
        scoring.check_champion_columns(
            needs, available, model=D.registered_model, version="3", source="employees/features", retrain_job="employees_retrain"
        )
    assert str(error.value) == (
        "champion smartstream-employees-attrition v3 needs columns City, Age that employees/features lacks; "
        "retrain (employees_retrain) or restore the columns"
    )
    scoring.check_champion_columns(needs, employees.columns, model="m", version="1", source="s", retrain_job="r")


def test_a_model_that_does_not_record_its_columns_needs_the_domains():
    assert scoring.model_input_columns(object(), default=D.features) == D.features


def test_features_from_a_table_without_the_domains_columns_is_a_clear_error(employees):
    with pytest.raises(ValueError) as error:
        D.feature_frame(employees.drop(columns=["Gender"]))
    assert str(error.value).startswith("employees/current lacks columns Gender that employees/features needs; restore them")


# -------------------------------------- 3. nulls and unseen categories: scored and counted


def test_the_training_categories_come_from_the_fitted_encoder(pipeline):
    categories = scoring.fitted_categories(pipeline)
    assert set(categories) == set(D.categorical)
    assert categories["City"] == ["Bangalore", "New Delhi", "Pune"] and categories["PaymentTier"] == [1, 2, 3]


def test_a_one_hot_encoder_anywhere_in_the_pipeline_is_found_and_nulls_are_not_a_category():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    frame = pd.DataFrame({"colour": ["red", "blue", None, "red"], "n": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]})
    encode = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"])], remainder="passthrough")
    model = Pipeline([("prep", encode), ("model", LogisticRegression())]).fit(frame[["colour", "n"]], frame["y"])
    assert scoring.fitted_categories(model) == {"colour": ["blue", "red"]}


def test_nulls_and_unseen_categories_are_scored_and_counted_per_column(pipeline, employees):
    batch = employees.head(8).copy()
    batch["Age"] = batch["Age"].astype("float64")
    batch.loc[0, "Age"] = np.nan
    batch.loc[1, "City"] = None
    batch.loc[[2, 3], "City"] = "Mumbai"
    batch.loc[3, "PaymentTier"] = 7  # row 3: two unseen values, counted once in the row total
    batch.loc[4, "Gender"] = "Other"

    quality = scoring.input_quality(batch, D.features, scoring.fitted_categories(pipeline))
    assert quality.rows == 8
    assert quality.rows_with_nulls == 2 and quality.nulls_by_column == {"City": 1, "Age": 1}
    assert quality.rows_with_unseen_categories == 3
    assert quality.unseen_by_column == {
        "City": {"rows": 2, "values": ["Mumbai"]},
        "Gender": {"rows": 1, "values": ["Other"]},
        "PaymentTier": {"rows": 1, "values": [7]},
    }
    null_line, unseen_line = quality.warnings("employees/features", D.registered_model, "3")
    assert null_line == (
        "2 of 8 rows of employees/features have nulls (City 1, Age 1); scored with the pipeline's missing-value handling"
    )
    assert unseen_line == (
        "3 of 8 rows of employees/features have categories smartstream-employees-attrition v3 never saw in training "
        "(City 2 (Mumbai); Gender 1 (Other); PaymentTier 1 (7)); scored as unknown: retrain if they are here to stay"
    )
    scored = scoring.score_batch(pipeline, batch, id_column=D.id_column, features=D.features)
    assert len(scored) == 8 and scored["probability"].between(0, 1).all()


def test_a_clean_batch_has_nothing_to_say(pipeline, employees):
    quality = scoring.input_quality(employees, D.features, scoring.fitted_categories(pipeline))
    assert (quality.rows_with_nulls, quality.rows_with_unseen_categories) == (0, 0)
    assert quality.warnings("employees/features", D.registered_model, "1") == []


# ---------------------------------------------------------------- 4. approving a version


def versions(*pairs):
    """(version, gate tag) pairs -> VersionInfo, newest first like ``Registry.versions``."""
    return [VersionInfo(v, f"run{v}", {GATE_TAG: gate} if gate else {}) for v, gate in pairs]


HISTORY = versions(("5", HELD), ("4", "rejected"), ("3", HELD), ("2", "promoted"), ("1", "promoted"))


def approve_version(requested, history=HISTORY, challenger="5"):
    return approval_version(requested, name=D.registered_model, domain=D, versions=history, challenger=challenger)


def test_a_version_that_is_not_a_number_lists_the_versions_waiting_for_approval():
    with pytest.raises(DeploymentError) as error:
        approve_version("abc")
    assert str(error.value) == (
        "employees/attrition_approval: version 'abc' is not a number; versions waiting for approval: 5, 3; "
        "set config version to one of them, or leave it empty for the challenger v5"
    )


def test_a_version_that_does_not_exist_says_which_do():
    with pytest.raises(DeploymentError) as error:
        approve_version("42")
    assert str(error.value) == (
        "smartstream-employees-attrition has no version 42 (it has 1-5); versions waiting for approval: 5, 3; "
        "set config version to one of them, or leave it empty for the challenger v5"
    )


def test_with_nothing_held_the_message_says_there_is_nothing_to_approve():
    history = versions(("2", "rejected"), ("1", "promoted"))
    with pytest.raises(DeploymentError) as error:
        approve_version("two", history, challenger="2")
    assert str(error.value) == (
        "employees/attrition_approval: version 'two' is not a number; no version is waiting for approval "
        "(challenger: v2, gate: rejected); nothing to approve until employees/attrition_champion holds a candidate"
    )
    with pytest.raises(DeploymentError, match="has no versions yet; materialise employees/attrition_candidate and employees/attrition_champion"):
        approve_version("1", [], challenger=None)
    with pytest.raises(DeploymentError, match="has no challenger to approve; materialise employees/attrition_candidate"):
        approve_version("", [], challenger=None)


@pytest.mark.parametrize("requested, expected", [("3", "3"), (" v3 ", "3"), ("V03", "3"), ("", "5")])
def test_a_number_as_written_in_the_messages_or_empty_for_the_challenger(requested, expected):
    assert approve_version(requested) == expected


@pytest.mark.parametrize("requested", ["3.0", "-3", "v", "３"])
def test_anything_else_is_not_a_number(requested):
    with pytest.raises(DeploymentError, match="is not a number; versions waiting for approval: 5, 3"):
        approve_version(requested)


# --------------------------------------------------------- through the real assets


@pytest.fixture(scope="module")
def project(tmp_path_factory, employees):
    """A lake and an MLflow store with champion v1 of the attrition model."""
    project = Project(tmp_path_factory.mktemp("ml_errors"))
    _write_current(project.lake, employees)
    config = {
        "ops": {
            "employees__attrition_candidate": {"config": {"trials": 2, "estimators": ["random_forest"]}},
            "employees__attrition_champion": {
                "config": {"thresholds": {"roc_auc": 0.0, "f1": 0.0}, "max_fairness": 1.0}
            },
        }
    }
    # 300 rows: Gender's parity difference on the holdout is above the ERROR threshold, so the
    # blocking fairness check stops that run before the gate; the candidate is registered and
    # the lenient gate, materialised on its own, promotes it
    dg.materialize(
        list(defs.assets), selection=job_selection("employees_retrain"), resources=project.resources,
        instance=project.instance, raise_on_error=False, run_config={**QUIET, **config},
    )  # fmt: skip
    gate = {"employees__attrition_champion": config["ops"]["employees__attrition_champion"]}
    project.materialize(dg.AssetSelection.assets(dg.AssetKey(["employees", "attrition_champion"])), {"ops": gate})
    project.materialize(dg.AssetSelection.assets(ANOMALY))  # the flags scoring joins (an input of predictions)
    assert project.registry.version(D.registered_model, CHAMPION).version == "1"
    return project


def failure(project, *keys, run_config=None) -> str:
    """The one failure of materialising ``keys``: its message (Failure's description)."""
    result = dg.materialize(
        list(defs.assets), selection=dg.AssetSelection.assets(*keys), resources=project.resources,
        instance=project.instance, raise_on_error=False, run_config={**QUIET, **(run_config or {})},
        partition_key=PARTITION if PREDICTIONS in keys else None,
    )  # fmt: skip
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = event.event_specific_data.error
    assert error.cls_name == "Failure" and error.cause is None, error.to_string()  # no crash deep inside
    return error.message.removeprefix("dagster._core.definitions.events.Failure: ").strip()


def prediction_dates(project) -> list[str]:
    return [o.key for o in project.lake.list("predictions/employees/")]


def test_scoring_a_table_of_people_who_all_left_fails_and_writes_nothing(project, employees):
    _write_current(project.lake, employees.assign(LeaveOrNot=1))
    before = prediction_dates(project)
    message = failure(project, FEATURES, PREDICTIONS)
    assert message == (
        "no rows to score in employees/features (300 rows, all filtered: LeaveOrNot = 1 (leaves) is not scored); "
        "ingest data with rows to score first (employees_ingest), then materialise employees/features"
    )
    assert prediction_dates(project) == before  # no empty partition written


def test_scoring_an_empty_table_says_ingest_first(project, employees):
    _write_current(project.lake, employees.head(0))
    message = failure(project, FEATURES, PREDICTIONS)
    assert message == (
        "no rows to score in employees/features (0 rows); ingest data first (employees_ingest), "
        "then materialise employees/features"
    )


def test_a_champion_whose_columns_are_gone_names_them_and_its_version(project, employees):
    from smartstream_assets.assets.ml import features_key, write_frame

    write_frame(project.lake, features_key(D), D.feature_frame(employees).drop(columns=["City", "Age"]))
    message = failure(project, PREDICTIONS)
    assert message == (
        "champion smartstream-employees-attrition v1 needs columns City, Age that employees/features lacks; "
        "retrain (employees_retrain) or restore the columns"
    )


def test_nulls_and_unseen_categories_are_scored_and_counted_in_the_metadata(project, employees):
    batch = employees.copy()
    batch["Age"] = batch["Age"].astype("float64")
    stay = batch.index[batch[D.target].ne(1)]  # only these are scored
    batch.loc[stay[:3], "Age"] = np.nan
    batch.loc[stay[3:8], "City"] = "Mumbai"
    batch.loc[stay[:1], "Education"] = None
    _write_current(project.lake, batch)
    result = project.materialize(dg.AssetSelection.assets(FEATURES, ANOMALY, PREDICTIONS), partition_key="2026-07-01")
    predictions = meta(result, "employees/predictions")
    assert predictions["dagster/row_count"] == len(stay)  # every row scored
    assert predictions["rows_with_nulls"] == 3 and predictions["nulls_by_column"] == {"Education": 1, "Age": 3}
    assert predictions["rows_with_unseen_categories"] == 5
    assert predictions["unseen_categories_by_column"] == {"City": {"rows": 5, "values": ["Mumbai"]}}
    scored = pd.read_parquet(predictions["path"])
    assert len(scored) == len(stay) and scored["probability"].notna().all()
    warnings = [r.user_message for r in project.instance.all_logs(result.run_id) if r.level == logging.WARNING]
    assert any("have categories smartstream-employees-attrition v1 never saw in training (City 5 (Mumbai))" in w for w in warnings)


def test_approving_a_version_that_is_not_a_number_fails_with_one_line(project):
    config = {"ops": {"employees__attrition_approval": {"config": {"approved_by": "dana", "version": "abc"}}}}
    message = failure(project, APPROVAL, run_config=config)
    assert message == (
        "employees/attrition_approval: version 'abc' is not a number; no version is waiting for approval "
        "(challenger: v1, gate: promoted); nothing to approve until employees/attrition_champion holds a candidate"
    )
    config["ops"]["employees__attrition_approval"]["config"]["version"] = "9"
    assert failure(project, APPROVAL, run_config=config).startswith(
        "smartstream-employees-attrition has no version 9 (it has 1); no version is waiting for approval"
    )


def test_the_gate_says_which_columns_a_champion_cannot_be_compared_without(project, employees):
    """A domain that dropped columns: its new candidate's holdout lacks what the champion needs."""
    from smartstream_assets.ml import deployment
    from smartstream_assets.ml.fairness import fairness_report
    from smartstream_assets.ml.training import SearchSettings, train_classifier

    narrow = replace(D, categorical=tuple(c for c in D.categorical if c != "City"), facets=("Gender",))
    settings = SearchSettings(trials=1, estimators=("random_forest",))
    candidate = train_classifier(
        employees, id_column=narrow.id_column, target=narrow.target, numeric=list(narrow.numeric),
        categorical=list(narrow.categorical), settings=settings,
    )  # fmt: skip
    logged = project.registry.log_candidate(narrow, candidate, fairness_report(candidate, ["Gender"]), settings, plots={})
    with pytest.raises(DeploymentError) as error:
        deployment.run_gate(project.registry, narrow, narrow.quality_bar, requires_approval=True)
    assert str(error.value) == (
        f"champion smartstream-employees-attrition v1 needs columns City that the holdout of challenger v{logged.version} "
        "lacks, so the two cannot be compared; restore the columns in employees/features and materialise "
        "employees/attrition_candidate again"
    )
