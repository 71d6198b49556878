"""One raw-zone sensor per table: new raw objects -> one run per ingest date."""


import os
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from .assets.ingestion import TrustedConfig
from .keys import asset_keys, spelled, trusted_asset_key, trusted_op_name
from .raw_watch import WatchCursor, triage, watch
from .resources import LakeResource
from .tables import TableSpec

# How often a tick lists the whole prefix instead of only the keys after the
# highest one seen (see raw_watch for why both are needed).
FULL_SCAN_SECONDS = float(os.environ.get("SMARTSTREAM_SENSOR_FULL_SCAN_SECONDS", "600"))


def raw_sensor_name(table: str) -> str:
    return f"{table}_raw_sensor"


def daily_raw_sensor_name(table: str) -> str:
    """The per-date ingest sensor of a table whose ``<table>_raw_sensor`` a domain's own
    sensor is (vitals: one run per micro-batch)."""
    return f"{table}_daily_raw_sensor"


def build_raw_sensor(spec: TableSpec, job, name: str | None = None) -> dg.SensorDefinition:
    @dg.sensor(
        name=name or raw_sensor_name(spec.name),
        job=job,
        minimum_interval_seconds=30,
        description=f"Requests an ingest run per ingest date with new objects under {spec.raw_prefix}.",
    )
    def raw_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        cursor = WatchCursor.from_json(context.cursor)
        result = watch(lake.get(), spec.raw_prefix, cursor, now=time.time(), full_scan_seconds=FULL_SCAN_SECONDS)

        def ingested_digest(day: date) -> str | None:
            records = context.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=trusted_asset_key(spec.name), asset_partitions=[day.isoformat()]),
                limit=1,
            ).records
            value = records[0].asset_materialization.metadata.get("raw_digest") if records else None
            return None if value is None else str(value.value)

        today = datetime.now(timezone.utc).date()
        sorted_out = triage(
            result.requests, first_day=spec.start_date, last_day=today + timedelta(days=1), ingested_digest=ingested_digest
        )
        for req in sorted_out.not_yet:  # forget them: the next full scan requests them again
            if req.day.isoformat() in cursor.dates:
                result.cursor.dates[req.day.isoformat()] = cursor.dates[req.day.isoformat()]
            else:
                result.cursor.dates.pop(req.day.isoformat(), None)
        if sorted_out.before_start:
            context.log.warning(
                f"{sum(r.objects for r in sorted_out.before_start)} raw objects dated before {spec.name}'s "
                f"start_date {spec.start_date} are not ingested ("
                + ", ".join(r.day.isoformat() for r in sorted_out.before_start[:10])
                + "): lower start_date in the table registry, then backfill those dates"
            )
        requests = [
            dg.RunRequest(
                run_key=req.run_key(spec.name),
                partition_key=req.day.isoformat(),
                run_config=dg.RunConfig(
                    ops={
                        trusted_op_name(spec.name): TrustedConfig(
                            sensor_ingest_date=req.day.isoformat(), sensor_raw_objects=req.objects
                        )
                    }
                ),
                tags={"smartstream/table": spec.name, "smartstream/raw_objects": str(req.objects)},
            )
            for req in sorted_out.run
        ]
        scan = "full scan" if result.full_scan else "new keys only"
        notes = []
        if sorted_out.ingested:
            notes.append(f"{len(sorted_out.ingested)} dates already ingested from exactly these objects")
        if sorted_out.before_start:
            notes.append(f"{len(sorted_out.before_start)} dates before start_date {spec.start_date}")
        if sorted_out.not_yet:
            notes.append(f"{len(sorted_out.not_yet)} dates after today, deferred")
        seen = f"{result.listed} listed, {scan}" + "".join(f"; {n}" for n in notes)
        if not requests:
            return dg.SensorResult(
                skip_reason=f"no new raw objects under {spec.raw_prefix} ({seen})",
                cursor=result.cursor.to_json(),
            )
        context.log.info(
            f"{len(requests)} ingest dates with new objects ({seen}): " + ", ".join(r.partition_key for r in requests)
        )
        return dg.SensorResult(run_requests=requests, cursor=result.cursor.to_json())

    return raw_sensor


def retrain_sensor_name(domain) -> str:
    return f"{domain.name}_retrain_sensor"


def build_retrain_sensor(domain, job) -> dg.SensorDefinition:
    """Reads the latest drift report of the domain (and its monitors' latest reports, when
    it has monitors); retrains when one crosses, once per report, with a cooldown."""
    from .keys import MONITOR_ROLES
    from .ml.retraining import DriftReport, RetrainCursor, decide_on_reports

    keys = asset_keys(domain)
    drift_key = keys["drift"]
    monitors = [keys[role] for role in MONITOR_ROLES if role in keys]
    watched = f"{spelled(drift_key)}" + (f" or {', '.join(spelled(k) for k in monitors)}" if monitors else "")

    @dg.sensor(
        name=retrain_sensor_name(domain),
        job=job,
        minimum_interval_seconds=60,
        description=(
            f"Requests {job.name} when {spelled(drift_key)} crosses drift share "
            f"{domain.drift_share_threshold} or flags prediction drift"
            + (f", or {', '.join(spelled(k) for k in monitors)} requests retraining (degraded quality, bias drift)" if monitors else "")
            + f"; once per report, at most once per {domain.retrain_cooldown_hours:g} h."
        ),
    )
    def retrain_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        reports = []
        for key in [drift_key, *monitors]:
            records = context.instance.fetch_materializations(key, limit=1).records
            if not records:
                continue
            meta = records[0].asset_materialization.metadata
            run_date = str(meta["run_date"].value) if "run_date" in meta else ""
            if key == drift_key:
                reports.append(DriftReport(records[0].storage_id, float(meta["drift_share"].value),
                                           bool(meta["prediction_drift"].value), run_date, source=spelled(key)))  # fmt: skip
            elif "retrain_requested" in meta:
                reason = meta.get("retrain_reason") or meta.get("verdict")
                reports.append(DriftReport(records[0].storage_id, run_date=run_date, requested=bool(meta["retrain_requested"].value),
                                           reason=str(reason.value) if reason else "", source=spelled(key)))  # fmt: skip
        decision, report = decide_on_reports(
            reports,
            RetrainCursor.from_json(context.cursor),
            now=time.time(),
            threshold=domain.drift_share_threshold,
            cooldown_seconds=domain.retrain_cooldown_hours * 3600,
        )
        if not decision.request:
            return dg.SensorResult(skip_reason=decision.reason or f"nothing to decide on ({watched})", cursor=decision.cursor.to_json())
        context.log.info(decision.reason)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{domain.name}-retrain-report-{report.report_id}",
                    tags={"smartstream/trigger": "monitor" if report.requested is not None else "drift",
                          "smartstream/drift_share": f"{report.drift_share:.3f}",
                          "smartstream/report_source": report.source,
                          "smartstream/drift_report": str(report.report_id)},  # fmt: skip
                )
            ],
            cursor=decision.cursor.to_json(),
        )

    return retrain_sensor
