"""The promotion gate, approval and the drift baseline against a real MLflow store
(sqlite tracking + registry, file artifacts).

Each test is independent of the others and of their order: it gets a registered model of
its own (``d``, a fresh name in the module's store) and builds the versions it needs from
candidates trained once per module (training is the slow part, logging is not)."""

import uuid
from dataclasses import replace
from datetime import datetime, timezone
from functools import cache

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

pytestmark = pytest.mark.slow  # every test trains candidates or logs them to MLflow

D = replace(ATTRITION, registered_model="test-attrition", reference_rows=400)
ANY = QualityBar(max_fairness=1.0)  # no metric rule: any candidate passes


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")


@pytest.fixture
def d():
    """The domain with a registered model of this test's own: no versions, no aliases."""
    return replace(D, registered_model=f"test-attrition-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def employees():
    return EmployeeSimulator(21).full_load(1500, datetime(2026, 6, 1, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def trained(employees):
    """``trained(seed, shuffle=None)``: a candidate, its fairness report and its settings,
    trained once per module; ``shuffle`` permutes the target first (a weak candidate)."""

    @cache
    def train(seed: int, shuffle: int | None = None):
        frame = employees if shuffle is None else shuffled(employees, shuffle)
        settings = SearchSettings(trials=2, seed=seed, estimators=("random_forest",))
        c = train_classifier(frame, id_column=D.id_column, target=D.target, numeric=list(D.numeric), categorical=list(D.categorical), settings=settings)
        return c, fairness_report(c, list(D.facets)), settings

    return train


@pytest.fixture
def log_candidate(registry, d, trained):
    """Log a (cached) candidate as the next version of this test's registered model."""

    def log(seed: int = 1, shuffle: int | None = None):
        c, fairness, settings = trained(seed, shuffle)
        return registry.log_candidate(d, c, fairness, settings, plots={})

    return log


@pytest.fixture
def weak_champion(registry, d, log_candidate):
    """v1, trained on shuffled labels, promoted by the gate: the champion of a first run."""
    weak = log_candidate(seed=1, shuffle=0)
    assert deployment.run_gate(registry, d, ANY, requires_approval=True).decision.action == "promote"
    return weak


def shuffled(frame, seed):
    out = frame.copy()
    out[D.target] = np.random.default_rng(seed).permutation(out[D.target].to_numpy())
    return out


def test_the_gate_needs_a_challenger(registry, d):
    with pytest.raises(deployment.DeploymentError, match="has no challenger: materialise employees/attrition_candidate"):
        deployment.run_gate(registry, d, ANY, requires_approval=True)


def test_the_first_champion_is_promoted_with_its_reference_data(registry, d, log_candidate):
    weak = log_candidate(seed=1, shuffle=0)
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=True)
    assert outcome.decision.action == "promote" and outcome.champion_before is None
    assert registry.version(d.registered_model, CHAMPION).version == weak.version == "1"

    version, reference, predictions = registry.reference(d.registered_model)
    assert version.tags["smartstream.reference"] == f"runs:/{version.run_id}/reference"
    assert version.tags["smartstream.gate"] == "promoted"
    # the training sample, filtered like the rows batch scoring scores (no one who has left)
    assert 200 < len(reference) < 400 and reference[D.target].ne(1).all()
    assert list(predictions.columns) == [D.id_column, "probability", "predicted_class"] and len(predictions) == len(reference)
    # the reference predictions are the champion's own on the reference data
    champion = registry.load_pipeline(d.registered_model, version.version)
    again = score_batch(champion, reference, id_column=D.id_column, features=D.features)
    np.testing.assert_allclose(again["probability"], predictions["probability"])


def test_gating_the_champion_again_changes_nothing(registry, d, weak_champion):
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=True)
    assert outcome.already_champion and outcome.champion_after.version == weak_champion.version == "1"


def test_a_better_candidate_is_held_until_a_person_approves_it(registry, d, weak_champion, log_candidate):
    strong = log_candidate(seed=2)
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=True)
    assert outcome.decision.action == "hold"
    assert outcome.gate.candidate["roc_auc"] > outcome.gate.champion["roc_auc"]  # both on the candidate's holdout
    assert registry.version(d.registered_model, CHAMPION).version == "1"
    assert registry.get_version(d.registered_model, strong.version).tags["smartstream.gate"] == "held_for_approval"

    with pytest.raises(deployment.DeploymentError, match="say who approves"):
        deployment.approve(registry, d, "", "  ")
    approved = deployment.approve(registry, d, "", "alice", note="looks right")
    assert approved.version == strong.version == "2"
    assert approved.tags["smartstream.approved_by"] == "alice" and approved.tags["smartstream.gate"] == "promoted"
    version, reference, _ = registry.reference(d.registered_model)
    assert version.version == "2" and reference[D.target].ne(1).all()


def test_a_candidate_worse_than_the_champion_is_rejected_and_cannot_be_approved(registry, d, log_candidate):
    log_candidate(seed=2)  # a strong first candidate: v1, champion
    assert deployment.run_gate(registry, d, ANY, requires_approval=False).decision.action == "promote"
    # trained on shuffled labels: near chance, like the champion on that holdout; this seed
    # and shuffle give a clear margin (ROC AUC 0.42 < 0.50), which not every pair does
    worse = log_candidate(seed=7, shuffle=5)
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=False)
    assert outcome.decision.action == "reject"
    assert any(r.startswith("worse than champion v1 on the candidate's holdout") for r in outcome.decision.reasons)
    assert registry.version(d.registered_model, CHAMPION).version == "1"
    with pytest.raises(deployment.DeploymentError, match=f"v{worse.version} is not held for approval \\(gate: rejected\\)"):
        deployment.approve(registry, d, worse.version, "bob")


def test_a_candidate_below_the_domains_bar_is_rejected(registry, d, log_candidate):
    log_candidate(seed=4, shuffle=2)
    outcome = deployment.run_gate(registry, d, d.quality_bar, requires_approval=False)
    assert outcome.decision.action == "reject"
    assert any("is below the bar" in r for r in outcome.decision.reasons)
    assert registry.version(d.registered_model, CHAMPION) is None


def test_using_a_registry_leaves_mlflows_process_settings_as_they_were(registry, d, weak_champion, monkeypatch):
    # mlflow.set_tracking_uri also sets $MLFLOW_TRACKING_URI: left behind, it would send the
    # next Registry() (another resource, another test) to this store
    import os

    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    champion = registry.version(d.registered_model, CHAMPION)
    registry.load_pipeline(d.registered_model, champion.version)
    registry.load_dict(champion.run_id, "feature_importance.json")
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() != registry.tracking_uri
    assert Registry().tracking_uri != registry.tracking_uri


def test_the_gate_decides_on_the_version_it_is_given_even_when_the_challenger_alias_moved(registry, d, log_candidate):
    first = log_candidate(seed=2)
    second = log_candidate(seed=3)  # registered by a concurrent run: the challenger now
    assert registry.version(d.registered_model, "challenger").version == second.version
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=True, version=first.version)
    assert outcome.candidate.version == first.version and outcome.challenger_now == second.version and outcome.alias_moved
    assert outcome.decision.action == "promote" and registry.version(d.registered_model, CHAMPION).version == first.version
    assert "smartstream.gate" not in registry.get_version(d.registered_model, second.version).tags


def test_the_gate_fails_with_what_to_do_when_its_version_is_not_in_the_registry(registry, d, log_candidate):
    log_candidate(seed=2)
    with pytest.raises(deployment.DeploymentError, match="has no version 9, the one employees/attrition_candidate registered"):
        deployment.run_gate(registry, d, ANY, requires_approval=True, version="9")


def test_a_candidate_whose_protected_facet_was_not_measured_is_rejected(registry, d, trained):
    c, fairness, settings = trained(2)
    unmeasured = registry.log_candidate(d, c, {"City": fairness["City"]}, settings, plots={})  # no Gender
    outcome = deployment.run_gate(registry, d, ANY, requires_approval=False, version=unmeasured.version)
    assert outcome.decision.action == "reject"
    assert "fairness of protected facet Gender was not measured: a candidate is not deployed without it" in outcome.decision.reasons
    assert registry.version(d.registered_model, CHAMPION) is None
