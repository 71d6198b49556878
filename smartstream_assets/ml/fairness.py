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


def fairness_report(candidate, facets: list[str]) -> dict[str, FacetFairness]:
    """Every facet of a trained ``training.Candidate``, on its holdout."""
    target = candidate.holdout.columns[-1]
    return {
        facet: facet_fairness(
            candidate.holdout[target],
            candidate.holdout_pred,
            candidate.holdout[facet].rename(facet),
            train_labels=candidate.train[target],
            train_groups=candidate.train[facet],
        )
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
