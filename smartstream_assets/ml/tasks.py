"""Task kinds: what differs between a binary classifier, a regressor and a multi-output
regressor, in one object the domain chooses. Pure (numpy, pandas, sklearn, xgboost).

A task says
- which rows it learns from and its label array (``labelled``, ``y``);
- how to split (``split``: ``RandomSplit``, stratified for classes and grouped by exact
  duplicate rows; or ``TimeSplit``, time-ordered with a validation window for the
  search and an optional refit on train + validation);
- the estimators and their Optuna search spaces (RandomForest and XGBoost for every
  kind; both fit several outputs natively: sklearn's forests take a 2-D ``y``, and
  XGBoost 2+ builds one tree per output with ``multi_strategy="one_output_per_tree"``),
  and the search objective with its direction;
- the metrics (classification: accuracy, precision, recall, F1, ROC AUC; regression:
  R², MSE, RMSE, MAE, per output and averaged for several outputs) and which way each
  is better (``direction``);
- the prediction columns it writes (``probability``/``predicted_class``; ``prediction``;
  ``prediction_<output>``), the ones drift compares, and the pyfunc method served
  (``predict_proba`` / ``predict``).

Baselines (``PlainModel``, ``ColumnForecast``) are what a candidate must beat: a
domain declares them, training measures them on the same holdout, and the quality
bar may require the candidate to beat one by a ratio.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

MAX, MIN = "max", "min"

# How the metric names read in reasons and tables.
DISPLAY = {
    "roc_auc": "ROC AUC", "average_precision": "AUPRC", "f1": "F1", "accuracy": "accuracy", "precision": "precision", "recall": "recall",
    "r2": "R²", "mse": "MSE", "rmse": "RMSE", "mae": "MAE",
}  # fmt: skip

CLASSIFICATION_DIRECTIONS = {"accuracy": MAX, "precision": MAX, "recall": MAX, "f1": MAX, "roc_auc": MAX, "average_precision": MAX}
REGRESSION_DIRECTIONS = {"r2": MAX, "mse": MIN, "rmse": MIN, "mae": MIN}


def display(metric: str) -> str:
    """``roc_auc`` → ``ROC AUC``; ``rmse_engagement`` → ``RMSE (engagement)``."""
    if metric in DISPLAY:
        return DISPLAY[metric]
    base, _, output = metric.partition("_")
    return f"{DISPLAY.get(base, base)} ({output})" if output and base in DISPLAY else metric


# ------------------------------------------------------------------------ splits


@dataclass(frozen=True)
class RandomSplit:
    """A random holdout (``SearchSettings.test_size``) and k search folds, stratified by
    class for classification; exact duplicate rows are kept on one side (grouped)."""

    kind: ClassVar[str] = "random"


@dataclass(frozen=True)
class GroupSplit:
    """A random holdout and k search folds as ``RandomSplit``, with every row of one value
    of ``column`` on one side (a patient's hours: a model scored on hours of patients it
    was trained on reads better than it will on the next patient). Stratified by class
    for classification (sklearn's ``StratifiedGroupKFold``); exact duplicate rows are
    still scored once."""

    column: str
    kind: ClassVar[str] = "group"

    def __post_init__(self):
        if not self.column:
            raise ValueError("GroupSplit needs the column whose values stay on one side")


@dataclass(frozen=True)
class TimeSplit:
    """Time-ordered: the last ``holdout`` of the distinct times of ``time_column`` is the
    holdout, the ``validation`` before it the window the search is scored on, the rest
    the training window. An int is a count of distinct times (e.g. 104 weeks), a float a
    share. ``refit_on_validation``: the final model is fitted on train + validation (the
    search only chose its parameters); otherwise on the training window alone. No row
    of a later time is ever in an earlier window."""

    time_column: str
    holdout: int | float = 0.2
    validation: int | float = 0.2
    refit_on_validation: bool = True
    kind: ClassVar[str] = "time"

    def __post_init__(self):
        for name in ("holdout", "validation"):
            value = getattr(self, name)
            if isinstance(value, float) and not 0 < value < 1 or isinstance(value, int) and value < 1:
                raise ValueError(f"TimeSplit.{name} must be a share in (0, 1) or a count >= 1 (got {value!r})")


# ------------------------------------------------------------------------ baselines


@dataclass(frozen=True)
class PlainModel:
    """A plain model fitted on the training rows with the same preprocessing: ``mean``
    (regression: the mean of the training labels), ``prior`` (classification: the class
    shares) or ``random_forest`` (sklearn's defaults, no search)."""

    name: str
    estimator: str = "mean"


@dataclass(frozen=True)
class ColumnForecast:
    """A forecast read from columns of the frame, one per target: persistence (the last
    value, e.g. a ``lag_1`` feature), seasonal naive (``lag_52``)."""

    name: str
    columns: tuple[str, ...]


# ------------------------------------------------------------------------ inputs


@dataclass(frozen=True)
class Embeddings:
    """Numeric columns that are one vector (a sentence embedding's 384 dimensions): the
    preprocessing projects them on their first ``components`` principal components
    (PCA, fitted in the pipeline) before the model sees them. Trees split on one column
    at a time; a few hundred correlated dimensions cost search time without adding
    signal (SemEval restaurants: XGBoost on 128 components + text counts reaches the
    R² of the full 384 in a fifth of the time)."""

    columns: tuple[str, ...]
    components: int = 128
    # the vector is the encoder's of a text column, fine-tuned on the targets per candidate
    fine_tune: FineTune | None = None

    def __post_init__(self):
        if not self.columns or self.components < 1:
            raise ValueError(f"Embeddings needs columns and components >= 1 (got {len(self.columns)} columns, {self.components})")


@dataclass(frozen=True)
class FineTune:
    """The embedding columns are the sentence encoder's vectors of ``text_column``, and the
    encoder is fine-tuned per candidate: a fresh copy of it and a linear head of the
    task's targets, trained together (AdamW at ``encoder_lr`` / ``head_lr``, batches of
    ``batch_size``, mean squared error) for ``epochs`` on at most ``max_rows`` of the rows
    the final model is fitted on (None: all), once, before the search
    (``ml.fine_tune.TunedEncoder``). The tuned encoder ships with the model and every
    scoring path encodes with it. On SemEval restaurants, three holdouts: sentiment R²
    0.380 / 0.458 / 0.448 frozen -> 0.485 / 0.551 / 0.573 tuned
    (``benchmarks/reviews_quality.py``); 65-90 s an epoch for 2,433 sentences on 2 cores."""

    text_column: str = "text"
    epochs: int = 2
    max_rows: int | None = None
    batch_size: int = 16
    encoder_lr: float = 3e-5
    head_lr: float = 1e-3

    def __post_init__(self):
        if not self.text_column or self.epochs < 0 or self.batch_size < 1 or (self.max_rows is not None and self.max_rows < 1):
            raise ValueError(f"FineTune needs a text column, epochs >= 0, batch_size >= 1 and max_rows >= 1 or None (got {self!r})")
        if self.encoder_lr <= 0 or self.head_lr <= 0:
            raise ValueError(f"FineTune learning rates must be > 0 (got {self.encoder_lr}, {self.head_lr})")

    @property
    def enabled(self) -> bool:
        return self.epochs > 0


@dataclass(frozen=True)
class TextScores:
    """A text column read by the model through lexical scores: TF-IDF word 1..``ngram_max``
    -grams (terms in at least ``min_df`` texts) and a ridge regression (``alpha``) of the
    task's targets, whose predictions are the model's input columns ``text_<target>``;
    cross-fitted over ``folds`` on the rows the model is fitted on
    (``ml.text_scores.CrossFittedTextScores``). The embedding says what a text is about,
    the words how it feels: on SemEval restaurants they add 0.085-0.093 to sentiment R²
    and 0.13-0.17 to engagement over three splits (``benchmarks/reviews_quality.py``)."""

    column: str
    ngram_max: int = 2
    min_df: int = 2
    alpha: float = 1.0
    folds: int = 5

    def __post_init__(self):
        if not self.column or self.ngram_max < 1 or self.min_df < 1 or self.alpha <= 0 or self.folds < 2:
            raise ValueError(
                f"TextScores needs a column, ngram_max >= 1, min_df >= 1, alpha > 0 and folds >= 2 (got {self!r})"
            )


# ------------------------------------------------------------------------ tasks


@dataclass(frozen=True)
class _Task:
    objective: str = ""
    split: RandomSplit | GroupSplit | TimeSplit = field(default_factory=RandomSplit)
    baselines: tuple = ()
    embeddings: Embeddings | None = None  # numeric columns reduced together (PCA) before the model
    text_scores: TextScores | None = None  # a text column read through cross-fitted TF-IDF + ridge scores

    kind: ClassVar[str] = ""
    pyfunc_method: ClassVar[str] = "predict"
    directions: ClassVar[dict[str, str]] = {}

    # --- what the task learns from
    @property
    def targets(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def primary_metric(self) -> str:
        """Compared with the champion, and the search's objective."""
        return self.objective

    def direction(self, metric: str) -> str:
        if metric in self.directions:
            return self.directions[metric]
        base = metric.split("_", 1)[0]
        if base in self.directions:
            return self.directions[base]
        raise KeyError(f"{self.kind} task has no metric {metric!r} (it has {', '.join(self.directions)})")

    @property
    def text_columns(self) -> list[str]:
        """Input columns of raw text (besides the domain's numeric and categorical ones)."""
        columns = [self.text_scores.column] if self.text_scores is not None else []
        tune = self.fine_tune
        if tune is not None and tune.text_column not in columns:
            columns.append(tune.text_column)
        return columns

    @property
    def fine_tune(self) -> FineTune | None:
        """The encoder fine-tuning of the task's embedding (None: a frozen encoder, or none)."""
        tune = self.embeddings.fine_tune if self.embeddings is not None else None
        return tune if tune is not None and tune.enabled else None

    def with_fine_tune(self, epochs: int | None = None, max_rows: int | None = None):
        """This task with the fine-tuning's ``epochs`` (0: the frozen encoder) and
        ``max_rows`` replaced (None: kept). Raises ``ValueError`` when the task has none."""
        tune = self.embeddings.fine_tune if self.embeddings is not None else None
        if epochs is None and max_rows is None:
            return self
        if tune is None:
            raise ValueError(f"this {self.kind} task fine-tunes no encoder: epochs and rows cannot be set")
        changes = {k: v for k, v in (("epochs", epochs), ("max_rows", max_rows)) if v is not None}
        return dataclasses.replace(self, embeddings=dataclasses.replace(self.embeddings, fine_tune=dataclasses.replace(tune, **changes)))

    def representation(self, X: pd.DataFrame, y, seed: int) -> list[tuple[str, object]]:
        """Pipeline steps fitted once, before the search, on the rows the final model is
        fitted on, and frozen (sklearn's ``FrozenEstimator``: the search's fits reuse
        them): the tuned encoder when the task fine-tunes one, else none."""
        tune = self.fine_tune
        if tune is None:
            return []
        from sklearn.frozen import FrozenEstimator

        from .fine_tune import TunedEncoder

        step = TunedEncoder(
            text_column=tune.text_column, columns=tuple(self.embeddings.columns), epochs=tune.epochs,
            max_rows=tune.max_rows, batch_size=tune.batch_size, encoder_lr=tune.encoder_lr, head_lr=tune.head_lr, seed=seed,
        )  # fmt: skip
        return [("encoder", FrozenEstimator(step.fit(X, y)))]

    @property
    def extra_columns(self) -> list[str]:
        """Columns besides id, features and labels a holdout keeps: the time column of a time
        split, and the columns a baseline forecasts from."""
        extra = [self.split.time_column] if isinstance(self.split, TimeSplit) else []
        extra += [self.split.column] if isinstance(self.split, GroupSplit) else []
        for baseline in self.baselines:
            if isinstance(baseline, ColumnForecast):
                extra += list(baseline.columns)
        return extra

    def labelled(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows with every target present (the others are scored, never trained on)."""
        return frame.dropna(subset=list(self.targets)).reset_index(drop=True)

    def y(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def stratify(self, y: np.ndarray) -> np.ndarray | None:
        """What the random split stratifies by (None: not stratified)."""
        return None

    def check_trainable(self, y: np.ndarray, groups: np.ndarray, needed: int) -> None:
        unique = int(np.unique(groups).size)
        if unique < needed:
            raise ValueError(f"cannot train on {len(y)} labelled rows: need at least {needed} unique rows (have {unique})")

    # --- models
    def estimator(self, name: str, params: dict, seed: int, n_jobs: int):
        raise NotImplementedError

    def suggest(self, trial, name: str) -> dict:
        raise NotImplementedError

    def baseline_estimator(self, name: str, seed: int, n_jobs: int):
        raise NotImplementedError

    def wrap(self, pipeline):
        """The fitted object the task trains and serves, around preprocessing + model."""
        return pipeline

    # --- predictions and metrics
    def predict(self, model, X: pd.DataFrame) -> np.ndarray:
        """What the metrics take: the positive class's probability, or the predicted value(s)."""
        out = np.asarray(model.predict(X), dtype=np.float64)
        return out.reshape(len(X), -1) if len(self.targets) > 1 else out.reshape(-1)

    def metrics(self, y_true, raw) -> dict[str, float]:
        raise NotImplementedError

    def report(self, y_true, raw) -> dict:
        """A detailed report for the run's artifacts (classification report, per-output errors)."""
        return {}

    @property
    def prediction_columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def drift_columns(self) -> tuple[str, ...]:
        """The prediction columns drift compares with the reference's."""
        return self.prediction_columns

    def prediction_frame(self, raw) -> pd.DataFrame:
        raw = np.asarray(raw, dtype=np.float64)
        if raw.ndim == 1:
            raw = raw.reshape(-1, 1)
        return pd.DataFrame(raw, columns=list(self.prediction_columns))

    def describe(self) -> dict:
        """What evaluation.json says about the task."""
        out = {"kind": self.kind, "targets": list(self.targets), "objective": self.objective, "split": self.split.kind}
        if isinstance(self.split, TimeSplit):
            out["time_split"] = {
                "time_column": self.split.time_column, "holdout": self.split.holdout,
                "validation": self.split.validation, "refit_on_validation": self.split.refit_on_validation,
            }  # fmt: skip
        if isinstance(self.split, GroupSplit):
            out["group_split"] = {"column": self.split.column}
        return out


@dataclass(frozen=True)
class BinaryClassification(_Task):
    """Two classes 0/1 of ``target``; scored as the probability of 1 and the class at
    ``threshold``; the search maximises ROC AUC unless ``objective`` says otherwise."""

    target: str = ""
    objective: str = "roc_auc"
    threshold: float = 0.5
    # XGBoost's scale_pos_weight is searched in [1, max_pos_weight]: about negatives /
    # positives for a rare class (sepsis hours: ~50), 3 for a mild imbalance (attrition)
    max_pos_weight: float = 3.0

    kind: ClassVar[str] = "binary"
    pyfunc_method: ClassVar[str] = "predict_proba"
    directions: ClassVar[dict[str, str]] = CLASSIFICATION_DIRECTIONS

    def __post_init__(self):
        _check_task(self)
        if not self.max_pos_weight >= 1.0:
            raise ValueError(f"max_pos_weight must be >= 1 (got {self.max_pos_weight})")

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.target,)

    def y(self, frame):
        return frame[self.target].astype(int).to_numpy()

    def stratify(self, y):
        return y

    def check_trainable(self, y, groups, needed):
        classes, counts = np.unique(y, return_counts=True)
        unique_counts = [int(np.unique(groups[y == c]).size) for c in classes]
        if len(classes) != 2 or min(unique_counts) < needed:
            raise ValueError(
                f"cannot train on {len(y)} labelled rows: need both classes with at least "
                f"{needed} unique rows each (have {dict(zip(classes.tolist(), counts.tolist()))} rows, "
                f"{dict(zip(classes.tolist(), unique_counts))} unique)"
            )

    def estimator(self, name, params, seed, n_jobs):
        if name == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(random_state=seed, n_jobs=n_jobs, **params)
        if name == "xgboost":
            from xgboost import XGBClassifier

            return XGBClassifier(random_state=seed, n_jobs=n_jobs, eval_metric="logloss", tree_method="hist", **params)
        raise ValueError(f"unknown estimator {name!r}")

    def suggest(self, trial, name):
        if name == "random_forest":
            return {**_forest_space(trial), "class_weight": trial.suggest_categorical("rf_class_weight", [None, "balanced"])}
        # weight on the minority class: F1 at a 0.5 threshold needs recall
        return {**_xgb_space(trial), "scale_pos_weight": trial.suggest_float("xgb_scale_pos_weight", 1.0, self.max_pos_weight, log=self.max_pos_weight > 10)}

    def baseline_estimator(self, name, seed, n_jobs):
        if name == "prior":
            from sklearn.dummy import DummyClassifier

            return DummyClassifier(strategy="prior")
        if name == "random_forest":
            from sklearn.ensemble import RandomForestClassifier

            return RandomForestClassifier(random_state=seed, n_jobs=n_jobs)
        raise ValueError(f"binary tasks have baselines prior and random_forest (got {name!r})")

    def predict(self, model, X):
        return np.asarray(model.predict_proba(X), dtype=np.float64)[:, 1]

    def metrics(self, y_true, raw):
        from sklearn.metrics import accuracy_score, average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

        y_true = np.asarray(y_true).astype(int)
        pred = (np.asarray(raw) >= self.threshold).astype(int)
        return {
            "accuracy": float(accuracy_score(y_true, pred)),
            "precision": float(precision_score(y_true, pred, zero_division=0)),
            "recall": float(recall_score(y_true, pred, zero_division=0)),
            "f1": float(f1_score(y_true, pred, zero_division=0)),
            "roc_auc": float(roc_auc_score(y_true, raw)) if np.unique(y_true).size == 2 else float("nan"),
            # the area under the precision-recall curve: what a rare positive class needs besides ROC AUC
            "average_precision": float(average_precision_score(y_true, raw)) if np.unique(y_true).size == 2 else float("nan"),
        }

    def report(self, y_true, raw):
        from sklearn.metrics import classification_report

        pred = (np.asarray(raw) >= self.threshold).astype(int)
        return classification_report(np.asarray(y_true).astype(int), pred, output_dict=True, zero_division=0)

    @property
    def prediction_columns(self):
        return ("probability", "predicted_class")

    @property
    def drift_columns(self):
        return ("probability",)

    def prediction_frame(self, raw):
        raw = np.asarray(raw, dtype=np.float64)
        return pd.DataFrame({"probability": raw, "predicted_class": (raw >= self.threshold).astype(np.int64)})


@dataclass(frozen=True)
class Regression(_Task):
    """One numeric ``target``; the search minimises RMSE unless ``objective`` says otherwise.

    ``anchor``: a feature column (the latest reading) the model predicts the change from;
    the fitted model still answers levels (``estimators.AnchoredRegressor``). Use it for a
    trending series: trees cannot extrapolate a level beyond what they saw."""

    target: str = ""
    objective: str = "rmse"
    anchor: str | None = None

    kind: ClassVar[str] = "regression"
    directions: ClassVar[dict[str, str]] = REGRESSION_DIRECTIONS

    def __post_init__(self):
        _check_task(self)

    @property
    def targets(self):
        return (self.target,)

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.targets

    def y(self, frame):
        if len(self.targets) == 1:
            return frame[self.targets[0]].to_numpy(dtype=np.float64)
        return frame[list(self.targets)].to_numpy(dtype=np.float64)

    def estimator(self, name, params, seed, n_jobs):
        if name == "random_forest":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(random_state=seed, n_jobs=n_jobs, **params)
        if name == "xgboost":
            from xgboost import XGBRegressor

            # several outputs: one tree per output and round (XGBoost's native multi-output)
            return XGBRegressor(random_state=seed, n_jobs=n_jobs, tree_method="hist", **params)
        raise ValueError(f"unknown estimator {name!r}")

    def suggest(self, trial, name):
        return _forest_space(trial) if name == "random_forest" else _xgb_space(trial)

    def wrap(self, pipeline):
        if not self.anchor:
            return pipeline
        from .estimators import AnchoredRegressor

        return AnchoredRegressor(regressor=pipeline, anchor=self.anchor)

    def describe(self) -> dict:
        return {**super().describe(), **({"anchor": self.anchor} if self.anchor else {})}

    def baseline_estimator(self, name, seed, n_jobs):
        if name == "mean":
            from sklearn.dummy import DummyRegressor

            return DummyRegressor(strategy="mean")
        if name == "random_forest":
            from sklearn.ensemble import RandomForestRegressor

            return RandomForestRegressor(random_state=seed, n_jobs=n_jobs)
        raise ValueError(f"regression tasks have baselines mean and random_forest (got {name!r})")

    def metrics(self, y_true, raw):
        return regression_metrics(y_true, raw, ())

    @property
    def prediction_columns(self):
        return ("prediction",)


@dataclass(frozen=True)
class MultiOutputRegression(Regression):
    """Several numeric ``outputs`` predicted together; metrics per output (``rmse_<output>``)
    and averaged over outputs (``rmse``), the search minimises the averaged RMSE."""

    outputs: tuple[str, ...] = ()
    target: str = ""

    kind: ClassVar[str] = "multi_output_regression"

    def __post_init__(self):
        if len(self.outputs) < 2:
            raise ValueError(f"a multi-output regression needs at least two outputs (got {list(self.outputs)})")
        if self.anchor:
            raise ValueError("an anchor applies to a one-output regression (got a multi-output one)")
        _check_task(self)

    @property
    def targets(self):
        return tuple(self.outputs)

    def metrics(self, y_true, raw):
        return regression_metrics(y_true, raw, self.outputs)

    def report(self, y_true, raw):
        metrics = self.metrics(y_true, raw)
        return {o: {m: metrics[f"{m}_{o}"] for m in REGRESSION_DIRECTIONS} for o in self.outputs}

    @property
    def prediction_columns(self):
        return tuple(f"prediction_{o}" for o in self.outputs)


Task = BinaryClassification | Regression | MultiOutputRegression


def _check_task(task) -> None:
    if not all(task.targets):
        raise ValueError(f"a {task.kind} task needs its target column(s)")
    try:
        task.direction(task.objective)
    except KeyError as exc:
        raise ValueError(str(exc).strip("'\"")) from None
    for baseline in task.baselines:
        if isinstance(baseline, ColumnForecast) and len(baseline.columns) != len(task.targets):
            raise ValueError(
                f"baseline {baseline.name}: {len(baseline.columns)} column(s) for {len(task.targets)} target(s)"
            )
        if not isinstance(baseline, (PlainModel, ColumnForecast)):
            raise ValueError(f"a baseline is a PlainModel or a ColumnForecast (got {baseline!r})")


def regression_metrics(y_true, raw, outputs=()) -> dict[str, float]:
    """R², MSE, RMSE, MAE (sklearn); with ``outputs``, per output (``rmse_<output>``) and averaged."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y_true, raw = np.asarray(y_true, dtype=np.float64), np.asarray(raw, dtype=np.float64)
    if not outputs:
        mse = float(mean_squared_error(y_true, raw))
        return {"r2": float(r2_score(y_true, raw)), "mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(mean_absolute_error(y_true, raw))}
    out: dict[str, float] = {}
    for i, name in enumerate(outputs):
        for metric, value in regression_metrics(y_true[:, i], raw[:, i], ()).items():
            out[f"{metric}_{name}"] = value
    for metric in REGRESSION_DIRECTIONS:  # the average over outputs (sklearn's "uniform_average")
        out[metric] = float(np.mean([out[f"{metric}_{name}"] for name in outputs]))
    return out


def _forest_space(trial) -> dict:
    return {
        "n_estimators": trial.suggest_int("rf_n_estimators", 50, 300, step=50),
        "max_depth": trial.suggest_int("rf_max_depth", 4, 20),
        "min_samples_leaf": trial.suggest_int("rf_min_samples_leaf", 1, 10),
        "max_features": trial.suggest_categorical("rf_max_features", ["sqrt", "log2", 0.6]),
    }


def _xgb_space(trial) -> dict:
    return {
        "n_estimators": trial.suggest_int("xgb_n_estimators", 50, 400, step=50),
        "max_depth": trial.suggest_int("xgb_max_depth", 2, 8),
        "learning_rate": trial.suggest_float("xgb_learning_rate", 0.01, 0.3, log=True),
        "subsample": trial.suggest_float("xgb_subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("xgb_colsample_bytree", 0.6, 1.0),
        "min_child_weight": trial.suggest_float("xgb_min_child_weight", 1.0, 10.0, log=True),
    }
