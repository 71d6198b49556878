"""Train a candidate: hyperparameter search, refit, holdout evaluation. Pure: no MLflow
and no Dagster here (``registry.py`` logs what this returns; the assets wire it).

The task (``tasks``: binary classification, regression, multi-output regression)
decides the split, the estimators and their search spaces, the objective and the
metrics. Optuna runs the search over RandomForest and XGBoost, each inside a Pipeline
with the shared preprocessing (``features.build_preprocessor``), scored by the task's
objective on k grouped folds of the training split (stratified for classes), or on the
validation window of a time split. Three strategies (``strategy_settings``): TPE, Optuna's
Bayesian sampler (the default; ``"bayesian"`` is an alias), random search, and Hyperband,
which in Optuna is a pruner (run here with the TPE sampler): it stops trials that score
low on a small resource. The resource is the cross-validation folds of a random split;
a time split has one fold, so there it is the share of the training window fitted on,
the most recent rows first (``recent_fit_steps``). The best configuration is refitted (on the
training split; on train + validation for a time split that asks for it) and
evaluated once on the holdout, with the task's baselines; the promotion gate reuses
that holdout to compare against the champion.

Exact duplicate rows (the same features AND the same label) are kept together: the
holdout split and every cross-validation fold are grouped by a hash of the full row
(``row_groups``), so a row is never trained on and then scored again as its own copy
(the real Employee.csv has 1,889 such copies among 4,653 rows; split row by row,
476 of its 931 holdout rows were copies of training rows, which inflated the metrics).
See ``grouped_holdout_split`` and ``grouped_folds``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

ESTIMATORS = ("random_forest", "xgboost")
SAMPLERS = ("tpe", "random")
SAMPLER_ALIASES = {"bayesian": "tpe"}  # TPE is Optuna's Bayesian (model-based) sampler
PRUNERS = ("none", "hyperband")
# a search strategy by one name -> (sampler, pruner); Optuna's Hyperband is a pruner, run with TPE
STRATEGIES = {
    "tpe": ("tpe", "none"),
    "bayesian": ("tpe", "none"),
    "random": ("random", "none"),
    "hyperband": ("tpe", "hyperband"),
}

# Hyperband on a time split (one fold): resource r fits on the latest r / 4 of the training
# window (1/4, 1/2, all); with reduction factor 2 the pruner's rungs sit exactly at these steps
TIME_RESOURCES = (1, 2, 4)
TIME_REDUCTION_FACTOR = 2
# the fewest rows a share fits on (or the whole training window when it is smaller): two
# years of weekly origins, every week of the year seen twice, so a share still sees the season
MIN_STEP_ROWS = 104


def canonical_sampler(name: str) -> str:
    """``"tpe"`` or ``"random"`` (``"bayesian"`` means TPE, Optuna's Bayesian sampler; case-insensitive)."""
    key = str(name).strip().lower()
    key = SAMPLER_ALIASES.get(key, key)
    if key not in SAMPLERS:
        raise ValueError(f"sampler must be one of tpe (alias bayesian), random (got {name!r})")
    return key


def canonical_pruner(name: str) -> str:
    """``"none"`` or ``"hyperband"`` (case-insensitive)."""
    key = str(name).strip().lower()
    if key not in PRUNERS:
        raise ValueError(f"pruner must be one of {', '.join(PRUNERS)} (got {name!r})")
    return key


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
        # stored by their canonical names ("bayesian" -> "tpe"): equal settings, equal runs and logs
        object.__setattr__(self, "sampler", canonical_sampler(self.sampler))
        object.__setattr__(self, "pruner", canonical_pruner(self.pruner))
        if not 0.05 <= self.test_size <= 0.5:
            raise ValueError("test_size must be between 0.05 and 0.5")


def strategy_settings(name: str, **settings) -> SearchSettings:
    """``SearchSettings`` for a search strategy named in one word (case-insensitive):

    - ``"tpe"`` or ``"bayesian"``: the TPE sampler (Optuna's Bayesian optimisation: it
      models good and bad regions of the space from the trials so far), no pruning;
    - ``"random"``: random sampling, no pruning;
    - ``"hyperband"``: the TPE sampler with the Hyperband pruner. In Optuna Hyperband is a
      pruner, not a sampler: it stops trials that score low on a small resource (the
      first CV folds; on a time split, the latest share of the training window).

    ``settings`` are the other ``SearchSettings`` fields (trials, estimators, seed, ...);
    ``sampler`` and ``pruner`` are the strategy's to set. Raises ``ValueError`` naming
    the strategies for an unknown name.
    """
    key = str(name).strip().lower()
    if key not in STRATEGIES:
        raise ValueError(f"search strategy must be one of {', '.join(STRATEGIES)} (got {name!r})")
    clash = sorted({"sampler", "pruner"} & set(settings))
    if clash:
        raise ValueError(f"strategy {name!r} sets the sampler and the pruner; do not pass {', '.join(clash)}")
    sampler, pruner = STRATEGIES[key]
    return SearchSettings(sampler=sampler, pruner=pruner, **settings)


@dataclass
class Trial:
    number: int
    estimator: str
    params: dict
    # the objective on the search folds; None when failed. A pruned trial keeps the last
    # value it reported (Optuna's rule): a score on part of the folds or of the window
    cv_score: float | None
    state: str
    seconds: float | None = None  # wall time of the trial (Optuna's start to finish)


@dataclass
class Candidate:
    """A fitted pipeline (preprocessing + model) and everything measured about it."""

    pipeline: object  # sklearn Pipeline
    estimator: str
    params: dict
    cv_score: float  # the objective (``task.objective``) on the search folds
    metrics: dict[str, float]  # on the holdout
    report: dict  # the task's detailed report (classification report, per-output errors)
    trials: list[Trial]
    train: pd.DataFrame  # id, features, label(s) of the rows the final model was fitted on
    holdout: pd.DataFrame  # id, features, label(s) of the holdout
    holdout_raw: np.ndarray  # the task's predictions on the holdout (probability of 1, or value(s))
    task: object = None  # the ``tasks`` task it was trained for
    feature_importance: dict[str, float] = field(default_factory=dict)
    # copies of holdout rows left out of ``holdout`` (it holds unique rows only)
    holdout_duplicates_dropped: int = 0
    # rows of the labelled data that are an exact copy of an earlier row (all grouped)
    duplicates_grouped: int = 0
    # baseline name -> its metrics on the same holdout
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    # where the holdout sits: {"split": "random"} or the time windows of a TimeSplit
    window: dict = field(default_factory=dict)
    # the holdout rows as drawn, copies included: the mix that arrives (a drift reference;
    # ``holdout`` weighs each distinct row once). None: no copy was dropped, ``holdout`` is it
    holdout_drawn: pd.DataFrame | None = None
    # the steps fitted before the search ({} none): a fine-tuned encoder's epochs, rows, losses, seconds
    representation: dict = field(default_factory=dict)

    @property
    def arrival_sample(self) -> pd.DataFrame:
        """Held-out rows in the proportions the data has them (copies included)."""
        return self.holdout if self.holdout_drawn is None else self.holdout_drawn

    @property
    def objective(self) -> str:
        return self.task.objective

    @property
    def holdout_pred(self) -> np.ndarray:
        """A binary task's predicted classes on the holdout (at its threshold)."""
        return (self.holdout_raw >= self.task.threshold).astype(int)


@dataclass
class SplitPlan:
    """Positions into the labelled frame: the search's rows and folds (positions into
    ``search``), the final fit's rows, the holdout's rows, and where they sit."""

    search: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    fit: np.ndarray
    holdout: np.ndarray
    window: dict


def train_classifier(frame: pd.DataFrame, *, id_column: str, target: str, numeric: list[str], categorical: list[str],
                     settings: SearchSettings = SearchSettings()) -> Candidate:  # fmt: skip
    """``train_model`` for a binary classification of ``target`` with a random split."""
    from .tasks import BinaryClassification

    return train_model(
        frame, task=BinaryClassification(target=target), id_column=id_column, numeric=numeric,
        categorical=categorical, settings=settings,
    )  # fmt: skip


def train_model(
    frame: pd.DataFrame,
    *,
    task,
    id_column: str,
    numeric: list[str],
    categorical: list[str],
    settings: SearchSettings = SearchSettings(),
    keep_columns: tuple[str, ...] = (),
) -> Candidate:
    """Search, refit and evaluate a model of ``task`` (see ``tasks``) on ``frame``.

    ``keep_columns``: columns of ``frame`` that are not features but travel with the
    train and holdout rows (a text model's raw text, for its input example).

    Rows without a label are left out. With a random split, exact duplicate rows
    (features and label) stay on one side of the holdout split and of every CV fold
    (``grouped_holdout_split``, ``grouped_folds``); the holdout is then reduced to its
    unique rows before it is scored, and ``Candidate.holdout`` / ``holdout_raw`` /
    ``metrics`` are those unique rows: a group of copies is one observation, and
    scoring it n times would weight a few repeated profiles n-fold (in Employee.csv up
    to 32 copies of one row) and let them dominate accuracy and F1. The gate scores
    the champion on this same frame, so both are compared on unique rows. Validation
    folds of the search are scored on their unique rows too. Training keeps every row
    (copies weight the fit as the data does).

    With a ``TimeSplit`` the windows are time-ordered (``time_split``): the search fits
    on the training window and is scored on the validation window, the final model is
    fitted on train + validation when the split says so, and the holdout is the last
    window; no row of a later time is ever trained on.

    The task's baselines are measured on the same holdout (``Candidate.baselines``).
    Raises ``ValueError`` when there is too little data to split and search (with the
    counts in the message).
    """
    import optuna

    from .tasks import MAX, GroupSplit, TimeSplit

    data = task.labelled(frame)
    features = list(categorical) + list(numeric) + task.text_columns
    y = task.y(data)
    if isinstance(task.split, TimeSplit):
        plan = time_split(data, task.split)
        groups = np.arange(len(data))
    else:
        groups = row_groups(data, [*features, *task.targets])
        split_groups = groups
        if isinstance(task.split, GroupSplit):  # every row of a patient on one side
            if task.split.column not in data.columns:
                raise ValueError(f"the group split needs column {task.split.column!r}, which the frame lacks")
            if data[task.split.column].isna().any():
                raise ValueError(f"{int(data[task.split.column].isna().sum())} labelled rows have no {task.split.column}: a group split cannot place them")
            split_groups = pd.factorize(data[task.split.column])[0]
        plan = random_split(task, y, split_groups, settings, len(data), unique=groups)
    X_search, y_search = data.iloc[plan.search][features], y[plan.search]
    # fitted once on the final fit's rows (never the holdout), before the search: a tuned encoder
    started = time.perf_counter()
    prefit = task.representation(data.iloc[plan.fit][features], y[plan.fit], settings.seed)
    representation = _describe_representation(prefit, time.perf_counter() - started)
    # Hyperband on a time split: one fold, so the resource is the latest share of its training window
    steps = None
    if settings.pruner == "hyperband" and isinstance(task.split, TimeSplit) and len(plan.folds) == 1:
        times = data.iloc[plan.search][task.split.time_column].to_numpy()
        steps = recent_fit_steps(times, plan.folds[0][0])

    def objective(trial: optuna.Trial) -> float:
        name = trial.suggest_categorical("estimator", list(settings.estimators))
        params = task.suggest(trial, name)
        if steps is not None:
            return _recent_share_objective(trial, name, params)
        scores = []
        for step, (fit_idx, val_idx) in enumerate(plan.folds):
            model = make_pipeline(name, params, numeric, categorical, settings.seed, settings.n_jobs, task=task, prefit=prefit)
            model.fit(X_search.iloc[fit_idx], y_search[fit_idx])
            raw = task.predict(model, X_search.iloc[val_idx])
            scores.append(task.metrics(y_search[val_idx], raw)[task.objective])
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    def _recent_share_objective(trial: optuna.Trial, name: str, params: dict) -> float:
        """Fit on the latest 1/4, 1/2, all of the training window; score each on the
        validation window, report it at step 1, 2, 4 and let Hyperband stop the trial
        before the full fit. A share equal to the previous one (the row floor) is not refitted."""
        val_idx = plan.folds[0][1]
        previous, score = None, float("nan")
        for resource, fit_idx in zip(TIME_RESOURCES, steps):
            if previous is None or not np.array_equal(fit_idx, previous):
                model = make_pipeline(name, params, numeric, categorical, settings.seed, settings.n_jobs, task=task, prefit=prefit)
                model.fit(X_search.iloc[fit_idx], y_search[fit_idx])
                score = float(task.metrics(y_search[val_idx], task.predict(model, X_search.iloc[val_idx]))[task.objective])
                previous = fit_idx
            trial.report(score, resource)
            # the full window is the trial's result: asked before it only (no rung above the last)
            if resource < TIME_RESOURCES[-1] and trial.should_prune():
                raise optuna.TrialPruned()
        return score

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if task.direction(task.objective) == MAX else "minimize",
        sampler=_sampler(settings),
        pruner=_time_pruner() if steps is not None else _pruner(settings, len(plan.folds)),
        # Hyperband picks a trial's bracket from a hash of the study name; Optuna's
        # default name is random, which would make pruning (and results) vary per run.
        study_name=f"smartstream-search-{settings.seed}",
    )
    study.optimize(objective, n_trials=settings.trials, timeout=settings.timeout_seconds)
    trials = [
        Trial(t.number, t.params.get("estimator", "?"), _strip(t.params), t.value, t.state.name,
              t.duration.total_seconds() if t.duration is not None else None)  # fmt: skip
        for t in study.trials
    ]
    best = study.best_trial
    name, params = best.params["estimator"], _strip(best.params)

    fit_rows = data.iloc[plan.fit]
    pipeline = make_pipeline(name, params, numeric, categorical, settings.seed, settings.n_jobs, task=task, prefit=prefit)
    pipeline.fit(fit_rows[features], y[plan.fit])
    holdout = data.iloc[plan.holdout]
    unique_holdout = holdout.iloc[first_of_each_group(np.arange(len(holdout)), groups[plan.holdout])]
    dropped = len(holdout) - len(unique_holdout)
    drawn, holdout = holdout, unique_holdout
    raw = task.predict(pipeline, holdout[features])
    y_holdout = task.y(holdout)
    extra = [c for c in [*task.extra_columns, *keep_columns] if c in data.columns]
    columns = list(dict.fromkeys([id_column, *features, *task.targets, *extra]))
    return Candidate(
        pipeline=pipeline,
        estimator=name,
        params=params,
        cv_score=float(best.value),
        metrics=task.metrics(y_holdout, raw),
        report=task.report(y_holdout, raw),
        trials=trials,
        train=fit_rows[columns].reset_index(drop=True),
        holdout=holdout[columns].reset_index(drop=True),
        holdout_raw=raw,
        task=task,
        feature_importance=feature_importance(pipeline),
        holdout_duplicates_dropped=dropped,
        duplicates_grouped=int(len(groups) - np.unique(groups).size),
        baselines=measure_baselines(task, fit_rows, y[plan.fit], holdout, y_holdout, numeric, categorical, settings),
        window=plan.window,
        holdout_drawn=drawn[columns].reset_index(drop=True) if dropped else None,
        representation=representation,
    )


def _describe_representation(prefit, seconds: float) -> dict:
    """What the steps fitted before the search did (for the run's params and the asset's metadata)."""
    from .fine_tune import TunedEncoder

    out = {}
    for name, step in prefit:
        inner = getattr(step, "estimator", step)
        if isinstance(inner, TunedEncoder):
            out = {
                "step": name, "fine_tuned": True, "epochs": inner.epochs, "rows": inner.rows_,
                "batch_size": inner.batch_size, "encoder_lr": inner.encoder_lr, "head_lr": inner.head_lr,
                "losses": inner.losses_, "seconds": round(seconds, 1),
            }  # fmt: skip
    return out


def random_split(task, y, groups, settings: SearchSettings, rows: int, unique=None) -> SplitPlan:
    """The holdout and the search folds of a random split, grouped by ``groups`` (exact
    duplicates, or a ``GroupSplit``'s column) and stratified by class where the task
    stratifies; validation folds are scored on one row of each ``unique`` group (exact
    duplicates; default ``groups``)."""
    unique = groups if unique is None else np.asarray(unique)
    n_splits = holdout_splits(settings.test_size)
    strata = task.stratify(y)
    task.check_trainable(y, groups, max(2 * settings.folds, n_splits))
    train_idx, holdout_idx = grouped_holdout_split(y if strata is None else strata, groups, settings.test_size, settings.seed, stratified=strata is not None)
    groups_train = groups[train_idx]
    strata_train = (y if strata is None else strata)[train_idx]
    folds = [
        (fit_idx, first_of_each_group(val_idx, unique[train_idx]))  # validation scored on unique rows
        for fit_idx, val_idx in grouped_folds(strata_train, groups_train, settings.folds, settings.seed, stratified=strata is not None)
    ]
    if strata is not None:
        classes = np.unique(strata)
        unique_counts = [int(np.unique(groups[strata == c]).size) for c in classes]
        scored = {"the holdout": strata[holdout_idx], **{f"CV fold {i + 1}": strata_train[val] for i, (_, val) in enumerate(folds)}}
        one_class = [name for name, labels in scored.items() if np.unique(labels).size != len(classes)]
        if one_class:
            raise ValueError(
                f"cannot train on {rows} labelled rows: {', '.join(one_class)} would hold one class only once exact "
                f"duplicates are grouped ({dict(zip(classes.tolist(), unique_counts))} unique rows by class)"
            )
    window = {"split": task.split.kind, **({"group_column": task.split.column, "groups": {"train": int(np.unique(groups_train).size), "holdout": int(np.unique(groups[holdout_idx]).size)}} if task.split.kind == "group" else {})}
    return SplitPlan(search=train_idx, folds=folds, fit=train_idx, holdout=holdout_idx, window=window)


def time_split(data: pd.DataFrame, split) -> SplitPlan:
    """Training, validation and holdout windows of a ``TimeSplit``, by distinct times
    of ``split.time_column`` (one time is never split across two windows)."""
    if split.time_column not in data.columns:
        raise ValueError(f"the time split needs column {split.time_column!r}, which the frame lacks")
    times = pd.to_datetime(data[split.time_column], utc=True)
    if times.isna().any():
        raise ValueError(f"{int(times.isna().sum())} labelled rows have no {split.time_column}: a time split cannot place them")
    distinct = np.sort(times.unique())
    n = len(distinct)

    def count(size) -> int:
        return int(size) if isinstance(size, int) else int(np.ceil(size * n))

    n_holdout, n_validation = count(split.holdout), count(split.validation)
    n_train = n - n_holdout - n_validation
    if n_train < 2 or n_validation < 1 or n_holdout < 1:
        raise ValueError(
            f"cannot split {len(data)} labelled rows over {n} distinct {split.time_column} values into training, "
            f"validation ({n_validation}) and holdout ({n_holdout}) windows: the training window would hold {max(n_train, 0)}"
        )
    validation_start, holdout_start = distinct[n_train], distinct[n_train + n_validation]
    values = times.to_numpy()
    train_idx = np.flatnonzero(values < validation_start)
    validation_idx = np.flatnonzero((values >= validation_start) & (values < holdout_start))
    holdout_idx = np.flatnonzero(values >= holdout_start)
    search = np.concatenate([train_idx, validation_idx])
    folds = [(np.arange(len(train_idx)), np.arange(len(train_idx), len(search)))]
    fit = search if split.refit_on_validation else train_idx

    def span(idx) -> list[str]:
        return [pd.Timestamp(values[idx].min()).isoformat(), pd.Timestamp(values[idx].max()).isoformat()]

    window = {
        "split": "time", "time_column": split.time_column,
        "train": span(train_idx), "validation": span(validation_idx), "holdout": span(holdout_idx),
        "rows": {"train": len(train_idx), "validation": len(validation_idx), "holdout": len(holdout_idx)},
        "final_fit": "train + validation" if split.refit_on_validation else "train",
    }  # fmt: skip
    return SplitPlan(search=search, folds=folds, fit=fit, holdout=holdout_idx, window=window)


def recent_fit_steps(times, fit_idx, resources: tuple[int, ...] = TIME_RESOURCES, min_rows: int = MIN_STEP_ROWS) -> list[np.ndarray]:
    """The rows each Hyperband step of a time split fits on: for resource r, the rows of
    ``fit_idx`` (the training window) at its latest times, r / max(resources) of them
    (rounded up), at least ``min_rows`` (all of them when the window is smaller). A time
    is never cut: rows sharing the earliest time taken are all taken (several series).
    ``times`` is indexed by the positions in ``fit_idx``; each step keeps their order, and
    the last step (r = max) is ``fit_idx`` itself, so a trial that runs to the end scores
    exactly what it scores without the pruner."""
    fit_idx = np.asarray(fit_idx)
    resources = tuple(int(r) for r in resources)
    if not resources or resources[0] < 1 or any(b <= a for a, b in zip(resources, resources[1:])):
        raise ValueError(f"resources must be increasing positive integers (got {resources})")
    when = pd.to_datetime(pd.Series(np.asarray(times)[fit_idx]), utc=True).to_numpy()
    ordered = np.sort(when)
    n = len(fit_idx)
    out = []
    for r in resources:
        rows = min(n, max(int(np.ceil(r * n / resources[-1])), min_rows))
        out.append(fit_idx[when >= ordered[n - rows]] if rows else fit_idx[:0])
    return out


def measure_baselines(task, fit_rows, y_fit, holdout, y_holdout, numeric, categorical, settings) -> dict[str, dict[str, float]]:
    """Each baseline of the task, on the same holdout as the candidate."""
    from .tasks import ColumnForecast

    out = {}
    for baseline in task.baselines:
        if isinstance(baseline, ColumnForecast):
            missing = [c for c in baseline.columns if c not in holdout.columns]
            if missing:
                raise ValueError(f"baseline {baseline.name} reads columns {', '.join(missing)}, which the frame lacks")
            values = holdout[list(baseline.columns)].to_numpy(dtype=np.float64)
            if np.isnan(values).any():
                raise ValueError(
                    f"baseline {baseline.name}: {int(np.isnan(values).any(axis=1).sum())} holdout rows have no "
                    f"{', '.join(baseline.columns)}; it cannot forecast them"
                )
            raw = values[:, 0] if len(baseline.columns) == 1 else values
        else:
            from sklearn.pipeline import Pipeline

            from .features import build_preprocessor

            model = Pipeline([
                ("preprocess", build_preprocessor(list(numeric), list(categorical), task.embeddings, settings.seed)),
                ("model", task.baseline_estimator(baseline.estimator, settings.seed, settings.n_jobs)),
            ])  # fmt: skip
            model.fit(fit_rows[list(categorical) + list(numeric)], y_fit)
            raw = task.predict(model, holdout[list(categorical) + list(numeric)])
        out[baseline.name] = task.metrics(y_holdout, raw)
    return out


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


def grouped_holdout_split(y, groups, test_size: float, seed: int, stratified: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(train, holdout) positions: stratified by ``y``, each group wholly on one side.

    ``StratifiedGroupKFold(n_splits=round(1 / test_size), shuffle=True,
    random_state=seed)``, its first fold taken as the holdout. The holdout share is
    therefore about 1 / n_splits (0.2 for the default 0.2, 0.333 for 0.3), give or
    take the last groups placed; its class shares follow the data's within about
    one group's rows (sklearn places groups largest-imbalance first, then balances
    the class counts of the folds). Deterministic for a seed.
    """
    y, groups = np.asarray(y), np.asarray(groups)
    splitter = _group_splitter(holdout_splits(test_size), seed, stratified)
    train_idx, holdout_idx = next(splitter.split(np.zeros(len(y)), y, groups))
    return np.sort(train_idx), np.sort(holdout_idx)


def grouped_folds(y, groups, folds: int, seed: int, stratified: bool = True) -> list[tuple[np.ndarray, np.ndarray]]:
    """The search's CV folds: ``StratifiedGroupKFold(folds, shuffle=True, random_state=seed)``
    (``GroupKFold`` with the same shuffle when not stratified: regression)."""
    y, groups = np.asarray(y), np.asarray(groups)
    return list(_group_splitter(folds, seed, stratified).split(np.zeros(len(y)), y, groups))


def _group_splitter(n_splits: int, seed: int, stratified: bool):
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if stratified:
        return StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
    return GroupKFold(n_splits, shuffle=True, random_state=seed)


def first_of_each_group(positions, groups) -> np.ndarray:
    """``positions`` (into ``groups``) reduced to the first one of each group, in order."""
    positions = np.asarray(positions)
    _, first = np.unique(np.asarray(groups)[positions], return_index=True)
    return positions[np.sort(first)]


def make_pipeline(name: str, params: dict, numeric, categorical, seed: int = 42, n_jobs: int = 2, task=None, prefit=()):
    """The shared preprocessing and one estimator of the task (binary by default), as
    one sklearn Pipeline; wrapped as the task asks (an anchored regressor learns the
    change from its anchor column). ``prefit``: (name, fitted step) pairs that come first,
    fitted before the search and frozen (``task.representation``: a tuned encoder)."""
    from sklearn.pipeline import Pipeline

    from .features import build_preprocessor
    from .tasks import BinaryClassification

    task = task or BinaryClassification(target="label")
    model = task.estimator(name, params, seed, n_jobs)
    preprocess = build_preprocessor(list(numeric), list(categorical), task.embeddings, seed, task.text_scores, task.targets)
    return task.wrap(Pipeline([*prefit, ("preprocess", preprocess), ("model", model)]))


def classification_metrics(y_true, proba, threshold: float = 0.5) -> tuple[dict[str, float], dict]:
    """Accuracy, precision, recall, F1 and ROC AUC, and sklearn's classification report."""
    from .tasks import BinaryClassification

    task = BinaryClassification(target="label", threshold=threshold)
    return task.metrics(y_true, proba), task.report(y_true, proba)


def feature_importance(pipeline) -> dict[str, float]:
    """Importance per input column (the preprocessing maps columns one to one)."""
    pipeline = getattr(pipeline, "regressor_", pipeline)  # an AnchoredRegressor wraps the Pipeline
    model = pipeline.named_steps["model"]
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    values = getattr(model, "feature_importances_", None)
    if values is None:
        return {}
    return dict(sorted(zip(map(str, names), map(float, values)), key=lambda kv: -kv[1]))


def _strip(params: dict) -> dict:
    """Trial parameters without the estimator choice and the rf_/xgb_ namespace."""
    return {k.split("_", 1)[1]: v for k, v in params.items() if k != "estimator"}


def _sampler(settings: SearchSettings):
    import optuna

    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=settings.seed)
    return optuna.samplers.TPESampler(seed=settings.seed)


def _time_pruner():
    """Hyperband over the latest-share steps of a time split: rungs at resources 1, 2, 4
    (min_resource * reduction_factor ** k), the steps ``recent_fit_steps`` reports."""
    import optuna

    assert TIME_RESOURCES == tuple(TIME_RESOURCES[0] * TIME_REDUCTION_FACTOR**k for k in range(len(TIME_RESOURCES)))
    return optuna.pruners.HyperbandPruner(
        min_resource=TIME_RESOURCES[0], max_resource=TIME_RESOURCES[-1], reduction_factor=TIME_REDUCTION_FACTOR
    )


def _pruner(settings: SearchSettings, folds: int):
    import optuna

    if settings.pruner == "hyperband":
        # resource = cross-validation folds: a trial whose first folds score low stops early
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(folds, 1))
    return optuna.pruners.NopPruner()
