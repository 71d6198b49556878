"""<table>/trusted and <table>/current for every table of the registry.

Thin Dagster wrappers around ``smartstream_assets.ingestion``; the checks are
computed on what was just written and reported with the materialisation.
"""


from datetime import date

import dagster as dg

from .. import ingestion, quality
from ..keys import current_asset_key, current_op_name, trusted_asset_key, trusted_op_name  # noqa: F401 (re-exported)
from ..metadata import column_schema, counts_table, preview
from ..partitions import ingest_date_partitions
from ..resources import LakeResource
from ..tables import TableSpec

# A quarantine rate above this warns (the run still succeeds: nothing is lost).
QUARANTINE_WARN_RATE = 0.05


class TrustedConfig(dg.Config):
    """The sensor fills in what it saw, so the run (and `dagster sensor preview`) shows it."""

    sensor_ingest_date: str = ""  # the ingest date the sensor saw new objects for
    sensor_raw_objects: int = 0  # how many objects it listed for that date
    allow_shrink: bool = False  # rebuild a partition even though raw objects it was built from are gone


# Runs that update <table>/current at once serialise on this pool (limit 1 in
# dagster.yaml); the state's compare-and-swap keeps them right even without it.
def current_pool(table: str) -> str:
    return f"smartstream_current_{table}"


class CurrentConfig(dg.Config):
    rebuild: bool = False  # re-read every trusted partition instead of only new ones


def build_ingestion_assets(spec: TableSpec, group: str | None = None) -> list[dg.AssetsDefinition]:
    """``<table>/trusted`` and ``<table>/current`` in ``group``: the group of the domain built
    on the table (``keys.table_group``), so its lineage reads from raw; default the table's name."""
    group = group or spec.name
    trusted_key, current_key = trusted_asset_key(spec.name), current_asset_key(spec.name)

    @dg.asset(
        key=trusted_key,
        partitions_def=ingest_date_partitions(spec.start_date),
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=group,
        kinds={"delta"},
        description=(
            f"Typed change log of the raw objects under `{spec.raw_prefix}` ({spec.format}) "
            "that landed on the partition's ingest date; bad records go to quarantine."
        ),
        metadata={"raw_prefix": spec.raw_prefix, "format": spec.format, "primary_key": list(spec.primary_key)},
        check_specs=[
            dg.AssetCheckSpec("no_null_keys", asset=trusted_key, description="every change has its primary key"),
            dg.AssetCheckSpec("columns_match_registry", asset=trusted_key, description="columns typed as declared"),
            dg.AssetCheckSpec("rows_accounted_for", asset=trusted_key, description="rows in = rows out + quarantined"),
            dg.AssetCheckSpec("quarantine_rate", asset=trusted_key, description=f"<= {QUARANTINE_WARN_RATE:.0%} quarantined"),
        ],
    )
    def trusted(context: dg.AssetExecutionContext, config: TrustedConfig, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        swept = store.remove_stale_temp()
        if swept:
            context.log.info(f"removed {swept} temp files left by killed writers")
        days = [date.fromisoformat(k) for k in context.partition_keys]
        by_date = ingestion.raw_objects_by_date(store, spec, days)
        reports = ingestion.build_trusted_days(
            store, spec, {day: by_date.get(day, []) for day in days}, allow_shrink=config.allow_shrink
        )
        for report in reports:
            if report.objects:  # a log line is an event-log write: not one per empty day of a range
                context.log.info(
                    f"{spec.name} {report.day}: {report.objects} objects, {report.rows_out} changes, "
                    f"{report.quarantined} quarantined"
                )
            if report.vanished_objects:
                context.log.warning(
                    f"{spec.name} {report.day}: rebuilt without {len(report.vanished_objects)} vanished raw objects (allow_shrink)"
                )
            # Each partition's own figures on its own materialisation (a range run
            # would otherwise stamp the run's totals on every partition).
            context.add_asset_metadata(_partition_metadata(store, spec, report), partition_key=report.day.isoformat())
        if len(days) > 1:
            context.log.info(f"{spec.name}: {len(days)} ingest dates, {sum(1 for r in reports if r.objects)} with raw objects")
        if config.sensor_ingest_date:
            found = sum(r.objects for r in reports if r.day.isoformat() == config.sensor_ingest_date)
            if found < config.sensor_raw_objects:  # raw is never modified: objects vanished
                context.log.warning(
                    f"the sensor saw {config.sensor_raw_objects} raw objects for {config.sensor_ingest_date}, "
                    f"the run found {found}"
                )
        return _trusted_result(spec, reports)

    @dg.asset(
        key=current_key,
        deps=[trusted_key],
        # single_run lets one CLI run cover trusted's partition range and then this.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=group,
        kinds={"delta"},
        description=(
            f"Current state of {spec.name}: every change applied per primary key in commit order "
            "(ties: source key, then line); last write wins, a delete removes the row."
        ),
        metadata={"primary_key": list(spec.primary_key)},
        pool=current_pool(spec.name),
        check_specs=[
            dg.AssetCheckSpec("primary_key_unique", asset=current_key, blocking=True),
            dg.AssetCheckSpec("no_null_keys", asset=current_key, blocking=True),
            dg.AssetCheckSpec("columns_match_registry", asset=current_key, blocking=True),
        ],
    )
    def current(context: dg.AssetExecutionContext, config: CurrentConfig, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        report = ingestion.update_current(store, spec, rebuild=config.rebuild)
        context.log.info(
            f"{spec.name}: applied {report.changes_applied} changes from {len(report.partitions_applied)} "
            f"ingest dates ({report.inserted} inserted, {report.updated} replaced); {report.rows} rows, "
            f"{report.tombstones} deleted keys; current v{report.version}"
            + ("" if report.committed else " (nothing won: no new version)")
            + (f"; {report.conflicts} commit retries after concurrent writers" if report.conflicts else "")
        )
        dups, nulls = report.checks["duplicate_rows"], report.checks["null_key_rows"]
        mismatches = report.checks["mismatches"]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.rows,
                "deleted_keys": report.tombstones,
                "changes_applied": report.changes_applied,
                "rows_inserted": report.inserted,
                "rows_replaced": report.updated,
                "partitions_applied": dg.MetadataValue.json(report.partitions_applied),
                "rebuilt": report.rebuilt,
                "delta_version": report.version,
                "trusted_delta_version": report.trusted_version,
                "commit_retries": report.conflicts,
                "path": dg.MetadataValue.path(store.describe(ingestion.current_key(spec.name))),
                "time_travel": dg.MetadataValue.md(
                    f"`smartstream table read {spec.name} --version {report.version}` reads this state again"
                ),
                "dagster/column_schema": column_schema(spec),
                "preview": preview(report.preview),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="primary_key_unique", passed=dups == 0,
                    metadata={"duplicate_rows": dups, "checked": report.checks["duplicate_scope"]},
                ),
                dg.AssetCheckResult(check_name="no_null_keys", passed=nulls == 0, metadata={"null_key_rows": nulls}),
                dg.AssetCheckResult(
                    check_name="columns_match_registry",
                    passed=not mismatches,
                    metadata={"mismatches": dg.MetadataValue.json(mismatches)},
                ),
            ],
        )

    return [trusted, current]


def _partition_metadata(store, spec: TableSpec, r: ingestion.TrustedReport) -> dict:
    """What one ingest date's materialisation shows: its own objects, rows and quarantine."""
    meta = {
        "dagster/row_count": r.rows_out,
        "rows_in": r.rows_in,
        "rows_quarantined": r.quarantined,
        "raw_objects": r.objects,
        "raw_digest": r.raw_digest,  # the sensor skips a date whose objects still have this digest
    }
    if r.delta_version is not None and r.delta_version >= 0:
        meta["delta_version"] = r.delta_version  # the run's one commit to the trusted table
        meta["commit_retries"] = r.commit_retries
    if not r.objects:
        return meta
    meta |= {
        "quarantine_by_reason": counts_table(dict(r.quarantine_reasons)),
        "changes_by_op": dg.MetadataValue.json(dict(r.ops)),
        "empty_raw_objects": dg.MetadataValue.json(r.empty_objects),
        "debezium_tombstones": r.tombstones,
        "path": dg.MetadataValue.path(store.describe(ingestion.trusted_key(spec.name, r.day))),
        "preview": preview(r.preview),
    }
    for reason, n in sorted(r.quarantine_reasons.items()):
        meta[f"quarantined_{reason}"] = n
    if r.quarantined:
        meta["quarantine_path"] = dg.MetadataValue.path(store.describe(ingestion.quarantine_key(spec.name, r.day)))
    if r.min_commit_ts:
        meta["commit_ts_min"] = r.min_commit_ts.isoformat()
        meta["commit_ts_max"] = r.max_commit_ts.isoformat()
    if r.vanished_objects:
        meta["vanished_raw_objects"] = dg.MetadataValue.json(r.vanished_objects)
    return meta


def _trusted_result(spec: TableSpec, reports) -> dg.MaterializeResult:
    """Checks over every partition of the run; per-partition figures are added above."""
    null_keys = sum(r.null_keys for r in reports)
    mismatches = sorted({m for r in reports for m in r.schema_mismatches})
    rows_in = sum(r.rows_in for r in reports)
    rows_out = sum(r.rows_out for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    rate = quarantined / rows_in if rows_in else 0.0
    return dg.MaterializeResult(
        metadata={"dagster/column_schema": column_schema(spec)},
        check_results=[
            dg.AssetCheckResult(check_name="no_null_keys", passed=null_keys == 0, metadata={"null_key_rows": null_keys}),
            dg.AssetCheckResult(
                check_name="columns_match_registry",
                passed=not mismatches,
                metadata={"mismatches": dg.MetadataValue.json(mismatches)},
            ),
            dg.AssetCheckResult(
                check_name="rows_accounted_for",
                passed=rows_in == rows_out + quarantined,
                metadata={"rows_in": rows_in, "rows_out": rows_out, "rows_quarantined": quarantined},
            ),
            dg.AssetCheckResult(
                check_name="quarantine_rate",
                passed=rate <= QUARANTINE_WARN_RATE,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"rate": rate, "rows_in": rows_in, "rows_quarantined": quarantined},
            ),
        ],
    )
