"""Training with search, and fairness, on the simulated HR table (pure: no MLflow)."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.domains.employees import ATTRITION as D
from smartstream_assets.ml.fairness import (
    facet_fairness,
    fairness_report,
    label_imbalance,
)
from smartstream_assets.ml.training import SearchSettings, train_classifier
from smartstream_assets.producers.employees import EmployeeSimulator

WHEN = datetime(2026, 6, 1, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def employees():
    return EmployeeSimulator(11).full_load(1500, WHEN)


def train(frame, **settings):
    return train_classifier(
        frame, id_column=D.id_column, target=D.target, numeric=list(D.numeric), categorical=list(D.categorical),
        settings=SearchSettings(**{"trials": 3, **settings}),
    )  # fmt: skip


def test_the_search_learns_the_signal_and_evaluates_once_on_a_stratified_holdout(employees):
    c = train(employees, trials=3)
    assert c.metrics["roc_auc"] > 0.7 and 0.5 < c.metrics["accuracy"] <= 1
    assert len(c.holdout) == 300 and len(c.train) == 1200
    assert abs(c.holdout[D.target].mean() - employees[D.target].mean()) < 0.02  # stratified
    assert not set(c.holdout[D.id_column]) & set(c.train[D.id_column])
    assert len(c.trials) == 3 and c.estimator in ("random_forest", "xgboost")
    assert set(c.classification_report) >= {"0", "1", "accuracy"}
    assert set(c.feature_importance) == set(D.features)


def test_the_same_seed_gives_the_same_candidate(employees):
    a, b = train(employees, seed=3), train(employees, seed=3)
    assert a.params == b.params and a.metrics == b.metrics
    # two threads sum the trees in either order: equal up to the last bits
    np.testing.assert_allclose(a.holdout_proba, b.holdout_proba, rtol=1e-12)


def test_the_estimators_can_be_restricted_and_hyperband_prunes(employees):
    c = train(employees, trials=6, estimators=("random_forest",), sampler="random", pruner="hyperband")
    assert {t.estimator for t in c.trials} == {"random_forest"}
    assert any(t.state == "PRUNED" for t in c.trials)


def test_the_pipeline_carries_its_preprocessing_so_scoring_takes_raw_rows(employees):
    c = train(employees)
    raw = employees[D.features].head(3).copy()
    raw.loc[raw.index[0], "City"] = "Mumbai"  # a city never seen in training
    proba = c.pipeline.predict_proba(raw)[:, 1]
    assert proba.shape == (3,) and np.all((proba >= 0) & (proba <= 1))


def test_unlabelled_rows_are_not_trained_on_and_too_little_data_is_a_clear_error(employees):
    frame = employees.astype({D.target: "float64"})
    frame.loc[frame.index[:500], D.target] = np.nan
    c = train(frame)
    assert len(c.train) + len(c.holdout) == 1000
    with pytest.raises(ValueError, match="cannot train on 8 labelled rows"):
        train(employees.head(8))


@pytest.mark.parametrize(
    "bad, message",
    [({"sampler": "grid"}, "sampler must be one of"), ({"estimators": ("svm",)}, "estimators must be some of"), ({"trials": 0}, "trials must be")],
)
def test_bad_search_settings_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        SearchSettings(**bad)


# --------------------------------------------------------------------- fairness


def test_fairness_metrics_match_a_hand_computed_example():
    y_true = [1, 0, 1, 0, 1, 0, 1, 0]
    y_pred = [1, 1, 1, 0, 0, 0, 1, 0]
    groups = pd.Series(["a", "a", "a", "a", "b", "b", "b", "b"], name="g")
    f = facet_fairness(y_true, y_pred, groups)
    assert f.by_group.loc["a", "selection_rate"] == 0.75 and f.by_group.loc["b", "selection_rate"] == 0.25
    assert f.demographic_parity_difference == pytest.approx(0.5)
    assert f.demographic_parity_ratio == pytest.approx(1 / 3)
    # TPR a = 1.0, b = 0.5; FPR a = 0.5, b = 0.0: equalized-odds difference 0.5
    assert f.equalized_odds_difference == pytest.approx(0.5)
    assert f.by_group.loc["a", "recall"] == 1.0 and f.by_group.loc["b", "accuracy"] == 0.75


def test_label_imbalance_is_clarifys_class_imbalance_and_dpl():
    labels = pd.Series([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    groups = pd.Series(["f"] * 4 + ["m"] * 6)
    out = label_imbalance(labels, groups)
    assert out.loc["f", "label_rate"] == 0.75 and out.loc["m", "label_rate"] == pytest.approx(1 / 6)
    assert out.loc["f", "class_imbalance"] == pytest.approx((6 - 4) / 10)
    assert out.loc["f", "dpl"] == pytest.approx(1 / 6 - 0.75)


def test_a_model_that_only_looks_at_gender_shows_up_as_unfair(employees):
    biased = employees.copy()
    biased[D.target] = (biased["Gender"] == "Female").astype(int)  # the label is the gender
    c = train(biased)
    report = fairness_report(c, ["Gender", "City"])
    assert report["Gender"].demographic_parity_difference > 0.9
    assert report["Gender"].worst_difference > D.fairness.error
    assert report["City"].demographic_parity_difference < report["Gender"].demographic_parity_difference


def test_the_fairness_check_errors_only_for_protected_facets():
    import dagster as dg

    from smartstream_assets.assets.ml import fairness_check
    from smartstream_assets.ml.fairness import FacetFairness

    def facet(dp, eo):
        return FacetFairness("f", pd.DataFrame(), dp, 1 - dp, eo)

    key = dg.AssetKey(["models", "employees_attrition"])
    assert D.gated_facets == ["Gender"]
    city = fairness_check(key, D, {"Gender": facet(0.1, 0.1), "City": facet(0.6, 0.5)})
    assert not city.passed and city.severity == dg.AssetCheckSeverity.WARN
    assert city.metadata["worst_facet"].value == "City"
    gender = fairness_check(key, D, {"Gender": facet(0.45, 0.2), "City": facet(0.1, 0.1)})
    assert not gender.passed and gender.severity == dg.AssetCheckSeverity.ERROR
    assert fairness_check(key, D, {"Gender": facet(0.15, 0.1), "City": facet(0.19, 0.2)}).passed
