"""``<table>_maintenance``: compact, Z-order and vacuum a table's Delta tables.

MERGE rewrites only the files the day's keys touch, and each commit adds small files;
over weeks the current table's key ranges overlap and a MERGE of recent keys touches
more files. This job Z-orders current by its primary key (so the files split the key
range again), compacts trusted and quarantine, vacuums files that no version younger
than ``retention_hours`` reads, and checkpoints the logs. What it did is recorded as an
observation on the table's ``trusted`` and ``current`` assets (the UI's asset page).

    dagster job execute -m smartstream_assets.definitions -j employees_maintenance
    dagster job execute -m smartstream_assets.definitions -j employees_maintenance -c retention.yaml
"""


import os

import dagster as dg
from pydantic import Field

from .. import delta
from ..keys import current_asset_key, trusted_asset_key
from ..resources import LakeResource
from ..tables import TableSpec

RETENTION_ENV = "SMARTSTREAM_DELTA_RETENTION_HOURS"


def default_retention_hours() -> int:
    raw = os.environ.get(RETENTION_ENV, "").strip()
    if not raw:
        return delta.DEFAULT_RETENTION_HOURS
    try:
        hours = int(raw)
    except ValueError:
        raise ValueError(f"{RETENTION_ENV}={raw!r} is not a whole number of hours") from None
    if hours < 0:
        raise ValueError(f"{RETENTION_ENV}={raw!r} is negative")
    return hours


class MaintenanceConfig(dg.Config):
    retention_hours: int = Field(
        default=-1,
        description=(
            f"versions younger than this stay readable (time travel, the change feed); -1: ${RETENTION_ENV}, "
            f"else {delta.DEFAULT_RETENTION_HOURS}"
        ),
    )
    z_order: bool = Field(default=True, description="Z-order current by its primary key (rewrites the table); false: compact only")
    dry_run: bool = Field(default=False, description="true: list what vacuum would delete, delete nothing")


def maintenance_job_name(table: str) -> str:
    return f"{table}_maintenance"


def build_maintenance_job(spec: TableSpec) -> dg.JobDefinition:
    @dg.op(
        name=f"{spec.name}__maintenance",
        description=f"Z-order current/{spec.name} by {', '.join(spec.primary_key)}, compact trusted and quarantine, vacuum, checkpoint.",
    )
    def maintain(context: dg.OpExecutionContext, config: MaintenanceConfig, lake: LakeResource) -> dict:
        store = lake.get()
        try:
            hours = config.retention_hours if config.retention_hours >= 0 else default_retention_hours()
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        done = {}
        for role, path, order in (
            ("current", delta.current_table(spec.name), list(spec.primary_key) if config.z_order else None),
            ("trusted", delta.trusted_table(spec.name), None),
            ("quarantine", delta.quarantine_table(spec.name), None),
        ):
            result = delta.maintain(store, path, z_order=order, retention_hours=hours, dry_run=config.dry_run, keys=spec.primary_key)
            if result is None:
                context.log.info(f"{store.describe(path)}: no Delta table yet")
                continue
            figures = {
                "delta_version": result.version,
                "files_added": int(result.optimized.get("numFilesAdded", 0)),
                "files_removed": int(result.optimized.get("numFilesRemoved", 0)),
                ("files_vacuum_would_delete" if config.dry_run else "files_vacuumed"): len(result.vacuumed),
                "retention_hours": hours,
            }
            if role == "current":  # the whole-table key check the per-run check limits to the day's keys
                figures["duplicate_rows"] = delta.current_stats(store, spec, None)["duplicate_rows"]
            context.log.info(f"{store.describe(path)}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
            done[role] = figures
            key = {"current": current_asset_key(spec.name), "trusted": trusted_asset_key(spec.name)}.get(role)
            if key is not None:
                context.log_event(
                    dg.AssetObservation(
                        asset_key=key,
                        description=f"{maintenance_job_name(spec.name)}" + (" (dry run)" if config.dry_run else ""),
                        metadata={**figures, "maintenance": dg.MetadataValue.json(result.optimized)},
                    )
                )
        return done

    @dg.job(
        name=maintenance_job_name(spec.name),
        description=f"Optimize (Z-order / compact) and vacuum the Delta tables of {spec.name}; retention configurable.",
        tags={"smartstream/table": spec.name},
    )
    def maintenance_job():
        maintain()

    return maintenance_job


def build_maintenance_schedule(spec: TableSpec, job: dg.JobDefinition) -> dg.ScheduleDefinition:
    """Weekly, Sunday 03:00 UTC; stopped until switched on (in the UI, or by the daemon's config)."""
    return dg.ScheduleDefinition(
        name=f"{spec.name}_weekly_maintenance",
        job=job,
        cron_schedule="0 3 * * 0",
        execution_timezone="UTC",
        description=f"Weekly optimize and vacuum of {spec.name}'s Delta tables.",
    )
