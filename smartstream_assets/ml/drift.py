"""Data and prediction drift between a reference sample and a current one: the one
drift function every domain calls, with its own columns.

Evidently decides; this module only asks it the right questions and reads the
answers into plain dataclasses that assets put into metadata and JSON:

- per column, Evidently's default method (``ValueDrift`` with no method), which it
  picks by the size of the REFERENCE sample: more than 1000 rows -> normed
  Wasserstein distance for numbers (Jensen-Shannon when a number has <= 5 distinct
  values) and Jensen-Shannon distance for categories, threshold 0.1, drifted when
  distance >= threshold; 1000 rows or fewer -> p-values of K-S (numbers), chi-square
  (categories, or numbers with 3-5 values) or a two-proportion Z-test (two values),
  threshold 0.05, drifted when p < threshold (K-S: p <= threshold). That method,
  as Evidently names it, is ``ColumnDrift.statistic_method``, its value
  ``ColumnDrift.statistic``, whether that value is a p-value or a distance
  ``ColumnDrift.value_kind``, and Evidently's own test result ``drifted``;
- per column, a second ``ValueDrift`` with a fixed two-sample test whose value is
  a p-value: ``ColumnDrift.p_value``, reported alongside, never used for the
  decision. Numbers: Evidently's "ks" (scipy's ks_2samp). Categories: a chi-square
  test of homogeneity registered with Evidently as "chi2_two_sample" (see
  ``_register_two_sample_chisquare`` for why not Evidently's "chisquare"); the
  categories' one is also ``ColumnDrift.chi2_two_sample_p`` (None for numbers),
  the column the drift table shows;
- the prediction columns (if any: one probability, one prediction, or one per output)
  the same way, reported apart from the features and not counted in the drift share;
  prediction drift is any of them drifting.

Evidently is imported inside the function (it takes seconds to import).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import pandas as pd

# The fixed tests that give every column a p-value, whatever the sample size.
P_VALUE_TEST = {"numerical": "ks", "categorical": "chi2_two_sample"}

# What a drift method's value is: "p_value" (small = drift) or "distance" (large =
# drift; PSI and KL divergence count as distances here). Evidently (0.7.23) has no
# such flag, so this reads its method names: the ones ending in "p_value" (K-S,
# chi-square, Z-test: its defaults) and these other tests, whose value is a p-value.
_P_VALUE_METHODS = frozenset(
    {"Anderson-Darling", "Cramer-von Mises", "Epps-Singleton", "Fisher's Exact test",
     "g_test", "Mann-Whitney U-rank test", "t_test"}
)  # fmt: skip


def value_kind(method: str) -> str:
    """``"p_value"`` or ``"distance"`` for a method named as Evidently reports it."""
    return "p_value" if method.endswith("p_value") or method in _P_VALUE_METHODS else "distance"


@dataclass
class ColumnDrift:
    """One column's drift: Evidently's default method, its value, threshold and
    decision; plus a p-value of a fixed two-sample test, reported alongside."""

    column: str
    kind: str  # "numerical" or "categorical"
    statistic: float  # the value of ``statistic_method``: a distance, or a p-value (see ``value_kind``)
    statistic_method: str  # Evidently's method for the decision, as it names it, e.g. "Wasserstein distance (normed)", "K-S p_value"
    p_value: float | None  # from ``test_method``
    test_method: str | None  # "ks" or "chi2_two_sample"
    threshold: float  # of ``statistic_method``
    drifted: bool  # Evidently's decision with ``statistic_method``
    value_kind: str = "distance"  # of ``statistic``: "distance" (drift when >= threshold) or "p_value" (drift when below it)
    chi2_two_sample_p: float | None = None  # the project's two-sample chi-square p-value; categorical columns only

    @property
    def method(self) -> str:
        """The method Evidently decided drift with (``statistic_method``)."""
        return self.statistic_method

    @property
    def value(self) -> float:
        """That method's value (``statistic``): a distance or a p-value, per ``value_kind``."""
        return self.statistic


@dataclass
class DriftSummary:
    """Feature drift (``columns``, ``drift_share``, ``dataset_drift``) and prediction
    drift (``prediction``, ``prediction_drift``; None without a prediction column)."""

    drift_share: float  # share of feature columns that drifted
    dataset_drift: bool  # drift_share >= drift_share_threshold
    columns: list[ColumnDrift]
    predictions: list[ColumnDrift]  # one per prediction column (probability, prediction, prediction_<output>)
    prediction_drift: bool | None  # any prediction column drifted; None without prediction columns
    n_reference: int
    n_current: int
    drift_share_threshold: float = 0.5
    # Evidently's snapshot.dict()["metrics"] (ids, configs, values: a few KB), for the JSON report.
    evidently_metrics: list[dict] = field(default_factory=list, repr=False, compare=False)

    @property
    def prediction(self) -> ColumnDrift | None:
        """The first prediction column's drift (the only one for one-output tasks)."""
        return self.predictions[0] if self.predictions else None

    def drifted_columns(self) -> list[ColumnDrift]:
        """The feature columns that drifted, in the order they were given."""
        return [c for c in self.columns if c.drifted]

    def to_json(self) -> dict:
        """A JSON-safe dict (no NaN or infinity: they become None)."""
        return json_safe(
            {
                "drift_share": self.drift_share,
                "drift_share_threshold": self.drift_share_threshold,
                "dataset_drift": self.dataset_drift,
                "drifted_columns": [c.column for c in self.drifted_columns()],
                "columns": [asdict(c) for c in self.columns],
                "prediction": asdict(self.prediction) if self.prediction else None,
                "predictions": [asdict(p) for p in self.predictions],
                "prediction_drift": self.prediction_drift,
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "evidently": {"metrics": self.evidently_metrics},
            }
        )


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    numerical: list[str],
    categorical: list[str],
    prediction_column: str | None = None,
    drift_share: float = 0.5,
    prediction_columns: list[str] | tuple[str, ...] = (),
) -> tuple[DriftSummary, str]:
    """Compare ``current`` with ``reference`` on the given columns.

    Returns the summary and Evidently's report as a standalone HTML document.
    The dataset has drifted when the share of drifted feature columns is at least
    ``drift_share``. Raises ``ValueError`` when a column is missing or a sample is
    empty (a drift check on nothing must not pass silently).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    _register_two_sample_chisquare()
    features = list(numerical) + list(categorical)
    if not features:
        raise ValueError("no feature columns to compare")
    if len(set(features)) < len(features):
        raise ValueError(f"a column is listed twice in numerical + categorical: {features}")
    kinds = {c: "numerical" for c in numerical} | {c: "categorical" for c in categorical}
    predicted = ([prediction_column] if prediction_column is not None else []) + [c for c in prediction_columns if c != prediction_column]
    for column in predicted:
        if column in kinds:
            raise ValueError(f"prediction column {column!r} is also a feature column")
        numeric = pd.api.types.is_numeric_dtype(reference[column]) if column in reference else True
        kinds[column] = "numerical" if numeric else "categorical"
    _check_inputs(reference, current, list(kinds))

    columns = list(kinds)
    definition = DataDefinition(
        numerical_columns=[c for c in columns if kinds[c] == "numerical"],
        categorical_columns=[c for c in columns if kinds[c] == "categorical"],
    )
    # The preset makes exactly these (no method, no threshold) for the features, so
    # their ids find its results; the prediction's is added to the report below.
    default = {c: ValueDrift(column=c) for c in columns}
    with_p = {c: ValueDrift(column=c, method=P_VALUE_TEST[kinds[c]]) for c in columns}
    metrics = [DataDriftPreset(columns=features, drift_share=drift_share), *with_p.values()]
    metrics += [default[c] for c in predicted]
    # Only the compared columns go in: Evidently copies what it is given per column.
    snapshot = Report(metrics, include_tests=True).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition),
    )

    result = snapshot.dict()
    values = {m["id"]: m for m in result["metrics"]}
    # A ValueDrift carries its decision only as its test's status: FAIL = drift detected.
    failed = {t["metric_config"]["metric_id"]: _status(t["status"]) == "FAIL" for t in result["tests"]}

    def column_drift(column: str) -> ColumnDrift:
        score, pvalue = default[column].metric_id, with_p[column].metric_id
        if score not in values or score not in failed or pvalue not in values:
            raise RuntimeError(f"Evidently returned no drift result for column {column!r}")
        config = values[score]["config"]
        method, p_value = str(config["method"]), float(values[pvalue]["value"])
        return ColumnDrift(
            column=column,
            kind=kinds[column],
            statistic=float(values[score]["value"]),
            statistic_method=method,
            p_value=p_value,
            test_method=P_VALUE_TEST[kinds[column]],
            threshold=float(config["threshold"]),
            drifted=failed[score],
            value_kind=value_kind(method),
            chi2_two_sample_p=p_value if kinds[column] == "categorical" else None,
        )

    feature_drift = [column_drift(c) for c in features]
    share = sum(c.drifted for c in feature_drift) / len(feature_drift)
    prediction_drift = [column_drift(c) for c in predicted]
    summary = DriftSummary(
        drift_share=share,
        dataset_drift=share >= drift_share,
        columns=feature_drift,
        predictions=prediction_drift,
        prediction_drift=any(p.drifted for p in prediction_drift) if prediction_drift else None,
        n_reference=len(reference),
        n_current=len(current),
        drift_share_threshold=drift_share,
        evidently_metrics=result["metrics"],
    )
    # get_html_str, not save_html: in 0.7.23 save_html silently writes nothing when
    # handed a file object, and the caller decides where the HTML goes.
    return summary, snapshot.get_html_str(as_iframe=False)


# ------------------------------------------------------------------ helpers

_REGISTERED = False


def _register_two_sample_chisquare() -> None:
    """Register "chi2_two_sample" with Evidently: scipy's chi-square test of
    homogeneity on the 2 x k table of category counts (reference, current).

    Hand-written on purpose (a few lines around scipy): Evidently's own "chisquare"
    (0.7.23) is a goodness-of-fit test that takes the reference counts as exact
    expected frequencies, ignoring the reference's own sampling noise. Measured on
    identical distributions (3 categories, 300 trials at alpha 0.05) it flags drift
    in 18% of 800-vs-500 samples, 22% of 1000-vs-1000 and 86% of 5000-vs-100000;
    this test flags 5%, 6% and 3%. Without continuity correction it equals the
    two-proportion Z-test that Evidently uses for two categories.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def two_sample_chisquare(reference: pd.Series, current: pd.Series, feature_type, threshold: float):
        from scipy.stats import chi2_contingency

        counts = pd.concat([reference.value_counts(), current.value_counts()], axis=1).fillna(0)
        if len(counts) < 2:  # one category on both sides: nothing can differ
            return 1.0, False
        p_value = float(chi2_contingency(counts.to_numpy().T, correction=False)[1])
        return p_value, p_value < threshold

    register_stattest(
        StatTest(
            name=P_VALUE_TEST["categorical"],
            display_name="chi-square two-sample p_value",
            allowed_feature_types=[ColumnType.Categorical],
            default_threshold=0.05,
        ),
        two_sample_chisquare,
    )
    _REGISTERED = True


def _check_inputs(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> None:
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} data lacks columns {missing}")
        if frame.empty:
            raise ValueError(f"{name} data is empty")


def _status(status) -> str:
    # TestStatus is a str Enum in the live result, a plain string after a JSON round trip.
    return str(getattr(status, "value", status))


def json_safe(value):
    """A JSON-safe copy: numpy scalars as Python ones, NaN, infinity and missing values as
    None, timestamps as ISO strings, anything else (enums, configs) as its string."""
    from datetime import date, datetime

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (pd.Timestamp, datetime, date)):
        return None if pd.isna(value) else value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # enums and anything else Evidently puts in a config
