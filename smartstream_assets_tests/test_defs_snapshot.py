"""Snapshot of what the smartstream code location defines: assets, jobs, sensors, schedules.

Modelled on dagster-open-platform's ``dagster_open_platform_tests/test_defs.py``: the
definitions are reduced to plain data (sorted, one entry per asset/job/sensor/schedule),
written as indented JSON to ``snapshots/asset_specs.json`` and compared with it. A change
to an asset's key, group, upstream deps, partitions, backfill policy, pool, kinds or
checks, or to a job's selection, a sensor's job or a schedule's cron, fails here until
the snapshot is updated on purpose, so the diff shows up in review.

To update the snapshot after an intended change::

    SMARTSTREAM_UPDATE_SNAPSHOTS=1 .venv/bin/pytest smartstream_assets_tests/test_defs_snapshot.py

With that variable set to ``1`` the tests rewrite the file and pass; commit the new file.

Only public Dagster API is used (``Definitions.resolve_all_asset_specs``,
``resolve_assets_def``, ``resolve_asset_graph``, ``resolve_job_def``,
``AssetsDefinition.check_specs`` / ``backfill_policy`` / ``op``, ``AssetSelection.resolve``).
"""

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

SNAPSHOT_PATH = Path(__file__).parent / "snapshots" / "asset_specs.json"
UPDATE_ENV = "SMARTSTREAM_UPDATE_SNAPSHOTS"
UPDATE_HINT = (
    f"If the change is intended, regenerate the snapshot with\n"
    f"    {UPDATE_ENV}=1 .venv/bin/pytest smartstream_assets_tests/test_defs_snapshot.py\n"
    f"and commit {SNAPSHOT_PATH.relative_to(Path(__file__).parent.parent)}."
)


# ------------------------------------------------------------------ description


def _key(key: dg.AssetKey) -> str:
    return key.to_user_string()


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> dict[str, Any] | None:
    if partitions_def is None:
        return None
    data: dict[str, Any] = {"type": type(partitions_def).__name__}
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        data.update(
            start=partitions_def.start.isoformat(),
            end=partitions_def.end.isoformat() if partitions_def.end else None,
            cron_schedule=partitions_def.cron_schedule,
            timezone=partitions_def.timezone,
            fmt=partitions_def.fmt,
            end_offset=partitions_def.end_offset,
        )
    elif isinstance(partitions_def, dg.StaticPartitionsDefinition):
        data["partition_keys"] = list(partitions_def.get_partition_keys())
    elif isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        data["name"] = partitions_def.name
    elif isinstance(partitions_def, dg.MultiPartitionsDefinition):
        data["dimensions"] = {
            dim.name: _partitions(dim.partitions_def) for dim in partitions_def.partitions_defs
        }
    else:
        data["repr"] = str(partitions_def)
    return data


def _backfill_policy(policy: dg.BackfillPolicy | None) -> dict[str, Any] | None:
    if policy is None:
        return None
    return {"type": policy.policy_type.value, "max_partitions_per_run": policy.max_partitions_per_run}


def _checks_by_asset(defs: dg.Definitions) -> dict[str, list[dict[str, Any]]]:
    """Checks defined with their asset (``check_specs=``) and standalone ``@asset_check``s."""
    specs: list[dg.AssetCheckSpec] = []
    for key in defs.resolve_all_asset_keys():
        specs += defs.resolve_assets_def(key).check_specs
    for checks_def in defs.asset_checks or []:
        specs += getattr(checks_def, "check_specs", [])
    by_asset: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in specs:
        by_asset.setdefault(_key(spec.asset_key), {})[spec.name] = {"name": spec.name, "blocking": spec.blocking}
    return {asset: [checks[name] for name in sorted(checks)] for asset, checks in by_asset.items()}


def _asset_entries(defs: dg.Definitions) -> list[dict[str, Any]]:
    checks = _checks_by_asset(defs)
    entries = []
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: _key(s.key)):
        assets_def = defs.resolve_assets_def(spec.key)
        entries.append(
            {
                "key": _key(spec.key),
                "group": spec.group_name,
                "deps": sorted(_key(dep.asset_key) for dep in spec.deps),
                "partitions": _partitions(spec.partitions_def),
                "backfill_policy": _backfill_policy(assets_def.backfill_policy),
                "pool": assets_def.op.pool if assets_def.is_executable else None,
                "kinds": sorted(spec.kinds),
                "checks": checks.get(_key(spec.key), []),
            }
        )
    return entries


def _job_entries(defs: dg.Definitions) -> list[dict[str, Any]]:
    asset_graph = defs.resolve_asset_graph()
    entries = []
    for job in sorted(defs.jobs or [], key=lambda j: j.name):
        selection = getattr(job, "selection", None)  # asset jobs (define_asset_job)
        keys = sorted(_key(k) for k in selection.resolve(asset_graph)) if selection is not None else None
        entries.append(
            {
                "name": job.name,
                "assets": keys,
                "partitions": _partitions(defs.resolve_job_def(job.name).partitions_def),
            }
        )
    return entries


def _sensor_jobs(sensor: dg.SensorDefinition) -> list[str]:
    try:
        return sorted(job.name for job in sensor.jobs)
    except dg.DagsterInvalidDefinitionError:  # a sensor that targets no job (e.g. it only logs)
        return []


def _sensor_entries(defs: dg.Definitions) -> list[dict[str, Any]]:
    return [
        {
            "name": sensor.name,
            "jobs": _sensor_jobs(sensor),
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    ]


def _schedule_entries(defs: dg.Definitions) -> list[dict[str, Any]]:
    return [
        {
            "name": schedule.name,
            "job": schedule.job_name,
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    ]


def describe(defs: dg.Definitions) -> dict[str, list[dict[str, Any]]]:
    return {
        "assets": _asset_entries(defs),
        "jobs": _job_entries(defs),
        "sensors": _sensor_entries(defs),
        "schedules": _schedule_entries(defs),
    }


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"  # entries are built in a fixed field order


# ------------------------------------------------------------------ comparison


@pytest.fixture(scope="module")
def current() -> dict[str, list[dict[str, Any]]]:
    from smartstream_assets.definitions import defs

    data = describe(defs)
    assert data["assets"], "smartstream_assets.definitions.defs defines no assets"
    # Round-trip so tuples etc. compare as they will once read back from the file.
    return json.loads(to_json(data))


@pytest.fixture(scope="module")
def committed(current) -> dict[str, list[dict[str, Any]]]:
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT_PATH.write_text(to_json(current))
    if not SNAPSHOT_PATH.exists():
        pytest.fail(f"No snapshot at {SNAPSHOT_PATH}.\n{UPDATE_HINT}")
    return json.loads(SNAPSHOT_PATH.read_text())


def _diff(section: str, current: list[dict], committed: list[dict], id_field: str) -> str | None:
    now = {entry[id_field]: entry for entry in current}
    before = {entry[id_field]: entry for entry in committed}
    lines = []
    for name in sorted(now.keys() - before.keys()):
        lines.append(f"  + {name} (new, not in the snapshot)")
    for name in sorted(before.keys() - now.keys()):
        lines.append(f"  - {name} (in the snapshot, no longer defined)")
    for name in sorted(now.keys() & before.keys()):
        if now[name] != before[name]:
            fields = sorted(f for f in now[name].keys() | before[name].keys() if now[name].get(f) != before[name].get(f))
            lines.append(f"  ~ {name}:")
            for field in fields:
                lines.append(f"      {field}: snapshot {before[name].get(field)!r} -> now {now[name].get(field)!r}")
    if not lines and current != committed:  # same entries, different order (should not happen: sorted)
        lines.append("  order of entries differs")
    if not lines:
        return None
    return f"{section} differ from {SNAPSHOT_PATH.name}:\n" + "\n".join(lines) + "\n" + UPDATE_HINT


@pytest.mark.parametrize(
    ("section", "id_field"),
    [("assets", "key"), ("jobs", "name"), ("sensors", "name"), ("schedules", "name")],
)
def test_definitions_match_snapshot(current, committed, section, id_field):
    """Every asset spec (key, group, deps, partitions, backfill policy, pool, kinds, checks),
    job, sensor and schedule of ``defs`` matches ``snapshots/asset_specs.json``.
    ``SMARTSTREAM_UPDATE_SNAPSHOTS=1`` rewrites the snapshot and passes."""
    message = _diff(section, current[section], committed.get(section, []), id_field)
    if message:
        pytest.fail(message, pytrace=False)


def test_snapshot_file_is_in_canonical_form(committed):
    """Hand edits keep the file diffable: it is byte-for-byte what ``to_json`` writes."""
    if SNAPSHOT_PATH.read_text() != to_json(committed):
        pytest.fail(f"{SNAPSHOT_PATH.name} is not in the canonical form.\n{UPDATE_HINT}", pytrace=False)
