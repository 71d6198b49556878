"""The sepsis model against the seed's plain baseline on the real PhysioNet 2019 slice.

    .venv/bin/python benchmarks/vitals_quality.py               # the domain's search budget, seed 42
    .venv/bin/python benchmarks/vitals_quality.py --trials 20 --seed 1

The data is the PhysioNet/CinC Challenge 2019 training set B, its first 1,500 patients
(57,631 hourly rows, 83 septic patients; ``../shared/data/real/physionet2019`` beside
the checkout). Each row is one patient-hour; ``ts`` is made from ``ICULOS`` (hours since
ICU admission) on a per-patient admission time, so the rows are ordered as the stream
would deliver them. Features are ``ml.vitals.rolling_features`` (the domain's window,
past readings only), the same function the scoring path runs.

The domain's model is trained exactly as ``vitals/sepsis_candidate`` trains it:
``train_model`` with the domain's task (binary ``SepsisLabel`` per hour, split **by
patient**: a random 20% of the patients held out, stratified; the search scored by F1
on 3 patient-grouped folds over RandomForest and XGBoost with the class imbalance in
their spaces). On the same held-out patients, measured in the same run:

- the seed's baseline: a plain ``RandomForestClassifier`` (100 trees, sklearn's
  defaults) on the seed's four features: HR min and mean over the last 2 readings, Temp
  mean over 2, HR / Resp;
- the prior (every hour scored at the training rate): AUROC 0.5 by construction.

Prints AUROC, AUPRC, F1, precision and recall of each on the held-out hours, and the
issue's targets, MET or NOT MET: AUROC >= 0.72 and >= the baseline's + 0.1. Exit 0 either
way; 2 when the data is missing. Wall times are this machine's (2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "real" / "physionet2019" / "training_setB_first1500.csv.gz"
AUROC_TARGET = 0.72
MARGIN = 0.1
BASELINE_FEATURES = ("HR_min_2", "HR_mean_2", "Temp_mean_2", "hr_resp_ratio")


def physionet_frame(path: Path = DATA):
    """The PhysioNet rows as the ``vitals_labelled`` table holds them: patient_id, ts, the
    vitals, Age, Gender, ICULOS, SepsisLabel (+ a row id)."""
    import pandas as pd

    from smartstream_assets.ml.vitals import STATIC, VITALS

    raw = pd.read_csv(path)
    patients = pd.factorize(raw["patient_id"])[0]
    # one admission time per patient (a day apart), then one row per ICU hour
    admitted = pd.Timestamp("2019-01-01T00:00:00Z") + pd.to_timedelta(patients, unit="D")
    ts = admitted + pd.to_timedelta(raw["ICULOS"].astype(int), unit="h")
    frame = raw[["patient_id", *VITALS, *STATIC, "ICULOS", "SepsisLabel"]].copy()
    frame.insert(1, "ts", pd.Series(ts).dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy())
    frame.insert(0, "reading_id", frame["patient_id"] + "@" + frame["ts"])
    return frame


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=None, help="Optuna trials (default: the domain's budget)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the patient split and the search (the asset's: 42)")
    args = parser.parse_args(argv)
    if not DATA.is_file():
        print(f"the PhysioNet 2019 slice is missing: expected {DATA}", file=sys.stderr)
        return 2

    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from smartstream_assets.domains.vitals import SEARCH_TRIALS, SEPSIS_TASK, WINDOW
    from smartstream_assets.ml.training import SearchSettings, train_model
    from smartstream_assets.ml.vitals import feature_columns, rolling_features

    started = time.perf_counter()
    frame = physionet_frame()
    features = rolling_features(frame, window=WINDOW)
    seed_features = rolling_features(frame, window=2)[list(BASELINE_FEATURES[:3])]
    features = features.join(seed_features)
    prep = time.perf_counter() - started
    septic = frame.groupby("patient_id")["SepsisLabel"].max()
    print(f"{DATA.name}: {len(frame)} hours of {frame['patient_id'].nunique()} patients ({int(septic.sum())} septic; "
          f"{frame['SepsisLabel'].mean():.2%} of hours labelled 1); features (window {WINDOW}) in {prep:.1f}s", flush=True)

    task = SEPSIS_TASK
    trials = args.trials or SEARCH_TRIALS
    settings = SearchSettings(trials=trials, estimators=("random_forest", "xgboost"), seed=args.seed)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    candidate = train_model(
        features, task=task, id_column="reading_id", numeric=feature_columns(WINDOW), categorical=[],
        settings=settings, keep_columns=BASELINE_FEATURES[:3],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    train, holdout = candidate.train, candidate.holdout
    shared = set(train["patient_id"]) & set(holdout["patient_id"])
    print(f"split (seed {args.seed}): {len(train)} hours of {train['patient_id'].nunique()} patients to train on, "
          f"{len(holdout)} hours of {holdout['patient_id'].nunique()} patients held out "
          f"({int(holdout.groupby('patient_id')['SepsisLabel'].max().sum())} septic); patients on both sides: {len(shared)}")
    print(f"search: {trials} trials, {seconds:.1f}s with the final fit (load {max(load, os.getloadavg()[0]):.1f}); "
          f"best CV F1 {candidate.cv_score:.3f}; chosen {candidate.estimator} {candidate.params}", flush=True)

    y_train, y_test = train["SepsisLabel"].to_numpy(int), holdout["SepsisLabel"].to_numpy(int)
    results = {"model": candidate.metrics}
    started = time.perf_counter()
    baseline = RandomForestClassifier(n_estimators=100, random_state=args.seed, n_jobs=2)
    baseline.fit(train[list(BASELINE_FEATURES)], y_train)
    results["baseline"] = task.metrics(y_test, baseline.predict_proba(holdout[list(BASELINE_FEATURES)])[:, 1])
    print(f"baseline RandomForest on {', '.join(BASELINE_FEATURES)}: {time.perf_counter() - started:.1f}s")
    results["prior"] = task.metrics(y_test, np.full(len(y_test), y_train.mean()))

    labels = {
        "model": f"domain model ({candidate.estimator}, {len(feature_columns(WINDOW))} features, window {WINDOW})",
        "baseline": "seed's baseline: RandomForest on its 4 features",
        "prior": "prior (training rate)",
    }
    print()
    print(f"Held out: {len(holdout)} hours of {holdout['patient_id'].nunique()} patients never seen by the search or any fit.")
    print()
    print("| model | AUROC | AUPRC | F1 | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, m in results.items():
        print(f"| {labels[key]} | {m['roc_auc']:.3f} | {m['average_precision']:.3f} | {m['f1']:.3f} | {m['precision']:.3f} | {m['recall']:.3f} |")
    auroc, base = results["model"]["roc_auc"], results["baseline"]["roc_auc"]
    print()
    print("Targets:")
    print(f"  AUROC >= {AUROC_TARGET}: {'MET' if auroc >= AUROC_TARGET else 'NOT MET'} ({auroc:.3f})")
    print(f"  AUROC >= baseline + {MARGIN}: {'MET' if auroc >= base + MARGIN else 'NOT MET'} ({auroc:.3f} vs {base:.3f} + {MARGIN})")
    importance = list(candidate.feature_importance.items())[:8]
    print("  top features: " + ", ".join(f"{k} {v:.3f}" for k, v in importance))
    return 0


if __name__ == "__main__":
    sys.exit(main())
