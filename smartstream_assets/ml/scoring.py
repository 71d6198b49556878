"""Batch scoring with a fitted pipeline: one ``predict_proba`` over the frame."""

from __future__ import annotations

import numpy as np
import pandas as pd


def score_batch(pipeline, frame: pd.DataFrame, *, id_column: str, features: list[str], threshold: float = 0.5) -> pd.DataFrame:
    """id, probability of the positive class, predicted class (probability >= threshold).

    The class comes from the same probabilities (not a second ``predict`` pass), so
    scoring costs one pass of the model plus building the frame.
    """
    proba = pipeline.predict_proba(frame[features])[:, 1]
    return pd.DataFrame(
        {
            id_column: frame[id_column].to_numpy(),
            "probability": proba.astype(np.float64),
            "predicted_class": (proba >= threshold).astype(np.int64),
        }
    )
