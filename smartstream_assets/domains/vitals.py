"""The vitals domain: ICU vital signs scored for sepsis risk as they land.

The sepsis streaming system (a producer streams patient vital-sign rows, a worker
computes rolling features, scales them with the scaler the model was trained with and
predicts class probabilities with a model loaded from MLflow; offline, models are tuned
for F1) on the shared layer:

- ``vitals/features`` from ``vitals_labelled/current``: ``ml.vitals.rolling_features``
  per patient over past readings only (the function the scoring path runs too);
- the candidate (binary ``SepsisLabel`` per patient-hour, split by patient, F1 over
  RandomForest and XGBoost with the class imbalance in their spaces, scaler + model in
  one pipeline; AUROC and AUPRC beside it), registered ``smartstream-vitals-sepsis``;
  the gate, approval required to replace a champion;
- ``vitals/hourly`` (``assets.vitals``): each hour's live readings from ``vitals/live_current``
  with their features, each patient's earlier readings as history; what the hourly
  ``vitals/predictions`` scores and ``vitals/drift_report`` compares with the champion's
  reference.
"""

from __future__ import annotations

import pandas as pd

from ..ml.vitals import DEFAULT_WINDOW, PATIENT, TIME, VITALS, feature_columns, rolled_columns, rolling_features
from . import AT_LEAST, BinaryClassification, Cadence, Domain, DomainExtras, DomainPlugin, GroupSplit, PlainModel, QualityBar, StreamAsset

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


def reading_ids(frame: pd.DataFrame) -> pd.Series:
    """``patient_id@ts`` (ts in ISO-8601 UTC): one id per message, the table's key."""
    return frame[PATIENT].astype(str) + "@" + pd.to_datetime(frame[TIME], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def vitals_features(current: pd.DataFrame) -> pd.DataFrame:
    """``vitals_labelled/current`` → one row per patient-hour with its rolling features."""
    frame = rolling_features(current, window=WINDOW)
    frame.insert(0, "reading_id", reading_ids(frame).to_numpy())
    return frame.sort_values("reading_id", kind="stable").reset_index(drop=True)


VITALS_DOMAIN = Domain(
    name="vitals",
    table="vitals_labelled",
    model="sepsis",
    registered_model="smartstream-vitals-sepsis",
    id_column="reading_id",
    task=SEPSIS_TASK,
    numeric=tuple(feature_columns(WINDOW)),
    categorical=(),
    make_features=vitals_features,
    # on the held-out patients; the real PhysioNet slice reads AUROC 0.75-0.77
    # (benchmarks/vitals_quality.py), the generated sample higher
    quality_bar=QualityBar(metrics={"roc_auc": (AT_LEAST, 0.7)}),
    requires_approval=True,
    drift_share_threshold=0.3,
    # an hour holds a few dozen readings: at most 1,000 reference rows, so Evidently tests
    # (K-S p-values weigh the hour's size) instead of comparing distances a small hour
    # crosses by chance (5,000 rows: every column of the sample's clean hour "drifted"),
    # each of the signals at 5% / their number (Bonferroni)
    drift_false_alarm_rate=0.05,
    retrain_cooldown_hours=6.0,
    reference_rows=1000,
    positive_label="sepsis",
    class_labels=("no sepsis", "sepsis"),
    scoring_cadence=Cadence(every="hour", start="2026-11-20-00:00", schedule_minute=10, label="hourly",
                            description="each hour's readings scored 10 minutes after it ends"),  # fmt: skip
    scoring_source="vitals/hourly",
    carry_columns=(PATIENT, TIME),  # who and when travel with each score
    search_trials=SEARCH_TRIALS,
    estimators=("random_forest", "xgboost"),
    # the vitals and their rolling means; the admission clock grows with every stay
    drift_features=(*VITALS, *(c for c in rolled_columns(WINDOW) if "_mean_" in c)),
    prediction_label="probability of sepsis (6 hours ahead of onset)",
    summary_metrics=(("roc_auc", "ROC AUC"), ("average_precision", "AUPRC"), ("f1", "F1")),
)


# Scoring as data lands (assets/vitals_stream.py): a score at or above HIGH_RISK (the
# F1-tuned model's decision threshold) alerts, at most once per patient per
# ALERT_EVERY_HOURS of reading time; replays are recognised within REPLAY_HORIZON_HOURS
# of a patient's newest reading.
HIGH_RISK = SEPSIS_TASK.threshold
ALERT_EVERY_HOURS = 6.0
REPLAY_HORIZON_HOURS = 24.0


def stream_settings(alert_threshold: float = HIGH_RISK, alert_every_hours: float = ALERT_EVERY_HOURS):
    """What the micro-batch scorer remembers per patient and when it alerts."""
    from ..ml.stream import StreamSettings
    from ..tables import load_tables

    return StreamSettings(
        entity=PATIENT, time=TIME, columns=tuple(load_tables()["vitals"].columns), keep_last=WINDOW - 1,
        horizon_hours=REPLAY_HORIZON_HOURS, alert_threshold=alert_threshold, alert_every_hours=alert_every_hours,
    )  # fmt: skip


def stream_scorer(pipeline, features: list[str]):
    """(new readings, the patients' earlier readings) -> the readings with their rolling
    features (the training function), ``probability`` of sepsis and the ``prediction``."""

    def score(fresh: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
        frame = rolling_features(fresh, window=WINDOW, history=history)
        probability = SEPSIS_TASK.predict(pipeline, frame[features])
        return frame.assign(probability=probability, prediction=(probability >= SEPSIS_TASK.threshold).astype("int64"))

    return score


def _extras() -> DomainExtras:
    from ..assets.vitals import VITALS_ASSETS, VITALS_SCORING_KEYS
    from ..assets.vitals_stream import BATCHES, SCORES_KEY, STREAM_ASSETS, build_stream_job, build_stream_sensor, raw_partitions

    stream_job = build_stream_job()
    return DomainExtras(assets=[*VITALS_ASSETS, *STREAM_ASSETS], scoring_keys=VITALS_SCORING_KEYS,
                        jobs=[stream_job], sensors=[build_stream_sensor(stream_job)],
                        streams=[StreamAsset(SCORES_KEY, BATCHES, raw_partitions)])  # fmt: skip


def latest_hour(lake) -> str | None:
    """The newest hour with live readings in ``vitals/live_current`` (None: none yet)."""
    from ..delta import read_current

    found = read_current(lake, "vitals", [TIME])
    if found is None:
        return None
    times = pd.to_datetime(found.column(TIME).to_pandas(), utc=True)
    if times.empty:
        return None
    hour = times.max().floor("h").strftime("%Y-%m-%d-%H:%M")
    return hour if VITALS_DOMAIN.scoring_cadence.partitions_def().has_partition_key(hour) else None


PLUGIN = DomainPlugin(domain=VITALS_DOMAIN, extras=_extras, latest_partition=latest_hour)
