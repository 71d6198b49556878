"""The gate decides on the version its upstream candidate materialisation registered, the
fairness rule fails closed in the check and the gate alike, and an approval shows on the
gate's page: through the real assets (``dagster.materialize``) on a real MLflow store.

Candidates are trained once per module and logged straight to the registry (training is
the slow part); the candidate asset's materialisation is reported to the instance with the
``model_version`` entry the candidate asset records."""

from dataclasses import replace
from datetime import datetime, timezone
from functools import cache

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from smartstream_assets.assets.ml import asset_keys, build_ml_assets, fairness_check
from smartstream_assets.definitions import defs
from smartstream_assets.domains import QualityBar
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.ml import deployment
from smartstream_assets.ml.fairness import FacetFairness, fairness_report
from smartstream_assets.ml.registry import CHALLENGER, CHAMPION, Registry
from smartstream_assets.ml.training import SearchSettings, train_classifier
from smartstream_assets.producers.employees import EmployeeSimulator

from .helpers import ml_resources

D = replace(ATTRITION, reference_rows=400)
KEYS = asset_keys(D)
ANY = QualityBar(max_fairness=1.0)  # no metric rule: any candidate passes
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
LENIENT_GATE = {
    "ops": {
        "employees__attrition_champion": {
            "config": {"thresholds": {"roc_auc": 0.0, "f1": 0.0}, "max_fairness": 1.0}
        }
    }
}


@pytest.fixture(scope="module")
def trained():
    employees = EmployeeSimulator(21).full_load(1500, datetime(2026, 6, 1, tzinfo=timezone.utc))

    @cache
    def train(seed: int, shuffle: int | None = None):
        frame = employees.copy()
        if shuffle is not None:
            frame[D.target] = np.random.default_rng(shuffle).permutation(frame[D.target].to_numpy())
        settings = SearchSettings(trials=2, seed=seed, estimators=("random_forest",))
        c = train_classifier(frame, id_column=D.id_column, target=D.target, numeric=list(D.numeric), categorical=list(D.categorical), settings=settings)
        return c, fairness_report(c, list(D.facets)), settings

    return train


class Store:
    """A fresh MLflow store and Dagster instance for one test."""

    def __init__(self, tmp_path, trained):
        self.trained = trained
        self.tracking_uri = f"sqlite:///{tmp_path}/mlflow.db"
        self.registry = Registry(self.tracking_uri)
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = ml_resources(str(tmp_path / "lake"), self.tracking_uri, "")

    def register(self, seed: int, shuffle: int | None = None, record: bool = True) -> str:
        """Log a candidate (it becomes the challenger); ``record``: as <domain>/<model>_candidate would,
        with a materialisation of the candidate asset naming the version."""
        c, fairness, settings = self.trained(seed, shuffle)
        logged = self.registry.log_candidate(D, c, fairness, settings, plots={})
        if record:
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization(asset_key=KEYS["model"], metadata={"model_version": logged.version})
            )
        return logged.version

    def materialize(self, key, run_config=None) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.assets(key), resources=self.resources,
            instance=self.instance, run_config={**QUIET, **(run_config or {})}, raise_on_error=False,
        )  # fmt: skip
        failures = [e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert result.success, "\n".join(failures)
        return result


def meta(result, key: dg.AssetKey) -> dict:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


@pytest.fixture
def store(tmp_path, trained):
    return Store(tmp_path, trained)


# ----------------------------------------------------------- the gate's version


@pytest.mark.slow
def test_the_gate_evaluates_the_version_its_candidate_materialisation_registered_not_the_moved_alias(store):
    first = store.register(seed=2)
    second = store.register(seed=3, record=False)  # a concurrent run's candidate: the alias moved on
    assert store.registry.version(D.registered_model, CHALLENGER).version == second != first

    gate = meta(store.materialize(KEYS["deployment"], LENIENT_GATE), KEYS["deployment"])
    assert gate["candidate_version"] == first and gate["challenger_now"] == second
    assert gate["status"] == "promoted" and gate["champion_after"] == first
    assert f"the challenger alias has since moved to v{second}" in gate["evaluated"]
    assert store.registry.version(D.registered_model, CHAMPION).version == first
    # the other candidate is untouched: its own gate decides on it
    assert "smartstream.gate" not in store.registry.get_version(D.registered_model, second).tags


@pytest.mark.slow
def test_the_gate_without_a_candidate_materialisation_says_to_materialise_the_candidate(store):
    store.register(seed=2, record=False)  # in the registry, but no <domain>/…_candidate materialisation on this instance
    result = dg.materialize(
        list(defs.assets), selection=dg.AssetSelection.assets(KEYS["deployment"]), resources=store.resources,
        instance=store.instance, run_config=QUIET, raise_on_error=False,
    )  # fmt: skip
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "materialise employees/attrition_candidate first, then employees/attrition_champion" in event.event_specific_data.error.message
    assert store.registry.version(D.registered_model, CHAMPION) is None


# ------------------------------------------------------------------- approval


@pytest.mark.slow
def test_an_approval_records_the_promotion_and_the_gate_page_shows_it_approved(store):
    weak = store.register(seed=1, shuffle=0)
    assert meta(store.materialize(KEYS["deployment"], LENIENT_GATE), KEYS["deployment"])["status"] == "promoted"
    strong = store.register(seed=2)
    held = meta(store.materialize(KEYS["deployment"], LENIENT_GATE), KEYS["deployment"])
    assert held["status"] == "held for approval" and held["deployment_status"] == "held_for_approval"
    assert held["candidate_version"] == strong != weak

    config = {"ops": {"employees__attrition_approval": {"config": {"approved_by": " dana ", "note": "checked"}}}}
    approval = meta(store.materialize(KEYS["approval"], config), KEYS["approval"])
    assert approval["promoted_version"] == strong and approval["approved_by"] == "dana"
    assert approval["deployment_status"] == "approved" and approval["note"] == "checked"
    assert store.registry.version(D.registered_model, CHAMPION).version == strong

    # the gate's page: its latest status comes after its last materialisation, and says approved
    [observation] = store.instance.fetch_observations(KEYS["deployment"], limit=1).records
    [gate_materialization] = store.instance.fetch_materializations(KEYS["deployment"], limit=1).records
    assert observation.storage_id > gate_materialization.storage_id
    seen = {k: v.value for k, v in observation.asset_observation.metadata.items()}
    assert seen["deployment_status"] == "approved" and seen["promoted_version"] == strong
    assert seen["approved_by"] == "dana" and seen["champion_after"] == strong


def test_materialising_the_approval_without_saying_who_asks_for_the_config(store):
    job = dg.define_asset_job("approve", selection=dg.AssetSelection.assets(KEYS["approval"]))
    resolved = dg.Definitions(assets=list(defs.assets), jobs=[job], resources=defs.resources).resolve_job_def("approve")
    config_field = resolved.run_config_schema.config_type.fields["ops"].config_type.fields["employees__attrition_approval"]
    assert config_field.is_required  # the UI's "Materialize" opens the config form
    with pytest.raises(dg.DagsterInvalidConfigError, match="approved_by"):
        dg.materialize(
            list(defs.assets), selection=dg.AssetSelection.assets(KEYS["approval"]), resources=store.resources,
            instance=store.instance, run_config=QUIET, raise_on_error=False,
        )  # fmt: skip


# ------------------------------------------------------------------- fairness


def facet(dp: float, eo: float) -> FacetFairness:
    return FacetFairness("f", pd.DataFrame(), dp, 1 - dp, eo)


def test_the_fairness_check_fails_closed_with_error_when_a_protected_facet_was_not_measured():
    assert D.gated_facets == ["Gender"]
    check = fairness_check(KEYS["model"], D, {"City": facet(0.05, 0.05)})
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["unmeasured_protected_facets"].value == ["Gender"]
    assert "fairness of protected facet Gender was not measured" in check.description
    nan = fairness_check(KEYS["model"], D, {"Gender": facet(float("nan"), float("nan")), "City": facet(0.05, 0.05)})
    assert not nan.passed and nan.severity == dg.AssetCheckSeverity.ERROR


def test_the_fairness_check_blocks_the_gate_for_protected_facets():
    [candidate] = [a for a in build_ml_assets(D) if KEYS["model"] in a.keys]
    [spec] = candidate.check_specs
    assert spec.name == "fairness" and spec.blocking
    unprotected = replace(D, facets=(), protected_facets=())
    [candidate] = [a for a in build_ml_assets(unprotected) if KEYS["model"] in a.keys]
    assert not next(iter(candidate.check_specs)).blocking  # nothing to protect: nothing to block on


def test_protected_facets_a_domain_does_not_measure_are_a_definition_error():
    with pytest.raises(dg.DagsterInvalidDefinitionError, match="protected_facets Race are not among its facets \\(Gender, City\\)"):
        build_ml_assets(replace(D, protected_facets=("Gender", "Race")))
