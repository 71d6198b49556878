"""The cost cleanup (ml/cleanup.py) against a real MLflow store (sqlite tracking and
registry, file artifacts) and a local lake: the dry run lists exactly what the real
run deletes, the champion and the challenger are never touched, the deleted versions'
artifacts leave the disk, and a second run is a no-op.

Each test gets a registered model of its own in the module's store (``store`` logs its
versions with ``mlflow.sklearn.log_model``) and a lake of its own."""

import math
import uuid
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from sklearn.linear_model import LinearRegression

from smartstream_assets.lake import LocalLake
from smartstream_assets.ml.cleanup import (
    CleanupPlan,
    execute_cleanup,
    partition_start,
    plan_cleanup,
)
from smartstream_assets.ml.registry import CHALLENGER, CHAMPION, Registry

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=timezone.utc)
PREFIXES = ["predictions/co2/", "reports/co2/"]
# key -> kept (True) or planned (False) at NOW with a 7-day retention (cutoff 2026-11-03 12:00)
LAKE = {
    "predictions/co2/run_date=2026-10-01-00:00/part.parquet": False,
    "predictions/co2/run_date=2026-11-03-11:00/part.parquet": False,
    "predictions/co2/run_date=2026-11-03-12:00/part.parquet": True,  # exactly at the cutoff
    "predictions/co2/run_date=2026-11-09-23:00/part.parquet": True,
    "reports/co2/drift/run_date=2026-10-20/report.html": False,
    "reports/co2/drift/run_date=2026-11-03/report.html": False,  # starts 12 h before the cutoff
    "reports/co2/drift/run_date=2026-11-04/report.html": True,
}
SKIPPED = {
    "predictions/co2/run_date=latest/part.parquet": "neither YYYY-MM-DD",
    "predictions/co2/run_date=2026-02-30/part.parquet": "neither YYYY-MM-DD",
    "reports/co2/index.html": "no run_date= partition",
}
OUTSIDE = "predictions/other/run_date=2020-01-01/part.parquet"  # not under a cleaned prefix


@pytest.fixture(autouse=True)
def _elsewhere(tmp_path, monkeypatch):
    """Anything MLflow would create in the current directory lands in the test's folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return Registry(f"sqlite:///{tmp_path_factory.mktemp('mlflow')}/mlflow.db")


@pytest.fixture
def model():
    return f"test-cleanup-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lake(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    for i, key in enumerate([*LAKE, *SKIPPED, OUTSIDE]):
        lake.write_bytes(key, b"x" * (100 + i))
    return lake


def log_version(registry: Registry, model: str, seed: int) -> str:
    """A tiny fitted model logged under a run of its own (with a run artifact too) and
    registered as the next version of ``model``; its version."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 2))
    fitted = LinearRegression().fit(x, x @ [1.0, 2.0] + seed)
    with registry._fluent(), mlflow.start_run(experiment_id=registry.experiment_id(model)):
        mlflow.log_dict({"seed": seed}, "evaluation.json")
        info = mlflow.sklearn.log_model(
            fitted, name="model", registered_model_name=model, pip_requirements=["scikit-learn"]
        )
    return str(info.registered_model_version)


@pytest.fixture
def store(registry, model):
    """Six versions of ``model`` (1 oldest .. 6 newest), champion v2, challenger v6."""
    for seed in range(6):
        log_version(registry, model, seed)
    registry.client.set_registered_model_alias(model, CHAMPION, "2")
    registry.client.set_registered_model_alias(model, CHALLENGER, "6")
    return registry


def versions(registry, model) -> set[str]:
    return {v.version for v in registry.versions(model)}


def local_path(uri: str) -> Path:
    return Path(unquote(urlparse(uri).path))


def files_under(uri: str) -> list[Path]:
    root = local_path(uri)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def keys(lake) -> set[str]:
    return {o.key for o in lake.list("")}


def plan(registry, model, lake, *, keep_newest=1, retention_days=7.0) -> CleanupPlan:
    return plan_cleanup(
        registry, model, keep_newest=keep_newest, lake=lake, prefixes=PREFIXES, retention_days=retention_days, now=NOW
    )


def artifact_dirs(registry, model) -> dict[str, tuple[str, str]]:
    """version -> (run artifact URI, logged model artifact URI)."""
    client = registry.client
    out = {}
    for v in registry.versions(model):
        mv = client.get_model_version(model, v.version)
        model_id = mv.model_id or mv.source.removeprefix("models:/")
        out[v.version] = (client.get_run(v.run_id).info.artifact_uri, client.get_logged_model(model_id).artifact_location)
    return out


# ---------------------------------------------------------------------- dry run == real run


@pytest.mark.slow
def test_the_dry_run_lists_exactly_what_the_real_run_deletes(store, model, lake):
    dirs = artifact_dirs(store, model)
    assert all(files_under(run) and files_under(logged) for run, logged in dirs.values())
    before_versions, before_keys = versions(store, model), keys(lake)

    p = plan(store, model, lake, keep_newest=1)
    # champion v2, challenger v6, the newest other one v5; v4, v3, v1 go
    assert dict(p.kept_versions).keys() == {"6", "5", "2"}
    assert "champion" in dict(p.kept_versions)["2"] and "challenger" in dict(p.kept_versions)["6"]
    assert [v.version for v in p.versions] == ["4", "3", "1"]
    assert {o.key for o in p.objects} == {k for k, kept in LAKE.items() if not kept}
    assert p.bytes == sum(o.size for o in p.objects) > 0
    assert {s.key for s in p.skipped} == set(SKIPPED)
    for s in p.skipped:
        assert SKIPPED[s.key] in s.reason
    assert p.kept_objects == sum(LAKE.values())

    # the dry run: one line per kept version, planned version, planned and skipped object
    lines = p.lines()
    assert len(lines) == 1 + len(p.kept_versions) + len(p.versions) + len(p.objects) + len(p.skipped)
    for v in p.versions:
        assert any(f"delete version {model} v{v.version}:" in line and v.artifact_uri in line for line in lines)
    for o in p.objects:
        assert any(line.startswith(f"delete object {o.key} ") for line in lines)
    doc = p.to_json()
    assert [v["version"] for v in doc["versions"]] == ["4", "3", "1"] and len(doc["objects"]) == len(p.objects)

    result = execute_cleanup(p, store, lake)
    assert result.errors == [] and result.skipped == []

    # exactly the plan disappeared: versions, runs (and their artifacts), logged models, objects
    assert before_versions - versions(store, model) == {v.version for v in p.versions} == set(result.deleted_versions)
    assert before_keys - keys(lake) == {o.key for o in p.objects} == set(result.deleted_objects)
    assert set(result.deleted_runs_artifacts) == {v.run_id for v in p.versions}
    assert set(result.deleted_logged_models) == {v.model_id for v in p.versions}
    for version, (run_uri, model_uri) in dirs.items():
        gone = version in {"4", "3", "1"}
        assert (files_under(run_uri) == []) is gone, version
        assert (files_under(model_uri) == []) is gone, version
    for v in p.versions:
        assert store.client.get_run(v.run_id).info.lifecycle_stage == "deleted"
    # what stays still works
    assert store.load_pipeline(model, "2").predict([[0.0, 0.0]]).shape == (1,)
    assert store.version(model, CHAMPION).version == "2" and store.version(model, CHALLENGER).version == "6"


@pytest.mark.slow
@pytest.mark.parametrize(
    "champion, challenger, keep_newest, kept, deleted",
    [
        ("1", "2", 2, {"1", "2", "6", "5"}, ["4", "3"]),  # both aliases older than the newest 2
        ("2", "6", 0, {"2", "6"}, ["5", "4", "3", "1"]),  # keep_newest=0: every other one goes
        ("3", "3", 0, {"3"}, ["6", "5", "4", "2", "1"]),  # one version behind both aliases
        ("2", "6", 10, {"1", "2", "3", "4", "5", "6"}, []),  # fewer versions than N: nothing
    ],
)
def test_the_champion_and_the_challenger_are_never_deleted(store, model, tmp_path, champion, challenger, keep_newest, kept, deleted):
    store.client.set_registered_model_alias(model, CHAMPION, champion)
    store.client.set_registered_model_alias(model, CHALLENGER, challenger)
    empty = LocalLake(tmp_path / "empty")
    p = plan(store, model, empty, keep_newest=keep_newest)
    assert {v for v, _ in p.kept_versions} == kept
    assert [v.version for v in p.versions] == deleted
    result = execute_cleanup(p, store, empty)
    assert result.errors == []
    assert versions(store, model) == kept
    assert store.version(model, CHAMPION).version == champion
    assert store.version(model, CHALLENGER).version == challenger


@pytest.mark.slow
def test_a_version_promoted_between_plan_and_execute_survives_with_its_artifacts(store, model, lake):
    dirs = artifact_dirs(store, model)
    p = plan(store, model, lake, keep_newest=0)
    assert [v.version for v in p.versions] == ["5", "4", "3", "1"]
    store.client.set_registered_model_alias(model, CHAMPION, "4")  # promoted after the dry run

    result = execute_cleanup(p, store, lake)
    assert versions(store, model) == {"6", "4", "2"}
    assert set(result.deleted_versions) == {"5", "3", "1"}
    assert any("v4" in e and CHAMPION in e for e in result.errors), result.errors
    assert files_under(dirs["4"][0]) and files_under(dirs["4"][1])  # run and model files stay
    assert store.client.get_run(store.get_version(model, "4").run_id).info.lifecycle_stage == "active"
    assert store.load_pipeline(model, "4").predict([[0.0, 0.0]]).shape == (1,)
    assert all(files_under(dirs[v][0]) == [] for v in ("5", "3", "1"))
    assert {o.key for o in p.objects} == set(result.deleted_objects)  # the lake part still ran


@pytest.mark.slow
def test_executing_a_plan_twice_is_a_no_op_the_second_time(store, model, lake):
    p = plan(store, model, lake, keep_newest=1)
    first = execute_cleanup(p, store, lake)
    assert first.errors == [] and first.deleted_versions
    after_versions, after_keys = versions(store, model), keys(lake)

    second = execute_cleanup(p, store, lake)
    assert second.errors == []
    assert second.deleted_versions == second.deleted_runs_artifacts == second.deleted_objects == []
    assert second.deleted_logged_models == []
    # every planned item is counted as already gone
    planned = len(p.versions) + sum(bool(v.artifact_uri) + bool(v.model_artifact_uri) for v in p.versions) + len(p.objects)
    assert len(second.skipped) == planned
    assert all("already deleted" in s for s in second.skipped)
    assert (versions(store, model), keys(lake)) == (after_versions, after_keys)
    # and a fresh plan now finds nothing more to delete
    again = plan(store, model, lake, keep_newest=1)
    assert again.versions == [] and again.objects == []
    # a model the store never registered: nothing to keep or delete, no error
    unknown = plan(store, f"{model}-never-registered", lake)
    assert unknown.versions == unknown.kept_versions == [] and unknown.objects == []


@pytest.mark.slow
def test_a_run_another_kept_version_uses_keeps_its_artifacts(registry, model, tmp_path):
    """v1 is planned, but v3 was registered from the same run and logged model (and is
    kept): the run, its artifacts and the model files stay, and the dry run says so."""
    log_version(registry, model, 0)
    log_version(registry, model, 1)
    client = registry.client
    first = client.get_model_version(model, "1")
    with registry._fluent():  # the registry resolves a models:/ source through the fluent URI
        client.create_model_version(model, source=first.source, run_id=first.run_id)  # v3
    client.set_registered_model_alias(model, CHAMPION, "2")
    dirs = artifact_dirs(registry, model)
    empty = LocalLake(tmp_path / "empty")

    p = plan(registry, model, empty, keep_newest=1)
    assert [v.version for v in p.versions] == ["1"]
    (v1,) = p.versions
    assert v1.artifact_uri == "" and v1.model_artifact_uri == "" and "v3 uses it" in v1.run_kept
    assert any("run " + first.run_id + " kept: version " in line for line in p.lines())

    result = execute_cleanup(p, registry, empty)
    assert result.errors == [] and result.deleted_versions == ["1"] and result.deleted_runs_artifacts == []
    assert files_under(dirs["3"][0]) and files_under(dirs["3"][1])
    assert registry.load_pipeline(model, "3").predict([[0.0, 0.0]]).shape == (1,)


# ---------------------------------------------------------------------- lake only


class NoModels:
    """A registry without the model, answering as ``Registry`` does (the real store's
    answer for an unknown model is tested in the slow tests): plans touch the lake only."""

    class client:
        @staticmethod
        def get_registered_model(name):
            raise MlflowException(f"Registered Model with name={name} not found", error_code=RESOURCE_DOES_NOT_EXIST)

    def versions(self, name):
        return []

    def version(self, name, alias):
        return None


@pytest.fixture
def no_model():
    return NoModels(), "test-cleanup-none"


def test_the_retention_boundary_keeps_a_partition_that_starts_exactly_at_the_cutoff(no_model, lake):
    registry, model = no_model
    p = plan(registry, model, lake, retention_days=7)
    assert p.versions == [] and p.kept_versions == []
    assert p.cutoff == datetime(2026, 11, 3, 12, 0, tzinfo=timezone.utc)
    planned = {o.key: o.partition for o in p.objects}
    assert set(planned) == {k for k, kept in LAKE.items() if not kept}
    assert "predictions/co2/run_date=2026-11-03-12:00/part.parquet" not in planned  # == cutoff: kept
    assert planned["predictions/co2/run_date=2026-11-03-11:00/part.parquet"] == "2026-11-03-11:00"
    assert OUTSIDE not in planned
    # a fractional retention moves the cutoff by hours
    half = plan(registry, model, lake, retention_days=6.5)  # cutoff 2026-11-04 00:00
    assert "reports/co2/drift/run_date=2026-11-04/report.html" not in {o.key for o in half.objects}
    assert "predictions/co2/run_date=2026-11-03-12:00/part.parquet" in {o.key for o in half.objects}
    # retention 0: everything that started before now
    zero = plan(registry, model, lake, retention_days=0)
    assert {o.key for o in zero.objects} == set(LAKE)

    result = execute_cleanup(p, registry, lake)
    assert result.errors == [] and set(result.deleted_objects) == set(planned)
    assert keys(lake) == {k for k, kept in LAKE.items() if kept} | set(SKIPPED) | {OUTSIDE}


def test_partition_values_daily_and_hourly_are_utc_starts():
    utc = timezone.utc
    assert partition_start("p/run_date=2026-11-01/x.parquet") == datetime(2026, 11, 1, tzinfo=utc)
    assert partition_start("p/run_date=2026-11-01-13:00/x.parquet") == datetime(2026, 11, 1, 13, tzinfo=utc)
    assert partition_start("run_date=2026-11-01") == datetime(2026, 11, 1, tzinfo=utc)
    for key in (
        "p/x.parquet",
        "p/run_date=/x",
        "p/run_date=2026-11-01T13:00/x",
        "p/run_date=2026-13-01/x",
        "p/run_date=2026-11-01-25:00/x",
        "p/run_date=2026-11-01/q/run_date=2026-11-02/x",  # ambiguous
        "p/old_run_date=2026-11-01/x",  # not the run_date segment
    ):
        assert partition_start(key) is None, key


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"keep_newest": -1}, "keep_newest must be >= 0"),
        ({"keep_newest": 1.5}, "keep_newest must be a whole number"),
        ({"keep_newest": True}, "keep_newest must be a whole number"),
        ({"retention_days": -0.5}, "retention_days must be >= 0"),
        ({"retention_days": math.nan}, "retention_days must be a finite number"),
        ({"retention_days": "7"}, "retention_days must be a finite number"),
        ({"prefixes": [""]}, "would clean the whole lake"),
        ({"prefixes": ["/"]}, "would clean the whole lake"),
        ({"prefixes": "predictions/co2/"}, "must be a list"),
        ({"now": datetime(2026, 11, 10)}, "timezone-aware"),
        ({"model": ""}, "must name a registered model"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error_before_anything_is_read(kwargs, message):
    class Untouchable:  # any read of the registry or the lake would fail the test
        def __getattr__(self, name):
            raise AssertionError(f"read {name} before checking the arguments")

    args = {"keep_newest": 1, "prefixes": PREFIXES, "retention_days": 7.0, "now": NOW, "model": "m"} | kwargs
    model = args.pop("model")
    with pytest.raises(ValueError, match=message):
        plan_cleanup(Untouchable(), model, lake=Untouchable(), **args)
