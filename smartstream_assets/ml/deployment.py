"""The promotion gate against the registry: what the deployments and approvals assets do.

No Dagster here (the assets are thin wrappers); MLflow through ``registry.Registry``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .fairness import fairness_form, protected_fairness
from .promotion import PROMOTE, Decision, GateInput, decide_promotion
from ..keys import asset_keys, spelled
from .registry import CHALLENGER, CHAMPION, Registry, VersionInfo
from .scoring import missing_columns, model_input_columns, score_batch

GATE_TAG = "smartstream.gate"
HELD = "held_for_approval"


class DeploymentError(RuntimeError):
    """The registry is not in a state the step can act on; the message says what to do."""


@dataclass
class GateOutcome:
    decision: Decision
    gate: GateInput
    candidate: VersionInfo
    champion_before: VersionInfo | None
    champion_after: VersionInfo | None
    already_champion: bool = False
    challenger_now: str | None = None  # the version behind the challenger alias when the gate ran

    @property
    def alias_moved(self) -> bool:
        """The challenger alias points at another version than the one evaluated."""
        return self.challenger_now is not None and self.challenger_now != self.candidate.version


def run_gate(registry: Registry, domain, bar, *, requires_approval: bool, version: str | None = None) -> GateOutcome:
    """Evaluate a candidate against the bar and the champion; promote, hold or reject it.

    ``version`` is the candidate to decide on: the version the upstream candidate
    materialisation registered. The challenger alias may have moved since (a concurrent
    run registered another candidate); the gate still decides on ``version``. Without it
    (tests, scripts), the challenger is evaluated."""
    name = domain.registered_model
    keys = asset_keys(domain)
    challenger = registry.version(name, CHALLENGER)
    if version is None:
        candidate = challenger
        if candidate is None:
            raise DeploymentError(f"{name} has no challenger: materialise {spelled(keys['model'])} first")
    else:
        try:
            candidate = registry.get_version(name, str(version))
        except Exception:  # noqa: BLE001 - MlflowException: the version is gone
            raise DeploymentError(
                f"{name} has no version {version}, the one {spelled(keys['model'])} registered; "
                f"materialise {spelled(keys['model'])} again"
            ) from None
    champion = registry.version(name, CHAMPION)
    task = domain.task
    evaluation = read_evaluation(registry, domain, candidate)
    measured = evaluation.get("fairness", {})
    fairness = protected_fairness({facet: measured.get(facet, {}).get("gated") for facet in domain.gated_facets}, domain.gated_facets)
    candidate_metrics = {k: v for k, v in evaluation.get("metrics", {}).items() if v is not None}
    gate_fields = dict(
        fairness_missing=fairness.missing,
        primary_metric=task.primary_metric,
        primary_direction=task.direction(task.primary_metric),
        baselines=evaluation.get("baselines", {}),
        fairness_name=fairness_form(task).gated_name,
    )
    challenger_now = challenger.version if challenger else None
    if champion is not None and champion.version == candidate.version:
        gate = GateInput(candidate_metrics, fairness.worst, **gate_fields)
        decision = Decision(PROMOTE, [f"v{candidate.version} is already the champion"])
        return GateOutcome(decision, gate, candidate, champion, champion, already_champion=True, challenger_now=challenger_now)

    champion_metrics = None
    if champion is not None:
        holdout = registry.load_frame(candidate.run_id, "data/holdout.parquet")
        served = registry.load_pipeline(name, champion.version)
        needs = model_input_columns(served, domain.features)
        missing = missing_columns(needs, holdout.columns)
        if missing:
            raise DeploymentError(
                f"champion {name} v{champion.version} needs columns {', '.join(missing)} that the holdout of "
                f"challenger v{candidate.version} lacks, so the two cannot be compared; restore the columns in "
                f"{spelled(keys['features'])} and materialise {spelled(keys['model'])} again"
            )
        champion_metrics = task.metrics(task.y(holdout), task.predict(served, holdout[needs]))
    gate = GateInput(candidate_metrics, fairness.worst, champion_metrics, champion.version if champion else None, **gate_fields)
    decision = decide_promotion(gate, bar, requires_approval=requires_approval)
    if decision.action == PROMOTE:
        promote(registry, domain, candidate.version)
    else:
        registry.tag_version(name, candidate.version, {GATE_TAG: HELD if decision.action == "hold" else "rejected", "smartstream.gate_reasons": "; ".join(decision.reasons)[:5000]})
    return GateOutcome(decision, gate, candidate, champion, registry.version(name, CHAMPION), challenger_now=challenger_now)


def read_evaluation(registry: Registry, domain, candidate: VersionInfo) -> dict:
    """The candidate's ``evaluation.json``: the document the gate decides on."""
    from mlflow.exceptions import MlflowException

    try:
        return registry.evaluation(candidate.run_id)
    except (MlflowException, OSError):  # the artifact is not there
        model = spelled(asset_keys(domain)["model"])
        raise DeploymentError(
            f"{domain.registered_model} v{candidate.version} has no evaluation.json (registered before "
            f"evaluations were logged, or its run's artifacts are gone); materialise {model} again"
        ) from None


def promote(registry: Registry, domain, version: str, tags: dict | None = None) -> None:
    """Make ``version`` the champion; its training sample and the predictions it makes on
    it become the drift baseline, stored with the version."""
    name = domain.registered_model
    info = registry.get_version(name, version)
    reference = domain.scoring_rows(registry.load_frame(info.run_id, "data/train_sample.parquet"))
    pipeline = registry.load_pipeline(name, version)
    predictions = score_batch(pipeline, reference, id_column=domain.id_column, features=domain.features, task=domain.task)
    store_baselines(registry, domain, info.run_id, reference)
    registry.promote(name, version, reference, predictions, tags={GATE_TAG: "promoted", **(tags or {})})


BASELINE_ARTIFACTS = {"statistics": "baselines/statistics.json", "constraints": "baselines/constraints.json", "bias": "baselines/bias.json"}


def store_baselines(registry: Registry, domain, run_id: str, reference) -> None:
    """Model Monitor's baselines, stored with the version at promotion: ``statistics.json`` +
    ``constraints.json`` of the reference rows' features (``ml.monitoring``), and
    ``bias.json``, the per-facet fairness the candidate measured on its holdout (Clarify's
    pre- and post-training form: label difference, MAE ratio, mean residual per group)."""
    from mlflow.exceptions import MlflowException

    from .monitoring import data_quality_baseline

    tolerance = domain.monitoring.range_tolerance_std if domain.monitoring else 3.0
    baseline = data_quality_baseline(reference[domain.features], range_tolerance_std=tolerance)
    registry.log_bytes(run_id, json.dumps(baseline.statistics, indent=2).encode(), BASELINE_ARTIFACTS["statistics"])
    registry.log_bytes(run_id, json.dumps(baseline.constraints, indent=2).encode(), BASELINE_ARTIFACTS["constraints"])
    try:
        bias = registry.load_dict(run_id, "fairness.json")
    except (OSError, ValueError, MlflowException):  # logged before fairness.json: said in the file
        bias = {"missing": "the candidate's run has no fairness.json"}
    registry.log_bytes(run_id, json.dumps(bias, indent=2, default=str).encode(), BASELINE_ARTIFACTS["bias"])


def approve(registry: Registry, domain, version: str, approved_by: str, note: str = "") -> VersionInfo:
    """A person approves a candidate the gate held: it becomes the champion."""
    name = domain.registered_model
    if not approved_by.strip():
        raise DeploymentError("say who approves: config approved_by (shown in the registry and the UI)")
    challenger = registry.version(name, CHALLENGER)
    version = approval_version(
        version, name=name, domain=domain, versions=registry.versions(name),
        challenger=challenger.version if challenger else None,
    )  # fmt: skip
    info = registry.get_version(name, version)
    state = info.tags.get(GATE_TAG, "not evaluated")
    if state != HELD:
        raise DeploymentError(
            f"{name} v{version} is not held for approval (gate: {state}); only a candidate the gate "
            "held can be approved: materialise " + spelled(asset_keys(domain)["deployment"])
        )
    promote(registry, domain, version, tags={"smartstream.approved_by": approved_by.strip(), "smartstream.approval_note": note})
    return registry.get_version(name, version)


def approval_version(requested: str, *, name: str, domain, versions: list[VersionInfo], challenger: str | None) -> str:
    """The version the approvals asset's config asks for ("3", "v3"; empty: the challenger),
    checked against the registry's ``versions``. Raises ``DeploymentError`` with one line
    that says what was wrong and which versions wait for approval."""
    keys = asset_keys(domain)
    model, gate, approval = spelled(keys["model"]), spelled(keys["deployment"]), spelled(keys["approval"])
    text = (requested or "").strip()
    if not text:
        if challenger is None:
            raise DeploymentError(
                f"{name} has no challenger to approve; materialise {model} and {gate} first"
            )
        return challenger
    number = text[1:] if text[:1] in ("v", "V") else text
    if not (number.isascii() and number.isdigit()):
        raise DeploymentError(
            f"{approval}: version {requested!r} is not a number; {waiting_for_approval(versions, challenger, domain)}"
        )
    number = str(int(number))
    if not any(v.version == number for v in versions):
        if not versions:
            raise DeploymentError(f"{name} has no versions yet; materialise {model} and {gate} first")
        known = sorted(int(v.version) for v in versions)
        span = f"{known[0]}" if len(known) == 1 else f"{known[0]}-{known[-1]}"
        raise DeploymentError(
            f"{name} has no version {number} (it has {span}); {waiting_for_approval(versions, challenger, domain)}"
        )
    return number


def waiting_for_approval(versions: list[VersionInfo], challenger: str | None, domain) -> str:
    """Which versions the gate held (and what to put in the config), in one clause."""
    held = sorted((int(v.version) for v in versions if v.tags.get(GATE_TAG) == HELD), reverse=True)
    if held:
        listed = ", ".join(map(str, held))
        empty = f", or leave it empty for the challenger v{challenger}" if challenger and int(challenger) in held else ""
        return f"versions waiting for approval: {listed}; set config version to one of them{empty}"
    state = next((v.tags.get(GATE_TAG, "not evaluated") for v in versions if v.version == challenger), None)
    about = f" (challenger: v{challenger}, gate: {state})" if challenger else ""
    return f"no version is waiting for approval{about}; nothing to approve until {spelled(asset_keys(domain)['deployment'])} holds a candidate"
