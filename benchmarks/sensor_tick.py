"""Raw-sensor tick cost on a large prefix: incremental ticks vs listing everything.

    .venv/bin/python benchmarks/sensor_tick.py                       # 100,000 local keys, 20,000 on SeaweedFS
    .venv/bin/python benchmarks/sensor_tick.py --local-keys 20000 --s3-keys 5000

Fills a raw prefix with dated DMS-like keys (YYYY/MM/DD/<timestamp>.csv), on the
embedded local lake and on a real S3 server (SeaweedFS on 127.0.0.1), then times,
in the same run:

  full listing   what a sensor that lists the whole prefix every tick pays
                 (dagster_aws's get_objects does this): the baseline, and what
                 our periodic reconciling full scan costs
  incremental    our tick after a producer wrote 10 new keys: list only keys
                 after the cursor's high-water mark (S3 StartAfter; the local
                 lake skips folders that sort before it)
  sensor tick    the whole employees_raw_sensor evaluation through Dagster's
                 build_sensor_context for that incremental case
  run listing    what an ingest run lists to find its day's objects: only that
                 day's dated folder (plus one Delimiter listing per year and month
                 folder), against the whole-prefix listing runs used to do

and prints medians and the ratios full / incremental and whole prefix / run listing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PREFIX = "raw/hr/employees/"
START = date(2025, 1, 1)
REPEATS = 5


def keys_for(n: int, per_day: int) -> list[str]:
    keys = []
    for i in range(n):
        day = START + timedelta(days=i // per_day)
        keys.append(f"{PREFIX}{day:%Y/%m/%d}/{day:%Y%m%d}-{i % per_day:06d}0000.csv")
    return keys


def fill(lake, keys: list[str], threads: int) -> float:
    t = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda k: lake.write_bytes(k, b"I,2025-01-01 00:00:00,1\n"), keys))
    return time.perf_counter() - t


def measure(name: str, lake, n: int, per_day: int, threads: int) -> dict:
    from smartstream_assets.raw_watch import WatchCursor, watch

    print(f"{name}: writing {n:,} keys ...", flush=True)
    seconds = fill(lake, keys_for(n, per_day), threads)
    print(f"{name}: wrote {n:,} keys in {seconds:.1f}s", flush=True)

    run_times, prefix_times = run_listing(lake, n, per_day)
    full_times, incremental_times, sensor_times = [], [], []
    cursor = watch(lake, PREFIX, WatchCursor(), now=time.time(), full_scan_seconds=600).cursor
    for r in range(REPEATS):
        t = time.perf_counter()
        full = watch(lake, PREFIX, WatchCursor(), now=time.time(), full_scan_seconds=600)
        full_times.append(time.perf_counter() - t)
        assert full.listed == n + 10 * r, (full.listed, n)

        # a producer writes 10 new objects for a new day
        day = START + timedelta(days=n // per_day + 1 + r)
        fill(lake, [f"{PREFIX}{day:%Y/%m/%d}/{day:%Y%m%d}-{j:06d}0000.csv" for j in range(10)], threads)
        t = time.perf_counter()
        result = watch(lake, PREFIX, cursor, now=cursor.last_full_scan + 1, full_scan_seconds=600)
        incremental_times.append(time.perf_counter() - t)
        assert result.listed == 10 and [q.day for q in result.requests] == [day], (result.listed, result.requests)
        sensor_times.append(sensor_tick(lake, cursor.to_json()))
        cursor = result.cursor
    return {
        "name": name,
        "keys": n,
        "full": statistics.median(full_times),
        "incremental": statistics.median(incremental_times),
        "sensor": statistics.median(sensor_times),
        "run_listing": statistics.median(run_times),
        "prefix_listing": statistics.median(prefix_times),
    }


def run_listing(lake, n: int, per_day: int) -> tuple[list[float], list[float]]:
    """An ingest run's listing for a day in the middle of the history, vs the whole prefix."""
    from smartstream_assets import ingestion
    from smartstream_assets.tables import load_tables

    spec = load_tables(extra="")["employees"]
    day = START + timedelta(days=n // per_day // 2)
    run_times, prefix_times = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        found = ingestion.raw_objects_by_date(lake, spec, [day])
        run_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        everything = ingestion.raw_objects_by_date(lake, spec)
        prefix_times.append(time.perf_counter() - t)
        assert [o.key for o in found[day]] == [o.key for o in everything[day]] and len(found[day]) == per_day
    return run_times, prefix_times


def sensor_tick(lake, cursor: str) -> float:
    """One evaluation of the real sensor through Dagster, cursor as the last tick left it."""
    import dagster as dg

    from smartstream_assets.definitions import defs
    from smartstream_assets.resources import LakeResource

    sensor = defs.get_sensor_def("employees_raw_sensor")
    # the cursor's last full scan is recent, so this is the incremental tick
    with dg.DagsterInstance.ephemeral() as instance, dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource(url=lake.url)}, definitions=defs
    ) as context:
        t = time.perf_counter()
        result = sensor(context)
        seconds = time.perf_counter() - t
    assert len(result.run_requests) == 1, result
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local-keys", type=int, default=100_000)
    parser.add_argument("--s3-keys", type=int, default=20_000)
    parser.add_argument("--per-day", type=int, default=500, help="objects per dated folder")
    args = parser.parse_args()

    import os
    import warnings

    warnings.filterwarnings("ignore")
    from smartstream_assets import local_stack
    from smartstream_assets.lake import LocalLake, S3Lake

    results = []
    with tempfile.TemporaryDirectory(prefix="smartstream-sensor-bench-") as tmp:
        tmp = Path(tmp)
        results.append(measure("local lake", LocalLake(tmp / "lake"), args.local_keys, args.per_day, 4))
        if args.s3_keys:
            server = local_stack.start_seaweedfs(tmp / "s3", "benchkey", "benchsecret-0123456789")
            try:
                os.environ.update(server.aws_env())
                results.append(measure("SeaweedFS S3", S3Lake(server.bucket, "bench"), args.s3_keys, args.per_day, 16))
            finally:
                server.stop()

    print()
    print(f"{'lake':<14}{'keys':>9}{'full listing s':>16}{'incremental s':>15}{'ratio':>8}{'sensor tick s':>15}")
    for r in results:
        print(
            f"{r['name']:<14}{r['keys']:>9,}{r['full']:>16.3f}{r['incremental']:>15.4f}"
            f"{r['full'] / r['incremental']:>7.0f}x{r['sensor']:>15.4f}"
        )
    print(f"(medians of {REPEATS}; incremental = 10 new keys after the cursor; sensor tick = the whole Dagster evaluation)")
    print()
    print(f"{'lake':<14}{'keys':>9}{'whole prefix s':>16}{'run listing s':>15}{'ratio':>8}")
    for r in results:
        print(
            f"{r['name']:<14}{r['keys']:>9,}{r['prefix_listing']:>16.3f}{r['run_listing']:>15.4f}"
            f"{r['prefix_listing'] / r['run_listing']:>7.0f}x"
        )
    print("(an ingest run finding one day's objects: its dated folder only, vs listing the whole raw prefix)")


if __name__ == "__main__":
    main()
