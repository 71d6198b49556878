"""The real Dagster CLI against the code location: sensor preview and a partition-range backfill."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from smartstream_assets import delta
from smartstream_assets.lake import LocalLake

from .helpers import current_table, fresh_project_env

PROJECT = Path(__file__).resolve().parents[1]
DAGSTER = str(Path(sys.executable).with_name("dagster"))
ROW = "{ts},{id},Bachelors,2017,{city},3,30,Male,No,2,0\n"


def seed_two_days(lake) -> None:
    """Employees 1 and 2 loaded on 2026-03-01; on 2026-03-03 1 moves to Bangalore and 2 is deleted."""
    lake.write_bytes(
        "raw/hr/employees/2026/03/01/LOAD00000001.csv",
        (ROW.format(ts="2026-03-01 00:00:00", id=1, city="Pune") + ROW.format(ts="2026-03-01 00:00:00", id=2, city="Pune")).encode(),
    )
    lake.write_bytes(
        "raw/hr/employees/2026/03/03/20260303-1.csv",
        ("U," + ROW.format(ts="2026-03-03 09:00:00", id=1, city="Bangalore") + "D," + ROW.format(ts="2026-03-03 09:00:01", id=2, city="Pune")).encode(),
    )


@pytest.fixture
def cli_env(tmp_path):
    env = fresh_project_env(tmp_path)
    lake = LocalLake(tmp_path / "lake")
    seed_two_days(lake)
    return env, lake


def dagster(env, *args):
    proc = subprocess.run([DAGSTER, *args], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_sensor_preview_shows_the_partitions_it_would_request(cli_env):
    env, _ = cli_env
    code, out = dagster(env, "sensor", "preview", "employees_raw_sensor", "-m", "smartstream_assets")
    assert code == 0, out
    assert "Sensor returning run requests for 2 run(s)" in out
    assert "sensor_ingest_date: 2026-03-01" in out and "sensor_ingest_date: 2026-03-03" in out


def test_partition_range_backfill_from_the_cli_materialises_every_day_in_one_run(cli_env):
    env, lake = cli_env
    code, out = dagster(
        env,
        "asset", "materialize", "-m", "smartstream_assets",
        "--select", "employees/trusted,employees/current",
        "--partition-range", "2026-03-01...2026-03-03",
    )
    assert code == 0, out
    assert "RUN_SUCCESS" in out
    assert out.count("RUN_SUCCESS") == 1  # one run for the whole range
    assert delta.trusted_days(lake, "employees") == [date(2026, 3, 1), date(2026, 3, 3)]
    assert delta.table_version(lake, delta.trusted_table("employees")) == 1  # v0 the empty table, then the range's days in ONE commit
    current = current_table(lake, "employees")
    assert current.column("EmployeeID").to_pylist() == [1]
    assert current.column("City").to_pylist() == ["Bangalore"]
    # the run and its three partition materialisations are in the instance
    instance = dg.DagsterInstance.from_config(env["DAGSTER_HOME"])
    records = instance.fetch_materializations(dg.AssetKey(["employees", "trusted"]), limit=10).records
    assert sorted(r.partition_key for r in records) == ["2026-03-01", "2026-03-02", "2026-03-03"]


def test_retrain_sensor_preview_shows_its_decision(cli_env):
    env, _ = cli_env
    code, out = dagster(env, "sensor", "preview", "employees_retrain_sensor", "-m", "smartstream_assets")
    assert code == 0, out
    assert "no drift report yet" in out
