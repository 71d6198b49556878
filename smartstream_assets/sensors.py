"""One raw-zone sensor per table: new raw objects -> one run per ingest date."""


import os
import time

import dagster as dg

from .assets.ingestion import TrustedConfig, trusted_op_name
from .raw_watch import WatchCursor, watch
from .resources import LakeResource
from .tables import TableSpec

# How often a tick lists the whole prefix instead of only the keys after the
# highest one seen (see raw_watch for why both are needed).
FULL_SCAN_SECONDS = float(os.environ.get("SMARTSTREAM_SENSOR_FULL_SCAN_SECONDS", "600"))


def raw_sensor_name(table: str) -> str:
    return f"{table}_raw_sensor"


def build_raw_sensor(spec: TableSpec, job) -> dg.SensorDefinition:
    @dg.sensor(
        name=raw_sensor_name(spec.name),
        job=job,
        minimum_interval_seconds=30,
        description=f"Requests an ingest run per ingest date with new objects under {spec.raw_prefix}.",
    )
    def raw_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
        cursor = WatchCursor.from_json(context.cursor)
        result = watch(lake.get(), spec.raw_prefix, cursor, now=time.time(), full_scan_seconds=FULL_SCAN_SECONDS)
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
            for req in result.requests
        ]
        scan = "full scan" if result.full_scan else "new keys only"
        if not requests:
            return dg.SensorResult(
                skip_reason=f"no new raw objects under {spec.raw_prefix} ({result.listed} listed, {scan})",
                cursor=result.cursor.to_json(),
            )
        context.log.info(
            f"{len(requests)} ingest dates with new objects ({result.listed} listed, {scan}): "
            + ", ".join(r.partition_key for r in requests)
        )
        return dg.SensorResult(run_requests=requests, cursor=result.cursor.to_json())

    return raw_sensor
