"""The promotion gate, approval and the drift baseline against a real MLflow store
(sqlite tracking + registry, file artifacts)."""

from dataclasses import replace
from datetime import datetime, timezone

import numpy as np
import pytest

from smartstream_assets.domains import QualityBar
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.ml import deployment
from smartstream_assets.ml.fairness import fairness_report
from smartstream_assets.ml.registry import CHAMPION, Registry
from smartstream_assets.ml.scoring import score_batch
from smartstream_assets.ml.training import SearchSettings, train_classifier
from smartstream_assets.producers.employees import EmployeeSimulator

D = replace(ATTRITION, registered_model="test-attrition", reference_rows=400)
ANY = QualityBar(min_roc_auc=0.0, min_f1=0.0, max_demographic_parity_difference=1.0)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")


@pytest.fixture(scope="module")
def employees():
    return EmployeeSimulator(21).full_load(1500, datetime(2026, 6, 1, tzinfo=timezone.utc))


def log_candidate(registry, frame, seed=1):
    settings = SearchSettings(trials=2, seed=seed, estimators=("random_forest",))
    c = train_classifier(frame, id_column=D.id_column, target=D.target, numeric=list(D.numeric), categorical=list(D.categorical), settings=settings)
    return registry.log_candidate(D, c, fairness_report(c, list(D.facets)), settings, plots={})


def shuffled(frame, seed):
    out = frame.copy()
    out[D.target] = np.random.default_rng(seed).permutation(out[D.target].to_numpy())
    return out


def test_the_gate_needs_a_challenger(registry):
    with pytest.raises(deployment.DeploymentError, match="has no challenger: materialise models/employees_attrition"):
        deployment.run_gate(registry, D, ANY, requires_approval=True)


def test_the_first_champion_is_promoted_with_its_reference_data(registry, employees):
    weak = log_candidate(registry, shuffled(employees, 0))
    outcome = deployment.run_gate(registry, D, ANY, requires_approval=True)
    assert outcome.decision.action == "promote" and outcome.champion_before is None
    assert registry.version(D.registered_model, CHAMPION).version == weak.version == "1"

    version, reference, predictions = registry.reference(D.registered_model)
    assert version.tags["smartstream.reference"] == f"runs:/{version.run_id}/reference"
    assert version.tags["smartstream.gate"] == "promoted"
    # the training sample, filtered like the rows batch scoring scores (no one who has left)
    assert 200 < len(reference) < 400 and reference[D.target].ne(1).all()
    assert list(predictions.columns) == [D.id_column, "probability", "predicted_class"] and len(predictions) == len(reference)
    # the reference predictions are the champion's own on the reference data
    champion = registry.load_pipeline(D.registered_model, version.version)
    again = score_batch(champion, reference, id_column=D.id_column, features=D.features)
    np.testing.assert_allclose(again["probability"], predictions["probability"])


def test_gating_the_champion_again_changes_nothing(registry):
    outcome = deployment.run_gate(registry, D, ANY, requires_approval=True)
    assert outcome.already_champion and outcome.champion_after.version == "1"


def test_a_better_candidate_is_held_until_a_person_approves_it(registry, employees):
    strong = log_candidate(registry, employees, seed=2)
    outcome = deployment.run_gate(registry, D, ANY, requires_approval=True)
    assert outcome.decision.action == "hold"
    assert outcome.gate.candidate["roc_auc"] > outcome.gate.champion["roc_auc"]  # both on the candidate's holdout
    assert registry.version(D.registered_model, CHAMPION).version == "1"
    assert registry.get_version(D.registered_model, strong.version).tags["smartstream.gate"] == "held_for_approval"

    with pytest.raises(deployment.DeploymentError, match="say who approves"):
        deployment.approve(registry, D, "", "  ")
    approved = deployment.approve(registry, D, "", "alice", note="looks right")
    assert approved.version == strong.version == "2"
    assert approved.tags["smartstream.approved_by"] == "alice" and approved.tags["smartstream.gate"] == "promoted"
    version, reference, _ = registry.reference(D.registered_model)
    assert version.version == "2" and reference[D.target].ne(1).all()


def test_a_candidate_worse_than_the_champion_is_rejected_and_cannot_be_approved(registry, employees):
    worse = log_candidate(registry, shuffled(employees, 1), seed=3)
    outcome = deployment.run_gate(registry, D, ANY, requires_approval=False)
    assert outcome.decision.action == "reject"
    assert any(r.startswith("worse than champion v2 on the candidate's holdout") for r in outcome.decision.reasons)
    assert registry.version(D.registered_model, CHAMPION).version == "2"
    with pytest.raises(deployment.DeploymentError, match=f"v{worse.version} is not held for approval \\(gate: rejected\\)"):
        deployment.approve(registry, D, worse.version, "bob")


def test_a_candidate_below_the_domains_bar_is_rejected(registry, employees):
    log_candidate(registry, shuffled(employees, 2), seed=4)
    outcome = deployment.run_gate(registry, D, D.quality_bar, requires_approval=False)
    assert outcome.decision.action == "reject"
    assert any("is below the bar" in r for r in outcome.decision.reasons)


def test_using_a_registry_leaves_mlflows_process_settings_as_they_were(registry, monkeypatch):
    # mlflow.set_tracking_uri also sets $MLFLOW_TRACKING_URI: left behind, it would send the
    # next Registry() (another resource, another test) to this store
    import os

    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    champion = registry.version(D.registered_model, CHAMPION)
    registry.load_pipeline(D.registered_model, champion.version)
    registry.load_dict(champion.run_id, "feature_importance.json")
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() != registry.tracking_uri
    assert Registry().tracking_uri != registry.tracking_uri
