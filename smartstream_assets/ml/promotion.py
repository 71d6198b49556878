"""The promotion rule, one place for every domain: pure, so it is tested without
MLflow or Dagster.

A candidate may serve when it meets the domain's quality bar AND is not worse than
the champion measured on the candidate's own holdout. The first champion is
promoted without approval (a fresh deployment should produce scores); replacing a
champion waits for a person when the domain requires approval.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .fairness import unmeasured_reason

PROMOTE, HOLD, REJECT = "promote", "hold", "reject"

# Compared on the same holdout; a tie keeps the newer model.
PRIMARY_METRIC = "roc_auc"


@dataclass(frozen=True)
class GateInput:
    candidate: dict[str, float]  # holdout metrics of the candidate
    fairness_difference: float  # worst demographic-parity difference over the facets
    champion: dict[str, float] | None = None  # the champion's metrics on the SAME holdout
    champion_version: str | None = None
    # protected facets with no measured fairness: the gate fails closed on them
    fairness_missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    action: Literal["promote", "hold", "reject"]
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """What the deployment asset reports: promoted / held for approval / rejected."""
        return {PROMOTE: "promoted", HOLD: "held for approval", REJECT: "rejected"}[self.action]


def decide_promotion(gate: GateInput, bar, *, requires_approval: bool) -> Decision:
    """Promote, hold for approval, or reject, with every reason that led there."""
    failures = []
    roc_auc, f1 = gate.candidate.get("roc_auc", float("nan")), gate.candidate.get("f1", float("nan"))
    if not roc_auc >= bar.min_roc_auc:  # `not >=` also catches NaN
        failures.append(f"ROC AUC {roc_auc:.3f} is below the bar {bar.min_roc_auc:.3f}")
    if not f1 >= bar.min_f1:
        failures.append(f"F1 {f1:.3f} is below the bar {bar.min_f1:.3f}")
    if gate.fairness_missing:
        failures.append(unmeasured_reason(gate.fairness_missing))
    if not gate.fairness_difference <= bar.max_demographic_parity_difference:
        failures.append(
            f"demographic-parity difference {gate.fairness_difference:.3f} is above the bar "
            f"{bar.max_demographic_parity_difference:.3f}"
        )
    if gate.champion is not None:
        ours, theirs = gate.candidate[PRIMARY_METRIC], gate.champion[PRIMARY_METRIC]
        if ours < theirs:
            failures.append(
                f"worse than champion v{gate.champion_version} on the candidate's holdout: "
                f"{PRIMARY_METRIC} {ours:.3f} < {theirs:.3f}"
            )
    if failures:
        return Decision(REJECT, failures)

    passed = [f"ROC AUC {roc_auc:.3f} >= {bar.min_roc_auc:.3f}, F1 {f1:.3f} >= {bar.min_f1:.3f}, "
              f"demographic-parity difference {gate.fairness_difference:.3f} <= {bar.max_demographic_parity_difference:.3f}"]  # fmt: skip
    if gate.champion is None:
        return Decision(PROMOTE, passed + ["no champion yet: the first one is promoted without approval"])
    passed.append(
        f"not worse than champion v{gate.champion_version}: {PRIMARY_METRIC} "
        f"{gate.candidate[PRIMARY_METRIC]:.3f} >= {gate.champion[PRIMARY_METRIC]:.3f}"
    )
    if requires_approval:
        return Decision(HOLD, passed + ["replacing a champion needs approval: materialise the approvals asset"])
    return Decision(PROMOTE, passed)
