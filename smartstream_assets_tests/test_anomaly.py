"""score_anomalies: IsolationForest on the scaled employees features finds records
that no real workforce has."""

from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.ml.anomaly import (
    anomaly_scores,
    fit_anomaly_detector,
    score_anomalies,
)
from smartstream_assets.producers.employees import EmployeeSimulator

NUMERIC = ["JoiningYear", "Age", "ExperienceInCurrentDomain"]
CATEGORICAL = ["Education", "City", "Gender", "EverBenched", "PaymentTier"]
WHEN = datetime(2026, 1, 5, tzinfo=timezone.utc)
# Off the simulator's distribution: a 90-year-old joining in 2001, a 19-year-old with
# seven years of domain experience, a 75-year-old who joined in 1995.
OUTLIERS = pd.DataFrame(
    {
        "EmployeeID": [90001, 90002, 90003],
        "Education": ["PHD", "PHD", "Masters"],
        "JoiningYear": [2001, 2026, 1995],
        "City": ["Pune", "New Delhi", "Pune"],
        "PaymentTier": [1, 1, 1],
        "Age": [90, 19, 75],
        "Gender": ["Female", "Male", "Female"],
        "EverBenched": ["Yes", "Yes", "Yes"],
        "ExperienceInCurrentDomain": [7, 7, 0],
        "LeaveOrNot": [0, 0, 1],
    }
)


@pytest.fixture(scope="module")
def workforce() -> pd.DataFrame:
    """2,000 simulated employees with the three outliers in the middle."""
    staff = EmployeeSimulator(3).full_load(2000, WHEN)
    return pd.concat([staff.iloc[:1000], OUTLIERS, staff.iloc[1000:]], ignore_index=True)


def score(frame, **kwargs) -> pd.DataFrame:
    return score_anomalies(frame, id_column="EmployeeID", numeric=NUMERIC, categorical=CATEGORICAL, **kwargs)


def test_injected_outliers_rank_on_top_and_are_labelled_anomalies(workforce):
    result = score(workforce, contamination=0.01)
    top = result.sort_values("score", ascending=False).head(3)
    assert set(top["EmployeeID"]) == set(OUTLIERS["EmployeeID"])
    assert (result.set_index("EmployeeID").loc[OUTLIERS["EmployeeID"], "label"] == -1).all()
    # 1% contamination: about 1% of rows are labelled, the outliers among them.
    assert (result["label"] == -1).mean() == pytest.approx(0.01, abs=0.003)


def test_outliers_are_anomalies_with_automatic_contamination_too(workforce):
    result = score(workforce)  # "auto": anomaly when score > 0.5
    outliers = result[result["EmployeeID"].isin(OUTLIERS["EmployeeID"])]
    assert (outliers["label"] == -1).all()
    assert (result.loc[result["label"] == -1, "score"] > 0.5).all()
    assert (result.loc[result["label"] == 1, "score"] <= 0.5).all()


def test_labels_are_one_or_minus_one_and_rows_keep_their_order(workforce):
    result = score(workforce, contamination=0.05)
    assert set(result["label"].unique()) == {1, -1}
    assert result["label"].dtype == np.int64
    assert list(result.columns) == ["EmployeeID", "label", "score"]
    assert result["EmployeeID"].tolist() == workforce["EmployeeID"].tolist()
    assert result.index.equals(workforce.index)
    assert result["score"].between(0, 1).all()


def test_higher_score_means_more_anomalous(workforce):
    result = score(workforce, contamination=0.05)
    assert result.loc[result["label"] == -1, "score"].min() >= result.loc[result["label"] == 1, "score"].max()


def test_same_seed_same_result_other_seed_other_forest(workforce):
    pd.testing.assert_frame_equal(score(workforce, seed=4), score(workforce, seed=4))
    assert not np.allclose(score(workforce, seed=4)["score"], score(workforce, seed=5)["score"])


def test_fitted_detector_scores_a_new_batch_like_the_training_data(workforce):
    detector = fit_anomaly_detector(workforce, numeric=NUMERIC, categorical=CATEGORICAL, contamination=0.01, seed=0)
    assert list(detector.named_steps) == ["preprocess", "forest"]
    batch = pd.concat([EmployeeSimulator(9).full_load(200, WHEN), OUTLIERS.iloc[[0]]], ignore_index=True)
    batch.loc[0, "City"] = "Chennai"  # a city never seen in training scores instead of failing
    result = anomaly_scores(detector, batch, id_column="EmployeeID")
    assert result.sort_values("score").iloc[-1]["EmployeeID"] == 90001
    refit = score(workforce, contamination=0.01, seed=0)
    pd.testing.assert_frame_equal(anomaly_scores(detector, workforce, id_column="EmployeeID"), refit)


def test_no_rows_is_an_error(workforce):
    with pytest.raises(ValueError, match="no rows"):
        score(workforce.head(0))
