"""``GroupSplit``: every row of one patient on one side of the holdout and of every search
fold, stratified by class; exact duplicates still scored once; AUPRC beside ROC AUC."""

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.ml.tasks import BinaryClassification, GroupSplit
from smartstream_assets.ml.training import SearchSettings, train_model


def _patients(n=60, hours=12, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n):
        septic = p % 6 == 0
        level = rng.normal(0, 1)
        for h in range(hours):
            x = level + rng.normal(0, 0.3) + (2.0 if septic and h > hours // 2 else 0.0)
            rows.append({"row_id": f"p{p}-{h}", "patient_id": f"p{p}", "x": x, "z": rng.normal(), "label": int(septic and h > hours // 2)})
    return pd.DataFrame(rows)


def test_no_patient_is_on_both_sides_and_the_split_is_recorded():
    frame = _patients()
    task = BinaryClassification(target="label", objective="f1", split=GroupSplit("patient_id"), max_pos_weight=20.0)
    candidate = train_model(frame, task=task, id_column="row_id", numeric=["x", "z"], categorical=[],
                            settings=SearchSettings(trials=2, estimators=("xgboost",)))  # fmt: skip
    train, holdout = set(candidate.train["patient_id"]), set(candidate.holdout["patient_id"])
    assert train and holdout and not train & holdout
    assert candidate.window["split"] == "group" and candidate.window["groups"]["holdout"] == len(holdout)
    assert candidate.holdout["label"].sum() > 0  # stratified: positives on the held-out side too
    assert 0.0 <= candidate.metrics["average_precision"] <= 1.0 and candidate.metrics["roc_auc"] > 0.8
    assert task.describe()["group_split"] == {"column": "patient_id"}


def test_a_group_split_needs_its_column_filled():
    task = BinaryClassification(target="label", split=GroupSplit("patient_id"))
    with pytest.raises(ValueError, match="patient_id"):
        train_model(_patients().drop(columns=["patient_id"]), task=task, id_column="row_id", numeric=["x"], categorical=[],
                    settings=SearchSettings(trials=1))  # fmt: skip
    frame = _patients()
    frame.loc[3, "patient_id"] = None
    with pytest.raises(ValueError, match="1 labelled rows have no patient_id"):
        train_model(frame, task=task, id_column="row_id", numeric=["x"], categorical=[], settings=SearchSettings(trials=1))
    with pytest.raises(ValueError, match="max_pos_weight"):
        BinaryClassification(target="label", max_pos_weight=0.5)
