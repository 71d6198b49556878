"""Batch scoring with a fitted pipeline: one pass of the task's prediction over the
frame (``predict_proba`` for a classifier, ``predict`` for a regressor), and the checks
that run before it so a bad batch fails with a sentence, not deep in sklearn.

Pure (pandas and the fitted pipeline; no MLflow, no Dagster): the predictions asset
calls these and turns ``ScoringError`` into a ``dagster.Failure``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# How many distinct unseen values per column the metadata names (the counts are complete).
UNSEEN_EXAMPLES = 5


class ScoringError(ValueError):
    """The batch cannot be scored; the one-line message says what happened and what to do."""


def score_batch(pipeline, frame: pd.DataFrame, *, id_column: str, features: list[str], task=None, threshold: float = 0.5) -> pd.DataFrame:
    """id and the task's prediction columns (``task.prediction_columns``): for a binary
    task (the default) the probability of the positive class and the predicted class
    (probability >= threshold); ``prediction`` for a regressor; ``prediction_<output>``
    for several outputs.

    The class comes from the same probabilities (not a second ``predict`` pass), so
    scoring costs one pass of the model plus building the frame.
    """
    from .tasks import BinaryClassification

    task = task or BinaryClassification(target="label", threshold=threshold)
    predictions = task.prediction_frame(task.predict(pipeline, frame[features]))
    predictions.insert(0, id_column, frame[id_column].to_numpy())
    return predictions


# ------------------------------------------------------------- what the model needs


def model_input_columns(pipeline, default: list[str]) -> list[str]:
    """The columns the fitted pipeline was trained on (sklearn's ``feature_names_in_``),
    in its order; ``default`` for a model that does not record them."""
    names = getattr(pipeline, "feature_names_in_", None)
    return [str(n) for n in names] if names is not None else list(default)


def missing_columns(required: list[str], available) -> list[str]:
    """``required`` columns not in ``available``, in the order they are required."""
    have = set(available)
    return [c for c in required if c not in have]


def check_champion_columns(required: list[str], available, *, model: str, version: str, source: str, retrain_job: str) -> None:
    """Raise ``ScoringError`` naming the model, its version and every column ``source`` lacks."""
    missing = missing_columns(required, available)
    if missing:
        raise ScoringError(
            f"champion {model} v{version} needs columns {', '.join(missing)} that {source} lacks; "
            f"retrain ({retrain_job}) or restore the columns"
        )


def check_rows_to_score(total: int, to_score: int, *, source: str, filtered: str, ingest_job: str) -> None:
    """Raise ``ScoringError`` when there is nothing to score: an empty table, or every row
    left out by the domain's filter (``filtered`` says which rows are left out)."""
    if to_score > 0:
        return
    if total == 0:
        raise ScoringError(f"no rows to score in {source} (0 rows); ingest data first ({ingest_job}), then materialise {source}")
    raise ScoringError(
        f"no rows to score in {source} ({total} rows, all filtered: {filtered}); "
        f"ingest data with rows to score first ({ingest_job}), then materialise {source}"
    )


# ------------------------------------------------------------- what the batch brings


def fitted_categories(pipeline) -> dict[str, list]:
    """Column -> the categories a fitted encoder of the pipeline learnt in training (the
    ``categories_`` of an OrdinalEncoder/OneHotEncoder, wherever it sits in Pipelines and
    ColumnTransformers). Missing values are left out: they are counted as nulls."""
    found: dict[str, list] = {}

    def visit(step, columns):
        if step is None or isinstance(step, str):  # "drop" / "passthrough"
            return
        if hasattr(step, "categories_"):
            names = getattr(step, "feature_names_in_", None)
            names = [str(n) for n in names] if names is not None else list(columns or [])
            for name, cats in zip(names, step.categories_):
                found[name] = [c for c in cats.tolist() if not _is_missing(c)]
            return
        if hasattr(step, "transformers_"):  # ColumnTransformer
            for _, inner, inner_columns in step.transformers_:
                visit(inner, list(inner_columns) if not isinstance(inner_columns, str) else [inner_columns])
            return
        if hasattr(step, "steps"):  # Pipeline
            for _, inner in step.steps:
                visit(inner, columns)
            return
        if hasattr(step, "regressor_"):  # a wrapper around a fitted pipeline (AnchoredRegressor)
            visit(step.regressor_, columns)

    visit(pipeline, None)
    return found


@dataclass
class InputQuality:
    """What of the batch the pipeline scores but never saw like this in training."""

    rows: int
    rows_with_nulls: int
    nulls_by_column: dict[str, int] = field(default_factory=dict)
    rows_with_unseen_categories: int = 0
    # column -> {"rows": n, "values": the first few unseen values}
    unseen_by_column: dict[str, dict] = field(default_factory=dict)
    checked_categorical: list[str] = field(default_factory=list)

    def warnings(self, source: str, model: str, version: str) -> list[str]:
        """One line per finding, for the run log."""
        out = []
        if self.rows_with_nulls:
            cols = ", ".join(f"{c} {n}" for c, n in self.nulls_by_column.items())
            out.append(f"{self.rows_with_nulls} of {self.rows} rows of {source} have nulls ({cols}); scored with the pipeline's missing-value handling")
        if self.rows_with_unseen_categories:
            cols = "; ".join(f"{c} {u['rows']} ({', '.join(map(str, u['values']))})" for c, u in self.unseen_by_column.items())
            out.append(
                f"{self.rows_with_unseen_categories} of {self.rows} rows of {source} have categories {model} v{version} "
                f"never saw in training ({cols}); scored as unknown: retrain if they are here to stay"
            )
        return out


def input_quality(frame: pd.DataFrame, columns: list[str], categories: dict[str, list]) -> InputQuality:
    """Count rows with a null in any of ``columns`` and rows with a category value not in
    ``categories`` (per column: how many rows, and a few of the values)."""
    data = frame[[c for c in columns if c in frame.columns]]
    nulls = data.isna()
    nulls_by_column = {c: int(n) for c, n in nulls.sum().items() if n}
    unseen_any = pd.Series(False, index=data.index)
    unseen_by_column = {}
    checked = [c for c in data.columns if c in categories]
    for column in checked:
        values = data[column]
        unseen = values.notna() & ~values.isin(categories[column])
        if unseen.any():
            unseen_any |= unseen
            examples = pd.unique(values[unseen])[:UNSEEN_EXAMPLES]
            unseen_by_column[column] = {"rows": int(unseen.sum()), "values": [_plain(v) for v in examples]}
    return InputQuality(
        rows=len(data),
        rows_with_nulls=int(nulls.any(axis=1).sum()),
        nulls_by_column=nulls_by_column,
        rows_with_unseen_categories=int(unseen_any.sum()),
        unseen_by_column=unseen_by_column,
        checked_categorical=checked,
    )


def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value):
    """A JSON-friendly scalar (numpy ints and floats become Python ones)."""
    return value.item() if isinstance(value, np.generic) else value
