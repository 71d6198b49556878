"""Vitals scored as data lands: ``vitals_raw_sensor`` → ``vitals_stream`` job →
``vitals/scores``, one dynamic partition per raw micro-batch object.

The logic is ``ml.stream`` (state, replays, catch-up, alerts) with the vitals scorer
(``domains.vitals.stream_scorer``: the training function's rolling features over each
patient's earlier readings, then the champion). This module is the thin Dagster side:

- the sensor lists the raw prefix after its cursor (the highest key requested; every
  ``FULL_SCAN_SECONDS`` the whole prefix against the known partitions, for keys that
  land below it), adds one partition per new object and requests one run per object;
  the run key is the object's key and digest, so a lost cursor never runs an object
  twice. When ``RUNS_IN_FLIGHT`` stream runs are queued or running already the new objects
  wait, and when more objects wait than there are free runs, one run takes a range of
  them (at most ``BATCHES_PER_RUN``; each object is still its own partition): a run costs
  seconds of fixed overhead (process, code location, model), so one run per object at one
  object a second would queue without end (``benchmarks/vitals_latency.py``).
- the runs of the stream take turns on one pool (``dagster.yaml``: limit 1); the state's
  compare-and-swap keeps them right without it.
"""


import os
import time

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from ..domains.vitals import ALERT_EVERY_HOURS, HIGH_RISK, VITALS_DOMAIN
from ..ingestion import object_hash
from ..keys import asset_keys, domain_asset_key, spelled
from ..metadata import preview
from ..resources import AlertResource, LakeResource, MlflowResource
from ..tables import load_tables

LIVE_TABLE = "vitals"
SCORES_KEY = domain_asset_key(VITALS_DOMAIN.name, "scores")  # vitals/scores
BATCHES = dg.DynamicPartitionsDefinition(name="vitals_batches")
STREAM_JOB = "vitals_stream"
STREAM_POOL = "smartstream_stream_vitals"
SENSOR_NAME = "vitals_raw_sensor"
FULL_SCAN_SECONDS = float(os.environ.get("SMARTSTREAM_SENSOR_FULL_SCAN_SECONDS", "600"))
RUNS_IN_FLIGHT_ENV = "SMARTSTREAM_STREAM_RUNS_IN_FLIGHT"
BATCHES_PER_RUN_ENV = "SMARTSTREAM_STREAM_BATCHES_PER_RUN"
IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def _spec():
    return load_tables()[LIVE_TABLE]


def partition_of(key: str, prefix: str) -> str:
    """A raw object's partition: its key under the table's raw prefix."""
    return key.removeprefix(prefix)


def raw_partitions(lake) -> list[str]:
    """The partition of every raw vitals object in ``lake``, in key order."""
    prefix = _spec().raw_prefix
    return sorted(partition_of(o.key, prefix) for o in lake.list(prefix) if not o.key.endswith("/"))


class StreamConfig(dg.Config):
    alert_threshold: float = HIGH_RISK  # P(sepsis) at or above which a score is high risk and alerts
    alert_every_hours: float = ALERT_EVERY_HOURS  # at most one alert per patient in this many hours


_keys = asset_keys(VITALS_DOMAIN)


@dg.asset(
    key=SCORES_KEY,
    deps=[_keys["deployment"]],
    partitions_def=BATCHES,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name=VITALS_DOMAIN.name,
    kinds={"sklearn", "parquet"},
    pool=STREAM_POOL,
    description=(
        "Each raw micro-batch under raw/icu/vitals/ scored as it lands (one partition per object): messages typed "
        "(malformed ones quarantined with the reason), each patient's rolling features over their earlier readings "
        f"from earlier batches, P(sepsis) by the champion of {VITALS_DOMAIN.registered_model} → lake "
        "`predictions/vitals/stream/hour=<hour>/` (patient_id, ts, probability, prediction_probabilities, original, "
        "model_version). A replayed message is quarantined, never scored twice; a high-risk score alerts, at most "
        f"once per patient per {ALERT_EVERY_HOURS:g} h."
    ),
)
def scores(context: dg.AssetExecutionContext, config: StreamConfig, lake: LakeResource, mlflow: MlflowResource,
           alerts: AlertResource) -> dg.MaterializeResult:  # fmt: skip
    import pandas as pd
    import pyarrow as pa

    from ..domains.vitals import stream_scorer, stream_settings
    from ..jobs import retrain_job_name
    from ..ml import scoring
    from ..ml.alerts import Alert
    from ..ml.registry import CHAMPION
    from ..ml.stream import run_stream, state_key

    store, spec = lake.get(), _spec()
    registry = mlflow.registry()
    champion = registry.version(VITALS_DOMAIN.registered_model, CHAMPION)
    if champion is None:
        raise dg.Failure(
            f"{VITALS_DOMAIN.registered_model} has no champion yet: materialise {spelled(_keys['model'])} and "
            f"{spelled(_keys['deployment'])} first (the batches wait: re-execute this run afterwards)"
        )
    pipeline = registry.load_pipeline(VITALS_DOMAIN.registered_model, champion.version)
    needs = scoring.model_input_columns(pipeline, VITALS_DOMAIN.features)
    try:
        scoring.check_champion_columns(needs, VITALS_DOMAIN.features, model=VITALS_DOMAIN.registered_model,
                                       version=champion.version, source="ml.vitals.rolling_features",
                                       retrain_job=retrain_job_name(VITALS_DOMAIN))  # fmt: skip
    except scoring.ScoringError as exc:
        raise dg.Failure(str(exc)) from None
    own = [spec.raw_prefix + p for p in context.partition_keys]
    started = time.perf_counter()
    run = run_stream(store, spec, own, domain=VITALS_DOMAIN.name,
                     settings=stream_settings(config.alert_threshold, config.alert_every_hours),
                     score=stream_scorer(pipeline, needs), model_version=champion.version)  # fmt: skip
    seconds = time.perf_counter() - started
    if run.unreadable:  # the others are scored and committed: a re-execution finds them done
        raise dg.Failure(
            "cannot read raw object(s) " + "; ".join(run.unreadable.values())
            + f" ({len(own) - len(run.unreadable)} other object(s) of this run were scored)"
        )
    sent = {}
    alerter = alerts.alerter(context.log) if len(run.alerts) else None
    for row in run.alerts.itertuples(index=False):
        deliveries = alerter.send(Alert(
            kind="high_risk",
            title=f"vitals: patient {row.patient_id} at high risk of sepsis (P = {row.probability:.2f})",
            text=f"reading of {pd.Timestamp(row.ts).isoformat()} scored by {VITALS_DOMAIN.registered_model} v{row.model_version}; "
                 f"next alert for this patient no sooner than {config.alert_every_hours:g} h later",
            fields={"patient_id": row.patient_id, "ts": pd.Timestamp(row.ts).isoformat(), "probability": round(float(row.probability), 4),
                    "model_version": row.model_version, "batch": row.batch},
        ))  # fmt: skip
        count = sent.setdefault(row.batch, [0, 0])
        count[0 if all(d.ok for d in deliveries) else 1] += 1
    caught_up = [o.key for o in run.outcomes if o.caught_up]
    if caught_up:
        context.log.info(f"also scored {len(caught_up)} earlier object(s) whose own run had not: {', '.join(caught_up[:5])}")
    by_key = {o.key: o for o in run.outcomes}
    total = sum(o.scored for o in run.outcomes)
    for partition, key in zip(context.partition_keys, own):
        o = by_key[key]
        delivered, failed = sent.get(key, [0, 0])
        meta = {
            "dagster/row_count": o.scored,
            "messages": o.messages,
            "scored": o.scored,
            "quarantined": o.quarantined,
            "malformed": o.malformed,
            "replayed_not_rescored": o.replayed,
            "too_late": o.too_late,
            "late_scored": o.late,
            "previously_scored": o.previously_scored,
            "quarantine_reasons": dg.MetadataValue.json(o.reasons),
            "high_risk": o.high_risk,
            "alerts_sent": delivered,
            "alerts_undelivered": failed,
            "model_version": champion.version,
            "raw_object": dg.MetadataValue.path(store.describe(key)),
            "scores": dg.MetadataValue.json([store.describe(f) for f in o.files]),
            "run_messages_per_second": round(sum(x.messages for x in run.outcomes) / seconds, 1) if seconds > 0 else 0.0,
            "run_objects": len(run.outcomes),
            "run_scoring_seconds": round(seconds, 3),  # the run's wall time minus this: its fixed overhead
            "state_generation": run.generation,
            "state_conflicts": run.conflicts,
            "state": dg.MetadataValue.path(store.describe(state_key(VITALS_DOMAIN.name))),
        }
        if o.written_at is not None and o.scored:
            meta["seconds_since_landed"] = round((pd.Timestamp.now(tz="UTC") - pd.Timestamp(o.written_at)).total_seconds(), 1)
        if o.quarantine_file:
            meta["quarantine"] = dg.MetadataValue.path(store.describe(o.quarantine_file))
        if o.frame is not None and len(o.frame):
            shown = o.frame.drop(columns=["original"]).sort_values("probability", ascending=False).head(10)
            meta["highest_risk"] = preview(pa.Table.from_pandas(shown, preserve_index=False))
        if key == own[-1] and caught_up:  # earlier objects this run scored for their own runs
            meta["caught_up_objects"] = dg.MetadataValue.json(caught_up)
        context.add_asset_metadata(meta, partition_key=partition)
    context.log.info(f"{len(own)} object(s): {total} readings scored in {seconds:.2f} s, {len(run.alerts)} alert(s)")
    return dg.MaterializeResult()


def build_stream_job():
    # in-process: a run is one step, and a second process would double the fixed cost
    return dg.define_asset_job(
        STREAM_JOB,
        selection=dg.AssetSelection.assets(SCORES_KEY),
        partitions_def=BATCHES,
        executor_def=dg.in_process_executor,
        description="Score raw vitals micro-batches (one partition each) as they land.",
    )


def _setting(env: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(env, default)))
    except ValueError:
        return default


def plan_runs(new: list, free: int, per_run: int) -> list[list]:
    """Objects (in key order) into runs: one each while there are free runs, else the
    free runs share them in key order, at most ``per_run`` each; what does not fit waits."""
    if free <= 0 or not new:
        return []
    taken = new[: free * per_run]
    if len(taken) <= free:
        return [[o] for o in taken]
    size = -(-len(taken) // free)  # ceil: as few runs as the free ones, each as even as can be
    return [taken[i : i + size] for i in range(0, len(taken), size)]


def build_stream_sensor(job) -> dg.SensorDefinition:
    spec = _spec()

    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=5,
        description=(
            f"Requests a {STREAM_JOB} run per new micro-batch object under {spec.raw_prefix} (run key: the object's key "
            "and digest); when stream runs are already in flight, one run takes several objects (each its own partition)."
        ),
    )
    def stream_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        import json

        store = lake.get()
        try:
            cursor = json.loads(context.cursor) if context.cursor else {}
        except ValueError:
            cursor = {}
        high_water, last_full = cursor.get("hw"), float(cursor.get("full", 0.0))
        now = time.time()
        full = high_water is None or now - last_full >= FULL_SCAN_SECONDS
        listed = [o for o in store.list(spec.raw_prefix, start_after=None if full else high_water) if not o.key.endswith("/")]
        if full:
            known = set(context.instance.get_dynamic_partitions(BATCHES.name))
            new = [o for o in listed if partition_of(o.key, spec.raw_prefix) not in known]
        else:
            new = [o for o in listed if o.key > high_water and not context.instance.has_dynamic_partition(BATCHES.name, partition_of(o.key, spec.raw_prefix))]
        new.sort(key=lambda o: o.key)
        in_flight = context.instance.get_runs_count(dg.RunsFilter(job_name=job.name, statuses=IN_FLIGHT))
        free = _setting(RUNS_IN_FLIGHT_ENV, 2) - in_flight
        runs = plan_runs(new, free, _setting(BATCHES_PER_RUN_ENV, 120))
        requested = [o for run in runs for o in run]
        waiting = len(new) - len(requested)
        # the cursor moves over what was requested; waiting objects are listed again next tick
        marks = [high_water or "", *(o.key for o in requested)]
        if full and not waiting:
            marks += [o.key for o in listed]
        new_cursor = json.dumps({"hw": max(marks) or None, "full": now if full else last_full})
        if not runs:
            why = f"{in_flight} stream run(s) in flight; {waiting} new object(s) wait" if waiting else "no new micro-batch objects"
            return dg.SensorResult(skip_reason=f"{why} ({len(listed)} listed, {'full scan' if full else 'new keys only'})", cursor=new_cursor)
        requests = []
        for run in runs:
            parts = [partition_of(o.key, spec.raw_prefix) for o in run]
            digest = 0
            for o in run:
                digest = (digest + object_hash(o)) & ((1 << 64) - 1)
            tags = {"smartstream/table": LIVE_TABLE, "smartstream/raw_objects": str(len(run))}
            if len(run) == 1:
                requests.append(dg.RunRequest(run_key=f"{LIVE_TABLE}:{run[0].key}:{digest:016x}", partition_key=parts[0], tags=tags))
            else:
                tags.update({ASSET_PARTITION_RANGE_START_TAG: parts[0], ASSET_PARTITION_RANGE_END_TAG: parts[-1]})
                requests.append(dg.RunRequest(run_key=f"{LIVE_TABLE}:{run[0].key}..{run[-1].key}:{len(run)}:{digest:016x}", tags=tags))
        context.log.info(
            f"{len(requested)} new micro-batch object(s) in {len(requests)} run(s)"
            + (f"; {waiting} wait ({in_flight} run(s) in flight)" if waiting else "")
        )
        return dg.SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[BATCHES.build_add_request([partition_of(o.key, spec.raw_prefix) for o in requested])],
            cursor=new_cursor,
        )

    return stream_sensor


STREAM_ASSETS = [scores]
