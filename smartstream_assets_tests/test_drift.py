"""drift_report: Evidently's per-column decisions, p-values, dataset and prediction
drift, the HTML, on employees made by the seeded simulator (with and without drift)."""

import json
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2_contingency, ks_2samp

from smartstream_assets.ml.drift import drift_report
from smartstream_assets.producers.employees import Drift, EmployeeSimulator

NUMERICAL = ["JoiningYear", "Age", "ExperienceInCurrentDomain"]
CATEGORICAL = ["Education", "City", "Gender", "EverBenched", "PaymentTier"]
WHEN = datetime(2026, 1, 5, tzinfo=timezone.utc)
DRIFT = Drift(age_shift=8, city="Pune", payment_tier_shift=-1)
DRIFTED = {"Age", "City", "PaymentTier"}


def employees(seed: int, n: int, drift: Drift | None = None, probability=(2, 5)) -> pd.DataFrame:
    """``n`` employees of a fresh simulator, with a model's leave ``probability`` ~ Beta(a, b)."""
    frame = EmployeeSimulator(seed, drift=drift).full_load(n, WHEN)
    frame["probability"] = np.random.default_rng(seed).beta(*probability, n)
    return frame


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return employees(1, 3000)


@pytest.fixture(scope="module")
def no_drift(reference):
    current = employees(2, 3000)
    return (current, *drift_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, prediction_column="probability"))


@pytest.fixture(scope="module")
def with_drift(reference):
    current = employees(3, 3000, DRIFT)
    summary, html = drift_report(
        reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, prediction_column="probability", drift_share=0.3
    )
    return current, summary, html


def test_two_samples_of_the_same_workforce_show_no_drift(no_drift):
    _, summary, _ = no_drift
    assert summary.drifted_columns() == []
    assert summary.drift_share == 0.0
    assert summary.dataset_drift is False
    assert summary.prediction_drift is False
    assert (summary.n_reference, summary.n_current) == (3000, 3000)
    assert [c.column for c in summary.columns] == NUMERICAL + CATEGORICAL


def test_older_pune_lower_tier_hires_are_flagged_with_statistic_and_p_value(with_drift):
    _, summary, _ = with_drift
    drifted = {c.column: c for c in summary.drifted_columns()}
    assert set(drifted) == DRIFTED
    assert drifted["Age"].kind == "numerical" and drifted["City"].kind == "categorical"
    for column in drifted.values():
        assert column.statistic >= column.threshold == 0.1
        assert column.p_value is not None and column.p_value < 1e-6
    assert summary.drift_share == pytest.approx(3 / 8)
    assert summary.dataset_drift is True  # 3/8 >= 0.3


def test_large_reference_uses_wasserstein_for_numbers_and_jensen_shannon_for_categories(with_drift):
    _, summary, _ = with_drift
    methods = {c.column: c.statistic_method for c in summary.columns}
    assert {methods[c] for c in NUMERICAL} == {"Wasserstein distance (normed)"}
    assert {methods[c] for c in CATEGORICAL} == {"Jensen-Shannon distance"}
    # Distances: drifted exactly when the score reaches the threshold.
    assert all(c.drifted == (c.statistic >= c.threshold) for c in summary.columns)


@pytest.fixture(scope="module")
def small_samples():
    reference, current = employees(5, 300), employees(6, 200, DRIFT)
    return reference, current, drift_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL)[0]


@pytest.mark.parametrize("samples", ["large", "small"])
def test_method_value_and_value_kind_are_evidentlys(samples, request, reference):
    # Evidently's own default test for the column, asked directly: the same method,
    # value, threshold and decision; and whether its value is a p-value (drift below
    # the threshold) or a distance (drift at or above it) is what Evidently does with
    # a threshold just above and just below that value.
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    if samples == "large":
        current, summary, _ = request.getfixturevalue("with_drift")
    else:
        reference, current, summary = request.getfixturevalue("small_samples")
    by_column = {c.column: c for c in summary.columns}
    for name, kind in (("Age", ColumnType.Numerical), ("City", ColumnType.Categorical)):
        column = by_column[name]
        assert column.kind == {ColumnType.Numerical: "numerical", ColumnType.Categorical: "categorical"}[kind]
        ref, cur = reference[name], current[name]
        test = get_stattest(ref, cur, kind, None)
        result = test(ref, cur, kind, None)
        assert column.statistic_method == column.method == test.display_name
        assert column.statistic == column.value == pytest.approx(result.drift_score, rel=1e-9, abs=1e-300)
        assert (column.threshold, column.drifted) == (result.actual_threshold, result.drifted)
        above = test(ref, cur, kind, column.statistic * 1.5 + 1e-12).drifted
        below = test(ref, cur, kind, column.statistic / 1.5).drifted
        assert (above, below) == ((True, False) if column.value_kind == "p_value" else (False, True))
    # Large reference: distances; small: p-values (K-S, chi-square).
    expected = "distance" if samples == "large" else "p_value"
    assert by_column["Age"].value_kind == by_column["City"].value_kind == expected


def test_chi2_two_sample_p_is_for_categories_only(with_drift, small_samples):
    for summary in (with_drift[1], small_samples[2]):
        for column in summary.columns + [summary.prediction or summary.columns[0]]:
            if column.kind == "categorical":
                assert column.chi2_two_sample_p == column.p_value and column.test_method == "chi2_two_sample"
            else:
                assert column.chi2_two_sample_p is None and column.test_method == "ks"
    data = json.loads(json.dumps(with_drift[1].to_json(), allow_nan=False))
    for column in data["columns"]:  # added to the JSON, the old fields kept
        assert {"statistic", "statistic_method", "p_value", "test_method", "threshold", "drifted"} <= set(column)
        assert column["value_kind"] in ("distance", "p_value")
        assert (column["chi2_two_sample_p"] is None) == (column["kind"] == "numerical")


def test_drift_table_says_what_each_number_is(with_drift, small_samples):
    from smartstream_assets.assets.ml import drift_markdown

    def number(cell: str) -> float:
        return 0.0 if cell == "<1e-300" else float(cell)  # a p-value that underflowed

    for summary in (with_drift[1], small_samples[2]):
        header, rule, *rows = drift_markdown(summary).splitlines()
        titles = [t.strip() for t in header.strip("|").split("|")]
        assert titles == ["column", "drifted", "method (Evidently, decides drift)", "value", "value is", "threshold",
                          "chi2_two_sample p (categorical only)"]  # fmt: skip
        assert rule.count("|") == header.count("|")
        cells = {r.strip("|").split("|")[0].strip(): [x.strip() for x in r.strip("|").split("|")] for r in rows}
        drifted = {c.column for c in summary.drifted_columns()}
        order = sorted((c.column for c in summary.columns), key=lambda n: (n not in drifted, n))
        assert list(cells) == order + (["probability (prediction)"] if summary.prediction else [])
        for column in summary.columns + ([summary.prediction] if summary.prediction else []):
            name = column.column + (" (prediction)" if column is summary.prediction else "")
            _, drifted, method, value, value_is, threshold, chi2 = cells[name]
            assert drifted == ("yes" if column.drifted else "no") and method == column.statistic_method
            assert number(value) == pytest.approx(column.statistic, rel=5e-3, abs=5e-4)
            assert value_is.startswith("p-value" if column.value_kind == "p_value" else "distance")
            assert float(threshold) == column.threshold
            if column.kind == "categorical":
                assert number(chi2) == pytest.approx(column.chi2_two_sample_p, rel=5e-3, abs=5e-4)
            else:
                assert chi2 == ""  # no chi-square p-value beside a number's method


def test_drift_share_agrees_with_evidentlys_drifted_columns_count(with_drift):
    _, summary, _ = with_drift
    [count] = [m["value"] for m in summary.evidently_metrics if m["config"]["type"].endswith("DriftedColumnsCount")]
    assert count["count"] == len(summary.drifted_columns()) == 3
    assert count["share"] == pytest.approx(summary.drift_share)


def test_p_values_are_two_sample_tests(reference, with_drift):
    current, summary, _ = with_drift
    by_column = {c.column: c for c in summary.columns}
    for column in NUMERICAL:
        assert by_column[column].test_method == "ks"
        assert by_column[column].p_value == pytest.approx(ks_2samp(reference[column], current[column]).pvalue, rel=1e-9, abs=1e-300)
    for column in CATEGORICAL:
        table = pd.concat([reference[column].value_counts(), current[column].value_counts()], axis=1).fillna(0)
        expected = chi2_contingency(table.to_numpy().T, correction=False).pvalue
        assert by_column[column].test_method == "chi2_two_sample"
        assert by_column[column].p_value == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_two_sample_chi_square_does_not_flag_a_big_current_sample_of_the_same_distribution():
    # Evidently's own "chisquare" takes the reference counts as exact and calls
    # most such pairs drifted (see drift._register_two_sample_chisquare).
    reference, current = employees(11, 2000), employees(12, 40000)
    summary, _ = drift_report(reference, current, numerical=["Age"], categorical=["Education", "City", "PaymentTier"])
    assert all(c.p_value > 0.01 for c in summary.columns if c.kind == "categorical")


def test_prediction_drift_is_reported_apart_from_feature_drift(reference):
    current = employees(2, 3000, probability=(4, 3))  # same workforce, the model now says "leave" more
    summary, _ = drift_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, prediction_column="probability")
    assert summary.prediction is not None and summary.prediction.column == "probability"
    assert summary.prediction_drift is True
    assert summary.prediction.statistic >= summary.prediction.threshold
    assert summary.prediction.p_value < 1e-6
    assert "probability" not in [c.column for c in summary.columns]
    assert summary.drift_share == 0.0 and summary.dataset_drift is False


def test_without_prediction_column_prediction_fields_are_none(no_drift, reference):
    current, _, _ = no_drift
    summary, _ = drift_report(reference.head(1500), current.head(1500), numerical=["Age"], categorical=["City"])
    assert summary.prediction is None and summary.prediction_drift is None
    assert [c.column for c in summary.columns] == ["Age", "City"]


def test_small_samples_use_p_value_tests_and_the_share_threshold():
    reference, current = employees(5, 300), employees(6, 200, DRIFT)
    summary, _ = drift_report(reference, current, numerical=NUMERICAL, categorical=CATEGORICAL, drift_share=0.6)
    methods = {c.column: c.statistic_method for c in summary.columns}
    assert {methods[c] for c in NUMERICAL} == {"K-S p_value"}
    assert {methods[c] for c in ("Education", "City", "PaymentTier")} == {"chi-square p_value"}
    assert {methods[c] for c in ("Gender", "EverBenched")} == {"Z-test p_value"}  # two values
    for column in summary.columns:
        assert column.threshold == 0.05
        assert column.drifted == (column.statistic < column.threshold)  # a p-value: small means drift
    assert DRIFTED <= {c.column for c in summary.drifted_columns()}
    assert summary.drift_share == pytest.approx(len(summary.drifted_columns()) / 8)
    assert summary.drift_share < 0.6 and summary.dataset_drift is False


def test_html_is_an_evidently_report_naming_the_columns(with_drift):
    _, _, html = with_drift
    text = html.strip()
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>")
    # Evidently's drift widgets, with this run's numbers in them.
    assert "Drift is detected for 37.5% of columns (3 out of 8)." in text
    assert "Dataset drift detection threshold is 0.3" in text
    for column in NUMERICAL + CATEGORICAL + ["probability"]:
        assert f'"{column}"' in text


def test_json_is_strict_json_with_decisions_and_evidently_metrics(with_drift):
    _, summary, _ = with_drift
    data = json.loads(json.dumps(summary.to_json(), allow_nan=False))
    assert set(data["drifted_columns"]) == DRIFTED
    assert data["dataset_drift"] is True and data["drift_share_threshold"] == 0.3
    assert data["prediction"]["column"] == "probability"
    assert len(data["evidently"]["metrics"]) >= 1 + 2 * 8
    assert len(json.dumps(data)) < 50_000


def test_missing_column_or_empty_sample_is_an_error(reference):
    with pytest.raises(ValueError, match="lacks columns"):
        drift_report(reference, reference.drop(columns=["Age"]), numerical=["Age"], categorical=[])
    with pytest.raises(ValueError, match="empty"):
        drift_report(reference, reference.head(0), numerical=["Age"], categorical=[])


def test_importing_the_ml_modules_loads_no_heavy_library():
    code = (
        "import sys\n"
        "import smartstream_assets.ml.drift, smartstream_assets.ml.forecast\n"
        "import smartstream_assets.ml.anomaly, smartstream_assets.ml.plots\n"
        "heavy = ('evidently', 'prophet', 'cmdstanpy', 'sklearn', 'matplotlib', 'scipy', 'plotly')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# ------------------------------------------------------------ embeddings: one signal

GROUP = "text_embedding"


def unit_vectors(seed: int, n: int, mean: np.ndarray, spread: float = 1.0) -> np.ndarray:
    """``n`` unit vectors scattered around the direction ``mean`` (384 dimensions)."""
    rng = np.random.default_rng(seed)
    raw = mean + spread * rng.normal(size=(n, mean.size)) / np.sqrt(mean.size)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


def reviews(seed: int, n: int, mean: np.ndarray) -> pd.DataFrame:
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    frame = pd.DataFrame(unit_vectors(seed, n, mean).astype(np.float32), columns=list(EMBEDDING_COLUMNS))
    frame["n_words"] = np.random.default_rng(seed + 1).integers(5, 40, n)
    return frame


@pytest.fixture(scope="module")
def topics():
    """Two topics: unit directions 60 degrees apart, the second one partly the first."""
    rng = np.random.default_rng(7)
    first = rng.normal(size=384)
    first /= np.linalg.norm(first)
    other = rng.normal(size=384)
    other -= other @ first * first
    other /= np.linalg.norm(other)
    return first, 0.5 * first + np.sqrt(0.75) * other


@pytest.fixture(scope="module")
def embedding_reports(topics):
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    first, second = topics
    reference = reviews(20, 600, first)
    hours = {"same": reviews(21, 30, first), "shifted": reviews(22, 30, second)}
    groups = {GROUP: list(EMBEDDING_COLUMNS)}
    return reference, hours, {
        name: drift_report(reference, hour, numerical=["n_words"], categorical=[], embeddings=groups) for name, hour in hours.items()
    }  # fmt: skip


def test_an_embedding_group_is_one_column_and_counts_once_in_the_drift_share(embedding_reports):
    from smartstream_assets.ml.drift import EMBEDDING_METHOD, EMBEDDING_METHODS

    _, _, reports = embedding_reports
    for summary, _ in reports.values():
        assert [c.column for c in summary.columns] == ["n_words", GROUP]  # not 384 columns
        signal = summary.columns[1]
        assert signal.kind == "embedding" and signal.value_kind == "distance"
        assert signal.statistic_method == EMBEDDING_METHODS[EMBEDDING_METHOD]
        assert signal.p_value is None and signal.test_method is None and signal.chi2_two_sample_p is None
        assert summary.drift_share == pytest.approx(sum(c.drifted for c in summary.columns) / 2)
    shifted = reports["shifted"][0]
    assert [c.column for c in shifted.drifted_columns()] == [GROUP]  # the word counts did not move
    assert shifted.drift_share == 0.5 and shifted.dataset_drift is True  # 1/2 >= 0.5


def test_embedding_columns_reach_evidently_only_as_the_embedding_group(embedding_reports):
    _, _, reports = embedding_reports
    summary, html = reports["shifted"]
    configs = [m["config"] for m in summary.evidently_metrics]
    [embedding] = [c for c in configs if c["type"].endswith("EmbeddingsDrift")]
    assert embedding["embeddings_name"] == GROUP and embedding["drift_method"]["bootstrap"] is True
    assert not [c for c in configs if str(c.get("column", "")).startswith("emb_")]  # no per-dimension drift
    assert f"Drift in embeddings '{GROUP}'" in html and "Data drift detected" in html


def test_same_topic_is_not_flagged_and_another_topic_is(embedding_reports):
    _, _, reports = embedding_reports
    same, shifted = (reports[k][0].columns[1] for k in ("same", "shifted"))
    assert same.drifted is False and shifted.drifted is True
    # Evidently's decision; the threshold is the bootstrap quantile it compared with.
    for signal in (same, shifted):
        assert signal.drifted == (signal.statistic > signal.threshold)
    assert shifted.statistic > 2 * same.statistic


def test_evidentlys_decision_is_read_not_recomputed(embedding_reports):
    # Evidently's own distance method on the same frames: the same score and decision.
    from evidently.metrics.embeddings import DistanceDriftMethod

    from smartstream_assets.ml.drift import EMBEDDING_DRIFT
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    reference, hours, reports = embedding_reports
    columns = list(EMBEDDING_COLUMNS)
    for name, hour in hours.items():
        score, drifted, _ = DistanceDriftMethod(**EMBEDDING_DRIFT["distance"])(hour[columns], reference[columns])
        signal = reports[name][0].columns[1]
        assert signal.statistic == pytest.approx(score, rel=1e-6) and signal.drifted == bool(drifted)


def test_domain_classifier_method_flags_the_shift(topics):
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    first, second = topics
    reference, hour = reviews(30, 400, first), reviews(31, 40, second)
    summary, _ = drift_report(
        reference, hour, numerical=[], categorical=[], embeddings={GROUP: list(EMBEDDING_COLUMNS)}, embedding_method="model"
    )
    [signal] = summary.columns
    assert signal.statistic_method == "model (domain classifier ROC AUC)"
    assert signal.drifted is True and 0.5 < signal.threshold < signal.statistic <= 1.0  # ROC AUC above random's 95%
    assert summary.drift_share == 1.0


def test_embedding_summary_is_strict_json_and_in_the_drift_table(embedding_reports):
    from smartstream_assets.metadata import drift_markdown

    _, _, reports = embedding_reports
    summary = reports["shifted"][0]
    data = json.loads(json.dumps(summary.to_json(), allow_nan=False))
    [entry] = [c for c in data["columns"] if c["column"] == GROUP]
    assert entry["kind"] == "embedding" and entry["drifted"] is True and entry["p_value"] is None
    assert entry["statistic"] > entry["threshold"] > 0
    assert data["drifted_columns"] == [GROUP]
    row = next(r for r in drift_markdown(summary).splitlines() if r.startswith(f"| {GROUP} |"))
    cells = [x.strip() for x in row.strip("|").split("|")]
    assert cells[1:3] == ["yes", summary.columns[1].statistic_method] and cells[-1] == ""


def test_bad_embedding_groups_are_errors(embedding_reports):
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    reference, hours, _ = embedding_reports
    columns = list(EMBEDDING_COLUMNS)
    hour = hours["same"]
    with pytest.raises(ValueError, match="also listed as numerical"):
        drift_report(reference, hour, numerical=["n_words", "emb_007"], categorical=[], embeddings={GROUP: columns})
    with pytest.raises(ValueError, match="also listed as numerical"):
        drift_report(reference, hour, numerical=[], categorical=["emb_000"], embeddings={GROUP: columns})
    with pytest.raises(ValueError, match=r"current data lacks columns \['emb_383'\]"):
        drift_report(reference, hour.drop(columns=["emb_383"]), numerical=[], categorical=[], embeddings={GROUP: columns})
    with pytest.raises(ValueError, match="reference data lacks columns"):
        drift_report(reference.drop(columns=["emb_010"]), hour, numerical=[], categorical=[], embeddings={GROUP: columns})
    with pytest.raises(ValueError, match="empty"):
        drift_report(reference, hour.head(0), numerical=[], categorical=[], embeddings={GROUP: columns})
    with pytest.raises(ValueError, match="no columns"):
        drift_report(reference, hour, numerical=["n_words"], categorical=[], embeddings={GROUP: []})
    with pytest.raises(ValueError, match="listed twice"):
        drift_report(reference, hour, numerical=[], categorical=[], embeddings={"a": columns[:10], "b": columns[5:20]})
    with pytest.raises(ValueError, match="unknown embedding drift method"):
        drift_report(reference, hour, numerical=[], categorical=[], embeddings={GROUP: columns}, embedding_method="cosine")


def test_a_false_alarm_rate_splits_its_level_over_the_signals(topics):
    from smartstream_assets.ml.embeddings import EMBEDDING_COLUMNS

    first, second = topics
    reference = reviews(30, 600, first).assign(prediction=np.random.default_rng(31).normal(size=600))
    groups = {GROUP: list(EMBEDDING_COLUMNS)}

    def report(current, rate):
        return drift_report(reference, current, numerical=["n_words"], categorical=[], embeddings=groups,
                            prediction_columns=["prediction"], false_alarm_rate=rate)[0]  # fmt: skip

    hour = reviews(32, 30, first).assign(prediction=np.random.default_rng(33).normal(size=30))
    plain, bounded = report(hour, None), report(hour, 0.06)
    # three signals (text length, the embedding, the prediction): each tested at 2%
    assert bounded.test_level == pytest.approx(0.02) and bounded.false_alarm_rate == 0.06
    assert plain.test_level is None and plain.columns[0].threshold == 0.05
    for column in (*bounded.columns[:1], *bounded.predictions):
        assert column.threshold == pytest.approx(0.02) and column.drifted == (column.statistic <= 0.02)
    # the embedding's bootstrap quantile moves from 95% to 98%: a higher bar
    assert bounded.columns[1].threshold > plain.columns[1].threshold
    assert bounded.to_json()["test_level"] == pytest.approx(0.02)
    # a real shift still crosses it
    shifted = reviews(34, 30, second).assign(prediction=np.random.default_rng(35).normal(size=30))
    assert report(shifted, 0.06).columns[1].drifted is True


def test_a_p_value_between_the_level_and_5_percent_flags_only_without_the_rate():
    rng = np.random.default_rng(40)
    reference = pd.DataFrame({"x": rng.normal(size=800), "y": rng.normal(size=800)})
    # shifted just enough for a K-S p-value in (0.05 / 2, 0.05): searched over seeds, deterministic
    for seed in range(200):
        current = pd.DataFrame({"x": np.random.default_rng(seed).normal(0.35, 1, 40), "y": np.random.default_rng(seed + 1000).normal(size=40)})
        p = ks_2samp(reference["x"], current["x"]).pvalue
        if 0.03 < p < 0.045:
            break
    else:
        pytest.fail("no seed gave a K-S p-value between 0.03 and 0.045")
    plain = drift_report(reference, current, numerical=["x", "y"], categorical=[])[0]
    bounded = drift_report(reference, current, numerical=["x", "y"], categorical=[], false_alarm_rate=0.05)[0]
    assert plain.columns[0].drifted is True and bounded.columns[0].drifted is False


def test_a_false_alarm_rate_is_refused_where_it_cannot_hold(reference):
    with pytest.raises(ValueError, match="at most 1000 rows"):
        drift_report(reference, reference.head(100), numerical=["Age"], categorical=[], false_alarm_rate=0.05)
    with pytest.raises(ValueError, match=r"false_alarm_rate must be in \(0, 1\)"):
        drift_report(reference.head(500), reference.head(100), numerical=["Age"], categorical=[], false_alarm_rate=1.5)


def test_columns_judged_against_another_reference_join_the_share_and_split_the_rate():
    rng = np.random.default_rng(50)
    reference = pd.DataFrame({"x": rng.normal(size=500), "product": rng.choice(["a", "b"], 500, p=[0.7, 0.3])})
    current = pd.DataFrame({"x": rng.normal(size=40), "product": ["b"] * 40})
    main, _ = drift_report(reference, current, numerical=["x"], categorical=[], false_alarm_rate=0.05, other_signals=1)
    assert main.test_level == pytest.approx(0.025) and main.dataset_drift is False
    mix, _ = drift_report(reference, current, numerical=[], categorical=["product"], false_alarm_rate=0.05, other_signals=1)
    assert mix.test_level == pytest.approx(0.025) and mix.columns[0].drifted is True
    from dataclasses import replace

    merged = main.with_columns([replace(c, reference="previous 24 scored partition(s)") for c in mix.columns])
    assert [c.column for c in merged.columns] == ["x", "product"]
    assert merged.drift_share == 0.5 and merged.dataset_drift is (0.5 >= merged.drift_share_threshold)
    assert merged.to_json()["columns"][1]["reference"] == "previous 24 scored partition(s)"
    assert main.columns[0].reference == "champion"

    from smartstream_assets.metadata import drift_markdown

    assert "| product (vs previous 24 scored partition(s)) | yes |" in drift_markdown(merged)
