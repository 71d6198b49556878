"""Domains: what differs between employees, co2, reviews and vitals, as parameters.

The shared mechanisms (training with search, registry, promotion gate, scoring,
drift, retraining) are in ``smartstream_assets.ml`` and built into assets by
``smartstream_assets.assets.ml``; a domain module declares its model(s) with a
``ClassifierDomain`` and adds what only it has. Adding a domain is one module and
one entry in ``DOMAIN_MODULES``: the module defines ``PLUGIN``, a ``DomainPlugin``
holding its ``ClassifierDomain`` and, loaded lazily, its extra assets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QualityBar:
    """What a candidate must reach before it may serve (on its own holdout)."""

    min_roc_auc: float = 0.75
    min_f1: float = 0.55
    max_demographic_parity_difference: float = 0.35


@dataclass(frozen=True)
class FairnessThresholds:
    """Demographic-parity / equalized-odds differences per facet: above ``warn`` the
    fairness check warns, above ``error`` it fails with severity ERROR."""

    warn: float = 0.2
    error: float = 0.35


@dataclass(frozen=True)
class Cadence:
    """When a domain's batch scoring runs: a cron in ``timezone``; ``label`` names the
    schedule (``<domain>_<label>_scoring``)."""

    cron: str = "0 6 1 * *"
    timezone: str = "UTC"
    label: str = "monthly"
    description: str = "the 1st of every month, 06:00 UTC"


@dataclass(frozen=True)
class ClassifierDomain:
    """One binary classifier trained on a table's current state and scored in batch."""

    name: str  # the domain: features/<name>, predictions/<name>, reports/<name>_drift
    table: str  # the source table of the registry (current/<table>)
    model: str  # models/<model>, deployments/<model>, approvals/<model>
    registered_model: str  # the MLflow registered model
    id_column: str
    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    facets: tuple[str, ...] = ()  # fairness is measured and reported by these columns
    # the facets the gate's parity bar and the check's ERROR apply to (empty: all facets);
    # the others warn: a location can differ in base rates without anyone being wronged
    protected_facets: tuple[str, ...] = ()
    quality_bar: QualityBar = field(default_factory=QualityBar)
    fairness: FairnessThresholds = field(default_factory=FairnessThresholds)
    requires_approval: bool = True  # replacing a champion waits for a person
    drift_share_threshold: float = 0.3  # feature drift share that triggers retraining
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
    # what class 0 and class 1 are called in charts, and their colours (empty: the default)
    class_labels: tuple[str, str] = ("0", "1")
    class_colours: tuple[str, ...] = ()
    # (logged metric, column header) the demo's summary prints for the champion
    summary_metrics: tuple[tuple[str, str], ...] = (("roc_auc", "ROC AUC"), ("f1", "F1"))

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
    def gated_facets(self) -> list[str]:
        return list(self.protected_facets or self.facets)

    @property
    def features(self) -> list[str]:
        return list(self.categorical) + list(self.numeric)

    def scoring_rows(self, frame):
        """The rows batch scoring scores (and the drift baseline is made of)."""
        if not self.score_only_not_positive:
            return frame
        return frame[frame[self.target].ne(1) | frame[self.target].isna()]

    @property
    def scoring_filter(self) -> str:
        """Which rows batch scoring leaves out, in words (empty: none)."""
        if not self.score_only_not_positive:
            return ""
        return f"{self.target} = 1 ({self.positive_label}) is not scored"

    def feature_frame(self, current):
        """The model's input frame from the table's current state: id, features, label.
        Rows without a label are scored but not trained on."""
        wanted = [self.id_column, *self.features, self.target]
        missing = [c for c in wanted if c not in current.columns]
        if missing:
            raise ValueError(
                f"current/{self.table} lacks columns {', '.join(missing)} that features/{self.name} needs; "
                f"restore them in the table registry and re-ingest, or change the {self.name} domain's columns"
            )
        return current[wanted].reset_index(drop=True)


@dataclass(frozen=True)
class DomainExtras:
    """A domain's own assets beyond the shared ones, and which of their keys join its
    scoring job."""

    assets: Sequence = ()
    scoring_keys: Sequence = ()  # dagster AssetKeys


@dataclass(frozen=True)
class DomainPlugin:
    """One registry entry: the domain's model declaration and, loaded only when the
    code location is built (the extra assets import the domain module), its extras."""

    domain: ClassifierDomain
    extras: Callable[[], DomainExtras] | None = None

    def load_extras(self) -> DomainExtras:
        return self.extras() if self.extras is not None else DomainExtras()


# The registry: each module defines PLUGIN. Adding a domain is one line here.
DOMAIN_MODULES: tuple[str, ...] = (f"{__name__}.employees",)


def all_plugins() -> list[DomainPlugin]:
    return [importlib.import_module(module).PLUGIN for module in DOMAIN_MODULES]


def all_domains() -> list[ClassifierDomain]:
    return [plugin.domain for plugin in all_plugins()]
