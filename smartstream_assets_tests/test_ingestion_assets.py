"""<table>/trusted and <table>/current through Dagster's materialize()."""

from datetime import date, datetime, timezone

import dagster as dg
import pyarrow.compute as pc
import pytest

from smartstream_assets import delta, ingestion
from smartstream_assets.lake import LocalLake, ObjectInfo

from .helpers import PREFIX, current_state, emp, has_trusted_day, quarantine_day, rows, run, seed_history, trusted_day, write


@pytest.fixture
def lake(tmp_path):
    return LocalLake(tmp_path / "lake")


def metadata(result, key):
    """The metadata of the materialisation of ``key`` (a range run records one per partition)."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    assert events, f"{key} was not materialised"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


def metadata_by_partition(result, key):
    """partition -> metadata of that partition's materialisation of ``key``."""
    return {
        e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == key
    }


def checks(result):
    return {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}


def test_partitions_materialise_trusted_current_and_quarantine_with_metadata(lake):
    seed_history(lake)
    instance = dg.DagsterInstance.ephemeral()
    first = run(lake, "2026-03-01", instance=instance)
    assert metadata(first, "employees/trusted")["dagster/row_count"] == 5
    second = run(lake, "2026-03-02", instance=instance)
    meta = metadata(second, "employees/trusted")
    assert (meta["rows_in"], meta["dagster/row_count"], meta["rows_quarantined"]) == (6, 3, 3)
    assert (meta["quarantined_unknown_op"], meta["quarantined_bad_value"], meta["quarantined_wrong_field_count"]) == (1, 1, 1)
    assert meta["path"].endswith("trusted/employees/ingest_date=2026-03-02")
    assert meta["quarantine_path"].endswith("quarantine/employees/ingest_date=2026-03-02")
    assert current_state(lake) == [(1, "Bangalore"), (3, "Pune"), (4, "Pune"), (5, "Pune"), (6, "Pune")]
    cur = metadata(second, "employees/current")
    assert (cur["dagster/row_count"], cur["deleted_keys"], cur["partitions_applied"]) == (5, 1, ["2026-03-02"])
    # day 2: 1 insert (6), 2 rows replaced (1 updated, 2 soft-deleted); the versions are the tables' own
    assert (cur["rows_inserted"], cur["rows_replaced"], cur["commit_retries"]) == (1, 2, 0)
    assert cur["delta_version"] == delta.table_version(lake, ingestion.current_key("employees"))
    assert cur["trusted_delta_version"] == delta.table_version(lake, delta.trusted_table("employees"))
    quarantine = quarantine_day(lake, "employees", date(2026, 3, 2))
    assert rows(quarantine, "_source_line", "_reason_code") == [(4, "unknown_op"), (5, "bad_value"), (6, "wrong_field_count")]
    c = checks(second)
    assert c[("employees/trusted", "rows_accounted_for")] and c[("employees/current", "primary_key_unique")]
    assert c[("employees/trusted", "quarantine_rate")] is False  # 3 of 6 rows: the WARN check fires


def test_a_partition_range_runs_once_and_each_partition_shows_its_own_figures(lake):
    seed_history(lake)
    result = run(
        lake,
        tags={"dagster/asset_partition_range_start": "2026-02-28", "dagster/asset_partition_range_end": "2026-03-02"},
    )
    assert result.success
    partitions = {e.partition for e in result.get_asset_materialization_events() if e.asset_key.path[-1] == "trusted"}
    assert partitions == {"2026-02-28", "2026-03-01", "2026-03-02"}
    meta = metadata_by_partition(result, "employees/trusted")
    figures = {day: (m["raw_objects"], m["rows_in"], m["dagster/row_count"], m["rows_quarantined"]) for day, m in meta.items()}
    assert figures == {"2026-02-28": (0, 0, 0, 0), "2026-03-01": (1, 5, 5, 0), "2026-03-02": (1, 6, 3, 3)}
    assert meta["2026-03-01"]["raw_digest"] != meta["2026-03-02"]["raw_digest"]
    assert meta["2026-02-28"]["raw_digest"] == "0:0000000000000000"
    assert checks(result)[("employees/trusted", "rows_accounted_for")]  # the checks cover the whole run
    assert has_trusted_day(lake, "employees", date(2026, 3, 1))
    assert not has_trusted_day(lake, "employees", date(2026, 2, 28))  # no raw objects that day
    assert delta.trusted_days(lake, "employees") == [date(2026, 3, 1), date(2026, 3, 2)]
    # the range's days are ONE commit: the table's first version, named on every partition
    # v0 is the empty table the first run creates; the range's days are ONE commit after it
    assert {m["delta_version"] for m in meta.values()} == {1} and delta.table_version(lake, delta.trusted_table("employees")) == 1
    assert len(current_state(lake)) == 5


def test_rerunning_a_partition_is_idempotent(lake):
    seed_history(lake)
    for day in ("2026-03-01", "2026-03-02"):
        run(lake, day)
    trusted_before = trusted_day(lake, "employees", date(2026, 3, 2))
    assert trusted_before.num_rows == 3
    state_before = current_state(lake)
    version_before = delta.table_version(lake, ingestion.current_key("employees"))
    again = run(lake, "2026-03-02")
    assert trusted_day(lake, "employees", date(2026, 3, 2)).equals(trusted_before)
    assert current_state(lake) == state_before
    cur = metadata(again, "employees/current")
    assert cur["dagster/row_count"] == len(state_before)
    # the replayed changes win nothing: current gets no new version
    assert (cur["rows_inserted"], cur["rows_replaced"]) == (0, 0)
    assert cur["delta_version"] == version_before == delta.table_version(lake, ingestion.current_key("employees"))


def test_backfilling_an_older_day_after_a_newer_one_gives_the_same_state(lake):
    seed_history(lake)
    run(lake, "2026-03-02")
    run(lake, "2026-03-01")  # the full load arrives late
    assert current_state(lake) == [(1, "Bangalore"), (3, "Pune"), (4, "Pune"), (5, "Pune"), (6, "Pune")]


def test_objects_arriving_later_the_same_day_are_applied_on_the_next_run(lake):
    seed_history(lake)
    run(lake, "2026-03-01")
    run(lake, "2026-03-02")
    write(lake, "2026/03/02/20260302-200000000.csv", emp("D", "2026-03-02 20:00:00", 1))
    result = run(lake, "2026-03-02")
    assert metadata(result, "employees/trusted")["raw_objects"] == 2
    assert [k for k, _ in current_state(lake)] == [3, 4, 5, 6]


def test_an_unreadable_object_fails_the_run_naming_its_key_and_keeps_the_old_partition(lake):
    seed_history(lake)
    run(lake, "2026-03-02")
    before = trusted_day(lake, "employees", date(2026, 3, 2))
    version = delta.table_version(lake, delta.trusted_table("employees"))
    lake.write_bytes(PREFIX + "2026/03/02/20260302-300000000.csv.gz", b"this is not gzip")
    result = run(lake, "2026-03-02", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    error = failure.event_specific_data.error
    assert error.cause.cls_name == "UnreadableObject"
    assert "raw/hr/employees/2026/03/02/20260302-300000000.csv.gz" in error.cause.message
    assert before.num_rows == 3 and trusted_day(lake, "employees", date(2026, 3, 2)).equals(before)
    assert delta.table_version(lake, delta.trusted_table("employees")) == version  # nothing committed


def test_nothing_is_lost_rows_in_equal_changes_plus_quarantine(lake):
    seed_history(lake)
    run(lake, "2026-03-02")
    trusted = trusted_day(lake, "employees", date(2026, 3, 2))
    quarantine = quarantine_day(lake, "employees", date(2026, 3, 2))
    raw_lines = lake.read_bytes(PREFIX + "2026/03/02/20260302-100000000.csv").decode().splitlines()
    assert trusted.num_rows + quarantine.num_rows == len(raw_lines)
    seen = sorted(trusted.column("_source_line").to_pylist() + quarantine.column("_source_line").to_pylist())
    assert seen == list(range(1, len(raw_lines) + 1))


def test_rebuild_config_rereads_every_partition(lake):
    seed_history(lake)
    run(lake, "2026-03-01")
    run(lake, "2026-03-02")
    result = run(lake, "2026-03-02", run_config={"ops": {"employees__current": {"config": {"rebuild": True}}}})
    meta = metadata(result, "employees/current")
    assert meta["rebuilt"] is True and sorted(meta["partitions_applied"]) == ["2026-03-01", "2026-03-02"]
    assert len(current_state(lake)) == 5


def test_ingest_date_comes_from_the_key_else_last_modified():
    lm = datetime(2026, 5, 6, 23, 59, tzinfo=timezone.utc)

    def day(key):
        return ingestion.ingest_date_of(ObjectInfo(key, 1, lm, "e"), "raw/a/")

    assert day("raw/a/2026/03/01/x.csv") == date(2026, 3, 1)
    assert day("raw/a/ingest_date=2026-04-02/x.csv") == date(2026, 4, 2)
    assert day("raw/a/x.csv") == date(2026, 5, 6)
    assert day("raw/a/2026/13/45/x.csv") == date(2026, 5, 6)  # not a date
    assert day("raw/a/20260301-000000.csv") == date(2026, 5, 6)  # a file name is not a folder


def test_trusted_partition_is_typed_as_declared(lake):
    seed_history(lake)
    run(lake, "2026-03-02")
    table = trusted_day(lake, "employees", date(2026, 3, 2))
    assert table.num_rows == 3
    assert table.schema.field("Age").type == "int64"
    assert str(table.schema.field("_commit_ts").type) == "timestamp[us, tz=UTC]"
    assert pc.all(pc.is_valid(table.column("EmployeeID"))).as_py()
