"""The raw-zone sensors, evaluated with build_sensor_context."""

import json

import pytest

from smartstream_assets import sensors as sensors_module
from smartstream_assets.definitions import defs
from smartstream_assets.lake import LocalLake
from smartstream_assets.raw_watch import WatchCursor, watch

from .helpers import PREFIX, tick


@pytest.fixture
def lake(tmp_path):
    return LocalLake(tmp_path / "lake")


def put(lake, *keys):
    for key in keys:
        lake.write_bytes(PREFIX + key, b"I,2026-03-01 00:00:00,1,Bachelors,2017,Pune,3,30,Male,No,2,0\n")


def test_one_run_request_per_new_ingest_date_with_partition_and_run_key(lake):
    put(lake, "2026/03/01/LOAD00000001.csv", "2026/03/01/LOAD00000002.csv", "2026/03/02/20260302-1.csv")
    result = tick(lake)
    assert [r.partition_key for r in result.run_requests] == ["2026-03-01", "2026-03-02"]
    keys = [r.run_key for r in result.run_requests]
    assert len(set(keys)) == 2 and all(k.startswith("employees:2026-03-0") for k in keys)
    assert result.run_requests[0].tags["smartstream/raw_objects"] == "2"
    assert result.cursor


def test_a_tick_with_nothing_new_skips_and_says_what_it_listed(lake):
    put(lake, "2026/03/01/a.csv")
    first = tick(lake)
    second = tick(lake, cursor=first.cursor)
    assert second.run_requests == []
    assert "no new raw objects under raw/hr/employees/" in second.skip_reason.skip_message


def test_a_new_object_on_a_known_day_requests_that_day_again_with_a_new_run_key(lake):
    put(lake, "2026/03/01/a.csv", "2026/03/02/b.csv")
    first = tick(lake)
    put(lake, "2026/03/02/c.csv")
    second = tick(lake, cursor=first.cursor)
    assert [r.partition_key for r in second.run_requests] == ["2026-03-02"]
    assert second.run_requests[0].run_key not in {r.run_key for r in first.run_requests}


def test_a_lost_cursor_produces_the_same_run_keys_so_nothing_runs_twice(lake):
    put(lake, "2026/03/01/a.csv", "2026/03/02/b.csv")
    first = tick(lake)
    restarted = tick(lake, cursor=None)
    assert [r.run_key for r in restarted.run_requests] == [r.run_key for r in first.run_requests]


def test_incremental_ticks_list_only_keys_after_the_high_water_mark(lake, monkeypatch):
    put(lake, *(f"2026/03/01/{i:04d}.csv" for i in range(50)))
    first = tick(lake)
    put(lake, "2026/03/02/0000.csv")
    listed = []
    original = LocalLake.list

    def spy(self, prefix, start_after=None):
        for obj in original(self, prefix, start_after):
            listed.append(obj.key)
            yield obj

    monkeypatch.setattr(LocalLake, "list", spy)
    second = tick(lake, cursor=first.cursor)
    assert listed == [PREFIX + "2026/03/02/0000.csv"]
    assert [r.partition_key for r in second.run_requests] == ["2026-03-02"]


def test_a_key_below_the_high_water_mark_is_found_by_the_periodic_full_scan(lake):
    # DMS writes LOAD*.csv beside CDC files named by date: "L" sorts after digits.
    put(lake, "LOAD00000001.csv")
    first = WatchCursor.from_json(tick(lake).cursor)
    put(lake, "20260302-100000000.csv")  # sorts before LOAD...
    incremental = watch(lake, PREFIX, first, now=first.last_full_scan + 1, full_scan_seconds=600)
    assert incremental.requests == [] and not incremental.full_scan
    full = watch(lake, PREFIX, incremental.cursor, now=first.last_full_scan + 601, full_scan_seconds=600)
    assert full.full_scan and len(full.requests) == 1 and full.requests[0].objects == 2


def test_an_unreadable_cursor_starts_over_instead_of_failing(lake):
    put(lake, "2026/03/01/a.csv")
    result = tick(lake, cursor="{not json")
    assert [r.partition_key for r in result.run_requests] == ["2026-03-01"]


def test_cursor_is_compact_json(lake):
    put(lake, *(f"2026/03/{d:02d}/x.csv" for d in range(1, 29)))
    cursor = json.loads(tick(lake).cursor)
    assert len(cursor["dates"]) == 28 and cursor["hw"].endswith("2026/03/28/x.csv")


def test_sensor_targets_the_ingest_job_of_its_table():
    sensor = defs.get_sensor_def("employees_raw_sensor")
    assert sensor.job_name == "employees_ingest"
    assert sensors_module.FULL_SCAN_SECONDS > 0
