"""Hostile input and concurrency through the real Dagster CLI (`dagster asset materialize`,
`dagster sensor preview`), on a fresh instance and lake per test."""

import gzip
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from smartstream_assets import ingestion
from smartstream_assets.lake import LocalLake

from .helpers import PREFIX, SPEC, emp, fresh_project_env, rows

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
POOLS = "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\n"


def dagster(env, *args, timeout=300):
    proc = subprocess.run([DAGSTER, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def materialize(env, *args):
    return dagster(env, "asset", "materialize", "-m", "smartstream_assets",
                   "--select", "trusted/employees,current/employees", *args)  # fmt: skip


def partition_metadata(env, key=("trusted", "employees")):
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    records = instance.fetch_materializations(dg.AssetKey(list(key)), limit=1000).records
    latest = {}
    for r in sorted(records, key=lambda r: r.storage_id):
        latest[r.partition_key] = {k: v.value for k, v in r.asset_materialization.metadata.items()}
    return latest


@pytest.fixture
def project(tmp_path):
    env = fresh_project_env(tmp_path)
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + POOLS)
    return env, LocalLake(tmp_path / "lake")


def put(lake, key, *lines):
    lake.write_bytes(PREFIX + key, "".join(lines).encode())


def test_concurrent_cli_runs_for_different_dates_leave_current_exact(project):
    env, lake = project
    days = [date(2026, 3, d) for d in range(1, 5)]
    for i, day in enumerate(days):
        ts = f"{day} 10:00:0{i}"
        # every day touches key 1 (last write wins across days) and adds a key of its own
        put(lake, f"{day:%Y/%m/%d}/{day:%Y%m%d}-1.csv", emp("I", ts, 1, city=f"c{i}"), emp("I", ts, 10 + i, city=f"c{i}"))
    procs = [
        subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "smartstream_assets", "--select",
             "trusted/employees,current/employees", "--partition", day.isoformat()],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for day in days
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    current = sorted(rows(lake.read_parquet(ingestion.current_key("employees")), "EmployeeID", "City"))
    assert current == [(1, "c3"), (10, "c0"), (11, "c1"), (12, "c2"), (13, "c3")]
    # every partition is applied: a further update has nothing left to do
    assert ingestion.update_current(lake, SPEC).partitions_applied == []


def test_a_range_backfill_shows_each_partitions_own_figures_and_the_sensor_then_skips_it(project):
    env, lake = project
    put(lake, "2026/03/01/LOAD00000001.csv", *(emp("", "2026-03-01 00:00:00", i) for i in range(1, 5)))
    put(lake, "2026/03/03/20260303-1.csv", emp("U", "2026-03-03 09:00:00", 1, city="Delhi"), "X,garbage\n")
    code, out = materialize(env, "--partition-range", "2026-03-01...2026-03-04")
    assert code == 0, out
    meta = partition_metadata(env)
    figures = {p: (m["raw_objects"], m["rows_in"], m["dagster/row_count"], m["rows_quarantined"]) for p, m in meta.items()}
    assert figures == {
        "2026-03-01": (1, 4, 4, 0),
        "2026-03-02": (0, 0, 0, 0),
        "2026-03-03": (1, 2, 1, 1),
        "2026-03-04": (0, 0, 0, 0),
    }
    code, out = dagster(env, "sensor", "preview", "employees_raw_sensor", "-m", "smartstream_assets")
    assert code == 0, out
    assert "2 dates already ingested from exactly these objects" in out
    assert "Sensor returning run requests" not in out
