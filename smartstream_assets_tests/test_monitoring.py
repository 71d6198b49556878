"""Model Monitor-style monitoring logic (smartstream_assets.ml.monitoring), on small
hand-made weekly CO2 frames whose expected outcome can be worked out by hand."""

import json

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.ml.monitoring import (
    DataQualityBaseline,
    Violation,
    bias_drift,
    check_data_quality,
    data_quality_baseline,
    facet_errors,
    join_actuals,
    model_quality,
    monitor_html,
    season_of,
    violations_report,
)

CO2 = [410.0, 412.0, 411.0, 413.0, 409.0, 414.0, 412.0, 410.0, 411.0, 412.0]


def strict_json(document) -> str:
    """Serialise as the monitors will: no NaN, no numpy scalars (json raises on both)."""
    return json.dumps(document, allow_nan=False)


@pytest.fixture
def readings() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "station": ["MLO", "BRW", "SPO", "MLO", "BRW", "SPO", "MLO", "BRW", "SPO", "MLO"],
            "week": pd.date_range("2024-01-01", periods=10, freq="7D", tz="UTC"),
            "co2": CO2,
            "samples": [7, 6, 7, 5, 7, 7, 6, 7, 7, 6],
            "calibrated": [True, True, False, True, True, True, True, False, True, True],
        }
    )


@pytest.fixture
def baseline(readings) -> DataQualityBaseline:
    return data_quality_baseline(readings)


def by_type(violations, check_type):
    return [v for v in violations if v.constraint_check_type == check_type]


# --------------------------------------------------------------------------- baseline


def test_statistics_profile_each_column_by_type(baseline):
    stats = {f["name"]: f for f in baseline.statistics["features"]}
    assert baseline.statistics["dataset"] == {"item_count": 10}
    assert {n: f["inferred_type"] for n, f in stats.items()} == {
        "station": "String",
        "week": "Timestamp",
        "co2": "Fractional",
        "samples": "Integral",
        "calibrated": "Boolean",
    }
    co2 = stats["co2"]
    assert co2["min"] == 409.0 and co2["max"] == 414.0
    assert co2["mean"] == pytest.approx(np.mean(CO2))
    assert co2["std"] == pytest.approx(np.std(CO2))  # population std
    assert co2["sum"] == pytest.approx(sum(CO2))
    assert (co2["completeness"], co2["num_present"], co2["num_missing"]) == (1.0, 10, 0)
    assert stats["samples"]["min"] == 5 and isinstance(stats["samples"]["min"], int)
    assert stats["station"]["distinct_count"] == 3
    assert stats["station"]["top"][0] == {"value": "MLO", "count": 4}
    assert stats["week"]["min"].startswith("2024-01-01")


def test_constraints_widen_the_range_by_k_std_and_list_the_domain(readings):
    result = data_quality_baseline(readings, ["co2", "station"], range_tolerance_std=2.0, completeness_slack=0.1)
    constraints = {f["name"]: f for f in result.constraints["features"]}
    assert list(constraints) == ["co2", "station"]
    std = np.std(CO2)
    assert constraints["co2"]["num_constraints"]["min"] == pytest.approx(409.0 - 2 * std)
    assert constraints["co2"]["num_constraints"]["max"] == pytest.approx(414.0 + 2 * std)
    assert constraints["co2"]["num_constraints"]["is_non_negative"] is True
    assert constraints["co2"]["completeness"] == pytest.approx(0.9)
    assert constraints["station"]["string_constraints"] == {"domains": ["BRW", "MLO", "SPO"]}
    assert result.constraints["version"] == 0.0
    assert result.constraints["monitoring_config"] == {
        "range_tolerance_std": 2.0,
        "completeness_slack": 0.1,
        "max_categories": 50,
    }


def test_completeness_minimum_is_floored_at_zero_and_too_many_categories_have_no_domain():
    frame = pd.DataFrame({"x": [1.0] + [np.nan] * 99, "id": [f"s{i}" for i in range(100)]})
    result = data_quality_baseline(frame, max_categories=50)
    constraints = {f["name"]: f for f in result.constraints["features"]}
    assert constraints["x"]["completeness"] == 0.0  # 0.01 - 0.02 floored
    assert "string_constraints" not in constraints["id"]


def test_baseline_json_round_trip(baseline):
    text = strict_json(baseline.to_json())
    again = DataQualityBaseline.from_json(json.loads(text))
    assert again == baseline
    assert check_data_quality(pd.DataFrame({"co2": [500.0]}), json.loads(text)["constraints"], check_extra_columns=False)


def test_baseline_rejects_an_empty_frame_and_unknown_columns(readings):
    with pytest.raises(ValueError, match="empty"):
        data_quality_baseline(readings.iloc[:0])
    with pytest.raises(ValueError, match="nope"):
        data_quality_baseline(readings, ["co2", "nope"])


# --------------------------------------------------------------------------- checks


def test_the_baseline_data_passes_its_own_constraints(readings, baseline):
    assert check_data_quality(readings, baseline.constraints) == []


def test_a_value_above_max_plus_3_std_is_one_range_check(readings, baseline):
    current = readings.copy()
    limit = 414.0 + 3 * np.std(CO2)
    current.loc[4, "co2"] = limit + 1.0
    current.loc[5, "co2"] = limit - 0.01  # inside the widened range: not a violation
    violations = check_data_quality(current, baseline.constraints)
    assert len(violations) == 1
    (v,) = violations
    assert (v.feature_name, v.constraint_check_type) == ("co2", "range_check")
    assert "1 of 10 values (10.0%) above the baseline max" in v.description
    assert f"{limit:.6g}" in v.description
    assert v.details["above"] == 1


def test_values_below_the_minimum_and_negative_ones_are_range_checks():
    baseline = data_quality_baseline(pd.DataFrame({"n": [10.0, 11.0, 12.0, 13.0]}))
    # min - 3 std = 10 - 3*1.118 = 6.65: 0.5 and 1.0 are below it; nothing negative here
    violations = check_data_quality(pd.DataFrame({"n": [0.5, 1.0, 11.0, 12.0]}), baseline.constraints)
    assert [v.constraint_check_type for v in violations] == ["range_check"]
    assert "2 of 4 values (50.0%) below the baseline min" in violations[0].description
    # a column whose widened range reaches below 0 still must not go negative
    counts = data_quality_baseline(pd.DataFrame({"k": [1, 2, 3]}))
    assert counts.constraints["features"][0]["num_constraints"]["min"] < -1
    (v,) = check_data_quality(pd.DataFrame({"k": [-1, 2, 3]}), counts.constraints)
    assert v.constraint_check_type == "range_check"
    assert "negative where the baseline had none" in v.description
    assert "below the baseline min" not in v.description


def test_a_dropped_column_is_a_missing_column_check(readings, baseline):
    violations = check_data_quality(readings.drop(columns=["samples"]), baseline.constraints)
    assert [(v.feature_name, v.constraint_check_type) for v in violations] == [("samples", "missing_column_check")]


def test_strings_in_a_float_column_are_a_data_type_check(readings, baseline):
    current = readings.copy()
    current["co2"] = current["co2"].astype(object)
    current.loc[2, "co2"] = "n/a"
    current.loc[7, "co2"] = "412.0"  # text, even if it reads as a number
    violations = check_data_quality(current, baseline.constraints)
    assert [(v.feature_name, v.constraint_check_type) for v in violations] == [("co2", "data_type_check")]
    assert "2 of 10 values (20.0%) are not Fractional" in violations[0].description
    assert "'n/a'" in violations[0].description


def test_integral_columns_accept_whole_floats_but_not_fractions(readings, baseline):
    gap = readings.copy()
    gap["samples"] = [7.0, 6.0, 7.0, 5.0, 7.0, 7.0, 6.0, 7.0, 7.0, 6.0]  # float dtype, still whole
    assert check_data_quality(gap, baseline.constraints) == []
    gap.loc[0, "samples"] = 6.5
    (v,) = check_data_quality(gap, baseline.constraints)
    assert (v.feature_name, v.constraint_check_type) == ("samples", "data_type_check")
    assert "1 of 10 values" in v.description


def test_a_completeness_drop_is_a_completeness_check(readings, baseline):
    current = readings.copy()
    current.loc[[1, 3, 5], "co2"] = np.nan
    violations = check_data_quality(current, baseline.constraints)
    assert [(v.feature_name, v.constraint_check_type) for v in violations] == [("co2", "completeness_check")]
    assert "70.0% (7 of 10 values present)" in violations[0].description
    assert "98.0%" in violations[0].description
    # 70% is below 98%; a 0.35 slack (minimum 65%) lets it pass
    loose = data_quality_baseline(readings, completeness_slack=0.35)
    assert check_data_quality(current, loose.constraints) == []


def test_a_category_never_seen_is_a_categorical_values_check(readings, baseline):
    current = readings.copy()
    current.loc[[0, 9], "station"] = "CGO"
    violations = check_data_quality(current, baseline.constraints)
    assert [(v.feature_name, v.constraint_check_type) for v in violations] == [("station", "categorical_values_check")]
    assert "2 of 10 values (20.0%) not seen in the baseline: 'CGO'" in violations[0].description
    assert violations[0].details["unseen"] == ["CGO"]


def test_an_extra_column_is_reported_unless_turned_off(readings, baseline):
    current = readings.assign(prediction=1.0)
    violations = check_data_quality(current, baseline.constraints)
    assert [(v.feature_name, v.constraint_check_type) for v in violations] == [("prediction", "extra_column_check")]
    assert check_data_quality(current, baseline.constraints, check_extra_columns=False) == []


def test_an_empty_frame_is_one_violation_not_an_exception(readings, baseline):
    violations = check_data_quality(readings.iloc[:0], baseline.constraints)
    assert len(violations) == 1
    assert violations[0].constraint_check_type == "empty_dataset_check"
    assert "nothing to check" in violations[0].description


def test_violations_report_is_json_like_constraint_violations(readings, baseline):
    current = readings.drop(columns=["samples"])
    current.loc[0, "station"] = "CGO"
    violations = check_data_quality(current, baseline)  # the baseline object works too
    report = violations_report(violations, rows=len(current))
    assert report["rows_checked"] == 10
    assert [v["constraint_check_type"] for v in report["violations"]] == ["categorical_values_check", "missing_column_check"]
    assert set(report["violations"][0]) == {"feature_name", "constraint_check_type", "description", "details"}
    again = [Violation.from_json(v) for v in json.loads(strict_json(report))["violations"]]
    assert again == violations


# --------------------------------------------------------------------------- model quality


def test_join_counts_pending_actuals_and_keeps_the_last_duplicate_prediction():
    predictions = pd.DataFrame(
        {
            "station": ["MLO", "MLO", "BRW", "SPO", "MLO"],
            "week": ["w1", "w2", "w1", "w1", "w1"],
            "prediction": [400.0, 401.0, 402.0, 403.0, 410.0],  # MLO/w1 predicted twice: 410 wins
        }
    )
    actuals = pd.DataFrame(
        {
            "station": ["MLO", "BRW", "SPO", "CGO"],
            "week": ["w1", "w1", "w1", "w1"],
            "co2": [409.0, 401.0, np.nan, 399.0],  # SPO not measured yet, CGO never predicted
        }
    )
    joined = join_actuals(predictions, actuals, keys=["station", "week"], actual="co2")
    assert joined.pending == 2  # MLO/w2 (no row) and SPO/w1 (null value)
    assert joined.duplicates == 1
    frame = joined.frame.set_index(["station", "week"])
    assert sorted(frame.index) == [("BRW", "w1"), ("MLO", "w1")]
    assert frame.loc[("MLO", "w1"), "prediction"] == 410.0
    assert frame.loc[("MLO", "w1"), "co2"] == 409.0
    assert joined.to_json() == {"rows": 2, "pending": 2, "duplicates": 1, "missing_predictions": 0}


def test_join_keeps_the_last_actual_of_a_key_and_leaves_out_null_predictions():
    predictions = pd.DataFrame({"k": [1, 2, 3], "prediction": [5.0, np.nan, 7.0]})
    actuals = pd.DataFrame({"k": [1, 1, 3], "y": [4.0, 4.5, 7.0]})  # k=1 corrected to 4.5
    joined = join_actuals(predictions, actuals, keys=["k"], actual="y")
    assert joined.frame.set_index("k")["y"].to_dict() == {1: 4.5, 3: 7.0}
    assert (joined.pending, joined.missing_predictions) == (0, 1)


def test_join_rejects_missing_columns():
    with pytest.raises(ValueError, match="co2"):
        join_actuals(pd.DataFrame({"k": [1], "prediction": [1.0]}), pd.DataFrame({"k": [1]}), keys=["k"], actual="co2")


def test_model_quality_metrics_are_the_hand_computed_ones():
    result = model_quality([1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 3.0, 2.0], baseline={"rmse": 1.0})
    # errors 1, 0, 0, -2: mse 5/4, mae 3/4; ss_tot 5 so r2 = 1 - 5/5 = 0
    assert result.metrics["mse"] == pytest.approx(1.25)
    assert result.metrics["rmse"] == pytest.approx(np.sqrt(1.25))
    assert result.metrics["mae"] == pytest.approx(0.75)
    assert result.metrics["r2"] == pytest.approx(0.0)
    assert result.rows == 4


def test_degraded_when_the_recent_rmse_doubles_and_not_when_it_stays():
    y_true = np.array([400.0, 405.0, 410.0, 415.0, 420.0, 425.0])
    signs = np.array([1, -1, 1, -1, 1, -1])
    stays = model_quality(y_true, y_true + 1.0 * signs, baseline={"rmse": 1.0, "r2": 0.9})
    doubles = model_quality(y_true, y_true + 2.0 * signs, baseline={"rmse": 1.0, "r2": 0.9})
    assert stays.ratio == pytest.approx(1.0) and not stays.degraded and stays.enough_data
    assert doubles.ratio == pytest.approx(2.0) and doubles.degraded
    assert "2.00x the baseline 1" in doubles.reason
    document = json.loads(strict_json(doubles.to_json()))
    assert document["degraded"] is True and document["baseline_value"] == 1.0 and document["rows"] == 6


def test_too_few_rows_is_never_degraded():
    result = model_quality([1.0, 2.0, 3.0], [11.0, 12.0, 13.0], baseline={"rmse": 1.0}, min_rows=4)
    assert not result.enough_data and not result.degraded and result.ratio is None
    assert "only 3 rows" in result.reason
    assert result.metrics["rmse"] == pytest.approx(10.0)


def test_model_quality_rejects_a_metric_it_cannot_compare():
    with pytest.raises(ValueError, match="lower is better"):
        model_quality([1.0] * 4, [1.0] * 4, baseline={"r2": 0.9}, metric="r2")
    with pytest.raises(ValueError, match="no 'mae'"):
        model_quality([1.0] * 4, [1.0] * 4, baseline={"rmse": 1.0}, metric="mae")


def test_a_zero_baseline_is_degraded_by_any_error_and_json_safe():
    perfect = model_quality([1.0] * 4, [1.0] * 4, baseline={"mae": 0.0}, metric="mae")
    worse = model_quality([1.0] * 4, [2.0] * 4, baseline={"mae": 0.0}, metric="mae")
    assert perfect.ratio == 1.0 and not perfect.degraded
    assert worse.degraded and json.loads(strict_json(worse.to_json()))["ratio"] is None


# --------------------------------------------------------------------------- bias drift


def test_facet_errors_by_group():
    y_true = np.zeros(4)
    y_pred = np.array([1.0, -1.0, 3.0, 3.0])
    groups = pd.Series(["DJF", "DJF", "JJA", "JJA"], index=[10, 11, 12, 13])  # index ignored
    result = facet_errors(y_true, y_pred, groups)
    # overall MAE 2: DJF 1/2, JJA 3/2; DJF residuals cancel, JJA over-predicted by 3
    assert result == {
        "DJF": {"rows": 2, "mae": 1.0, "mae_ratio": 0.5, "mean_residual": 0.0},
        "JJA": {"rows": 2, "mae": 3.0, "mae_ratio": 1.5, "mean_residual": 3.0},
    }
    assert facet_errors([1.0, 2.0], [1.0, 2.0], pd.Series(["a", "b"]))["a"]["mae_ratio"] == 1.0
    strict_json(result)


def test_bias_drift_flags_a_group_whose_error_ratio_changes_and_not_a_stable_one():
    baseline = {"station": {"MLO": {"rows": 20, "mae_ratio": 1.0}, "SPO": {"rows": 20, "mae_ratio": 1.0}}}
    recent = {
        "station": {
            "MLO": {"rows": 8, "mae_ratio": 1.2, "mae": 1.2, "mean_residual": 0.1},  # +0.2: stable
            "SPO": {"rows": 8, "mae_ratio": 1.8, "mae": 1.8, "mean_residual": 1.5},  # +0.8: drifted
            "CGO": {"rows": 8, "mae_ratio": 3.0, "mae": 3.0, "mean_residual": 2.0},  # new: reported only
        }
    }
    result = bias_drift(recent, baseline, max_ratio_change=0.5)
    status = {row["group"]: row["status"] for row in result.rows}
    assert status == {"CGO": "new", "MLO": "stable", "SPO": "drifted"}
    assert result.drifted
    assert [row["group"] for row in result.flagged] == ["SPO"]
    spo = next(row for row in result.rows if row["group"] == "SPO")
    assert spo["change"] == pytest.approx(0.8)
    document = json.loads(strict_json(result.to_json()))
    assert document["drifted"] is True and document["flagged"] == 1 and document["new_groups"] == 1
    assert "station=SPO" in document["summary"]

    calm = bias_drift({"station": {"MLO": {"rows": 8, "mae_ratio": 1.2}}}, baseline)
    assert not calm.drifted
    assert {row["group"]: row["status"] for row in calm.rows} == {"MLO": "stable", "SPO": "absent"}


def test_bias_drift_does_not_judge_groups_with_too_few_rows():
    baseline = {"season": {"JJA": {"rows": 20, "mae_ratio": 1.0}}}
    result = bias_drift({"season": {"JJA": {"rows": 3, "mae_ratio": 2.5}}}, baseline, min_rows=4)
    assert not result.drifted and result.rows[0]["status"] == "too_few_rows"


def test_bias_drift_reads_facet_errors_and_fairness_counts():
    y_true = np.zeros(8)
    groups = pd.Series(["a"] * 4 + ["b"] * 4)
    then = {"g": facet_errors(y_true, np.array([1.0] * 8), groups)}  # both ratio 1
    now = {"g": facet_errors(y_true, np.array([1.0] * 4 + [3.0] * 4), groups)}  # a 0.5, b 1.5
    result = bias_drift(now, then, max_ratio_change=0.4)
    assert [row["group"] for row in result.flagged] == ["a", "b"]
    fairness_style = {"g": {"a": {"count": 4, "mae_ratio": 1.0}, "b": {"count": 4, "mae_ratio": 1.0}}}
    assert bias_drift(now, fairness_style, max_ratio_change=0.6).rows[0]["baseline_rows"] == 4


def test_seasons_are_meteorological_by_utc_month():
    stamps = pd.Series(
        pd.to_datetime(["2024-01-15", "2024-04-15", "2024-07-15", "2024-10-15", "2023-12-31", None]),
        index=list("abcdef"),
    )
    result = season_of(stamps)
    assert result.tolist() == ["DJF", "MAM", "JJA", "SON", "DJF", None]
    assert list(result.index) == list("abcdef") and result.name == "season"
    # 00:30 on 1 March in Paris is still February in UTC
    assert season_of(["2024-03-01T00:30:00+01:00", "2024-06-01T00:00:00Z"]).tolist() == ["DJF", "JJA"]


# --------------------------------------------------------------------------- HTML


def test_monitor_html_is_self_contained_and_escaped():
    page = monitor_html(
        "CO2 <script>alert(1)</script>",
        {"degraded": True, "note<b>": "<script>x</script>", "ratio": 2.0, "nested": {"a": [1, None]}},
        {
            "violations": [{"feature_name": "<script>", "description": "a & b"}],
            "groups": pd.DataFrame({"group<i>": ["MLO"], "mae_ratio": [np.float64(1.5)]}),
            "empty": [],
        },
    )
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "note&lt;b&gt;" in page and "group&lt;i&gt;" in page and "a &amp; b" in page
    assert "http://" not in page and "https://" not in page and "<link" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "(no rows)" in page
    assert '<td class="true">true</td>' in page
