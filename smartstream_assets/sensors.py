"""One raw-zone sensor per table: new raw objects -> one run per ingest date."""


import os
import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import PARTITION_NAME_TAG, RUN_KEY_TAG, SENSOR_NAME_TAG

from .assets.ingestion import TrustedConfig
from .keys import asset_keys, spelled, trusted_asset_key, trusted_op_name
from .raw_watch import DateRequest, WatchCursor, triage, watch
from .resources import LakeResource
from .tables import TableSpec

# How often a tick lists the whole prefix instead of only the keys after the
# highest one seen (see raw_watch for why both are needed).
FULL_SCAN_SECONDS = float(os.environ.get("SMARTSTREAM_SENSOR_FULL_SCAN_SECONDS", "600"))

# A date whose latest run failed (its worker killed, a lost database connection) is
# requested again while its objects are unchanged, up to this many runs for the same
# objects; the cursor already holds the date, and Dagster drops a repeated run key.
MAX_RUNS_PER_CONTENT = 3
FAILED_RUNS_LOOKBACK = 20  # the newest failed runs of the sensor looked at per tick


def raw_sensor_name(table: str) -> str:
    return f"{table}_raw_sensor"


def daily_raw_sensor_name(table: str) -> str:
    """The per-date ingest sensor of a table whose ``<table>_raw_sensor`` a domain's own
    sensor is (vitals: one run per micro-batch)."""
    return f"{table}_daily_raw_sensor"


def build_raw_sensor(spec: TableSpec, job, name: str | None = None) -> dg.SensorDefinition:
    sensor_name = name or raw_sensor_name(spec.name)

    @dg.sensor(
        name=sensor_name,
        job=job,
        minimum_interval_seconds=30,
        description=f"Requests an ingest run per ingest date with new objects under {spec.raw_prefix}.",
    )
    def raw_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        cursor = WatchCursor.from_json(context.cursor)
        result = watch(lake.get(), spec.raw_prefix, cursor, now=time.time(), full_scan_seconds=FULL_SCAN_SECONDS)
        retries, exhausted = failed_dates(context.instance, sensor_name, spec.name, result.cursor)

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
        retried = {req.day for req, _ in retries}
        to_run = [(req, req.run_key(spec.name)) for req in sorted_out.run if req.day not in retried] + retries
        requests = [
            dg.RunRequest(
                run_key=run_key,
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
            for req, run_key in sorted(to_run, key=lambda pair: pair[0].day)
        ]
        scan = "full scan" if result.full_scan else "new keys only"
        notes = []
        if sorted_out.ingested:
            notes.append(f"{len(sorted_out.ingested)} dates already ingested from exactly these objects")
        if sorted_out.before_start:
            notes.append(f"{len(sorted_out.before_start)} dates before start_date {spec.start_date}")
        if sorted_out.not_yet:
            notes.append(f"{len(sorted_out.not_yet)} dates after today, deferred")
        if retries:
            notes.append(f"{len(retries)} dates again after a failed run")
        if exhausted:
            notes.append(
                f"{len(exhausted)} dates failed {MAX_RUNS_PER_CONTENT} runs, not requested again until their objects "
                "change or a run is launched by hand: " + ", ".join(d.isoformat() for d in exhausted[:10])
            )
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


def failed_dates(instance, sensor_name: str, table: str, cursor: WatchCursor) -> tuple[list[tuple[DateRequest, str]], list[date]]:
    """Dates whose newest run by ``sensor_name`` failed while their objects are still the
    ones it ran on: ((request, a run key naming the attempt), ...), and the dates given up
    on after ``MAX_RUNS_PER_CONTENT`` runs. The watch cursor already holds such a date, and
    Dagster drops a request that repeats the failed run's key: without this its objects
    would never be ingested. The triage's "already ingested" skip does not apply: a run
    killed in ``current`` leaves the trusted partition done and current/ behind.

    The attempt key ``<content key>:attempt<n>`` depends only on the runs so far, so two
    ticks before the new run exists ask for the same key (one run); a canceled run (a
    person's decision) is not requested again."""
    failed = instance.get_runs(
        filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: sensor_name}, statuses=[dg.DagsterRunStatus.FAILURE]),
        limit=FAILED_RUNS_LOOKBACK,
    )
    retries, exhausted = [], []
    for day_key in sorted({run.tags.get(PARTITION_NAME_TAG) for run in failed} - {None}):
        if day_key not in cursor.dates:
            continue
        request = DateRequest(date.fromisoformat(day_key), *cursor.dates[day_key])
        content_key = request.run_key(table)
        runs = instance.get_runs(
            filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: sensor_name, PARTITION_NAME_TAG: day_key}),
            limit=MAX_RUNS_PER_CONTENT + 1,
        )
        if not runs or runs[0].status != dg.DagsterRunStatus.FAILURE:  # newest first: in flight, or done since
            continue
        attempts = [r for r in runs if (r.tags.get(RUN_KEY_TAG) or "").split(":attempt")[0] == content_key]
        if not attempts or attempts[0].run_id != runs[0].run_id:  # it failed on other objects: the watch requests these
            continue
        if len(attempts) >= MAX_RUNS_PER_CONTENT:
            exhausted.append(request.day)
        else:
            retries.append((request, f"{content_key}:attempt{len(attempts) + 1}"))
    return retries, exhausted


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


def scoring_sensor_name(domain) -> str:
    return f"{domain.name}_scoring_sensor"


def scoring_watch_key(domain) -> dg.AssetKey:
    """What new data for ``domain``'s scoring is: its scoring source (a partitioned frame,
    e.g. vitals/hourly), else its training source, else its table's current state."""
    from .keys import current_asset_key

    spelled_key = domain.scoring_source or domain.source
    return dg.AssetKey(spelled_key.split("/")) if spelled_key else current_asset_key(domain.table)


def scoring_partitions(events: list[tuple[int, str | None]], partitions_def) -> dict[str, int]:
    """Which scoring partitions new data calls for (pure): each event (storage id,
    partition) of the watched asset. A partition the scoring job has is scored again; an
    unpartitioned change (a table's current state) re-scores the latest complete period.
    Returns partition -> the newest storage id that asked for it."""
    wanted: dict[str, int] = {}
    last = None
    for storage_id, partition in events:
        if partition is not None and partitions_def.has_partition_key(partition):
            key = partition
        else:
            last = last or partitions_def.get_last_partition_key()
            key = last
        if key is not None:
            wanted[key] = max(storage_id, wanted.get(key, 0))
    return wanted


def build_scoring_sensor(domain, job) -> dg.SensorDefinition:
    """Scores as soon as new data lands, instead of waiting for the cadence's schedule: each
    new materialisation of ``scoring_watch_key`` requests the scoring job for the partition
    it calls for (``scoring_partitions``), once per materialisation (run key), and only
    once the domain has a champion. Off by default, like every sensor: switch it on where
    a drift report should follow new data within a minute (the closed loop)."""
    keys = asset_keys(domain)
    watched = scoring_watch_key(domain)
    partitions_def = job.partitions_def

    @dg.sensor(
        name=scoring_sensor_name(domain),
        job=job,
        minimum_interval_seconds=30,
        description=(
            f"Requests {job.name} when {spelled(watched)} is materialised: the partition it changed, or the latest "
            f"complete {domain.scoring_cadence.every} for a change of the whole state; once per materialisation, "
            f"once {spelled(keys['deployment'])} has a champion."
        ),
    )
    def scoring_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        after = int(context.cursor) if context.cursor else None
        if after is None:  # switched on: only what lands from now on (the schedule covers the past)
            latest = context.instance.fetch_materializations(watched, limit=1).records
            return dg.SensorResult(skip_reason=f"watching {spelled(watched)} from now on", cursor=str(latest[0].storage_id if latest else 0))
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=watched, after_storage_id=after), limit=1000, ascending=True
        ).records
        if not records:
            return dg.SensorResult(skip_reason=f"no new {spelled(watched)} since the last tick", cursor=context.cursor)
        cursor = str(records[-1].storage_id)
        if not context.instance.fetch_materializations(keys["deployment"], limit=1).records:
            return dg.SensorResult(skip_reason=f"new {spelled(watched)}, but {domain.name} has no champion yet", cursor=cursor)
        wanted = scoring_partitions([(r.storage_id, r.partition_key) for r in records], partitions_def)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{domain.name}-score-{partition}-{storage_id}", partition_key=partition,
                              tags={"smartstream/trigger": "new_data", "smartstream/source": spelled(watched)})  # fmt: skip
                for partition, storage_id in sorted(wanted.items())
            ],
            cursor=cursor,
        )

    return scoring_sensor
