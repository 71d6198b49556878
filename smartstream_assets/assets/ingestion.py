"""trusted/<table> and current/<table> for every table of the registry.

Thin Dagster wrappers around ``smartstream_assets.ingestion``; the checks are
computed on what was just written and reported with the materialisation.
"""


from collections import Counter
from datetime import date

import dagster as dg

from .. import ingestion, quality
from ..metadata import column_schema, counts_table, preview
from ..partitions import DAILY
from ..resources import LakeResource
from ..tables import TableSpec

# A quarantine rate above this warns (the run still succeeds: nothing is lost).
QUARANTINE_WARN_RATE = 0.05


class TrustedConfig(dg.Config):
    """Filled in by the raw sensor, so the run (and `dagster sensor preview`) shows what it saw."""

    sensor_ingest_date: str = ""  # the ingest date the sensor saw new objects for
    sensor_raw_objects: int = 0  # how many objects it listed for that date


class CurrentConfig(dg.Config):
    rebuild: bool = False  # re-read every trusted partition instead of only new ones


def trusted_op_name(table: str) -> str:
    return f"trusted__{table}"


def trusted_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["trusted", table])


def current_asset_key(table: str) -> dg.AssetKey:
    return dg.AssetKey(["current", table])


def build_ingestion_assets(spec: TableSpec) -> list[dg.AssetsDefinition]:
    trusted_key, current_key = trusted_asset_key(spec.name), current_asset_key(spec.name)

    @dg.asset(
        key=trusted_key,
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingestion",
        kinds={"parquet"},
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
        days = [date.fromisoformat(k) for k in context.partition_keys]
        by_date = ingestion.raw_objects_by_date(store, spec, days)
        reports = []
        for day in days:
            report = ingestion.build_trusted_partition(store, spec, day, by_date.get(day, []))
            if report.objects:  # a log line is an event-log write: not one per empty day of a range
                context.log.info(
                    f"{spec.name} {day}: {report.objects} objects, {report.rows_out} changes, "
                    f"{report.quarantined} quarantined"
                )
            reports.append(report)
        if len(days) > 1:
            context.log.info(f"{spec.name}: {len(days)} ingest dates, {sum(1 for r in reports if r.objects)} with raw objects")
        extra = {}
        if config.sensor_ingest_date:
            found = sum(r.objects for r in reports if r.day.isoformat() == config.sensor_ingest_date)
            if found < config.sensor_raw_objects:  # raw is never modified: objects vanished
                context.log.warning(
                    f"the sensor saw {config.sensor_raw_objects} raw objects for {config.sensor_ingest_date}, "
                    f"the run found {found}"
                )
            extra["raw_objects_seen_by_sensor"] = config.sensor_raw_objects
        return _trusted_result(store, spec, reports, extra)

    @dg.asset(
        key=current_key,
        deps=[trusted_key],
        # single_run lets one CLI run cover trusted's partition range and then this.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="ingestion",
        kinds={"parquet"},
        description=(
            f"Current state of {spec.name}: every change applied per primary key in commit order "
            "(ties: source key, then line); last write wins, a delete removes the row."
        ),
        metadata={"primary_key": list(spec.primary_key)},
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
            f"partitions; {report.rows} rows, {report.tombstones} deleted keys"
        )
        table = report.current
        dups = quality.duplicate_key_count(table, spec.primary_key)
        nulls = quality.null_key_count(table, spec.primary_key)
        mismatches = quality.schema_mismatches(table, spec)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": report.rows,
                "deleted_keys": report.tombstones,
                "changes_applied": report.changes_applied,
                "partitions_applied": dg.MetadataValue.json(report.partitions_applied),
                "rebuilt": report.rebuilt,
                "path": dg.MetadataValue.path(store.describe(ingestion.current_key(spec.name))),
                "dagster/column_schema": column_schema(spec),
                "preview": preview(table),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name="primary_key_unique", passed=dups == 0, metadata={"duplicate_rows": dups}
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


def _trusted_result(store, spec: TableSpec, reports, extra: dict) -> dg.MaterializeResult:
    null_keys = sum(r.null_keys for r in reports)
    mismatches = sorted({m for r in reports for m in r.schema_mismatches})
    rows_in = sum(r.rows_in for r in reports)
    rows_out = sum(r.rows_out for r in reports)
    quarantined = sum(r.quarantined for r in reports)
    reasons = sum((r.quarantine_reasons for r in reports), Counter())
    ops = sum((r.ops for r in reports), Counter())
    rate = quarantined / rows_in if rows_in else 0.0
    metadata = {
        "dagster/row_count": rows_out,
        "rows_in": rows_in,
        "rows_quarantined": quarantined,
        "quarantine_by_reason": counts_table(dict(reasons)),
        "changes_by_op": dg.MetadataValue.json(dict(ops)),
        "raw_objects": sum(r.objects for r in reports),
        "debezium_tombstones": sum(r.tombstones for r in reports),
        "dagster/column_schema": column_schema(spec),
        "preview": preview(next((r.preview for r in reports if r.rows_out), None)),
        **extra,
    }
    for reason, n in sorted(reasons.items()):
        metadata[f"quarantined_{reason}"] = n
    if len(reports) == 1:
        r = reports[0]
        metadata["path"] = dg.MetadataValue.path(store.describe(ingestion.trusted_key(spec.name, r.day)))
        if r.quarantined:
            metadata["quarantine_path"] = dg.MetadataValue.path(store.describe(ingestion.quarantine_key(spec.name, r.day)))
        if r.min_commit_ts:
            metadata["commit_ts_min"] = r.min_commit_ts.isoformat()
            metadata["commit_ts_max"] = r.max_commit_ts.isoformat()
    else:  # a range run: one line per partition
        lines = ["| ingest_date | objects | rows in | changes | quarantined |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r.day} | {r.objects} | {r.rows_in} | {r.rows_out} | {r.quarantined} |" for r in reports]
        metadata["partitions"] = dg.MetadataValue.md("\n".join(lines))
    return dg.MaterializeResult(
        metadata=metadata,
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
                metadata={"rate": rate},
            ),
        ],
    )
