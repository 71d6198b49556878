"""Train a candidate: hyperparameter search, refit, holdout evaluation. Pure: no MLflow
and no Dagster here (``registry.py`` logs what this returns; the assets wire it).

Optuna runs the search (TPE by default; random search and Hyperband pruning are
options) over RandomForest and XGBoost, each inside a Pipeline with the shared
preprocessing (``features.build_preprocessor``), scored by stratified k-fold ROC AUC
on the training split. The best configuration is refitted on the whole training
split and evaluated once on the holdout, which the promotion gate reuses to compare
against the champion.

Exact duplicate rows (the same features AND the same label) are kept together: the
holdout split and every cross-validation fold are grouped by a hash of the full row
(``row_groups``), so a row is never trained on and then scored again as its own copy
(the real Employee.csv has 1,889 such copies among 4,653 rows; split row by row,
476 of its 931 holdout rows were copies of training rows, which inflated the metrics).
See ``grouped_holdout_split`` and ``grouped_folds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ESTIMATORS = ("random_forest", "xgboost")
SAMPLERS = ("tpe", "random")
PRUNERS = ("none", "hyperband")


@dataclass(frozen=True)
class SearchSettings:
    trials: int = 10
    estimators: tuple[str, ...] = ESTIMATORS
    sampler: str = "tpe"
    pruner: str = "none"
    folds: int = 3
    test_size: float = 0.2
    seed: int = 42
    timeout_seconds: float | None = None
    n_jobs: int = 2  # the machines have 2 cores

    def __post_init__(self):
        if self.trials < 1:
            raise ValueError("trials must be >= 1")
        unknown = set(self.estimators) - set(ESTIMATORS)
        if unknown or not self.estimators:
            raise ValueError(f"estimators must be some of {', '.join(ESTIMATORS)} (got {sorted(unknown) or 'none'})")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)} (got {self.sampler!r})")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner must be one of {', '.join(PRUNERS)} (got {self.pruner!r})")
        if not 0.05 <= self.test_size <= 0.5:
            raise ValueError("test_size must be between 0.05 and 0.5")


@dataclass
class Trial:
    number: int
    estimator: str
    params: dict
    cv_roc_auc: float | None  # None when pruned or failed
    state: str


@dataclass
class Candidate:
    """A fitted pipeline (preprocessing + model) and everything measured about it."""

    pipeline: object  # sklearn Pipeline
    estimator: str
    params: dict
    cv_roc_auc: float
    metrics: dict[str, float]  # on the holdout
    classification_report: dict
    trials: list[Trial]
    train: pd.DataFrame  # id, features, label of the training split
    holdout: pd.DataFrame  # id, features, label of the holdout
    holdout_proba: np.ndarray
    feature_importance: dict[str, float] = field(default_factory=dict)
    # copies of holdout rows left out of ``holdout`` (it holds unique rows only)
    holdout_duplicates_dropped: int = 0
    # rows of the labelled data that are an exact copy of an earlier row (all grouped)
    duplicates_grouped: int = 0

    @property
    def holdout_pred(self) -> np.ndarray:
        return (self.holdout_proba >= 0.5).astype(int)


def train_classifier(
    frame: pd.DataFrame,
    *,
    id_column: str,
    target: str,
    numeric: list[str],
    categorical: list[str],
    settings: SearchSettings = SearchSettings(),
) -> Candidate:
    """Search, refit and evaluate a binary classifier of ``target`` on ``frame``.

    Rows without a label are left out. Exact duplicate rows (features and label) stay
    on one side of the holdout split and of every CV fold (``grouped_holdout_split``,
    ``grouped_folds``). The holdout is then reduced to its unique rows before it is
    scored, and ``Candidate.holdout`` / ``holdout_proba`` / ``metrics`` are those
    unique rows: a group of copies is one observation, and scoring it n times would
    weight a few repeated profiles n-fold (in Employee.csv up to 32 copies of one row)
    and let them dominate accuracy and F1. The gate scores the champion on this same
    frame, so both are compared on unique rows. Validation folds of the search are
    scored on their unique rows too, so the CV ROC AUC estimates the same thing.
    Training keeps every row (copies weight the fit as the data does).

    Raises ``ValueError`` when there is too little data to split and cross-validate
    (with the counts in the message).
    """
    import optuna

    data = frame.dropna(subset=[target]).reset_index(drop=True)
    y = data[target].astype(int).to_numpy()
    features = list(categorical) + list(numeric)
    groups = row_groups(data, [*features, target])
    classes, counts = np.unique(y, return_counts=True)
    unique_counts = [int(np.unique(groups[y == c]).size) for c in classes]
    n_splits = holdout_splits(settings.test_size)
    if len(classes) != 2 or min(unique_counts) < max(2 * settings.folds, n_splits):
        raise ValueError(
            f"cannot train on {len(data)} labelled rows: need both classes with at least "
            f"{max(2 * settings.folds, n_splits)} unique rows each (have "
            f"{dict(zip(classes.tolist(), counts.tolist()))} rows, "
            f"{dict(zip(classes.tolist(), unique_counts))} unique)"
        )
    train_idx, holdout_idx = grouped_holdout_split(y, groups, settings.test_size, settings.seed)
    train, holdout = data.iloc[train_idx], data.iloc[holdout_idx]
    X, y_train, groups_train = train[features], y[train_idx], groups[train_idx]
    folds = [
        (fit_idx, first_of_each_group(val_idx, groups_train))  # validation scored on unique rows
        for fit_idx, val_idx in grouped_folds(y_train, groups_train, settings.folds, settings.seed)
    ]
    scored = {"the holdout": y[holdout_idx], **{f"CV fold {i + 1}": y_train[val] for i, (_, val) in enumerate(folds)}}
    one_class = [name for name, labels in scored.items() if np.unique(labels).size != 2]
    if one_class:
        raise ValueError(
            f"cannot train on {len(data)} labelled rows: {', '.join(one_class)} would hold one class only once exact "
            f"duplicates are grouped ({dict(zip(classes.tolist(), unique_counts))} unique rows by class)"
        )

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("estimator", list(settings.estimators))
        params = _suggest(trial, name)
        scores = []
        for step, (fit_idx, val_idx) in enumerate(folds):
            model = make_pipeline(name, params, numeric, categorical, settings.seed, settings.n_jobs)
            model.fit(X.iloc[fit_idx], y_train[fit_idx])
            scores.append(_roc_auc(y_train[val_idx], model.predict_proba(X.iloc[val_idx])[:, 1]))
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=_sampler(settings),
        pruner=_pruner(settings),
        # Hyperband picks a trial's bracket from a hash of the study name; Optuna's
        # default name is random, which would make pruning (and results) vary per run.
        study_name=f"smartstream-search-{settings.seed}",
    )
    study.optimize(objective, n_trials=settings.trials, timeout=settings.timeout_seconds)
    trials = [
        Trial(t.number, t.params.get("estimator", "?"), _strip(t.params), t.value, t.state.name)
        for t in study.trials
    ]
    best = study.best_trial
    name, params = best.params["estimator"], _strip(best.params)

    pipeline = make_pipeline(name, params, numeric, categorical, settings.seed, settings.n_jobs)
    pipeline.fit(X, y_train)
    unique_holdout = holdout.iloc[first_of_each_group(np.arange(len(holdout)), groups[holdout_idx])]
    dropped = len(holdout) - len(unique_holdout)
    holdout = unique_holdout
    proba = pipeline.predict_proba(holdout[features])[:, 1]
    y_holdout = holdout[target].astype(int).to_numpy()
    metrics, report = classification_metrics(y_holdout, proba)
    columns = [id_column, *features, target]
    return Candidate(
        pipeline=pipeline,
        estimator=name,
        params=params,
        cv_roc_auc=float(best.value),
        metrics=metrics,
        classification_report=report,
        trials=trials,
        train=train[columns].reset_index(drop=True),
        holdout=holdout[columns].reset_index(drop=True),
        holdout_proba=proba,
        feature_importance=feature_importance(pipeline),
        holdout_duplicates_dropped=dropped,
        duplicates_grouped=int(len(groups) - np.unique(groups).size),
    )


def row_groups(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """A group id per row: equal ids for rows equal on every one of ``columns``.

    Pass the features AND the label: copies with different labels are different
    observations (and different groups). The id is a 64-bit hash of the row
    (``pandas.util.hash_pandas_object``, NaN hashes equal to NaN), numbered in
    order of first appearance; a hash collision would only put two different rows
    in one group (kept on one side together), never split a group.
    """
    hashes = pd.util.hash_pandas_object(frame[list(columns)], index=False).to_numpy()
    return pd.factorize(hashes)[0]


def holdout_splits(test_size: float) -> int:
    """Folds of the grouped holdout split: the holdout is one of ``round(1 / test_size)``."""
    return max(2, round(1 / test_size))


def grouped_holdout_split(y, groups, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) positions: stratified by ``y``, each group wholly on one side.

    ``StratifiedGroupKFold(n_splits=round(1 / test_size), shuffle=True,
    random_state=seed)``, its first fold taken as the holdout. The holdout share is
    therefore about 1 / n_splits (0.2 for the default 0.2, 0.333 for 0.3), give or
    take the last groups placed; its class shares follow the data's within about
    one group's rows (sklearn places groups largest-imbalance first, then balances
    the class counts of the folds). Deterministic for a seed.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    splitter = StratifiedGroupKFold(holdout_splits(test_size), shuffle=True, random_state=seed)
    train_idx, holdout_idx = next(splitter.split(np.zeros(len(y)), y, groups))
    return np.sort(train_idx), np.sort(holdout_idx)


def grouped_folds(y, groups, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The search's CV folds: ``StratifiedGroupKFold(folds, shuffle=True, random_state=seed)``."""
    from sklearn.model_selection import StratifiedGroupKFold

    y, groups = np.asarray(y), np.asarray(groups)
    return list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def first_of_each_group(positions, groups) -> np.ndarray:
    """``positions`` (into ``groups``) reduced to the first one of each group, in order."""
    positions = np.asarray(positions)
    _, first = np.unique(np.asarray(groups)[positions], return_index=True)
    return positions[np.sort(first)]


def make_pipeline(name: str, params: dict, numeric, categorical, seed: int = 42, n_jobs: int = 2):
    """The shared preprocessing and one estimator, as one sklearn Pipeline."""
    from sklearn.pipeline import Pipeline

    from .features import build_preprocessor

    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **params)
    elif name == "xgboost":
        from xgboost import XGBClassifier

        model = XGBClassifier(random_state=seed, n_jobs=n_jobs, eval_metric="logloss", tree_method="hist", **params)
    else:
        raise ValueError(f"unknown estimator {name!r}")
    return Pipeline([("preprocess", build_preprocessor(list(numeric), list(categorical))), ("model", model)])


def classification_metrics(y_true, proba, threshold: float = 0.5) -> tuple[dict[str, float], dict]:
    """Accuracy, precision, recall, F1 and ROC AUC, and sklearn's classification report."""
    from sklearn.metrics import accuracy_score, classification_report, f1_score, precision_score, recall_score

    pred = (np.asarray(proba) >= threshold).astype(int)
    metrics = {
        "accuracy": float(accuracy_score(y_true, pred)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "roc_auc": _roc_auc(y_true, proba),
    }
    return metrics, classification_report(y_true, pred, output_dict=True, zero_division=0)


def feature_importance(pipeline) -> dict[str, float]:
    """Importance per input column (the preprocessing maps columns one to one)."""
    model = pipeline.named_steps["model"]
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    values = getattr(model, "feature_importances_", None)
    if values is None:
        return {}
    return dict(sorted(zip(map(str, names), map(float, values)), key=lambda kv: -kv[1]))


def _roc_auc(y_true, proba) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, proba))


def _suggest(trial, name: str) -> dict:
    if name == "random_forest":
        return {
            "n_estimators": trial.suggest_int("rf_n_estimators", 50, 300, step=50),
            "max_depth": trial.suggest_int("rf_max_depth", 4, 20),
            "min_samples_leaf": trial.suggest_int("rf_min_samples_leaf", 1, 10),
            "max_features": trial.suggest_categorical("rf_max_features", ["sqrt", "log2", 0.6]),
            "class_weight": trial.suggest_categorical("rf_class_weight", [None, "balanced"]),
        }
    return {
        "n_estimators": trial.suggest_int("xgb_n_estimators", 50, 400, step=50),
        "max_depth": trial.suggest_int("xgb_max_depth", 2, 8),
        "learning_rate": trial.suggest_float("xgb_learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("xgb_subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("xgb_colsample_bytree", 0.6, 1.0),
        "min_child_weight": trial.suggest_float("xgb_min_child_weight", 1.0, 10.0, log=True),
        # weight on the minority class: F1 at a 0.5 threshold needs recall
        "scale_pos_weight": trial.suggest_float("xgb_scale_pos_weight", 1.0, 3.0),
    }


def _strip(params: dict) -> dict:
    """Trial parameters without the estimator choice and the rf_/xgb_ namespace."""
    return {k.split("_", 1)[1]: v for k, v in params.items() if k != "estimator"}


def _sampler(settings: SearchSettings):
    import optuna

    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed)


def _pruner(settings: SearchSettings):
    import optuna

    if settings.pruner == "hyperband":
        # resource = cross-validation folds: a trial whose first folds score low stops early
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=settings.folds)
    return optuna.pruners.NopPruner()
