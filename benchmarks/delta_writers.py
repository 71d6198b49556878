"""Concurrent ingest runs on S3: N days ingested at once by N processes, nothing lost.

    .venv/bin/python benchmarks/delta_writers.py              # 8 days, 8 writers, 400,000 events
    .venv/bin/python benchmarks/delta_writers.py --days 4 --events 100000

Starts SeaweedFS on 127.0.0.1 (as the tests do), generates an employees CDC history
(benchmarks/ingest.py's generator: a full load, then N days of inserts / updates /
deletes) into two prefixes of one bucket, then in the same run:

  sequential   one process ingests the days one after another (trusted day, then current)
  concurrent   N processes, one per day, started together: each writes its trusted day
               and updates current, racing for the same two Delta logs (conditional PUTs)

Checks that every day is in trusted and that both end with the same current rows;
prints the wall times and the commit retries and whole-update restarts of the racers.
(In production the ``current/<table>`` pool runs one current step at a time; this
measures what the tables themselves guarantee without it.)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

ACCESS, SECRET, BUCKET = "bench-writers", "bench-writers-secret-5f1c", "bench-writers"


def ingest_days(lake_url: str, days: list[str]) -> dict:
    from smartstream_assets import ingestion
    from smartstream_assets.lake import lake_from_url
    from smartstream_assets.tables import load_tables

    spec = load_tables(extra="")["employees"]
    lake = lake_from_url(lake_url)
    current_conflicts = 0
    t = time.perf_counter()
    for day in [date.fromisoformat(d) for d in days]:
        objects = ingestion.raw_objects_by_date(lake, spec, [day]).get(day, [])
        ingestion.build_trusted_days(lake, spec, {day: objects})
        current_conflicts += ingestion.update_current(lake, spec).conflicts
    return {"seconds": time.perf_counter() - t, "current_conflicts": current_conflicts}


def summary(lake_url: str) -> dict:
    import duckdb

    from smartstream_assets import delta
    from smartstream_assets.lake import lake_from_url

    lake = lake_from_url(lake_url)
    rows = delta.read_current(lake, "employees")
    digest = duckdb.sql("SELECT count(*), sum(hash(EmployeeID, City, Age)) FROM rows").fetchall()[0]
    history = delta.history(lake, delta.trusted_table("employees"))
    retries = sum(int((h.get("operationMetrics") or {}).get("num_retries") or 0) for h in history)
    return {"days": [d.isoformat() for d in delta.trusted_days(lake, "employees")], "current": list(digest), "trusted_retries": retries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=8)
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--lake", help=argparse.SUPPRESS)
    parser.add_argument("--days-list", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ingest":
        print(json.dumps(ingest_days(args.lake, args.days_list.split(","))))
        return
    if args.child == "summary":
        print(json.dumps(summary(args.lake)))
        return

    import ingest

    from smartstream_assets import local_stack
    from smartstream_assets.lake import S3Lake

    with tempfile.TemporaryDirectory(prefix="bench-writers-") as tmp:
        tmp = Path(tmp)
        server = local_stack.start_seaweedfs(tmp / "s3", ACCESS, SECRET, bucket=BUCKET)
        try:
            env = {**os.environ, **server.aws_env()}
            for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
                env.pop(name, None)
            os.environ.update(server.aws_env())
            raw = tmp / "raw"
            ingest.generate(raw, args.events, args.days, 4, seed=3)
            files = [p for p in raw.rglob("*") if p.is_file()]
            for prefix in ("sequential", "concurrent"):
                lake = S3Lake(BUCKET, prefix)
                for path in files:
                    lake.write_bytes(path.relative_to(raw).as_posix(), path.read_bytes())
            days = [(ingest.START + timedelta(days=i)).isoformat() for i in range(args.days + 1)]
            print(f"{args.events:,} events over {len(days)} ingest dates ({len(files)} raw objects) on SeaweedFS")

            def run(prefix, day_list):
                return subprocess.Popen([sys.executable, __file__, "--child", "ingest", "--lake", f"s3://{BUCKET}/{prefix}",
                                         "--days-list", ",".join(day_list)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

            def finish(proc):
                out, err = proc.communicate()
                if proc.returncode or "terminate called" in err:
                    sys.exit(f"an ingest process failed (rc {proc.returncode}):\n{err[-3000:]}")
                return json.loads(out.strip().splitlines()[-1])

            # the full load first in both, so the racers share an existing table (as a running lake does)
            finish(run("sequential", days[:1]))
            finish(run("concurrent", days[:1]))
            t = time.perf_counter()
            finish(run("sequential", days[1:]))
            sequential = time.perf_counter() - t
            t = time.perf_counter()
            procs = [run("concurrent", [d]) for d in days[1:]]
            results = [finish(p) for p in procs]
            concurrent = time.perf_counter() - t

            def describe(prefix):
                proc = subprocess.run([sys.executable, __file__, "--child", "summary", "--lake", f"s3://{BUCKET}/{prefix}"],
                                      env=env, capture_output=True, text=True)  # fmt: skip
                if proc.returncode:
                    sys.exit(proc.stderr[-3000:])
                return json.loads(proc.stdout.strip().splitlines()[-1])

            seq, con = describe("sequential"), describe("concurrent")
        finally:
            server.stop()
    print(f"  sequential, 1 process:          {sequential:6.1f}s")
    print(f"  concurrent, {len(procs)} processes at once: {concurrent:6.1f}s  ({sequential / concurrent:.2f}x the sequential throughput)")
    print(f"  trusted commits retried (lost the race for a version): {con['trusted_retries']}")
    print(f"  current updates: commit retries + restarts after conflicts: {sum(r['current_conflicts'] for r in results)}")
    lost = sorted(set(days) - set(con["days"]))
    print(f"  every ingest date in trusted: {not lost}" + (f" (missing {lost})" if lost else ""))
    same = seq["current"] == con["current"]
    print(f"  current identical to the sequential run: {same} ({seq['current'][0]:,} rows)")
    if lost or not same:
        sys.exit("concurrent writers lost changes")


if __name__ == "__main__":
    main()
