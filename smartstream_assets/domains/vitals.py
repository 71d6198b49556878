"""The vitals domain: ICU vital signs scored for sepsis risk as they land.

The sepsis streaming system (a producer streams patient vital-sign rows, a worker
computes rolling features, scales them with the scaler the model was trained with and
predicts class probabilities with a model loaded from MLflow; offline, models are tuned
for F1) on the shared layer. This module holds the model's definition; the domain's
assets, sensor and producer build on it (not registered as a plug-in yet: see
DOMAIN_MODULES).
"""

from __future__ import annotations

from ..ml.vitals import DEFAULT_WINDOW, PATIENT
from . import BinaryClassification, GroupSplit, PlainModel

WINDOW = DEFAULT_WINDOW  # readings in the rolling windows (min / mean / max)
SEARCH_TRIALS = 8
# per patient-hour: SepsisLabel (PhysioNet 2019 labels the hours from 6 h before onset).
# Split by patient, F1 (the seed's RandomizedSearch objective) at 0.5; septic hours are
# ~2% of hours, so XGBoost's scale_pos_weight is searched up to 50 (RandomForest:
# class_weight None or balanced); AUROC and AUPRC reported beside it.
SEPSIS_TASK = BinaryClassification(
    target="SepsisLabel",
    objective="f1",
    split=GroupSplit(PATIENT),
    max_pos_weight=50.0,
    baselines=(PlainModel("prior", "prior"),),
)
