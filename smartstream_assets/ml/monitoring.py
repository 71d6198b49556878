"""Model monitoring in the manner of SageMaker Model Monitor, as pure functions.

No Dagster and no MLflow here: the monitor assets read frames and documents, call these
functions and write what they return (JSON and HTML). Nothing is specific to a domain;
the names below use the weekly CO2 readings per station as the running example.

Four monitors, each producing a JSON-safe document (plain dict/list/str/float/int/bool/None,
no numpy scalars, NaN and infinity as None):

* **Data quality** (Model Monitor's ``statistics.json``, ``constraints.json`` and
  ``constraint_violations.json``): ``data_quality_baseline`` profiles a reference frame
  and derives constraints; ``check_data_quality`` holds a new frame to them and returns
  ``Violation`` s; ``violations_report`` wraps them as the violations document.
* **Model quality** against actuals that arrive later: ``join_actuals`` pairs predictions
  with the actuals that have arrived (and counts the ones still pending);
  ``model_quality`` computes r2, mse, rmse and mae on the window and compares the chosen
  error metric with the one in ``evaluation.json``.
* **Bias drift** (Clarify's post-training regression measures, measured again):
  ``facet_errors`` gives per group the MAE, its ratio to the overall MAE and the mean
  residual; ``bias_drift`` compares those ratios now and at baseline. ``season_of`` maps
  timestamps to meteorological seasons, a facet every time series has.
* **Report**: ``monitor_html`` renders a self-contained HTML page next to the JSON.

Constraint check types (``Violation.constraint_check_type``), Model Monitor's names where
it has one:

============================  ===========================================================
``missing_column_check``      a baselined column is not in the data
``extra_column_check``        the data has a column the baseline does not
``data_type_check``           present values not of the baselined type (text in a number
                              column, fractions in an integral one, ...)
``completeness_check``        share of present (non-null) values below the baseline's
                              completeness minus the slack
``range_check``               numbers outside ``[min - k*std, max + k*std]`` of the
                              baseline, or negative where the baseline had none (Model
                              Monitor has no separate name for out-of-bounds numbers)
``categorical_values_check``  text values outside the baselined domain
``empty_dataset_check``       not Model Monitor's: the data has no rows, nothing checked
============================  ===========================================================
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from .drift import json_safe
from .tasks import regression_metrics as _task_regression_metrics

__all__ = [
    "CHECK_TYPES",
    "INFERRED_TYPES",
    "BiasDrift",
    "DataQualityBaseline",
    "Joined",
    "ModelQuality",
    "Violation",
    "bias_drift",
    "check_data_quality",
    "data_quality_baseline",
    "facet_errors",
    "join_actuals",
    "model_quality",
    "monitor_html",
    "season_of",
    "violations_report",
]

INFERRED_TYPES = ("Integral", "Fractional", "String", "Boolean", "Timestamp")
CHECK_TYPES = (
    "missing_column_check",
    "extra_column_check",
    "data_type_check",
    "completeness_check",
    "range_check",
    "categorical_values_check",
    "empty_dataset_check",
)
NUMERIC_TYPES = ("Integral", "Fractional")
ERROR_METRICS = ("rmse", "mse", "mae")
TOP_VALUES = 10  # how many most frequent values a text feature's statistics list
EXAMPLES = 5  # how many offending values a violation's description quotes
CONSTRAINTS_VERSION = 0.0


# --------------------------------------------------------------------------- helpers


def _num(value: float) -> str:
    """A number as the descriptions show it: up to 6 significant digits."""
    return f"{value:.6g}"


def _share(count: int, total: int) -> str:
    """``"3 of 10 values (30.0%)"``."""
    percent = 100.0 * count / total if total else 0.0
    return f"{count} of {total} values ({percent:.1f}%)"


def _quote(values: Sequence[Any]) -> str:
    """Up to ``EXAMPLES`` values, quoted, for a description."""
    shown = ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values[:EXAMPLES])
    return shown + (f" and {len(values) - EXAMPLES} more" if len(values) > EXAMPLES else "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_whole(value: Any) -> bool:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer()


def _is_timestamp(value: Any) -> bool:
    return isinstance(value, (pd.Timestamp, datetime, date, np.datetime64))


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


_VALUE_TESTS = {
    "Integral": _is_whole,
    "Fractional": _is_number,
    "Boolean": _is_bool,
    "Timestamp": _is_timestamp,
    "String": lambda value: True,
}


def _infer_type(series: pd.Series) -> str:
    """Model Monitor's inferred type of a column, from its dtype or, for object columns,
    from its values (text that looks like a number stays String: types come from values,
    not from parsing)."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "Boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "Integral"
    if pd.api.types.is_float_dtype(dtype):
        return "Fractional"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "Timestamp"
    kind = pd.api.types.infer_dtype(series, skipna=True)
    if kind == "boolean":
        return "Boolean"
    if kind == "integer":
        return "Integral"
    if kind in ("floating", "mixed-integer-float", "decimal"):
        return "Fractional"
    if kind in ("datetime", "datetime64", "date"):
        return "Timestamp"
    return "String"


def _typed_mask(series: pd.Series, expected: str) -> pd.Series:
    """True where a present value is of the ``expected`` inferred type (False on missing
    values). Whole floats count as Integral (an integer column with a gap is float);
    every value counts as String (anything can be read as text)."""
    present = series.notna()
    dtype = series.dtype
    if expected == "String":
        return present
    if pd.api.types.is_bool_dtype(dtype):
        return present & (expected == "Boolean")
    if pd.api.types.is_integer_dtype(dtype):
        return present & (expected in NUMERIC_TYPES)
    if pd.api.types.is_float_dtype(dtype):
        if expected == "Fractional":
            return present
        if expected == "Integral":
            values = series.to_numpy(dtype=float, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                whole = np.isfinite(values) & (np.mod(values, 1.0) == 0)
            return present & pd.Series(whole, index=series.index)
        return present & False
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return present & (expected == "Timestamp")
    test = _VALUE_TESTS[expected]
    return present & series.map(lambda v: bool(test(v)) if not _missing(v) else False).astype(bool)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists and other containers
        return False


def _as_numbers(series: pd.Series) -> np.ndarray:
    """The values of a column as float64 (non-numbers as NaN)."""
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


# --------------------------------------------------------------------------- data quality


@dataclass
class DataQualityBaseline:
    """A data-quality baseline: ``statistics`` (Model Monitor's ``statistics.json``) and
    ``constraints`` (its ``constraints.json``), both JSON-safe dicts.

    ``statistics``::

        {"dataset": {"item_count": n},
         "features": [{"name", "inferred_type", "completeness", "num_present", "num_missing",
                       # Integral / Fractional (over the finite values):
                       "min", "max", "mean", "std" (population), "sum",
                       # String / Boolean:
                       "distinct_count", "top": [{"value", "count"}, ...],
                       # Timestamp (ISO strings):
                       "min", "max"}]}

    ``constraints``::

        {"version": 0.0,
         "features": [{"name", "inferred_type", "completeness" (required minimum),
                       "num_constraints": {"min", "max", "is_non_negative"},   # numbers
                       "string_constraints": {"domains": [...]}}],              # few texts
         "monitoring_config": {"range_tolerance_std", "completeness_slack", "max_categories"}}
    """

    statistics: dict
    constraints: dict

    def to_json(self) -> dict:
        """``{"statistics": ..., "constraints": ...}``; ``from_json`` reads it back."""
        return {"statistics": self.statistics, "constraints": self.constraints}

    @classmethod
    def from_json(cls, document: Mapping) -> DataQualityBaseline:
        """The baseline ``to_json`` wrote (also after a ``json.dumps``/``json.loads``)."""
        if "statistics" not in document or "constraints" not in document:
            raise ValueError("a data-quality baseline document needs 'statistics' and 'constraints'")
        return cls(statistics=dict(document["statistics"]), constraints=dict(document["constraints"]))


def data_quality_baseline(
    frame: pd.DataFrame,
    columns: list[str] | None = None,
    *,
    range_tolerance_std: float = 3.0,
    completeness_slack: float = 0.02,
    max_categories: int = 50,
) -> DataQualityBaseline:
    """Profile ``frame`` (all columns, or ``columns``) and derive its constraints.

    Per column: the inferred type (from the dtype; object columns from their values),
    completeness (share of non-null values) and, by type, number or text statistics.
    Constraints: completeness at least the baseline's minus ``completeness_slack``
    (floored at 0); numbers within ``[min - k*std, max + k*std]`` with
    ``k = range_tolerance_std`` and non-negative when the baseline had no negative value;
    text within the baseline's values when it has at most ``max_categories`` of them.
    Timestamps get no range (a time series always moves past its baseline's end).

    Raises ``ValueError`` on an empty frame (nothing to learn from), a column that is not
    in the frame, or a negative tolerance.
    """
    if range_tolerance_std < 0 or completeness_slack < 0 or max_categories < 0:
        raise ValueError("range_tolerance_std, completeness_slack and max_categories must be >= 0")
    columns = [str(c) for c in frame.columns] if columns is None else list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in the frame: {', '.join(map(str, missing))}")
    if len(frame) == 0:
        raise ValueError("cannot baseline an empty frame: it has no rows")
    n = len(frame)
    stats_features, constraint_features = [], []
    for name in columns:
        series = frame[name]
        kind = _infer_type(series)
        present = int(series.notna().sum())
        completeness = present / n
        stats: dict[str, Any] = {
            "name": name,
            "inferred_type": kind,
            "completeness": completeness,
            "num_present": present,
            "num_missing": n - present,
        }
        constraint: dict[str, Any] = {
            "name": name,
            "inferred_type": kind,
            "completeness": max(0.0, completeness - completeness_slack),
        }
        typed = series[_typed_mask(series, kind)]
        if kind in NUMERIC_TYPES:
            values = _as_numbers(typed)
            values = values[np.isfinite(values)]
            if len(values):
                lo, hi, std = float(values.min()), float(values.max()), float(values.std(ddof=0))
                if kind == "Integral":
                    stats.update(min=int(lo), max=int(hi), sum=int(values.sum()))
                else:
                    stats.update(min=lo, max=hi, sum=float(values.sum()))
                stats.update(mean=float(values.mean()), std=std)
                constraint["num_constraints"] = {
                    "min": lo - range_tolerance_std * std,
                    "max": hi + range_tolerance_std * std,
                    "is_non_negative": bool(lo >= 0),
                }
            else:
                stats.update(min=None, max=None, mean=None, std=None, sum=None)
        elif kind in ("String", "Boolean"):
            texts = typed if kind == "Boolean" else typed.map(str)
            counts = texts.value_counts()
            stats["distinct_count"] = int(len(counts))
            stats["top"] = [{"value": v, "count": int(c)} for v, c in counts.head(TOP_VALUES).items()]
            if kind == "String" and len(counts) <= max_categories:
                constraint["string_constraints"] = {"domains": sorted(counts.index)}
        elif kind == "Timestamp":
            stamps = pd.to_datetime(typed, utc=True, errors="coerce").dropna()
            stats.update(min=stamps.min() if len(stamps) else None, max=stamps.max() if len(stamps) else None)
        stats_features.append(stats)
        constraint_features.append(constraint)
    statistics = {"dataset": {"item_count": n}, "features": stats_features}
    constraints = {
        "version": CONSTRAINTS_VERSION,
        "features": constraint_features,
        "monitoring_config": {
            "range_tolerance_std": float(range_tolerance_std),
            "completeness_slack": float(completeness_slack),
            "max_categories": int(max_categories),
        },
    }
    return DataQualityBaseline(statistics=json_safe(statistics), constraints=json_safe(constraints))


@dataclass
class Violation:
    """One broken constraint, as a line of Model Monitor's ``constraint_violations.json``:
    the feature, the check type (see the module docstring) and a sentence with the
    numbers. ``details`` holds the same numbers for programs (counts, bounds)."""

    feature_name: str
    constraint_check_type: str
    description: str
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """``{"feature_name", "constraint_check_type", "description", "details"}``."""
        return json_safe(
            {
                "feature_name": self.feature_name,
                "constraint_check_type": self.constraint_check_type,
                "description": self.description,
                "details": self.details,
            }
        )

    @classmethod
    def from_json(cls, document: Mapping) -> Violation:
        return cls(
            feature_name=document["feature_name"],
            constraint_check_type=document["constraint_check_type"],
            description=document["description"],
            details=dict(document.get("details") or {}),
        )


def check_data_quality(
    frame: pd.DataFrame,
    constraints: Mapping | DataQualityBaseline,
    *,
    check_extra_columns: bool = True,
) -> list[Violation]:
    """Hold ``frame`` to ``constraints`` (the ``constraints`` dict of a
    ``DataQualityBaseline``, or the baseline itself); one ``Violation`` per feature and
    check type that fails, in the order of the constraints' features (extra columns last).

    * ``missing_column_check``: the column is not in ``frame`` (nothing else checked on it).
    * ``data_type_check``: present values not of the baselined type, e.g. text in a
      Fractional column, fractions in an Integral one (whole floats are fine).
    * ``completeness_check``: share of non-null values below the required minimum.
    * ``range_check``: numbers (of the right type) below ``num_constraints.min``, above
      ``num_constraints.max`` (bounds inclusive; infinities are out of range), or
      negative when ``is_non_negative``.
      Counts are of the numbers checked: "3 of 10 values (30.0%) above the baseline max
      420.5", where 420.5 is the baseline's allowed maximum (its max + k std).
    * ``categorical_values_check``: text values outside ``string_constraints.domains``.
    * ``extra_column_check``: a column of ``frame`` the baseline does not have (unless
      ``check_extra_columns`` is False, e.g. when frames carry keys beside the features).

    An empty frame (no rows) gives a single ``empty_dataset_check`` violation rather than
    an exception: an empty window is something to report, not a crash.
    """
    if isinstance(constraints, DataQualityBaseline):
        constraints = constraints.constraints
    features = constraints.get("features") if isinstance(constraints, Mapping) else None
    if not isinstance(features, list):
        raise ValueError("constraints need a 'features' list (the constraints of data_quality_baseline)")
    if len(frame) == 0:
        return [
            Violation(
                "*",
                "empty_dataset_check",
                f"the data has no rows ({len(frame.columns)} columns): nothing to check",
                {"rows": 0, "columns": len(frame.columns)},
            )
        ]
    violations: list[Violation] = []
    known = set()
    for feature in features:
        name = feature["name"]
        known.add(name)
        if name not in frame.columns:
            violations.append(
                Violation(name, "missing_column_check", f"column {name!r} is in the baseline but not in the data")
            )
            continue
        violations.extend(_check_feature(frame[name], feature))
    if check_extra_columns:
        for name in frame.columns:
            if name not in known:
                violations.append(
                    Violation(str(name), "extra_column_check", f"column {name!r} is in the data but not in the baseline")
                )
    return violations


def _check_feature(series: pd.Series, feature: Mapping) -> list[Violation]:
    """The type, completeness, range and domain checks of one column."""
    name, kind = feature["name"], feature["inferred_type"]
    if kind not in INFERRED_TYPES:
        raise ValueError(f"feature {name!r}: unknown inferred_type {kind!r} (one of {', '.join(INFERRED_TYPES)})")
    out: list[Violation] = []
    n = len(series)
    present = series.notna()
    num_present = int(present.sum())
    typed = _typed_mask(series, kind)
    wrong = series[present & ~typed]
    if len(wrong):
        examples = list(dict.fromkeys(v if isinstance(v, str) else json_safe(v) for v in wrong))
        out.append(
            Violation(
                name,
                "data_type_check",
                f"{_share(len(wrong), num_present)} are not {kind} (e.g. {_quote(examples)})",
                {"count": len(wrong), "checked": num_present, "expected_type": kind},
            )
        )
    required = feature.get("completeness")
    completeness = num_present / n
    if required is not None and completeness < required:
        out.append(
            Violation(
                name,
                "completeness_check",
                f"completeness {100 * completeness:.1f}% ({num_present} of {n} values present) "
                f"is below the baseline minimum {100 * required:.1f}%",
                {"completeness": completeness, "required": required, "present": num_present, "rows": n},
            )
        )
    bounds = feature.get("num_constraints")
    if kind in NUMERIC_TYPES and bounds:
        values = _as_numbers(series[typed])
        values = values[~np.isnan(values)]
        parts, details = [], {"checked": int(len(values))}
        lo, hi = bounds.get("min"), bounds.get("max")
        if lo is not None and (below := int((values < lo).sum())):
            parts.append(f"{_share(below, len(values))} below the baseline min {_num(lo)}")
            details.update(below=below, min=lo)
        if hi is not None and (above := int((values > hi).sum())):
            parts.append(f"{_share(above, len(values))} above the baseline max {_num(hi)}")
            details.update(above=above, max=hi)
        if bounds.get("is_non_negative") and (negative := int((values < 0).sum())):
            parts.append(f"{_share(negative, len(values))} negative where the baseline had none")
            details.update(negative=negative)
        if parts:
            out.append(Violation(name, "range_check", "; ".join(parts), details))
    domains = (feature.get("string_constraints") or {}).get("domains")
    if kind == "String" and domains is not None:
        texts = series[typed].map(str)
        unseen = texts[~texts.isin(set(domains))]
        if len(unseen):
            new_values = sorted(unseen.unique())
            out.append(
                Violation(
                    name,
                    "categorical_values_check",
                    f"{_share(len(unseen), len(texts))} not seen in the baseline: {_quote(new_values)}",
                    {"count": int(len(unseen)), "checked": int(len(texts)), "unseen": new_values[:EXAMPLES]},
                )
            )
    return out


def violations_report(violations: Sequence[Violation], *, rows: int) -> dict:
    """Model Monitor's ``constraint_violations.json``:
    ``{"violations": [Violation.to_json(), ...], "rows_checked": rows}``."""
    return {"violations": [v.to_json() for v in violations], "rows_checked": int(rows)}


# --------------------------------------------------------------------------- model quality


@dataclass
class Joined:
    """Predictions paired with their actuals.

    ``frame``: one row per prediction key with an actual: the keys, the prediction's
    other columns and the actual column (prediction order). ``pending``: predictions whose
    actual has not arrived (no row, or a null value). ``duplicates``: earlier predictions
    for a key that was predicted again, dropped. ``missing_predictions``: predictions with a
    null value, left out."""

    frame: pd.DataFrame
    pending: int
    duplicates: int = 0
    missing_predictions: int = 0

    def to_json(self) -> dict:
        """``{"rows", "pending", "duplicates", "missing_predictions"}``."""
        return {
            "rows": int(len(self.frame)),
            "pending": int(self.pending),
            "duplicates": int(self.duplicates),
            "missing_predictions": int(self.missing_predictions),
        }


def join_actuals(
    predictions: pd.DataFrame,
    actuals: pd.DataFrame,
    *,
    keys: list[str],
    prediction: str = "prediction",
    actual: str,
) -> Joined:
    """Inner join of ``predictions`` and ``actuals`` on ``keys`` (e.g. station and week).

    A key predicted several times keeps its LAST prediction row (the frame's order is
    taken as the order they were made, so a re-run's prediction wins); a key with several
    actuals keeps the last one too (a correction wins). Predictions without an actual yet
    are counted in ``Joined.pending``, not silently dropped. Only the ``actual`` column is
    taken from ``actuals``. Raises ``ValueError`` on missing columns, no keys, or an
    ``actual`` column that clashes with a prediction column.
    """
    keys = list(keys)
    if not keys:
        raise ValueError("join_actuals needs at least one key column")
    for label, frame, needed in (("predictions", predictions, keys + [prediction]), ("actuals", actuals, keys + [actual])):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{label} lack the columns {', '.join(map(str, missing))}")
    if actual in predictions.columns:
        raise ValueError(f"the actual column {actual!r} is also a column of the predictions: rename one")
    scored = predictions[predictions[prediction].notna()]
    missing_predictions = len(predictions) - len(scored)
    latest = scored.drop_duplicates(subset=keys, keep="last")
    duplicates = len(scored) - len(latest)
    arrived = actuals.loc[actuals[actual].notna(), keys + [actual]].drop_duplicates(subset=keys, keep="last")
    joined = latest.reset_index(drop=True).merge(arrived, on=keys, how="inner", validate="one_to_one")
    return Joined(
        frame=joined,
        pending=len(latest) - len(joined),
        duplicates=duplicates,
        missing_predictions=missing_predictions,
    )


@dataclass
class ModelQuality:
    """Regression quality on a window of predictions with actuals, against the baseline.

    ``metrics``: r2, mse, rmse, mae on the window (r2 None when undefined: fewer than two
    rows or constant actuals). ``ratio``: window ``metric`` / baseline ``metric`` (the
    figure in ``evaluation.json``); ``degraded``: ratio above ``max_ratio``, never when
    ``enough_data`` is False (fewer than ``min_rows`` rows). ``reason``: one sentence."""

    rows: int
    metrics: dict[str, float | None]
    metric: str
    baseline: dict[str, float]
    ratio: float | None
    max_ratio: float
    min_rows: int
    enough_data: bool
    degraded: bool
    reason: str

    def to_json(self) -> dict:
        """``{"rows", "metrics": {"r2","mse","rmse","mae"}, "metric", "baseline_value",
        "baseline", "ratio", "max_ratio", "min_rows", "enough_data", "degraded", "reason"}``
        (an infinite ratio, against a zero baseline, is None; ``degraded`` says it)."""
        return json_safe(
            {
                "rows": self.rows,
                "metrics": self.metrics,
                "metric": self.metric,
                "baseline_value": self.baseline.get(self.metric),
                "baseline": self.baseline,
                "ratio": self.ratio,
                "max_ratio": self.max_ratio,
                "min_rows": self.min_rows,
                "enough_data": self.enough_data,
                "degraded": self.degraded,
                "reason": self.reason,
            }
        )


def _pairs(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Actuals and predictions as 1-D float arrays, rows where either is missing or
    infinite dropped. Raises ``ValueError`` on different lengths or 2-D input."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError("y_true and y_pred must be one-dimensional")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} rows, y_pred {len(y_pred)}")
    keep = np.isfinite(y_true) & np.isfinite(y_pred)
    return y_true[keep], y_pred[keep]


def regression_metrics(y_true, y_pred) -> dict[str, float | None]:
    """r2, mse, rmse, mae as training computes them (``tasks.regression_metrics``), on the
    rows where both are finite; all None without rows, r2 None when undefined (fewer
    than two rows, or constant actuals)."""
    y_true, y_pred = _pairs(y_true, y_pred)
    if len(y_true) == 0:
        return {"r2": None, "mse": None, "rmse": None, "mae": None}
    with warnings.catch_warnings():  # sklearn warns that R² of one row is undefined: None below
        warnings.simplefilter("ignore")
        metrics: dict[str, float | None] = dict(_task_regression_metrics(y_true, y_pred))
    if len(y_true) < 2 or float(np.ptp(y_true)) == 0.0:
        metrics["r2"] = None
    return metrics


def model_quality(
    y_true,
    y_pred,
    *,
    baseline: Mapping[str, float],
    metric: str = "rmse",
    max_ratio: float = 1.5,
    min_rows: int = 4,
) -> ModelQuality:
    """Quality of ``y_pred`` against ``y_true`` on the window, and whether the error
    ``metric`` (rmse, mse or mae: lower is better) grew past ``max_ratio`` times its
    ``baseline`` value (e.g. ``evaluation.json``'s ``metrics``). Rows where either value is
    missing are left out. A zero baseline: ratio 1.0 when the window's error is 0 too,
    else infinite (degraded). Raises ``ValueError`` on an unknown metric, a baseline
    without it, or a negative/missing baseline value.
    """
    if metric not in ERROR_METRICS:
        raise ValueError(f"metric must be one of {', '.join(ERROR_METRICS)} (an error, lower is better), not {metric!r}")
    if metric not in baseline:
        raise ValueError(f"the baseline has no {metric!r} (it has {', '.join(map(str, baseline)) or 'nothing'})")
    reference = baseline[metric]
    if reference is None or not math.isfinite(float(reference)) or float(reference) < 0:
        raise ValueError(f"the baseline {metric} must be a finite number >= 0, not {reference!r}")
    reference = float(reference)
    y_true, y_pred = _pairs(y_true, y_pred)
    rows = len(y_true)
    metrics = regression_metrics(y_true, y_pred)
    label = metric.upper()
    if rows < min_rows:
        return ModelQuality(
            rows=rows,
            metrics=metrics,
            metric=metric,
            baseline=dict(baseline),
            ratio=None,
            max_ratio=max_ratio,
            min_rows=min_rows,
            enough_data=False,
            degraded=False,
            reason=f"only {rows} rows with actuals (need {min_rows}): quality not judged",
        )
    value = metrics[metric]
    ratio = value / reference if reference > 0 else (1.0 if value == 0 else math.inf)
    degraded = ratio > max_ratio
    times = "infinitely many times" if math.isinf(ratio) else f"{ratio:.2f}x"
    reason = (
        f"{label} {_num(value)} on {rows} rows is {times} the baseline {_num(reference)} "
        f"({'above' if degraded else 'within'} the limit {max_ratio:g}x)"
    )
    return ModelQuality(
        rows=rows,
        metrics=metrics,
        metric=metric,
        baseline=dict(baseline),
        ratio=ratio,
        max_ratio=max_ratio,
        min_rows=min_rows,
        enough_data=True,
        degraded=degraded,
        reason=reason,
    )


# --------------------------------------------------------------------------- bias drift


MISSING_GROUP = "(missing)"


def facet_errors(y_true, y_pred, groups: pd.Series) -> dict[str, dict[str, Any]]:
    """Clarify's post-training regression measures per group of one facet:
    ``{group: {"rows", "mae", "mae_ratio", "mean_residual"}}``.

    ``mae_ratio`` = group MAE / overall MAE (1.0 when both are 0: a perfect model treats
    every group alike); ``mean_residual`` = mean(y_pred - y_true), positive when the group
    is over-predicted. Groups are keyed by their string; a missing group is
    ``"(missing)"``. Rows where y_true or y_pred is missing are left out. Positional:
    ``groups``' index is ignored.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    labels = pd.Series(groups).reset_index(drop=True)
    if not (len(y_true) == len(y_pred) == len(labels)):
        raise ValueError(f"y_true, y_pred and groups have {len(y_true)}, {len(y_pred)} and {len(labels)} rows")
    labels = labels.astype(object).where(labels.notna(), MISSING_GROUP).map(str)
    keep = np.isfinite(y_true) & np.isfinite(y_pred)
    residual = (y_pred - y_true)[keep]
    labels = labels[keep].reset_index(drop=True)
    if len(residual) == 0:
        return {}
    data = pd.DataFrame({"abs_error": np.abs(residual), "residual": residual, "group": labels})
    overall = float(data["abs_error"].mean())
    by_group = data.groupby("group", sort=True).agg(
        rows=("abs_error", "size"), mae=("abs_error", "mean"), mean_residual=("residual", "mean")
    )
    out = {}
    for group, row in by_group.iterrows():
        mae = float(row["mae"])
        if overall > 0:
            ratio = mae / overall
        else:
            ratio = 1.0 if mae == 0 else None  # cannot happen: a zero overall MAE has zero group MAEs
        out[str(group)] = {"rows": int(row["rows"]), "mae": mae, "mae_ratio": ratio, "mean_residual": float(row["mean_residual"])}
    return json_safe(out)


@dataclass
class BiasDrift:
    """Per facet and group, the MAE ratio now against the baseline's.

    ``rows``: one dict per facet/group: ``{"facet", "group", "status", "flagged", "rows",
    "baseline_rows", "mae_ratio", "baseline_mae_ratio", "change", "mean_residual",
    "baseline_mean_residual"}``; status is ``drifted`` (flagged), ``stable``,
    ``too_few_rows`` (changed or not, not judged), ``new`` (no baseline: reported, not
    flagged), ``absent`` (in the baseline, not in the recent data) or ``undefined`` (a ratio
    is missing). ``drifted``: any row flagged."""

    rows: list[dict]
    max_ratio_change: float
    min_rows: int

    @property
    def flagged(self) -> list[dict]:
        return [row for row in self.rows if row["flagged"]]

    @property
    def drifted(self) -> bool:
        return bool(self.flagged)

    @property
    def new_groups(self) -> list[dict]:
        return [row for row in self.rows if row["status"] == "new"]

    @property
    def max_abs_change(self) -> float | None:
        changes = [abs(row["change"]) for row in self.rows if row["change"] is not None]
        return max(changes) if changes else None

    def summary(self) -> str:
        """One sentence: which groups drifted, or that none did."""
        if self.drifted:
            named = ", ".join(
                f"{row['facet']}={row['group']} ({row['baseline_mae_ratio']:.2f} -> {row['mae_ratio']:.2f})"
                for row in self.flagged
            )
            return f"{len(self.flagged)} group(s) changed MAE ratio by more than {self.max_ratio_change:g}: {named}"
        return f"no group's MAE ratio changed by more than {self.max_ratio_change:g} ({len(self.rows)} groups compared)"

    def to_json(self) -> dict:
        """``{"drifted", "max_ratio_change", "min_rows", "max_abs_change", "flagged" (count),
        "new_groups" (count), "summary", "rows": [...]}``."""
        return json_safe(
            {
                "drifted": self.drifted,
                "max_ratio_change": self.max_ratio_change,
                "min_rows": self.min_rows,
                "max_abs_change": self.max_abs_change,
                "flagged": len(self.flagged),
                "new_groups": len(self.new_groups),
                "summary": self.summary(),
                "rows": self.rows,
            }
        )


def _group_rows(measures: Mapping | None) -> int | None:
    """A group's row count: ``rows`` (facet_errors) or ``count`` (fairness reports)."""
    if not measures:
        return None
    value = measures.get("rows", measures.get("count"))
    return None if value is None else int(value)


def _ratio(measures: Mapping | None) -> float | None:
    value = (measures or {}).get("mae_ratio")
    return None if value is None or not math.isfinite(float(value)) else float(value)


def bias_drift(
    recent: Mapping[str, Mapping[str, Mapping]],
    baseline: Mapping[str, Mapping[str, Mapping]],
    *,
    max_ratio_change: float = 0.5,
    min_rows: int = 4,
) -> BiasDrift:
    """Compare each group's MAE ratio (``facet_errors``) in ``recent`` with ``baseline``,
    both ``{facet: {group: {"rows", "mae_ratio", ...}}}`` (a fairness report's
    ``by_group`` with ``count`` works too).

    A group is flagged when ``|recent mae_ratio - baseline mae_ratio| > max_ratio_change``
    and it has at least ``min_rows`` rows now (and at baseline, when the baseline says).
    Groups new since the baseline are reported with status ``new``, never flagged; groups
    gone are ``absent``. Rows are ordered by facet, then group.
    """
    rows: list[dict] = []
    for facet in sorted(set(recent) | set(baseline), key=str):
        now_groups, then_groups = recent.get(facet) or {}, baseline.get(facet) or {}
        for group in sorted(set(now_groups) | set(then_groups), key=str):
            now, then = now_groups.get(group), then_groups.get(group)
            ratio, base_ratio = _ratio(now), _ratio(then)
            count, base_count = _group_rows(now), _group_rows(then)
            change = ratio - base_ratio if ratio is not None and base_ratio is not None else None
            if now is None:
                status = "absent"
            elif then is None:
                status = "new"
            elif change is None:
                status = "undefined"
            elif (count is not None and count < min_rows) or (base_count is not None and base_count < min_rows):
                status = "too_few_rows"
            else:
                status = "drifted" if abs(change) > max_ratio_change else "stable"
            rows.append(
                {
                    "facet": str(facet),
                    "group": str(group),
                    "status": status,
                    "flagged": status == "drifted",
                    "rows": count,
                    "baseline_rows": base_count,
                    "mae_ratio": ratio,
                    "baseline_mae_ratio": base_ratio,
                    "change": change,
                    "mean_residual": (now or {}).get("mean_residual"),
                    "baseline_mean_residual": (then or {}).get("mean_residual"),
                }
            )
    return BiasDrift(rows=json_safe(rows), max_ratio_change=float(max_ratio_change), min_rows=int(min_rows))


_SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM", 6: "JJA", 7: "JJA", 8: "JJA", 9: "SON", 10: "SON", 11: "SON"}


def season_of(timestamps) -> pd.Series:
    """Meteorological season of each timestamp, by its month in UTC: ``"DJF"`` (Dec-Feb),
    ``"MAM"``, ``"JJA"``, ``"SON"``; None where the timestamp is missing. Naive timestamps
    are taken as UTC, aware ones converted. The labels are the months, not the weather:
    DJF is summer south of the equator. Keeps a Series' index; named ``season``."""
    if isinstance(timestamps, pd.Series):
        stamps = pd.to_datetime(timestamps, utc=True)
    else:
        stamps = pd.Series(pd.to_datetime(timestamps, utc=True))
    seasons = stamps.dt.month.map(_SEASONS)
    return seasons.astype(object).where(seasons.notna(), None).rename("season")


# --------------------------------------------------------------------------- HTML


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1f2328;max-width:80rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.true{background:#ffebe9}p.note{color:#656d76;font-size:.85rem}
"""


def _cell(value: Any) -> tuple[str, str]:
    """A value's escaped text and CSS class."""
    value = json_safe(value)
    if value is None:
        return "", ""
    if isinstance(value, bool):
        return ("true", "true") if value else ("false", "")
    if isinstance(value, (int, float)):
        return html.escape(_num(value) if isinstance(value, float) else str(value)), "num"
    if isinstance(value, (dict, list)):
        return html.escape(json.dumps(value, ensure_ascii=False)), ""
    return html.escape(str(value)), ""


def _td(value: Any, tag: str = "td") -> str:
    text, css = _cell(value)
    return f"<{tag} class=\"{css}\">{text}</{tag}>" if css else f"<{tag}>{text}</{tag}>"


def monitor_html(
    title: str,
    summary: Mapping[str, Any],
    tables: Mapping[str, pd.DataFrame | Sequence[Mapping]],
    *,
    max_rows: int = 500,
) -> str:
    """A self-contained HTML page (inline CSS, no script, no external asset): ``title``,
    ``summary`` as a two-column table (nested values as JSON), then each table under its
    name, at most ``max_rows`` rows each (the rest counted). Every text is escaped; True
    cells are highlighted (flags, ``degraded``, ``drifted``)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(str(title))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(str(title))}</h1>",
    ]
    if summary:
        parts.append("<table>")
        parts.extend(f"<tr>{_td(str(key), 'th')}{_td(value)}</tr>" for key, value in summary.items())
        parts.append("</table>")
    for name, table in tables.items():
        parts.append(f"<h2>{html.escape(str(name))}</h2>")
        records = table.to_dict(orient="records") if isinstance(table, pd.DataFrame) else [dict(r) for r in table]
        if isinstance(table, pd.DataFrame):
            columns = [str(c) for c in table.columns]
            records = [{str(k): v for k, v in r.items()} for r in records]
        else:
            columns = list(dict.fromkeys(str(k) for r in records for k in r))
            records = [{str(k): v for k, v in r.items()} for r in records]
        if not records:
            parts.append('<p class="note">(no rows)</p>')
            continue
        parts.append("<table><thead><tr>" + "".join(_td(c, "th") for c in columns) + "</tr></thead><tbody>")
        parts.extend("<tr>" + "".join(_td(r.get(c)) for c in columns) + "</tr>" for r in records[:max_rows])
        parts.append("</tbody></table>")
        if len(records) > max_rows:
            parts.append(f'<p class="note">{len(records) - max_rows} more rows not shown</p>')
    parts.append("</body></html>")
    return "\n".join(parts)
