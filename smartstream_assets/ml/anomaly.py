"""Unusual records: an IsolationForest on the same scaled features every fitted
pipeline uses (``features.build_preprocessor``), preprocessing and forest in one
sklearn Pipeline so a fitted detector scores new data exactly as it was trained.

sklearn is imported inside the functions.
"""

from __future__ import annotations

import pandas as pd

from .features import build_preprocessor


def score_anomalies(
    frame: pd.DataFrame,
    *,
    id_column: str,
    numeric: list[str],
    categorical: list[str],
    contamination: str | float = "auto",
    seed: int = 0,
) -> pd.DataFrame:
    """Fit a detector on ``frame`` and score the same rows.

    Returns ``id_column``, ``label`` (1 normal, -1 anomaly, IsolationForest's
    convention) and ``score``, higher = more anomalous (see ``anomaly_scores``), in
    the order and with the index of ``frame``. ``contamination``: "auto" (anomaly when the score is
    above 0.5, the original paper's cut) or the expected share of anomalies (that
    share of the rows is labelled -1). On few-valued features like the employees
    table "auto" labels far too many rows: ordinary rows already score about 0.49
    (median), so 45% of 1,000 to 20,000 simulated employees fall above 0.5; pass a
    share there. The
    ranking by ``score`` is unaffected. The same data and ``seed`` give the same result.
    """
    detector = fit_anomaly_detector(
        frame, numeric=numeric, categorical=categorical, contamination=contamination, seed=seed
    )
    return anomaly_scores(detector, frame, id_column=id_column)


def fit_anomaly_detector(
    frame: pd.DataFrame,
    *,
    numeric: list[str],
    categorical: list[str],
    contamination: str | float = "auto",
    seed: int = 0,
):
    """The fitted Pipeline(preprocess = build_preprocessor, forest = IsolationForest),
    e.g. to log to MLflow and score later batches with ``anomaly_scores``."""
    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import Pipeline

    if frame.empty:
        raise ValueError("cannot fit an anomaly detector on no rows")
    detector = Pipeline(
        [
            ("preprocess", build_preprocessor(numeric, categorical)),
            ("forest", IsolationForest(contamination=contamination, random_state=seed)),
        ]
    )
    return detector.fit(frame[list(numeric) + list(categorical)])


def anomaly_scores(detector, frame: pd.DataFrame, *, id_column: str) -> pd.DataFrame:
    """``id_column``, ``label`` (1 / -1) and ``score`` of ``frame`` under a fitted detector.

    ``score`` is the negated ``score_samples`` of sklearn, i.e. the anomaly score of
    Liu et al. (2008), in (0, 1]: near 1 isolated quickly (anomalous), well below 0.5
    ordinary. Sorting by it descending puts the most unusual rows first.
    """
    features = frame[list(detector.feature_names_in_)]
    return pd.DataFrame(
        {
            id_column: frame[id_column].to_numpy(),
            "label": detector.predict(features).astype("int64"),
            "score": -detector.score_samples(features),
        },
        index=frame.index,
    )
