"""The promotion rule, one place for every domain and task kind: pure, so it is tested
without MLflow or Dagster.

A candidate may serve when it meets the domain's quality bar (each metric's rule, the
baselines it must beat, fairness on the protected facets) AND is not worse than the
champion measured on the candidate's own holdout, on the task's primary metric in its
direction. The first champion is promoted without approval (a fresh deployment should
produce scores); replacing a champion waits for a person when the domain requires it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .fairness import unmeasured_reason
from .tasks import MAX, MIN, display

PROMOTE, HOLD, REJECT = "promote", "hold", "reject"

# The binary tasks' primary metric (compared on the same holdout; a tie keeps the newer model).
PRIMARY_METRIC = "roc_auc"


@dataclass(frozen=True)
class GateInput:
    candidate: dict[str, float]  # holdout metrics of the candidate (from its evaluation.json)
    fairness_difference: float  # worst gated fairness value over the protected facets
    champion: dict[str, float] | None = None  # the champion's metrics on the SAME holdout
    champion_version: str | None = None
    # protected facets with no measured fairness: the gate fails closed on them
    fairness_missing: tuple[str, ...] = ()
    primary_metric: str = PRIMARY_METRIC
    primary_direction: str = MAX
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> metrics, same holdout
    fairness_name: str = "demographic-parity difference"


@dataclass(frozen=True)
class Decision:
    action: Literal["promote", "hold", "reject"]
    reasons: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """What the champion (gate) asset reports: promoted / held for approval / rejected."""
        return {PROMOTE: "promoted", HOLD: "held for approval", REJECT: "rejected"}[self.action]


def _better_or_equal(ours: float, theirs: float, direction: str) -> bool:
    return ours >= theirs if direction == MAX else ours <= theirs  # NaN: False either way


def decide_promotion(gate: GateInput, bar, *, requires_approval: bool) -> Decision:
    """Promote, hold for approval, or reject, with every reason that led there."""
    failures, passed = [], []
    for metric, (op, threshold) in bar.metrics.items():
        value = gate.candidate.get(metric, float("nan"))
        ok = value >= threshold if op == ">=" else value <= threshold  # NaN fails both
        if ok:
            passed.append(f"{display(metric)} {value:.3f} {op} {threshold:.3f}")
        else:
            side = "below" if op == ">=" else "above"
            failures.append(f"{display(metric)} {value:.3f} is {side} the bar {threshold:.3f}")
    metric, direction = gate.primary_metric, gate.primary_direction
    ours = gate.candidate.get(metric, float("nan"))
    for name, ratio in bar.beat_baselines.items():
        theirs = gate.baselines.get(name, {}).get(metric)
        if theirs is None:
            failures.append(f"baseline {name} was not measured: the bar requires beating it")
            continue
        target = ratio * theirs
        word = "at most" if direction == MIN else "at least"
        if _better_or_equal(ours, target, direction):
            passed.append(f"{display(metric)} {ours:.3f} beats baseline {name} ({theirs:.3f}; {word} {ratio:g} x)")
        else:
            failures.append(
                f"{display(metric)} {ours:.3f} does not beat baseline {name}: needs {word} {target:.3f} ({ratio:g} x {theirs:.3f})"
            )
    if gate.fairness_missing:
        failures.append(unmeasured_reason(gate.fairness_missing))
    if bar.max_fairness is not None:
        if gate.fairness_difference <= bar.max_fairness:
            passed.append(f"{gate.fairness_name} {gate.fairness_difference:.3f} <= {bar.max_fairness:.3f}")
        else:
            failures.append(f"{gate.fairness_name} {gate.fairness_difference:.3f} is above the bar {bar.max_fairness:.3f}")
    if gate.champion is not None:
        theirs = gate.champion.get(metric, float("nan"))
        if not _better_or_equal(ours, theirs, direction):
            sign = "<" if direction == MAX else ">"
            failures.append(
                f"worse than champion v{gate.champion_version} on the candidate's holdout: "
                f"{metric} {ours:.3f} {sign} {theirs:.3f}"
            )
    if failures:
        return Decision(REJECT, failures)

    passed = [", ".join(passed)] if passed else ["no quality bar set"]
    if gate.champion is None:
        return Decision(PROMOTE, passed + ["no champion yet: the first one is promoted without approval"])
    sign = ">=" if direction == MAX else "<="
    passed.append(f"not worse than champion v{gate.champion_version}: {metric} {ours:.3f} {sign} {gate.champion[metric]:.3f}")
    if requires_approval:
        return Decision(HOLD, passed + ["replacing a champion needs approval: materialise the approval asset"])
    return Decision(PROMOTE, passed)
