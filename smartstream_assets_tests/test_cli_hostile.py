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

from .helpers import PREFIX, SPEC, current_table, emp, fresh_project_env, quarantine_day, rows

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
POOLS = "concurrency:\n  pools:\n    default_limit: 1\n    granularity: op\n"


def dagster(env, *args, timeout=300):
    proc = subprocess.run([DAGSTER, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


def materialize(env, *args):
    return dagster(env, "asset", "materialize", "-m", "smartstream_assets",
                   "--select", "employees/trusted,employees/current", *args)  # fmt: skip


def partition_metadata(env, key=("employees", "trusted")):
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
    # The first run initialises the fresh sqlite instance (its schema migration is not
    # safe to race, and a production instance exists before its runs do) ...
    code, out = materialize(env, "--partition", days[0].isoformat())
    assert code == 0, out
    procs = [  # ... then the other days at once
        subprocess.Popen(
            [DAGSTER, "asset", "materialize", "-m", "smartstream_assets", "--select",
             "employees/trusted,employees/current", "--partition", day.isoformat()],
            cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        for day in days[1:]
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    current = sorted(rows(current_table(lake, "employees"), "EmployeeID", "City"))
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


def test_an_unterminated_quote_and_empty_objects_through_the_cli(project):
    env, lake = project
    put(lake, "2026/03/01/LOAD00000001.csv", *(emp("", "2026-03-01 00:00:00", i) for i in range(1, 5)))
    put(lake, "2026/03/02/20260302-1.csv",
        emp("U", "2026-03-02 10:00:00", 1, city='"12 inch screen'),  # the quote never closes
        emp("U", "2026-03-02 10:00:01", 2, city="Delhi"), emp("D", "2026-03-02 10:00:02", 3))  # fmt: skip
    lake.write_bytes(PREFIX + "2026/03/02/20260302-2.csv", b"")
    lake.write_bytes(PREFIX + "2026/03/02/20260302-3.csv.gz", gzip.compress(b""))
    code, out = materialize(env, "--partition-range", "2026-03-01...2026-03-02")
    assert code == 0, out
    day = partition_metadata(env)["2026-03-02"]
    assert (day["rows_in"], day["dagster/row_count"], day["quarantined_unterminated_quote"]) == (3, 2, 1)
    assert len(day["empty_raw_objects"]) == 2
    current = sorted(rows(current_table(lake, "employees"), "EmployeeID", "City"))
    assert current == [(1, "Pune"), (2, "Delhi"), (4, "Pune")]


def test_a_csv_file_whose_header_does_not_match_is_quarantined_whole_through_the_cli(project, tmp_path):
    env, lake = project
    registry = tmp_path / "tables.yaml"
    registry.write_text(
        "tables:\n  orders:\n    raw_prefix: raw/shop/orders/\n    format: csv\n    primary_key: [id]\n"
        "    columns: {id: int64, name: string, amount: float64}\n"
    )
    env = dict(env, SMARTSTREAM_TABLES=str(registry))
    lake.write_bytes("raw/shop/orders/2026/03/02/good.csv", b"id,name,amount\n1,tea,2.5\n2,cake,4\n")
    lake.write_bytes("raw/shop/orders/2026/03/02/typo.csv", b"id,nme,amount\n3,jam,1\n4,bun,2\n5,pie,3\n")
    code, out = dagster(env, "asset", "materialize", "-m", "smartstream_assets",
                        "--select", "orders/trusted,orders/current", "--partition", "2026-03-02")  # fmt: skip
    assert code == 0, out
    day = partition_metadata(env, ("orders", "trusted"))["2026-03-02"]
    assert (day["rows_in"], day["dagster/row_count"], day["quarantined_schema_mismatch"]) == (5, 2, 3)
    quarantine = quarantine_day(lake, "orders", date(2026, 3, 2))
    assert quarantine.num_rows == 3
    assert set(quarantine.column("_reason_code").to_pylist()) == {"schema_mismatch"}
    assert "missing name" in quarantine.column("_reason")[0].as_py() and "nme" in quarantine.column("_reason")[0].as_py()
    assert sorted(rows(current_table(lake, "orders"), "id", "name")) == [(1, "tea"), (2, "cake")]
