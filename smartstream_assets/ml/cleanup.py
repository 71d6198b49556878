"""Cleanup of what costs money for one model domain: old registered model versions
(with their MLflow artifacts) and old lake partitions. Dry run first, always.

``plan_cleanup`` only reads; it returns a ``CleanupPlan`` whose ``lines()`` are the
dry run. ``execute_cleanup`` deletes exactly the items of that same plan and nothing
else, so what the dry run showed is an upper bound of what the real run removes (it
removes less only when the registry changed in between, and says so in ``errors``).

Never deleted, by construction and checked again right before each deletion:
- the version behind ``champion`` and the one behind ``challenger`` (and any version
  carrying another alias: someone points at it);
- a run (its artifacts, its drift baseline ``reference/``) that a remaining version
  still uses, and an MLflow 3 logged model that a remaining version is registered from.

What a deleted version takes with it:
- the registry entry (``MlflowClient.delete_model_version``);
- its MLflow 3 logged model, where ``mlflow.<flavor>.log_model`` puts the model files
  (``<experiment>/models/m-<id>/artifacts``, NOT under the run): the files through the
  artifact repository of its location, then ``MlflowClient.delete_logged_model``;
- its run's artifacts (holdout, train sample, plots, evaluation.json, and the model for
  versions logged MLflow-2 style under the run) through
  ``get_artifact_repository(run.info.artifact_uri).delete_artifacts()``, then the run is
  marked deleted (``MlflowClient.delete_run``; ``mlflow gc`` purges the row later).
  Nested trial runs carry no artifacts and are left alone.

Lake objects are planned by their partition value, read from the ``run_date=<value>``
segment of the key: ``YYYY-MM-DD`` (daily) or ``YYYY-MM-DD-HH:MM`` (Dagster hourly),
both UTC, taken as the partition's START. An object is deleted when that start is
strictly before ``now - retention_days``; an object whose partition starts exactly at
the cutoff is kept. Objects without a parseable partition are never deleted: the plan
lists them as ``skipped`` with the reason. Local lakes keep the emptied folders (the
lake interface deletes objects, not folders); listings ignore them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone

from .registry import CHALLENGER, CHAMPION

_PARTITION = re.compile(r"(?:^|/)run_date=([^/]*)(?:/|$)")
_DAILY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HOURLY = re.compile(r"\d{4}-\d{2}-\d{2}-\d{2}:\d{2}")
_GONE = "RESOURCE_DOES_NOT_EXIST"


@dataclass(frozen=True)
class VersionToDelete:
    """A registered model version the plan deletes, and which of its artifacts go with it.

    ``artifact_uri`` is the run's artifact root when the run (artifacts + run entry) is
    deleted with this version, ``""`` when it stays (``run_kept`` says why) or when
    another planned version of the same run already carries it. Likewise
    ``model_artifact_uri`` / ``model_id`` for the MLflow 3 logged model."""

    version: str
    run_id: str
    artifact_uri: str
    reason: str
    model_id: str = ""
    model_artifact_uri: str = ""
    run_kept: str = ""  # why the run's artifacts stay, "" when they go (or there is no run)


@dataclass(frozen=True)
class ObjectToDelete:
    key: str
    size: int
    partition: str
    reason: str


@dataclass(frozen=True)
class SkippedObject:
    """A lake object under a cleaned prefix that the plan leaves alone."""

    key: str
    size: int
    reason: str


@dataclass(frozen=True)
class CleanupPlan:
    model: str
    kept_versions: list[tuple[str, str]]  # (version, why), newest first
    versions: list[VersionToDelete]  # newest first
    objects: list[ObjectToDelete]
    bytes: int  # lake bytes the objects free (MLflow artifact sizes are not listed)
    skipped: list[SkippedObject] = field(default_factory=list)
    kept_objects: int = 0  # objects with a partition inside the retention
    cutoff: datetime | None = None  # objects whose partition starts before this go
    prefixes: list[str] = field(default_factory=list)
    keep_newest: int = 0
    retention_days: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.versions and not self.objects

    def lines(self) -> list[str]:
        """The dry run: a summary line, then one line per kept or deleted version, per
        deleted object and per skipped object."""
        runs = sum(1 for v in self.versions if v.artifact_uri)
        out = [
            f"cleanup of {self.model}: delete {len(self.versions)} model version(s) "
            f"({runs} run(s) with their artifacts) and {len(self.objects)} lake object(s) "
            f"({_human(self.bytes)}) with a partition before {_iso(self.cutoff)}; "
            f"keep {len(self.kept_versions)} version(s) and {self.kept_objects} object(s), "
            f"skip {len(self.skipped)} object(s) without a parseable partition"
        ]
        out += [f"keep version {self.model} v{version}: {why}" for version, why in self.kept_versions]
        for v in self.versions:
            parts = [f"delete version {self.model} v{v.version}: {v.reason}"]
            if v.model_artifact_uri:
                parts.append(f"logged model {v.model_id} ({v.model_artifact_uri})")
            if v.artifact_uri:
                parts.append(f"run {v.run_id} and its artifacts ({v.artifact_uri})")
            elif v.run_kept:
                parts.append(f"run {v.run_id} kept: {v.run_kept}")
            out.append("; ".join(parts))
        out += [f"delete object {o.key} ({_human(o.size)}): {o.reason}" for o in self.objects]
        out += [f"skip object {s.key} ({_human(s.size)}): {s.reason}" for s in self.skipped]
        return out

    def to_json(self) -> dict:
        """The plan as a JSON-serialisable dict (for run metadata or ``json.dumps``)."""
        return {
            "model": self.model,
            "keep_newest": self.keep_newest,
            "retention_days": self.retention_days,
            "cutoff": _iso(self.cutoff),
            "prefixes": list(self.prefixes),
            "kept_versions": [{"version": v, "why": why} for v, why in self.kept_versions],
            "versions": [asdict(v) for v in self.versions],
            "objects": [asdict(o) for o in self.objects],
            "skipped": [asdict(s) for s in self.skipped],
            "kept_objects": self.kept_objects,
            "bytes": self.bytes,
        }


@dataclass
class CleanupResult:
    deleted_versions: list[str] = field(default_factory=list)
    deleted_runs_artifacts: list[str] = field(default_factory=list)  # run ids
    deleted_objects: list[str] = field(default_factory=list)  # lake keys
    errors: list[str] = field(default_factory=list)  # planned items not deleted, and why
    deleted_logged_models: list[str] = field(default_factory=list)  # MLflow 3 model ids
    skipped: list[str] = field(default_factory=list)  # planned items already gone

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------- planning


def plan_cleanup(
    registry,
    model: str,
    *,
    keep_newest: int,
    lake,
    prefixes: list[str],
    retention_days: float,
    now: datetime,
) -> CleanupPlan:
    """What a cleanup of ``model`` and of the lake ``prefixes`` would delete (reads only).

    Versions: the champion, the challenger (and any other aliased version) and the
    newest ``keep_newest`` of the remaining versions are kept; every other version is
    planned, with its run only if no kept version uses that run.

    Objects: every object under each prefix whose ``run_date=`` partition starts
    strictly before ``now - retention_days`` is planned; one starting exactly at that
    cutoff is kept. ``now`` must be timezone-aware."""
    _check_arguments(model, keep_newest, prefixes, retention_days, now)
    cutoff = now.astimezone(timezone.utc) - timedelta(days=float(retention_days))
    kept, planned = _plan_versions(registry, model, keep_newest)
    objects, skipped, kept_objects = _plan_objects(lake, prefixes, cutoff)
    return CleanupPlan(
        model=model,
        kept_versions=kept,
        versions=planned,
        objects=objects,
        bytes=sum(o.size for o in objects),
        skipped=skipped,
        kept_objects=kept_objects,
        cutoff=cutoff,
        prefixes=list(prefixes),
        keep_newest=keep_newest,
        retention_days=float(retention_days),
    )


def _check_arguments(model, keep_newest, prefixes, retention_days, now) -> None:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must name a registered model, got {model!r}")
    if isinstance(keep_newest, bool) or not isinstance(keep_newest, int):
        raise ValueError(f"keep_newest must be a whole number of versions >= 0, got {keep_newest!r}")
    if keep_newest < 0:
        raise ValueError(f"keep_newest must be >= 0 (how many versions besides champion and challenger to keep), got {keep_newest}")
    if isinstance(retention_days, bool) or not isinstance(retention_days, (int, float)) or not math.isfinite(retention_days):
        raise ValueError(f"retention_days must be a finite number of days >= 0, got {retention_days!r}")
    if retention_days < 0:
        raise ValueError(f"retention_days must be >= 0 (partitions older than this many days are deleted), got {retention_days}")
    if isinstance(prefixes, str):
        raise ValueError(f"prefixes must be a list of lake prefixes, got the string {prefixes!r}")
    for prefix in prefixes:
        if not isinstance(prefix, str) or not prefix.strip("/ "):
            raise ValueError(f"every prefix must name a folder of the lake (an empty one would clean the whole lake), got {prefix!r}")
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")


def _protected(registry, model: str) -> dict[str, list[str]]:
    """version -> the aliases that point at it (champion and challenger always looked up)."""
    from mlflow.exceptions import MlflowException

    out: dict[str, list[str]] = {}
    for alias in (CHAMPION, CHALLENGER):
        info = registry.version(model, alias)
        if info is not None:
            out.setdefault(str(info.version), []).append(alias)
    try:
        aliases = registry.client.get_registered_model(model).aliases or {}
    except MlflowException as exc:
        if exc.error_code == _GONE:
            return out
        raise
    for alias, version in aliases.items():
        if alias not in out.get(str(version), []):
            out.setdefault(str(version), []).append(alias)
    return out


def _plan_versions(registry, model: str, keep_newest: int) -> tuple[list[tuple[str, str]], list[VersionToDelete]]:
    client = registry.client
    versions = registry.versions(model)  # newest first
    protected = _protected(registry, model)
    kept: list[tuple[str, str]] = []
    doomed = []
    others = 0
    for info in versions:
        if info.version in protected:
            kept.append((info.version, "alias " + ", ".join(protected[info.version])))
        elif others < keep_newest:
            others += 1
            kept.append((info.version, f"newest {others} of {keep_newest} kept besides the aliased versions"))
        else:
            doomed.append(info)
    going = {(model, info.version) for info in doomed}
    reason = (
        f"not aliased and older than the newest {keep_newest} unaliased version(s)"
        if keep_newest
        else "not aliased (keep_newest=0)"
    )
    planned: list[VersionToDelete] = []
    runs_taken: dict[str, str] = {}
    models_taken: dict[str, str] = {}
    for info in doomed:
        mv = client.get_model_version(model, info.version)
        artifact_uri, run_kept = "", ""
        if info.run_id:
            users = _run_users(client, info.run_id) - going
            if users:
                run_kept = f"{_name(min(users, key=_order))} uses it"
            elif info.run_id in runs_taken:
                run_kept = f"deleted with v{runs_taken[info.run_id]}"
            else:
                artifact_uri = _run_artifact_uri(client, info.run_id)
                if artifact_uri:
                    runs_taken[info.run_id] = info.version
                else:
                    run_kept = "the run no longer exists"
        model_id, model_uri = _model_id(mv), ""
        if model_id and model_id not in models_taken and not (_model_users(client, model_id) - going):
            model_uri = _logged_model_uri(client, model_id)
            if model_uri:
                models_taken[model_id] = info.version
        planned.append(
            VersionToDelete(
                version=info.version,
                run_id=info.run_id or "",
                artifact_uri=artifact_uri,
                reason=reason,
                model_id=model_id if model_uri else "",
                model_artifact_uri=model_uri,
                run_kept=run_kept,
            )
        )
    return kept, planned


def _model_id(mv) -> str:
    """The MLflow 3 logged model a version was registered from ("" for MLflow 2 style)."""
    model_id = getattr(mv, "model_id", None)
    if model_id:
        return str(model_id)
    source = getattr(mv, "source", "") or ""
    match = re.fullmatch(r"models:/(m-[0-9a-f]+)/?", source)
    return match.group(1) if match else ""


def _run_users(client, run_id: str) -> set[tuple[str, str]]:
    """(registered model, version) of every existing version, of any registered model,
    whose run is ``run_id`` (``register_model("runs:/<id>/...")`` sets it too)."""
    found = client.search_model_versions(filter_string=f"run_id = '{run_id}'")
    return {(mv.name, str(mv.version)) for mv in found}


def _model_users(client, model_id: str) -> set[tuple[str, str]]:
    """(registered model, version) of every existing version registered from the
    logged model ``model_id``."""
    found = client.search_model_versions(filter_string=f"source_path = 'models:/{model_id}'")
    return {(mv.name, str(mv.version)) for mv in found}


def _name(user: tuple[str, str]) -> str:
    return f"version {user[0]} v{user[1]}"


def _order(user: tuple[str, str]):
    return (user[0], -int(user[1]) if user[1].isdigit() else 0)


def _run_artifact_uri(client, run_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).info.artifact_uri or ""
    except MlflowException as exc:
        if exc.error_code == _GONE:
            return ""
        raise


def _logged_model_uri(client, model_id: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_logged_model(model_id).artifact_location or ""
    except MlflowException as exc:
        if exc.error_code == _GONE:
            return ""
        raise


def partition_start(key: str) -> datetime | None:
    """The UTC start of the ``run_date=`` partition in ``key``, or None when the key has
    none, several, or a value that is neither ``YYYY-MM-DD`` nor ``YYYY-MM-DD-HH:MM``."""
    values = {m.group(1) for m in _PARTITION.finditer(key)}
    if len(values) != 1:
        return None
    return _parse_partition(values.pop())


def _parse_partition(value: str) -> datetime | None:
    try:
        if _HOURLY.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d-%H:%M").replace(tzinfo=timezone.utc)
        if _DAILY.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:  # 2026-02-30, 25:00
        return None
    return None


def _plan_objects(lake, prefixes: list[str], cutoff: datetime):
    objects: list[ObjectToDelete] = []
    skipped: list[SkippedObject] = []
    kept = 0
    seen: set[str] = set()
    for prefix in prefixes:
        for obj in lake.list(prefix):
            if obj.key in seen:  # overlapping prefixes
                continue
            seen.add(obj.key)
            values = {m.group(1) for m in _PARTITION.finditer(obj.key)}
            if not values:
                skipped.append(SkippedObject(obj.key, obj.size, "no run_date= partition in the key"))
                continue
            if len(values) > 1:
                skipped.append(SkippedObject(obj.key, obj.size, f"several run_date= partitions in the key: {sorted(values)}"))
                continue
            value = next(iter(values))
            start = _parse_partition(value)
            if start is None:
                skipped.append(
                    SkippedObject(obj.key, obj.size, f"run_date={value!r} is neither YYYY-MM-DD nor YYYY-MM-DD-HH:MM")
                )
            elif start < cutoff:
                objects.append(ObjectToDelete(obj.key, obj.size, value, f"partition {value} starts before {_iso(cutoff)}"))
            else:
                kept += 1
    return objects, skipped, kept


# ---------------------------------------------------------------------- execution


def execute_cleanup(plan: CleanupPlan, registry, lake) -> CleanupResult:
    """Delete what ``plan`` lists, nothing more. Per version, right before deleting it,
    its aliases are read again: a version that became champion or challenger (or got
    any alias) since the plan stays and is reported in ``errors``. Runs and logged
    models are deleted only once their versions are gone and no remaining version uses
    them (read again too). A failure on one item is reported and the rest go on.
    Idempotent: items already gone are counted in ``skipped``, not as errors."""
    from mlflow.exceptions import MlflowException

    client = registry.client
    result = CleanupResult()
    model = plan.model

    # 1. the registry entries
    for v in plan.versions:
        label = f"{model} v{v.version}"
        try:
            mv = client.get_model_version(model, v.version)
        except MlflowException as exc:
            if exc.error_code == _GONE:
                result.skipped.append(f"version {label}: already deleted")
                continue
            result.errors.append(f"version {label}: cannot read it: {exc.message}")
            continue
        aliases = _aliases_now(registry, model, v.version, mv)
        if aliases:
            result.errors.append(f"version {label}: not deleted, it is now {', '.join(aliases)}")
            continue
        if v.run_id and (mv.run_id or "") != v.run_id:
            result.errors.append(f"version {label}: not deleted, its run changed since the plan")
            continue
        try:
            client.delete_model_version(model, v.version)
            result.deleted_versions.append(v.version)
        except MlflowException as exc:
            if exc.error_code == _GONE:
                result.skipped.append(f"version {label}: already deleted")
            else:
                result.errors.append(f"version {label}: cannot delete it: {exc.message}")

    # 2. the artifacts, once no version (of any registered model) uses them any more
    for v in plan.versions:
        if v.model_artifact_uri:
            _delete_logged_model(registry, v, result)
        if v.artifact_uri:
            _delete_run(registry, v, result)

    # 3. the lake objects
    for o in plan.objects:
        try:
            if not lake.exists(o.key):
                result.skipped.append(f"object {o.key}: already deleted")
                continue
            lake.delete(o.key)
            result.deleted_objects.append(o.key)
        except Exception as exc:  # LakeError names the key; keep going with the others
            result.errors.append(f"object {o.key}: cannot delete it: {exc}")
    return result


def _aliases_now(registry, model: str, version: str, mv) -> list[str]:
    """Every alias pointing at ``version`` now (champion and challenger looked up apart,
    in case a store leaves ``aliases`` out of the version)."""
    found = [str(a) for a in (getattr(mv, "aliases", None) or [])]
    for alias in (CHAMPION, CHALLENGER):
        info = registry.version(model, alias)
        if info is not None and str(info.version) == str(version) and alias not in found:
            found.append(alias)
    return found


def _delete_run(registry, v: VersionToDelete, result: CleanupResult) -> None:
    from mlflow.exceptions import MlflowException

    client = registry.client
    label = f"run {v.run_id} (of v{v.version})"
    if v.run_id not in v.artifact_uri:  # never wipe an experiment root or a bucket
        result.errors.append(f"{label}: kept, its artifact URI {v.artifact_uri} does not name the run")
        return
    try:
        users = _run_users(client, v.run_id)
        if users:
            result.errors.append(f"{label}: kept, {_name(min(users, key=_order))} uses it")
            return
        try:
            run = client.get_run(v.run_id)
        except MlflowException as exc:
            if exc.error_code != _GONE:
                raise
            result.skipped.append(f"{label}: already deleted")
            return
        repo = _artifact_repository(registry, v.artifact_uri)
        had_artifacts = bool(repo.list_artifacts())
        if had_artifacts:
            repo.delete_artifacts()
        active = run.info.lifecycle_stage != "deleted"
        if active:
            client.delete_run(v.run_id)
    except Exception as exc:  # a store or artifact backend error: report it, go on
        result.errors.append(f"{label}: cannot delete it: {_message(exc)}")
        return
    if had_artifacts or active:
        result.deleted_runs_artifacts.append(v.run_id)
    else:
        result.skipped.append(f"{label}: already deleted")


def _delete_logged_model(registry, v: VersionToDelete, result: CleanupResult) -> None:
    from mlflow.exceptions import MlflowException

    client = registry.client
    label = f"logged model {v.model_id} (of v{v.version})"
    if not v.model_id or v.model_id not in v.model_artifact_uri:
        result.errors.append(f"{label}: kept, its artifact URI {v.model_artifact_uri} does not name the model")
        return
    try:
        users = _model_users(client, v.model_id)
        if users:
            result.errors.append(f"{label}: kept, {_name(min(users, key=_order))} uses it")
            return
        repo = _artifact_repository(registry, v.model_artifact_uri)
        had_artifacts = bool(repo.list_artifacts())
        if had_artifacts:
            repo.delete_artifacts()
        try:
            client.get_logged_model(v.model_id)
            exists = True
        except MlflowException as exc:
            if exc.error_code != _GONE:
                raise
            exists = False
        if exists:
            client.delete_logged_model(v.model_id)
    except Exception as exc:
        result.errors.append(f"{label}: cannot delete it: {_message(exc)}")
        return
    if had_artifacts or exists:
        result.deleted_logged_models.append(v.model_id)
    else:
        result.skipped.append(f"{label}: already deleted")


def _message(exc: Exception) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


def _artifact_repository(registry, uri: str):
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    # tracking_uri resolves mlflow-artifacts:/ URIs against the tracking server
    return get_artifact_repository(uri, tracking_uri=registry.tracking_uri, registry_uri=registry.registry_uri)


# ---------------------------------------------------------------------- formatting


def _iso(moment: datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
