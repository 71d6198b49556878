"""Fairness of a classifier by facet (e.g. Gender, City), as SageMaker Clarify reports it.

fairlearn computes the post-training metrics: per group selection rate, accuracy
and recall (``MetricFrame``), demographic-parity difference and ratio (the ratio is
Clarify's disparate impact) and equalized-odds difference. The pre-training label
imbalance per group is computed here because fairlearn does not offer it: Clarify's
class imbalance (CI) and difference in proportions of labels (DPL), each group
against the rest of the facet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd


@dataclass
class FacetFairness:
    facet: str
    by_group: pd.DataFrame  # group -> count, selection_rate, accuracy, recall, label_rate, class_imbalance, dpl
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float

    def to_json(self) -> dict:
        return {
            "facet": self.facet,
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
            "by_group": {str(k): v for k, v in self.by_group.to_dict(orient="index").items()},
        }

    @property
    def worst_difference(self) -> float:
        """The larger of the two differences: what the fairness check holds to thresholds."""
        return max(self.demographic_parity_difference, self.equalized_odds_difference)

    # what every task's fairness result says (see RegressionFacetFairness)
    gated_name: ClassVar[str] = "demographic-parity difference"

    @property
    def gated(self) -> float:
        """What the gate holds to the quality bar's ``max_fairness``."""
        return self.demographic_parity_difference

    @property
    def measures(self) -> dict[str, float]:
        return {
            "demographic_parity_difference": self.demographic_parity_difference,
            "demographic_parity_ratio": self.demographic_parity_ratio,
            "equalized_odds_difference": self.equalized_odds_difference,
        }

    def summary(self) -> str:
        return (
            f"demographic-parity difference {self.demographic_parity_difference:.3f}, "
            f"ratio (disparate impact) {self.demographic_parity_ratio:.3f}, "
            f"equalized-odds difference {self.equalized_odds_difference:.3f}"
        )


@dataclass
class RegressionFacetFairness:
    """A regressor's fairness by facet, in Clarify's regression form: per group the MAE and
    its ratio to the overall MAE, the mean residual (prediction - label) and its difference
    from the rest of the facet (post-training), and the label mean and its difference from
    the rest (pre-training, the regression form of DPL). Several outputs: averaged per row."""

    facet: str
    by_group: pd.DataFrame  # group -> count, mae, mae_ratio, mean_residual, residual_difference, label_mean, label_difference
    max_mae_ratio_gap: float  # max over groups of |mae_ratio - 1|
    max_residual_difference: float  # max over groups of |residual_difference|, in label units
    max_label_difference: float  # max over groups of |label_difference| (training labels)

    gated_name: ClassVar[str] = "MAE-ratio gap"

    @property
    def gated(self) -> float:
        return self.max_mae_ratio_gap

    @property
    def worst_difference(self) -> float:
        """What the fairness check holds to thresholds: the MAE-ratio gap (unitless)."""
        return self.max_mae_ratio_gap

    @property
    def measures(self) -> dict[str, float]:
        return {
            "mae_ratio_gap": self.max_mae_ratio_gap,
            "residual_difference": self.max_residual_difference,
            "label_difference": self.max_label_difference,
        }

    def summary(self) -> str:
        return (
            f"MAE-ratio gap {self.max_mae_ratio_gap:.3f} (worst |group MAE / overall MAE - 1|), "
            f"mean-residual difference {self.max_residual_difference:.3g}, "
            f"training label difference {self.max_label_difference:.3g}"
        )

    def to_json(self) -> dict:
        return {
            "facet": self.facet,
            **self.measures,
            "by_group": {str(k): v for k, v in self.by_group.to_dict(orient="index").items()},
        }


def regression_facet_fairness(y_true, y_pred, groups: pd.Series, train_labels=None, train_groups=None) -> RegressionFacetFairness:
    """Per-group error and residual of ``y_pred`` on the holdout, and the training labels'
    difference by group (when given). 2-D labels (several outputs) are averaged per row."""
    y_true, y_pred = _rows(y_true), _rows(y_pred)
    groups = pd.Series(groups).astype(str).reset_index(drop=True)
    data = pd.DataFrame({"abs_error": np.abs(y_pred - y_true), "residual": y_pred - y_true, "group": groups})
    overall_mae = float(data["abs_error"].mean())
    stats = data.groupby("group").agg(count=("abs_error", "size"), mae=("abs_error", "mean"), mean_residual=("residual", "mean"))
    sums = data.groupby("group")["residual"].sum()
    rest = (data["residual"].sum() - sums) / (len(data) - stats["count"]).where(lambda n: n > 0)
    stats["mae_ratio"] = stats["mae"] / overall_mae if overall_mae > 0 else 1.0
    stats["residual_difference"] = stats["mean_residual"] - rest
    label_gap = 0.0
    if train_labels is not None:
        labels = pd.DataFrame({"label": _rows(train_labels), "group": np.asarray(pd.Series(train_groups).astype(str))})
        lsum, lcount = labels.groupby("group")["label"].sum(), labels.groupby("group")["label"].size()
        rest_mean = (labels["label"].sum() - lsum) / (len(labels) - lcount).where(lambda n: n > 0)
        stats = stats.join(pd.DataFrame({"label_mean": lsum / lcount, "label_difference": rest_mean - lsum / lcount}), how="left")
        label_gap = float(np.nanmax(np.abs(stats["label_difference"].to_numpy(dtype=float)))) if stats["label_difference"].notna().any() else 0.0
    stats["count"] = stats["count"].astype(int)
    return RegressionFacetFairness(
        facet=str(groups.name or "facet"),
        by_group=stats,
        max_mae_ratio_gap=float(np.nanmax(np.abs(stats["mae_ratio"].to_numpy(dtype=float) - 1))),
        max_residual_difference=float(np.nanmax(np.abs(stats["residual_difference"].fillna(0).to_numpy(dtype=float)))),
        max_label_difference=label_gap,
    )


def _rows(values) -> np.ndarray:
    """A label or prediction array as one number per row (the mean over outputs)."""
    values = np.asarray(values, dtype=np.float64)
    return values.mean(axis=1) if values.ndim == 2 else values


def facet_fairness(y_true, y_pred, groups: pd.Series, train_labels: pd.Series | None = None, train_groups: pd.Series | None = None) -> FacetFairness:
    """Post-training metrics of ``y_pred`` on the holdout by ``groups``, and the
    pre-training label imbalance of the training labels by group (when given)."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score, recall_score

    y_true, y_pred = np.asarray(y_true).astype(int), np.asarray(y_pred).astype(int)
    groups = pd.Series(groups).astype(str).reset_index(drop=True)
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "accuracy": accuracy_score,
            "recall": lambda t, p: recall_score(t, p, zero_division=0),
            "count": lambda t, p: len(t),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=groups,
    )
    by_group = frame.by_group.astype(float)
    by_group["count"] = by_group["count"].astype(int)
    if train_labels is not None:
        imbalance = label_imbalance(train_labels, train_groups)
        by_group = by_group.join(imbalance, how="left")
    return FacetFairness(
        facet=str(groups.name or "facet"),
        by_group=by_group,
        demographic_parity_difference=float(demographic_parity_difference(y_true, y_pred, sensitive_features=groups)),
        demographic_parity_ratio=float(demographic_parity_ratio(y_true, y_pred, sensitive_features=groups)),
        equalized_odds_difference=float(equalized_odds_difference(y_true, y_pred, sensitive_features=groups)),
    )


def label_imbalance(labels: pd.Series, groups: pd.Series) -> pd.DataFrame:
    """Per group, against the rest of the facet (Clarify's pre-training metrics):
    ``label_rate`` (share of positive labels), ``class_imbalance`` CI = (n_rest - n_g) / n
    and ``dpl`` = label rate of the rest minus that of the group."""
    data = pd.DataFrame({"label": np.asarray(labels).astype(int), "group": np.asarray(pd.Series(groups).astype(str))})
    n = len(data)
    stats = data.groupby("group")["label"].agg(["count", "sum"])
    rest_count = n - stats["count"]
    rest_positive = data["label"].sum() - stats["sum"]
    out = pd.DataFrame(index=stats.index)
    out["label_rate"] = stats["sum"] / stats["count"]
    out["class_imbalance"] = (rest_count - stats["count"]) / n
    out["dpl"] = (rest_positive / rest_count.where(rest_count > 0)) - out["label_rate"]
    return out.astype(float)


def fairness_form(task) -> type:
    """The fairness result class of a task: ``FacetFairness`` for a classifier,
    ``RegressionFacetFairness`` for a regressor (their ``gated_name`` says what the gate holds)."""
    return FacetFairness if task.kind == "binary" else RegressionFacetFairness


def fairness_report(candidate, facets: list[str]) -> dict:
    """Every facet of a trained ``training.Candidate``, on its holdout, in its task's form
    (classification: ``FacetFairness``; regression: ``RegressionFacetFairness``)."""
    task = candidate.task
    y_holdout, y_train = task.y(candidate.holdout), task.y(candidate.train)
    if task.kind == "binary":
        return {
            facet: facet_fairness(
                y_holdout, candidate.holdout_pred, candidate.holdout[facet].rename(facet),
                train_labels=y_train, train_groups=candidate.train[facet],
            )  # fmt: skip
            for facet in facets
        }
    return {
        facet: regression_facet_fairness(
            y_holdout, candidate.holdout_raw, candidate.holdout[facet].rename(facet),
            train_labels=y_train, train_groups=candidate.train[facet],
        )  # fmt: skip
        for facet in facets
    }


# --------------------------------------------------------- the rule for protected facets


class FairnessDefinitionError(ValueError):
    """A domain's fairness declaration cannot be honoured (e.g. protected facets it does not measure)."""


def validate_protected_facets(name: str, facets, protected) -> None:
    """A domain may protect only facets it measures: a protected facet outside ``facets``
    would never have a value, so the gate and the check could never hold it to the bar.
    Raises ``FairnessDefinitionError`` naming the facets."""
    unknown = [f for f in protected if f not in facets]
    if unknown:
        raise FairnessDefinitionError(
            f"domain {name}: protected_facets {', '.join(unknown)} are not among its facets "
            f"({', '.join(facets) or 'none'}); add them to facets or remove them from protected_facets"
        )


@dataclass(frozen=True)
class ProtectedFairness:
    """The worst measured value over the protected facets, and the protected facets with no
    measured value. Fails closed: a missing (or NaN) value is never taken as fair."""

    worst_facet: str | None
    worst: float
    missing: tuple[str, ...] = ()

    @property
    def measured(self) -> bool:
        return not self.missing

    def missing_reason(self) -> str | None:
        return unmeasured_reason(self.missing) if self.missing else None


def unmeasured_reason(missing) -> str:
    """Why a candidate whose protected facets ``missing`` were not measured is rejected."""
    return (
        f"fairness of protected facet{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
        "was not measured: a candidate is not deployed without it"
    )


def protected_fairness(measured: dict, protected) -> ProtectedFairness:
    """The one fairness rule of the gate and the fairness check: ``measured`` maps a facet to
    its value (None or absent: not measured); over ``protected`` the worst value counts and
    every facet without a value is listed as missing."""
    values, missing = {}, []
    for facet in protected:
        value = measured.get(facet)
        if value is None or not np.isfinite(float(value)):
            missing.append(facet)
        else:
            values[facet] = float(value)
    worst_facet = max(values, key=values.get) if values else None
    return ProtectedFairness(worst_facet, values[worst_facet] if worst_facet else 0.0, tuple(missing))
