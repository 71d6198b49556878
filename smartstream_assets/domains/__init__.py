"""Domains: what differs between employees, co2, reviews and vitals, as parameters.

The shared mechanisms (training with search, registry, promotion gate, scoring,
drift, retraining) are in ``smartstream_assets.ml`` and built into assets by
``smartstream_assets.assets.ml``; a domain module declares its model with a
``Domain`` (its task kind, table, columns or feature function, bar, cadence) and adds
what only it has. Adding a domain is one module and one entry in ``DOMAIN_MODULES``:
the module defines ``PLUGIN``, a ``DomainPlugin`` holding its ``Domain`` and, loaded
lazily, its extra assets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..ml.tasks import (  # noqa: F401 (re-exported: a domain module imports all it needs from here)
    BinaryClassification,
    ColumnForecast,
    Embeddings,
    FineTune,
    GroupSplit,
    MultiOutputRegression,
    PlainModel,
    RandomSplit,
    Regression,
    Task,
    TextScores,
    TimeSplit,
)


AT_LEAST, AT_MOST = ">=", "<="


@dataclass(frozen=True, eq=False)
class QualityBar:
    """What a candidate must reach before it may serve, on its own holdout:

    - ``metrics``: metric -> (``">="`` or ``"<="``, threshold), e.g.
      ``{"roc_auc": (">=", 0.7)}`` or ``{"rmse": ("<=", 2.0), "r2": (">=", 0.9)}``;
    - ``beat_baselines``: baseline name -> ratio r on the task's primary metric: where
      lower is better the candidate's value must be at most r x the baseline's (r = 1:
      not worse; r = 0.9: 10% lower), where higher is better at least r x;
    - ``max_fairness``: the worst gated fairness value over the protected facets
      (classification: demographic-parity difference; regression: MAE-ratio gap);
      None: fairness is reported, not gated.
    """

    metrics: dict[str, tuple[str, float]] = field(default_factory=dict)
    beat_baselines: dict[str, float] = field(default_factory=dict)
    max_fairness: float | None = None

    def __post_init__(self):
        for metric, rule in self.metrics.items():
            if not (isinstance(rule, tuple) and len(rule) == 2 and rule[0] in (AT_LEAST, AT_MOST)):
                raise ValueError(f"quality bar {metric}: a rule is ('>=' or '<=', threshold) (got {rule!r})")

    def with_overrides(self, thresholds: dict[str, float] | None = None, max_fairness: float | None = None) -> "QualityBar":
        """The bar with some thresholds replaced (the gate's config); unknown metrics are an error."""
        thresholds = thresholds or {}
        unknown = [m for m in thresholds if m not in self.metrics]
        if unknown:
            raise ValueError(f"the quality bar has no metric {', '.join(unknown)} (it has {', '.join(self.metrics) or 'none'})")
        metrics = {m: (op, float(thresholds.get(m, value))) for m, (op, value) in self.metrics.items()}
        return QualityBar(metrics, dict(self.beat_baselines), self.max_fairness if max_fairness is None else max_fairness)

    def to_json(self) -> dict:
        return {"metrics": {m: list(rule) for m, rule in self.metrics.items()},
                "beat_baselines": dict(self.beat_baselines), "max_fairness": self.max_fairness}  # fmt: skip


@dataclass(frozen=True)
class FairnessThresholds:
    """Demographic-parity / equalized-odds differences per facet: above ``warn`` the
    fairness check warns, above ``error`` it fails with severity ERROR."""

    warn: float = 0.2
    error: float = 0.35


@dataclass(frozen=True)
class Monitoring:
    """Model Monitor's hourly checks of a domain's scoring partitions, against the
    baselines stored with the scoring version at promotion (``assets/ml_monitor.py``):

    - data quality: the scored rows against ``constraints.json`` (type, completeness,
      range = baseline min/max -/+ ``range_tolerance_std`` std, known categories);
    - model quality: scored rows whose label has arrived, the task's primary error
      (RMSE) against the version's evaluation.json; degraded above ``max_error_ratio`` x;
    - bias drift: per-facet MAE ratio on those rows against the evaluation's; drifted
      when a group's ratio moved more than ``max_bias_change``.

    A degraded model or drifted bias requests retraining (the retrain sensor); data-quality
    violations alert (bad input is not a reason to retrain on it). Fewer than ``min_rows``
    labelled rows: measured, never flagged."""

    max_error_ratio: float = 1.5
    max_bias_change: float = 0.5
    min_rows: int = 8
    range_tolerance_std: float = 3.0


@dataclass(frozen=True)
class TextInput:
    """The model answers raw text: the registered version is one MLflow pyfunc that
    embeds ``text_column`` with the sentence encoder shipped inside it, builds the
    model's inputs with ``inputs(texts, vectors)`` (the same function the domain's
    assets use on cached vectors) and returns the id and the predictions; batch scoring
    reuses the vectors cached in the lake and runs only the fitted pipeline inside."""

    text_column: str = "text"
    # (texts, vectors) -> the model's input columns (embedding columns, text features)
    inputs: Callable[[Any, Any], Any] | None = None


@dataclass(frozen=True)
class RecentMix:
    """Columns of the scoring rows that the training set lacks (reviews: the product line
    of a review), so the champion's reference cannot judge them: each scoring partition's
    drift report compares them with the rows of the previous ``partitions`` partitions
    already scored (at most 1,000 of them, drawn at random: p-value tests), once those
    hold ``min_rows``. They are feature signals like the others (drift share, the
    false-alarm rate's split) and travel with the predictions (``predictions/``)."""

    columns: tuple[str, ...]
    partitions: int = 24
    min_rows: int = 200

    def __post_init__(self):
        if not self.columns or self.partitions < 1 or self.min_rows < 1:
            raise ValueError(f"RecentMix needs columns, partitions >= 1 and min_rows >= 1 (got {self!r})")


@dataclass(frozen=True)
class Cadence:
    """A domain's scoring partitions: one per ``every`` (hour, day, week, month) from
    ``start``; the schedule (``build_schedule_from_partitioned_job``) scores a partition
    when it has ended, ``*_offset`` after (e.g. monthly with ``hour_offset=6``: the
    month's partition on the 1st of the next month at 06:00). ``label`` names the
    schedule (``<domain>_<label>_scoring``)."""

    every: str = "month"
    start: str = "2024-01-01"
    minute_offset: int = 0
    hour_offset: int = 0
    day_offset: int | None = None  # week: day of week (0 = Sunday); month: day of month (default 1)
    timezone: str = "UTC"
    label: str = ""
    description: str = ""
    # hourly only: the schedule's minute, for partitions aligned on the hour (minute_offset
    # 0: 07:00-08:00 holds what was created then) that are scored a few minutes after they end
    schedule_minute: int | None = None

    def __post_init__(self):
        if self.every not in _PARTITIONS:
            raise ValueError(f"a cadence is every {', '.join(_PARTITIONS)} (got {self.every!r})")
        if self.schedule_minute is not None and (self.every != "hour" or not self.minute_offset <= self.schedule_minute < 60):
            raise ValueError(f"schedule_minute applies to an hourly cadence, from minute_offset to 59 (got {self.schedule_minute!r})")

    @property
    def name(self) -> str:
        return self.label or {"hour": "hourly", "day": "daily", "week": "weekly", "month": "monthly"}[self.every]

    def partitions_def(self):
        import dagster as dg

        kind = getattr(dg, _PARTITIONS[self.every])
        kwargs: dict[str, Any] = {"start_date": self.start, "minute_offset": self.minute_offset, "timezone": self.timezone}
        if self.every != "hour":
            kwargs["hour_offset"] = self.hour_offset
        if self.every in ("week", "month") and self.day_offset is not None:
            kwargs["day_offset"] = self.day_offset
        return kind(**kwargs)

    @property
    def cron(self) -> str:
        return self.partitions_def().get_cron_schedule()


_PARTITIONS = {
    "hour": "HourlyPartitionsDefinition",
    "day": "DailyPartitionsDefinition",
    "week": "WeeklyPartitionsDefinition",
    "month": "MonthlyPartitionsDefinition",
}


@dataclass(frozen=True)
class Domain:
    """One model of a kind (``task``: binary classification, regression, multi-output
    regression) trained on a table's current state and scored in batch."""

    name: str  # the domain: <name>/features, <name>/predictions, <name>/drift_report
    table: str  # the source table of the registry (<table>/current)
    model: str  # the model's role: <name>/<model>_candidate, <name>/<model>_champion, <name>/<model>_approval
    registered_model: str  # the MLflow registered model
    id_column: str
    task: Task  # what is learnt and how: split, estimators, objective, metrics, predictions
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    # current state -> the feature frame (id, features, labels, time column): lags, rolling
    # windows, embeddings; None: the columns are taken as they are
    make_features: Callable[[Any], Any] | None = None
    facets: tuple[str, ...] = ()  # fairness is measured and reported by these columns
    # the facets the gate's parity bar and the check's ERROR apply to (empty: all facets);
    # the others warn: a location can differ in base rates without anyone being wronged
    protected_facets: tuple[str, ...] = ()
    quality_bar: QualityBar = field(default_factory=QualityBar)
    fairness: FairnessThresholds = field(default_factory=FairnessThresholds)
    requires_approval: bool = True  # replacing a champion waits for a person
    drift_share_threshold: float = 0.3  # feature drift share that triggers retraining
    # the chance that an ordinary scoring window is flagged (features or predictions): each
    # signal tested at this rate / the number of signals (``drift.drift_report``); None:
    # every signal at Evidently's own level (K-S 5%, or its distance thresholds)
    drift_false_alarm_rate: float | None = None
    # categorical columns of the scoring rows judged against the recent scored partitions
    drift_recent: RecentMix | None = None
    # columns of the scoring rows that travel with the predictions besides the id and the
    # features (vitals: patient_id and ts, which the model does not read)
    carry_columns: tuple[str, ...] = ()
    retrain_cooldown_hours: float = 24.0
    reference_rows: int = 5000  # drift baseline stored with a promoted version
    positive_label: str = "1"  # what the positive class means, for reports
    anomaly_model: str | None = None  # models/<anomaly_model>: IsolationForest flags joined to predictions
    # expected share of anomalies: IsolationForest's "auto" cut flags ~45% of rows of
    # few-valued features like the HR table
    anomaly_share: float = 0.05
    predictions_table: str | None = None  # SQL table for predictions when SMARTSTREAM_PREDICTIONS_DB is set
    # batch scoring leaves out rows already labelled positive (for attrition: people who
    # have left); the drift reference is filtered the same way, so both compare like with like
    score_only_not_positive: bool = False
    scoring_cadence: Cadence = field(default_factory=Cadence)
    # a scoring partition scores the rows whose event_time falls in its window (None: every
    # row of the current state, at each partition: a batch re-score of the whole table)
    event_time: str | None = None
    # feature frame -> the rows a scoring run scores (e.g. each station's latest reading, for
    # a next-week forecast); None: all. Not applied to the drift reference (training rows).
    select_rows: Callable[[Any], Any] | None = None
    # Optuna trials of the candidate unless its config says (keeps `make demo` quick)
    search_trials: int = 10
    # the estimators the candidate searches over unless its config names others
    estimators: tuple[str, ...] = ("random_forest", "xgboost")
    # training rows -> the rows the drift baseline is sampled from (None: all of them); a
    # trending series compares the newest window with the newest training years
    reference_window: Callable[[Any], Any] | None = None
    # the drift reference is sampled from the candidate's holdout instead of its training
    # rows: a flexible model's predictions on rows it was fitted on are sharper than on new
    # rows, so their distribution is no reference for tomorrow's (reviews: a clean hour's
    # predicted sentiment read K-S p 0.009 against in-sample predictions)
    reference_from_holdout: bool = False
    # the features the drift report compares (None: all); level-free ones for a trend
    drift_features: tuple[str, ...] | None = None
    # the prediction columns the drift report compares (None: the task's, e.g. every output)
    drift_prediction_columns: tuple[str, ...] | None = None
    # what a prediction is, in words (``smartstream endpoint test``); empty: the target's name
    prediction_label: str = ""
    # Model Monitor-style checks of every scoring partition (None: the drift report only)
    monitoring: Monitoring | None = None
    # the asset (key path, e.g. "reviews/labelled") whose frame <name>/features is built
    # from, instead of <table>/current (None: the table's current state)
    source: str | None = None
    # the asset, partitioned like scoring_cadence, whose partition is what <name>/predictions
    # scores (e.g. "reviews/embeddings": an hour's reviews with their vectors); None: the
    # rows of <name>/features in the partition's window
    scoring_source: str | None = None
    # a model that answers raw text (registered as a pyfunc that ships its encoder)
    text_input: TextInput | None = None
    # what class 0 and class 1 are called in charts, and their colours (empty: the default)
    class_labels: tuple[str, str] = ("0", "1")
    class_colours: tuple[str, ...] = ()
    # (logged metric, column header) the demo's summary prints for the champion (empty: the
    # task's: ROC AUC and F1, or R² and RMSE)
    summary_metrics: tuple[tuple[str, str], ...] = ()

    def __post_init__(self):
        if self.score_only_not_positive and self.task.kind != "binary":
            raise ValueError(f"domain {self.name}: score_only_not_positive needs a binary task (got {self.task.kind})")
        anchor = getattr(self.task, "anchor", None)
        if anchor and anchor not in self.numeric:
            raise ValueError(f"domain {self.name}: the task's anchor {anchor!r} must be one of its numeric features")
        clash = [c for c in self.task.text_columns if c in self.numeric or c in self.categorical]
        if clash:
            raise ValueError(f"domain {self.name}: text column {', '.join(clash)} is also a numeric or categorical feature")
        if self.text_input is not None and self.text_input.inputs is None:
            raise ValueError(f"domain {self.name}: text_input needs its inputs function (texts, vectors -> input columns)")
        if self.monitoring is not None and self.task.kind != "regression":
            raise ValueError(f"domain {self.name}: monitoring (model quality vs actuals) needs a regression task (got {self.task.kind})")
        odd = [c for c in (self.drift_prediction_columns or ()) if c not in self.task.prediction_columns]
        if odd or self.drift_prediction_columns == ():
            raise ValueError(f"domain {self.name}: drift_prediction_columns must be some of {', '.join(self.task.prediction_columns)} (got {', '.join(odd) or 'none'})")
        if self.drift_false_alarm_rate is not None and not (0 < self.drift_false_alarm_rate < 1 and self.reference_rows <= 1000):
            raise ValueError(
                f"domain {self.name}: drift_false_alarm_rate must be in (0, 1) with reference_rows <= 1000 "
                f"(p-value tests; got {self.drift_false_alarm_rate!r}, {self.reference_rows} rows)"
            )
        if self.drift_recent is not None and set(self.drift_recent.columns) & set(self.features):
            raise ValueError(f"domain {self.name}: drift_recent columns must not be model features (got {', '.join(self.drift_recent.columns)})")
        if set(self.carry_columns) & {*self.features, self.id_column}:
            raise ValueError(f"domain {self.name}: carry_columns must not be its id or features (got {', '.join(self.carry_columns)})")
        unknown = [c for c in (self.drift_features or ()) if c not in self.features]
        if unknown or self.drift_features == ():
            raise ValueError(f"domain {self.name}: drift_features must be some of its features (got {', '.join(unknown) or 'none'})")

    @property
    def drift_numeric(self) -> list[str]:
        """The numeric columns drift compares one by one (an embedding's are one signal:
        ``drift_embeddings``)."""
        vector = set(self.task.embeddings.columns) if self.task.embeddings is not None else set()
        return [c for c in self.numeric if (self.drift_features is None or c in self.drift_features) and c not in vector]

    @property
    def drift_predictions(self) -> list[str]:
        return list(self.drift_prediction_columns or self.task.drift_columns)

    @property
    def drift_embeddings(self) -> dict[str, list[str]]:
        """Embedding columns drift compares as one signal: {"embedding": columns} (or {})."""
        vector = self.task.embeddings
        if vector is None:
            return {}
        columns = [c for c in vector.columns if self.drift_features is None or c in self.drift_features]
        return {"embedding": columns} if columns else {}

    @property
    def drift_categorical(self) -> list[str]:
        return [c for c in self.categorical if self.drift_features is None or c in self.drift_features]

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(self.task.targets)

    @property
    def target(self) -> str:
        """The first (for one-target tasks the only) label column."""
        return self.task.targets[0]

    @property
    def summary(self) -> tuple[tuple[str, str], ...]:
        if self.summary_metrics:
            return self.summary_metrics
        return (("roc_auc", "ROC AUC"), ("f1", "F1")) if self.task.kind == "binary" else (("r2", "R²"), ("rmse", "RMSE"))

    @property
    def class_label_map(self) -> dict[Any, str]:
        """Class key (0/1, "0"/"1" or a label in any case) → its display label."""
        mapping: dict[Any, str] = {}
        for key, label in enumerate(self.class_labels):
            mapping.update({key: label, str(key): label, label.lower(): label})
        return mapping

    @property
    def class_colour_map(self) -> dict[str, str]:
        return dict(zip(self.class_labels, self.class_colours))

    @property
    def model_id(self) -> str:
        """``<name>_<model>``: the MLflow experiment is ``smartstream-<model_id>``."""
        return f"{self.name}_{self.model}"

    @property
    def gated_facets(self) -> list[str]:
        return list(self.protected_facets or self.facets)

    @property
    def features(self) -> list[str]:
        """The model's input columns: categorical, numeric, then any raw text the task reads."""
        return list(self.categorical) + list(self.numeric) + self.task.text_columns

    def scoring_rows(self, frame):
        """The rows batch scoring scores (and the drift baseline is made of)."""
        if not self.score_only_not_positive:
            return frame
        return frame[frame[self.target].ne(1) | frame[self.target].isna()]

    def rows_in_window(self, frame, start, end):
        """The rows a scoring partition [start, end) scores: those whose ``event_time`` falls
        in it (all without one), then what the domain's ``select_rows`` keeps of them."""
        if self.event_time is not None:
            import pandas as pd

            times = pd.to_datetime(frame[self.event_time], utc=True)
            frame = frame[(times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))]
        return frame if self.select_rows is None else self.select_rows(frame)

    def window_filter(self, partition: str) -> str:
        """Which rows a partition leaves out, in words (empty: none)."""
        parts = [f"only rows whose {self.event_time} falls in {partition}" if self.event_time else "",
                 "only the rows the domain's select_rows keeps" if self.select_rows is not None else ""]  # fmt: skip
        return "; ".join(p for p in parts if p)

    @property
    def scoring_filter(self) -> str:
        """Which rows batch scoring leaves out, in words (empty: none)."""
        if not self.score_only_not_positive:
            return ""
        return f"{self.target} = 1 ({self.positive_label}) is not scored"

    @property
    def frame_columns(self) -> list[str]:
        """What the feature frame holds: id, features, labels, and what the split and the
        baselines read (a time column, a lag to forecast with)."""
        text = [self.text_input.text_column] if self.text_input is not None else []
        return list(dict.fromkeys([self.id_column, *self.features, *self.targets, *self.task.extra_columns, *text]))

    def feature_frame(self, current):
        """The model's input frame from the table's current state (through
        ``make_features`` when the domain has one): id, features, labels. Rows without a
        label are scored but not trained on."""
        source = current if self.make_features is None else self.make_features(current)
        wanted = self.frame_columns
        missing = [c for c in wanted if c not in source.columns]
        if missing:
            where = (self.source or f"{self.table}/current") if self.make_features is None else f"the {self.name} feature function's output"
            raise ValueError(
                f"{where} lacks columns {', '.join(missing)} that {self.name}/features needs; "
                f"restore them in the table registry and re-ingest, or change the {self.name} domain's columns"
            )
        out = source[wanted].reset_index(drop=True)
        out.attrs = dict(source.attrs)  # e.g. series_skipped: reported by <name>/features
        return out


@dataclass(frozen=True)
class DomainExtras:
    """A domain's own assets beyond the shared ones, and which of their keys join its
    scoring job."""

    assets: Sequence = ()
    scoring_keys: Sequence = ()  # dagster AssetKeys
    jobs: Sequence = ()  # the domain's own jobs (vitals: scoring each micro-batch as it lands)
    # the domain's own sensors; one named like a table's raw sensor (``<table>_raw_sensor``)
    # takes that name, and the table's per-date ingest sensor becomes ``<table>_daily_raw_sensor``
    sensors: Sequence = ()
    streams: Sequence["StreamAsset"] = ()  # assets with one dynamic partition per raw object


@dataclass(frozen=True)
class StreamAsset:
    """An asset partitioned by raw object (dynamic partitions its sensor adds): what the
    demo materialises for the sample's objects in one run."""

    key: Any  # dagster AssetKey
    partitions_def: Any  # dagster DynamicPartitionsDefinition
    partitions: Callable[[Any], list[str]]  # lake -> the partition of every raw object there, in key order


@dataclass(frozen=True)
class DomainPlugin:
    """One registry entry: the domain's model declaration and, loaded only when the
    code location is built (the extra assets import the domain module), its extras."""

    domain: Domain
    extras: Callable[[], DomainExtras] | None = None
    # lake -> the newest scoring partition with data to score (the demo scores it); None:
    # the cadence's last complete partition (a domain whose scoring rows are selected
    # whatever the partition, like co2's latest weeks)
    latest_partition: Callable[[Any], str | None] | None = None

    def load_extras(self) -> DomainExtras:
        return self.extras() if self.extras is not None else DomainExtras()


# The registry: each module defines PLUGIN. Adding a domain is one line here.
DOMAIN_MODULES: tuple[str, ...] = (f"{__name__}.employees", f"{__name__}.co2", f"{__name__}.reviews", f"{__name__}.vitals")


def all_plugins() -> list[DomainPlugin]:
    return [importlib.import_module(module).PLUGIN for module in DOMAIN_MODULES]


def all_domains() -> list[Domain]:
    return [plugin.domain for plugin in all_plugins()]
