"""trusted / current / quarantine as Delta tables: MERGE keeps the CDC semantics of
``cdc.apply_changes`` exactly, bookkeeping lives in the same commit, writers racing on
S3 lose nothing, a killed writer leaves no visible commit, vacuum keeps what retained
versions read, the Parquet layout migrates, the CLI reads any version and exits cleanly."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from smartstream_assets import delta, ingestion
from smartstream_assets.cdc import QUARANTINE_SCHEMA, UnreadableObject, apply_changes, current_rows, parse_object, trusted_schema
from smartstream_assets.cdc.apply import last_change_per_key
from smartstream_assets.lake import LocalLake
from smartstream_assets.migrate import has_legacy_layout, migrate_table
from smartstream_assets.tables import TableSpec

from .helpers import PREFIX, SPEC, emp, rows, seed_history, write
from .test_ingestion_hardened import any_lake, lake  # noqa: F401 (the same lake fixtures: local, local + SeaweedFS)

KV = TableSpec(name="kv", raw_prefix="raw/kv/", format="dms_csv", primary_key=("id",), columns={"id": "int64", "v": "string"})
BASE = datetime(2026, 3, 1, tzinfo=timezone.utc)


def changes(*items) -> pa.Table:
    """(op, seconds after BASE, source, line, id, v) tuples as a trusted change table."""
    cols = list(zip(*items)) if items else [[]] * 6
    return pa.table(
        {
            "_op": pa.array(cols[0], pa.string()),
            "_commit_ts": pa.array([BASE + timedelta(seconds=s) for s in cols[1]], pa.timestamp("us", tz="UTC")),
            "_source_key": pa.array(cols[2], pa.string()),
            "_source_line": pa.array(cols[3], pa.int64()),
            "id": pa.array(cols[4], pa.int64()),
            "v": pa.array(cols[5], pa.string()),
        }
    )


def day_write(day: date, table: pa.Table, quarantined: int = 0) -> delta.DayWrite:
    quarantine = pa.table(
        {"_source_key": ["q"] * quarantined, "_source_line": list(range(quarantined)), "_reason_code": ["bad"] * quarantined,
         "_reason": ["bad row"] * quarantined, "_raw": ["x"] * quarantined},
        schema=QUARANTINE_SCHEMA,
    )  # fmt: skip
    return delta.DayWrite(day, table, quarantine, {"digest": f"{table.num_rows}:0", "objects": [["k", "e"]]})


def live(lake, table="kv", **kw):
    found = delta.read_current(lake, table, **kw)
    return sorted(rows(found, "id", "v")) if found is not None else None


def reference(all_changes: list[pa.Table]) -> list:
    state = None
    for batch in all_changes:
        state = apply_changes(state, batch, ["id"])
    return sorted(rows(current_rows(state), "id", "v"))


# ------------------------------------------------------------------ semantics


def test_merge_equals_apply_changes_over_random_days_reruns_and_late_changes(lake):
    """Random CDC days (updates, deletes, re-inserts, changes arriving days late, equal
    commit times broken by source and line), some days re-run with other content: after
    every update current equals the pure reference over every change ever written."""
    rng = random.Random(7)
    written: list[pa.Table] = []
    days = [date(2026, 3, d) for d in range(1, 9)]
    for step in range(14):
        day = days[min(step, len(days) - 1)] if step < 8 else rng.choice(days[:8])  # the last 6 re-run older days
        items = []
        for line in range(rng.randint(5, 25)):
            op = rng.choice(["insert", "update", "update", "delete"])
            seconds = (day - days[0]).days * 86400 + rng.randint(-3 * 86400, 3600)  # late by up to 3 days
            seconds = seconds // 600 * 600  # coarse: many equal commit times
            items.append((op, seconds, rng.choice(["raw/a.csv", "raw/b.csv"]), line % 4, rng.randint(0, 30), f"s{step}l{line}"))
        batch = changes(*items)
        written.append(batch)
        delta.write_days(lake, KV, [day_write(day, batch)])
        if rng.random() < 0.7:  # not every write is followed by an update: updates catch up on several
            delta.update_current(lake, KV)
            assert live(lake) == reference(written), f"step {step}"
    delta.update_current(lake, KV)
    assert live(lake) == reference(written)
    state = delta.read_current(lake, "kv", include_deleted=True)
    assert pc.count_distinct(state.column("id")).as_py() == state.num_rows  # one row per key, deletes included


def test_a_late_update_older_than_a_delete_does_not_resurrect_the_row(lake):
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(("insert", 0, "a", 0, 1, "one"), ("insert", 0, "a", 1, 2, "two")))])
    delta.update_current(lake, KV)
    delta.write_days(lake, KV, [day_write(date(2026, 3, 2), changes(("delete", 100, "b", 0, 1, None)))])
    delta.update_current(lake, KV)
    assert live(lake) == [(2, "two")]
    delta.write_days(lake, KV, [day_write(date(2026, 3, 3), changes(("update", 50, "c", 0, 1, "ghost"), ("update", 150, "c", 1, 2, "later")))])
    report = delta.update_current(lake, KV)
    assert live(lake) == [(2, "later")]
    assert report.updated == 1  # only key 2: the ghost update lost to the delete
    deleted = delta.read_current(lake, "kv", include_deleted=True).filter(pc.equal(pc.field("_op"), "delete"))
    assert rows(deleted, "id") == [(1,)]  # the delete is remembered in the table itself


def test_replaying_a_day_writes_no_current_version_and_the_trusted_version_is_in_the_same_commit(lake):
    batch = changes(("insert", 0, "a", 0, 1, "one"), ("insert", 0, "a", 1, 2, "two"))
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), batch)])
    first = delta.update_current(lake, KV)
    table = delta.open_table(lake, "current/kv")
    assert table.transaction_version(delta.APPLIED_APP_ID) == first.trusted_version == delta.table_version(lake, "trusted/kv")
    before = (delta.table_version(lake, "current/kv"), live(lake))
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), batch)])  # the same day again
    replay = delta.update_current(lake, KV)
    assert not replay.committed and replay.days_applied == ["2026-03-01"] and replay.changes_applied == 2
    assert (delta.table_version(lake, "current/kv"), live(lake)) == before
    # Nothing won, so no commit recorded the replay's trusted version: the next update reads
    # that feed again (bounded by the replays since the last real change) and still writes nothing.
    again = delta.update_current(lake, KV)
    assert not again.committed and (delta.table_version(lake, "current/kv"), live(lake)) == before
    delta.write_days(lake, KV, [day_write(date(2026, 3, 2), changes(("update", 9, "b", 0, 1, "uno")))])
    real = delta.update_current(lake, KV)
    assert real.committed and real.days_applied == ["2026-03-01", "2026-03-02"] and live(lake) == [(1, "uno"), (2, "two")]
    assert delta.open_table(lake, "current/kv").transaction_version(delta.APPLIED_APP_ID) == delta.table_version(lake, "trusted/kv")
    assert delta.update_current(lake, KV).changes_applied == 0  # now nothing is left to read


def test_a_backfill_of_many_days_is_one_trusted_commit_and_a_rerun_replaces_exactly_its_days(lake):
    writes = [day_write(date(2026, 3, d), changes(("insert", d, "a", 0, d, f"d{d}")), quarantined=d) for d in range(1, 6)]
    commit = delta.write_days(lake, KV, writes)
    assert commit.version == 1 and delta.table_version(lake, "quarantine/kv") == 1  # v0: the empty table
    assert delta.trusted_days(lake, "kv") == [date(2026, 3, d) for d in range(1, 6)]
    redo = [day_write(date(2026, 3, 2), changes(("insert", 2, "a", 0, 2, "d2"), ("insert", 2, "a", 1, 20, "new"))),
            day_write(date(2026, 3, 4), changes())]  # fmt: skip
    assert delta.write_days(lake, KV, redo).version == 2
    trusted = delta.read_trusted(lake, "kv")
    assert sorted(rows(trusted, "ingest_date", "id")) == [
        (date(2026, 3, 1), 1), (date(2026, 3, 2), 2), (date(2026, 3, 2), 20), (date(2026, 3, 3), 3), (date(2026, 3, 5), 5)
    ]  # fmt: skip
    quarantined = Counter(delta.read_quarantine(lake, "kv").column("ingest_date").to_pylist())
    assert quarantined == {date(2026, 3, 1): 1, date(2026, 3, 3): 3, date(2026, 3, 5): 5}  # 2 and 4 re-run clean


def test_the_employees_history_lands_as_before_and_duckdb_reads_the_delta_table(lake):
    seed_history(lake)
    reports = ingestion.build_trusted_days(lake, SPEC, ingestion.raw_objects_by_date(lake, SPEC))
    assert [(r.rows_out, r.quarantined) for r in reports] == [(5, 0), (3, 3)]
    report = ingestion.update_current(lake, SPEC)
    assert (report.rows, report.tombstones, report.checks["duplicate_rows"], report.checks["null_key_rows"]) == (5, 1, 0, 0)
    expected = sorted(rows(delta.read_current(lake, "employees"), "EmployeeID", "City"))
    assert expected == [(1, "Bangalore"), (3, "Pune"), (4, "Pune"), (5, "Pune"), (6, "Pune")]
    # DuckDB over the same table: the files of its latest version, as delta_scan reads them
    # (the delta extension itself is a download, which the tests never do)
    files = delta.open_table(lake, "current/employees").file_uris()
    found = duckdb.execute('SELECT "EmployeeID", "City" FROM read_parquet(?) WHERE _op <> \'delete\' ORDER BY 1', [files]).fetchall()
    assert found == expected


# ------------------------------------------------------------------ concurrency and crashes


def test_writers_racing_on_the_same_table_all_land_with_retries_counted(any_lake, monkeypatch):
    """Eight writers commit days of one trusted table at once (on S3: conditional PUTs of
    the next log entry). Every day lands, each in its own version, none overwrote another.
    They are made to race for sure: each opens the table for its write, then waits until
    all have opened the same version, so seven of them must lose and retry."""
    delta.write_days(any_lake, KV, [day_write(date(2026, 2, 1), changes(("insert", 0, "a", 0, 0, "seed")))])
    results, errors = [], []
    barrier, opened, real_open = threading.Barrier(8, timeout=60), threading.local(), delta.open_table

    def open_then_wait(lake, path, version=None):
        found = real_open(lake, path, version)
        if path == "trusted/kv" and threading.current_thread() is not threading.main_thread():
            opened.n = getattr(opened, "n", 0) + 1
            if opened.n == 2:  # write_days: 1st the legacy check, 2nd the table it writes to
                barrier.wait()
        return found

    monkeypatch.setattr(delta, "open_table", open_then_wait)

    def write(d):
        try:
            results.append(delta.write_days(any_lake, KV, [day_write(date(2026, 3, d), changes(("insert", d, "a", 0, d, f"d{d}")))]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=write, args=(d,)) for d in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.version for r in results) == list(range(2, 10))  # each commit its own version (v0 empty, v1 seed)
    assert sorted(rows(delta.read_trusted(any_lake, "kv"), "id")) == [(d,) for d in range(0, 9)]
    retries = sum(r.retries for r in results)
    assert retries >= 7  # each loser re-read the log and committed again, at least once
    history = delta.history(any_lake, "trusted/kv")
    assert sum(int((h.get("operationMetrics") or {}).get("num_retries") or 0) for h in history) == retries


def test_updates_of_current_racing_with_writers_end_exact(any_lake):
    rng = random.Random(3)
    written = []
    for d in range(1, 4):
        batch = changes(*[("update", d * 100 + i, "a", i, rng.randint(0, 9), f"d{d}i{i}") for i in range(10)])
        written.append(batch)
        delta.write_days(any_lake, KV, [day_write(date(2026, 3, d), batch)])
    errors = []

    def update():
        try:
            delta.update_current(any_lake, KV)
        except delta.DeltaTableError as exc:  # a conflicting commit that ran out of retries fails cleanly
            errors.append(str(exc))

    threads = [threading.Thread(target=update) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delta.update_current(any_lake, KV)  # whatever lost, the next run completes
    assert live(any_lake) == reference(written)
    assert all("current/kv" in e for e in errors)


KILLED_WRITER = """
import sys, time, deltalake
from datetime import date
from smartstream_assets import delta
from smartstream_assets.lake import LocalLake
from smartstream_assets_tests.test_delta import KV, changes, day_write
lake = LocalLake(sys.argv[1])
original = deltalake.write_deltalake
deltalake.write_deltalake = lambda *a, **k: original(*a, **{**k, "target_file_size": 1 << 20})  # files written as they fill
writes = [day_write(date(2026, 4, d), changes(*[("insert", i, "big", i, i, f"{i:08x}" * 8) for i in range(100_000)])) for d in range(1, 4)]

def parse():
    yield from ((w.day, w.trusted, w.quarantine) for w in writes)
    time.sleep(3600)  # the stream never ends, so the commit is never reached: killed mid-write, always

delta.write_parsed(lake, KV, {w.day: w.sources for w in writes}, parse)
print("done", flush=True)
"""


def test_a_writer_killed_mid_commit_leaves_no_visible_change(lake, tmp_path):
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(("insert", 0, "a", 0, 1, "one")))])
    delta.update_current(lake, KV)
    before = (delta.table_version(lake, "trusted/kv"), sorted(rows(delta.read_trusted(lake, "kv"), "id")))
    root = Path(lake.root) / "trusted" / "kv"
    known = set(root.rglob("*.parquet"))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(lake.root)], cwd=Path(__file__).resolve().parents[1],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (set(root.rglob("*.parquet")) - known):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert set(root.rglob("*.parquet")) - known, "the writer was killed before it wrote any data file"
    assert (delta.table_version(lake, "trusted/kv"), sorted(rows(delta.read_trusted(lake, "kv"), "id"))) == before
    assert delta.update_current(lake, KV).changes_applied == 0 and live(lake) == [(1, "one")]
    delta.write_days(lake, KV, [day_write(date(2026, 3, 2), changes(("insert", 5, "a", 0, 2, "two")))])  # the table goes on
    delta.update_current(lake, KV)
    assert live(lake) == [(1, "one"), (2, "two")]


# ------------------------------------------------------------------ maintenance


def test_vacuum_keeps_every_file_a_retained_version_reads_and_optimize_keeps_the_rows(lake):
    for d in range(1, 5):
        delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(*[("update", d, "a", i, i, f"v{d}") for i in range(20)]))])
        delta.update_current(lake, KV)
    versions = {v: live(lake, version=v) for v in range(delta.table_version(lake, "current/kv") + 1)}
    assert len({json.dumps(v) for v in versions.values()}) == 5  # created empty, then four states
    kept = delta.maintain(lake, "current/kv", z_order=["id"], retention_hours=1)
    assert kept.vacuumed == []  # every removed file was removed less than an hour ago
    for v, expected in versions.items():
        assert live(lake, version=v) == expected
    latest = live(lake)
    done = delta.maintain(lake, "current/kv", z_order=["id"], retention_hours=0)
    assert done.vacuumed  # with no retention, files only old versions read go
    assert live(lake) == latest  # ... never a file the latest version reads
    with pytest.raises(delta.DeltaTableError, match=r"cannot read version 1 of .*current/kv.*vacuumed past its retention"):
        live(lake, version=1)


def test_vacuum_of_a_quarantine_table_leaves_the_stream_and_annotation_quarantines_beside_it(lake):
    from smartstream_assets.ml.stream import stream_quarantine_key

    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(("insert", 0, "a", 0, 1, "one")), quarantined=2)])
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(("insert", 0, "a", 0, 1, "one")), quarantined=1)])
    beside = stream_quarantine_key("kv", "raw/kv/2026/03/01/batch.jsonl", "raw/kv/")
    lake.write_bytes(beside, b"kept")
    assert delta.maintain(lake, "quarantine/kv", retention_hours=0).vacuumed  # the first version's file went
    assert lake.read_bytes(beside) == b"kept" and not beside.startswith("quarantine/kv/")
    assert delta.read_quarantine(lake, "kv").num_rows == 1


# ------------------------------------------------------------------ migration and the CLI


def write_legacy(lake):
    """The Parquet layout as the previous release wrote it (trusted partitions with their
    sources, quarantine, the state with deletes, current)."""
    seed_history(lake)
    state = None
    for day, objects in sorted(ingestion.raw_objects_by_date(lake, SPEC).items()):
        parsed = [parse_object(SPEC, o.key, lake.read_bytes(o.key), o.last_modified) for o in objects]
        trusted = pa.concat_tables([p.changes for p in parsed])
        sources = json.dumps({"digest": ingestion.objects_digest(objects), "objects": [[o.key, o.etag] for o in objects]})
        lake.write_parquet(f"trusted/employees/ingest_date={day}/data.parquet",
                           trusted.replace_schema_metadata({b"smartstream.sources": sources.encode()}))  # fmt: skip
        quarantine = pa.concat_tables([p.quarantine for p in parsed])
        if quarantine.num_rows:
            lake.write_parquet(f"quarantine/employees/ingest_date={day}/data.parquet", quarantine)
        state = apply_changes(state, trusted, list(SPEC.primary_key))
    # a change whose raw object is gone: only the state remembers it
    ghost = state.slice(0, 1).set_column(state.schema.get_field_index("City"), "City", pa.array(["Atlantis"]))
    ghost = ghost.set_column(state.schema.get_field_index("EmployeeID"), "EmployeeID", pa.array([99], pa.int64()))
    state = pa.concat_tables([state, ghost.cast(state.schema)])
    lake.write_parquet("_state/current/employees/state.parquet", state)
    lake.write_parquet("current/employees/data.parquet", current_rows(state))


def test_the_parquet_layout_is_refused_then_migrated_keeping_what_only_the_state_knew(lake):
    write_legacy(lake)
    with pytest.raises(delta.LegacyLayout, match="smartstream table migrate employees"):
        ingestion.update_current(lake, SPEC)
    done = migrate_table(lake, SPEC)
    assert done.days == ["2026-03-01", "2026-03-02"] and done.trusted_rows == 8 and done.quarantined_rows == 3
    assert not has_legacy_layout(lake, "employees")
    assert sorted(rows(delta.read_current(lake, "employees"), "EmployeeID", "City")) == [
        (1, "Bangalore"), (3, "Pune"), (4, "Pune"), (5, "Pune"), (6, "Pune"), (99, "Atlantis")
    ]  # fmt: skip
    assert ingestion.trusted_raw_digest(lake, SPEC, date(2026, 3, 2)) is not None  # the sensor still knows the day
    assert migrate_table(lake, SPEC) is None  # run again: nothing left to convert
    assert delta.update_current(lake, SPEC).changes_applied == 0


def cli(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "smartstream_assets.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)  # fmt: skip


def test_cli_reads_history_and_any_version_and_exits_cleanly(lake, tmp_path):
    for d in range(1, 4):
        delta.write_days(lake, KV, [day_write(date(2026, 3, d), changes(("update", d, "a", 0, 1, f"v{d}")))])
    env = dict(os.environ, SMARTSTREAM_LAKE=str(lake.root))
    # the registry knows employees; seed it and time-travel on it
    seed_history(lake)
    ingestion.build_trusted_days(lake, SPEC, ingestion.raw_objects_by_date(lake, SPEC, [date(2026, 3, 1)]))
    ingestion.update_current(lake, SPEC)
    ingestion.build_trusted_days(lake, SPEC, ingestion.raw_objects_by_date(lake, SPEC, [date(2026, 3, 2)]))
    ingestion.update_current(lake, SPEC)
    outputs = []
    for args in (["history", "employees"], ["read", "employees", "--version", "1", "--output", str(tmp_path / "v1.parquet")],
                 ["read", "employees"], ["maintain", "employees", "--retention-hours", "168"],
                 ["history", "employees", "--zone", "trusted"]):  # fmt: skip
        done = cli("table", *args, env=env)
        assert done.returncode == 0, done.stderr
        assert "terminate called" not in done.stderr and "panicked" not in done.stderr, done.stderr
        outputs.append(done.stdout)
    assert "MERGE" in outputs[0] and "v1" in outputs[0]
    v1 = pq.read_table(tmp_path / "v1.parquet")  # v0 is the empty table, v1 day 1
    assert sorted(rows(v1, "EmployeeID", "City")) == [(i, "Pune") for i in range(1, 6)]  # before day 2's changes
    assert "5 rows" in outputs[2]
    assert "OPTIMIZE" in cli("table", "history", "employees", env=env).stdout
    bad = cli("table", "read", "employees", "--version", "99", env=env)
    assert bad.returncode == 2 and "current/employees" in bad.stderr and "Traceback" not in bad.stderr


def test_s3_tables_with_wrong_keys_fail_naming_the_table_never_the_secret(s3_env, monkeypatch):
    delta.write_days(s3_env, KV, [day_write(date(2026, 3, 1), changes(("insert", 0, "a", 0, 1, "one")))])
    delta.update_current(s3_env, KV)
    assert live(s3_env) == [(1, "one")]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
    with pytest.raises(delta.DeltaTableError) as caught:
        delta.read_current(s3_env, "kv")
    assert "current/kv" in str(caught.value)
    assert secret not in str(caught.value) and "wrong-secret-0123456789" not in str(caught.value)


def test_the_cli_on_s3_reads_the_tables_and_exits_cleanly_and_wrong_keys_fail_without_the_secret(s3_env, tmp_path):
    seed_history(s3_env)
    ingestion.build_trusted_days(s3_env, SPEC, ingestion.raw_objects_by_date(s3_env, SPEC))
    ingestion.update_current(s3_env, SPEC)
    env = dict(os.environ, SMARTSTREAM_LAKE=s3_env.url)
    for _ in range(3):  # interpreter exit with delta-rs's runtime threads alive, several times
        done = cli("table", "read", "employees", env=env)
        assert done.returncode == 0 and "5 rows" in done.stdout, done.stderr
        assert "terminate called" not in done.stderr and "panicked" not in done.stderr, done.stderr
    wrong = dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-0123456789")
    bad = cli("table", "history", "employees", env=wrong)
    assert bad.returncode == 2 and "current/employees" in bad.stderr, bad.stderr
    assert "wrong-secret-0123456789" not in bad.stderr and os.environ["AWS_SECRET_ACCESS_KEY"] not in bad.stderr
    assert "Traceback" not in bad.stderr and "terminate called" not in bad.stderr


def test_the_maintenance_job_z_orders_vacuums_and_shows_it_on_the_assets(lake):
    import dagster as dg

    from smartstream_assets.assets.maintenance import build_maintenance_job
    from smartstream_assets.keys import current_asset_key, trusted_asset_key
    from smartstream_assets.resources import LakeResource

    seed_history(lake)
    for day, objects in sorted(ingestion.raw_objects_by_date(lake, SPEC).items()):
        ingestion.build_trusted_days(lake, SPEC, {day: objects})
        ingestion.update_current(lake, SPEC)  # two MERGE commits: files to compact, one to vacuum
    before = sorted(rows(delta.read_current(lake, "employees"), "EmployeeID", "City"))
    instance = dg.DagsterInstance.ephemeral()
    job = build_maintenance_job(SPEC)
    result = job.execute_in_process(
        run_config={"ops": {"employees__maintenance": {"config": {"retention_hours": 0}}}},
        resources={"lake": LakeResource(url=str(lake.root))},
        instance=instance,
    )
    assert result.success
    done = result.output_for_node("employees__maintenance")
    assert done["current"]["files_vacuumed"] > 0 and done["current"]["retention_hours"] == 0
    assert done["current"]["duplicate_rows"] == 0
    assert done["current"]["files_removed"] >= 1 and done["current"]["files_added"] == 1  # rewritten in key order
    assert sorted(rows(delta.read_current(lake, "employees"), "EmployeeID", "City")) == before
    assert len(delta.open_table(lake, "current/employees").file_uris()) == 1
    for key in (current_asset_key("employees"), trusted_asset_key("employees")):
        observed = instance.fetch_observations(key, limit=1).records
        assert observed and observed[0].asset_observation.metadata["retention_hours"].value == 0
    assert "OPTIMIZE" in {h["operation"] for h in delta.history(lake, "current/employees")}
    bad = job.execute_in_process(
        run_config={"ops": {"employees__maintenance": {"config": {"retention_hours": -1}}}},
        resources={"lake": LakeResource(url=str(lake.root))}, instance=instance, raise_on_error=False,
    )  # fmt: skip
    assert bad.success  # -1: the environment's default (168 h), nothing young vacuumed


READINGS = TableSpec(name="readings", raw_prefix="raw/readings/", format="dms_csv", primary_key=("station", "at"),
                     columns={"station": "string", "at": "timestamp", "level": "float64"})  # fmt: skip


def test_a_composite_key_of_text_and_time_merges_like_apply_changes(lake):
    """co2 and vitals key readings by (station or patient, time): MERGE on both columns,
    with the day's time range pruning files, equals the reference over random days."""
    schema = trusted_schema(READINGS)
    rng = random.Random(11)
    written = []
    for d in range(1, 7):
        items = []
        for line in range(30):
            at = BASE + timedelta(hours=rng.randint(0, 24 * d))  # new readings, and corrections of older ones
            items.append((rng.choice(["insert", "update", "delete"]), BASE + timedelta(days=d, seconds=line % 3),
                          f"raw/{rng.choice('ab')}.csv", line, rng.choice(["s1", "s2", "s3"]), at, rng.random()))  # fmt: skip
        cols = list(zip(*items))
        batch = pa.table([pa.array(c, t) for c, t in zip(cols, schema.types)], schema=schema)
        written.append(batch)
        delta.write_days(lake, READINGS, [day_write(date(2026, 3, d), batch)])
        delta.update_current(lake, READINGS)
    state = None
    for batch in written:
        state = apply_changes(state, batch, ["station", "at"])
    expected = sorted(rows(current_rows(state), "station", "at", "level"))
    assert sorted(rows(delta.read_current(lake, "readings"), "station", "at", "level")) == expected
    assert len(expected) > 10


def test_a_first_update_reads_trusted_in_two_passes_and_equals_the_in_memory_reduction(lake, monkeypatch):
    """A first update (and a rebuild) reads trusted whole: the winners are decided on the
    key and order columns alone, then the table is streamed again for their rows (memory
    for the winners, not the table). That gives exactly the in-memory reduction, in key
    order, for an integer key and a text + time key. Rows whose (source, line) repeat,
    which parsing never produces, fall back to the in-memory reduction, still exact."""
    fallbacks = []
    in_memory = delta._latest_in_memory
    monkeypatch.setattr(delta, "_latest_in_memory", lambda *a, **k: fallbacks.append(a[-1]) or in_memory(*a, **k))
    rng = random.Random(3)

    def expected(spec):
        schema = trusted_schema(spec)
        return last_change_per_key(delta.read_trusted(lake, spec.name).select(schema.names).cast(schema), list(spec.primary_key))

    def two_pass(spec):
        trusted = delta.open_table(lake, delta.trusted_table(spec.name))
        return delta._latest_changes(lake, trusted, None, delta.trusted_table(spec.name), spec)

    for d in range(1, 5):  # unique (source, line), equal commit times broken by source then line
        items = [(rng.choice(["insert", "update", "delete"]), rng.randint(0, 3) * 600, f"raw/{d}/{src}.csv", line,
                  rng.randint(0, 200), f"d{d}{src}{line}") for src in "ab" for line in range(1, 150)]  # fmt: skip
        delta.write_days(lake, KV, [day_write(date(2026, 3, d), changes(*items))])
    found = two_pass(KV)
    assert found.in_key_order(trusted_schema(KV)).to_pylist() == expected(KV).to_pylist() and found.rows.num_rows > 150
    assert found.read == 4 * 2 * 149 and found.days == [f"2026-03-0{d}" for d in range(1, 5)] and not fallbacks

    schema = trusted_schema(READINGS)
    items = [(rng.choice(["insert", "update"]), BASE + timedelta(seconds=rng.randint(0, 5)), f"raw/{src}.csv", line,
              rng.choice(["s1", "s2"]), BASE + timedelta(minutes=rng.randint(0, 40)), float(line)) for src in "xyz" for line in range(60)]  # fmt: skip
    delta.write_days(lake, READINGS, [day_write(date(2026, 3, 1), pa.table([pa.array(c, t) for c, t in zip(zip(*items), schema.types)], schema=schema))])
    assert two_pass(READINGS).in_key_order(schema).to_pylist() == expected(READINGS).to_pylist() and not fallbacks

    # a line number far beyond the lines read (slots per line would outgrow the table): in memory, still exact
    delta.write_days(lake, KV, [day_write(date(2026, 3, 7), changes(("update", 5000, "raw/7/a.csv", 10**12, 8, "far")))])
    found = two_pass(KV)
    assert found.in_key_order(trusted_schema(KV)).to_pylist() == expected(KV).to_pylist() and len(fallbacks) == 1
    delta.write_days(lake, KV, [day_write(date(2026, 3, 7), changes(("update", 5000, "raw/7/a.csv", 900, 8, "near")))])
    assert two_pass(KV).in_key_order(trusted_schema(KV)).to_pylist() == expected(KV).to_pylist() and len(fallbacks) == 1

    delta.write_days(lake, KV, [day_write(date(2026, 3, 5), changes(("update", 5000, "raw/5/a.csv", 1, 7, "wins"),
                                                                    ("update", 4000, "raw/5/a.csv", 1, 7, "same line, loses")))])  # fmt: skip
    found = two_pass(KV)
    assert found.in_key_order(trusted_schema(KV)).to_pylist() == expected(KV).to_pylist() and len(fallbacks) == 2
    first = delta.update_current(lake, KV)  # a new current: the winners appended
    assert not first.rebuilt and live(lake) == sorted(rows(current_rows(expected(KV)), "id", "v"))
    report = delta.update_current(lake, KV, rebuild=True)
    assert report.rebuilt and live(lake) == sorted(rows(current_rows(expected(KV)), "id", "v"))
    # the source key went to delta-rs as a dictionary; the table's column is still a string,
    # so the next update merges instead of rebuilding for a changed schema
    assert delta._plain_schema(delta.open_table(lake, "current/kv")) == trusted_schema(KV)
    delta.write_days(lake, KV, [day_write(date(2026, 3, 6), changes(("update", 9000, "raw/6/a.csv", 1, 7, "later")))])
    assert not delta.update_current(lake, KV).rebuilt and (7, "later") in live(lake)


def test_objects_parsed_on_threads_stream_into_one_commit_as_one_thread_builds_it(tmp_path, monkeypatch):
    """Raw objects are parsed on threads and streamed into the trusted commit as they
    come: the tables and every report figure equal a one-thread build. An unreadable
    object in the middle of a backfill fails it naming the key, with nothing committed."""

    def build(name, threads, extra=None):
        monkeypatch.setattr(ingestion, "PARSE_THREADS", threads)
        store = LocalLake(tmp_path / name)
        for d in (1, 2):
            for f in range(6):
                lines = [emp("UID"[(f + s) % 3], f"2026-03-0{d} {f:02d}:00:{s:02d}", (f * 7 + s) % 20, city=f"c{d}{f}{s}") for s in range(10)]
                write(store, f"2026/03/0{d}/2026030{d}-{f:02d}0000000.csv", *lines, "X,2026-03-01 00:00:00,1\n")
        if extra:
            store.write_bytes(PREFIX + extra, b"this is not gzip")
        return store, ingestion.build_trusted_days(store, SPEC, ingestion.raw_objects_by_date(store, SPEC))

    def figures(r):
        return (r.day, r.objects, r.rows_in, r.rows_out, r.quarantined, dict(r.ops), dict(r.quarantine_reasons), r.min_commit_ts,
                r.max_commit_ts, r.preview.to_pylist(), r.null_keys, r.schema_mismatches, r.delta_version)  # fmt: skip

    def tables(store):
        by_line = [("_source_key", "ascending"), ("_source_line", "ascending")]
        return delta.read_trusted(store, "employees").sort_by(by_line), delta.read_quarantine(store, "employees").sort_by(by_line)

    one, one_reports = build("one", 1)
    many, many_reports = build("many", 3)
    assert [figures(r) for r in many_reports] == [figures(r) for r in one_reports]
    assert [r.rows_out for r in many_reports] == [60, 60] and [r.quarantined for r in many_reports] == [6, 6]
    for a, b in zip(tables(one), tables(many)):
        assert a.to_pylist() == b.to_pylist()
    # handed to delta-rs as a dictionary, the source key stays a string column of the table
    assert delta._plain_schema(delta.open_table(many, delta.trusted_table("employees"))) == delta._with_day(
        trusted_schema(SPEC).empty_table(), date(2026, 3, 1)).schema  # fmt: skip
    bad = "2026/03/01/20260301-030000000.csv.gz"  # the middle of the first day, in key order
    with pytest.raises(UnreadableObject, match=bad):
        build("bad", 3, extra=bad)
    failed = LocalLake(tmp_path / "bad")
    assert delta.trusted_days(failed, "employees") == [] and delta.read_trusted(failed, "employees").num_rows == 0
    assert delta.table_version(failed, delta.trusted_table("employees")) in (None, 0)  # at most the empty table: no data commit


def test_the_key_check_looks_where_the_day_changed_keys_and_catches_a_duplicate_there(lake):
    from deltalake import write_deltalake

    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(*[("insert", 0, "a", i, i, f"v{i}") for i in range(100)]))])
    delta.update_current(lake, KV)
    # a duplicate of key 90 appended behind the product's back (another engine, a bad restore)
    dup = delta.read_current(lake, "kv", include_deleted=True).filter(pc.equal(pc.field("id"), 90))
    write_deltalake(delta.open_table(lake, "current/kv"), dup, mode="append")
    delta.write_days(lake, KV, [day_write(date(2026, 3, 2), changes(("update", 10, "b", 0, 85, "x"), ("update", 10, "b", 1, 95, "y")))])
    report = ingestion.update_current(lake, KV)
    assert report.checks["duplicate_rows"] == 1 and "85" in report.checks["duplicate_scope"]
    delta.write_days(lake, KV, [day_write(date(2026, 3, 3), changes(("update", 20, "b", 0, 5, "z")))])
    elsewhere = ingestion.update_current(lake, KV)  # keys 5..5: the duplicate lies outside
    assert elsewhere.checks["duplicate_rows"] == 0
    assert delta.current_stats(lake, KV, None)["duplicate_rows"] == 1  # the maintenance job's whole-table check


THREADED_WRITERS = """
import sys, threading
from datetime import date
from smartstream_assets import delta
from smartstream_assets.lake import LocalLake
from smartstream_assets_tests.test_delta import KV, changes, day_write
lake = LocalLake(sys.argv[1])
def write(d):
    delta.write_days(lake, KV, [day_write(date(2026, 3, d), changes(("insert", d, "a", 0, d, "x")))])
threads = [threading.Thread(target=write, args=(d,)) for d in range(1, 5)]
[t.start() for t in threads]
[t.join() for t in threads]
delta.update_current(lake, KV)
print(delta.read_current(lake, "kv").num_rows, delta.read_trusted(lake, "kv").num_rows)
"""


def test_processes_that_write_from_threads_and_read_exit_cleanly(tmp_path):
    """Reading through pyarrow datasets aborted such a process at exit in 4 of 50 runs
    ("terminate called without an active exception"); the reads go through delta-rs now."""
    for run in range(8):
        done = subprocess.run([sys.executable, "-c", THREADED_WRITERS, str(tmp_path / f"lake{run}")], capture_output=True,
                              text=True, cwd=Path(__file__).resolve().parents[1], timeout=120)  # fmt: skip
        assert done.returncode == 0 and done.stdout.split() == ["4", "4"], done.stderr[-2000:]
        assert "terminate called" not in done.stderr


def test_importing_smartstream_puts_arrow_on_jemalloc_unless_the_environment_chooses(tmp_path):
    """pyarrow's buffers come from jemalloc once smartstream is imported (mimalloc's quick
    return of freed pages cost a backfill ~13%); ARROW_DEFAULT_MEMORY_POOL still decides."""
    probe = "import smartstream_assets, pyarrow as pa; print(pa.default_memory_pool().backend_name)"

    def backend(**env):
        base = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=base | env, cwd=tmp_path, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert backend() == "jemalloc"
    assert backend(ARROW_DEFAULT_MEMORY_POOL="system") == "system"


def _encodings(lake, path: str) -> dict[str, set[str]]:
    """Every Parquet encoding each column uses in the files the table's latest version reads."""
    found: dict[str, set[str]] = {}
    for uri in delta.open_table(lake, path).file_uris():
        meta = pq.ParquetFile(uri.removeprefix("file://")).metadata
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                column = meta.row_group(g).column(c)
                found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def test_commit_times_lines_and_integer_keys_are_delta_packed_in_every_write_and_rewrite(lake):
    """The commit time, the line and an integer key are stored DELTA_BINARY_PACKED (not a
    dictionary that overflows into PLAIN), in trusted, a first current, a MERGE, a rebuild
    and a maintenance rewrite; text columns keep their dictionary, and DuckDB's reader reads it."""
    packed = {"_commit_ts", "_source_line", "id"}

    def check(path):
        found = _encodings(lake, path)
        assert found, path
        for name in packed:
            assert "DELTA_BINARY_PACKED" in found[name] and "PLAIN_DICTIONARY" not in found[name], (path, name, found[name])
        assert "RLE_DICTIONARY" in found["v"] or "PLAIN_DICTIONARY" in found["v"], (path, found["v"])

    items = [("insert", i // 50, "raw/a.csv", i + 1, i, f"v{i % 7}") for i in range(3000)]
    delta.write_days(lake, KV, [day_write(date(2026, 3, 1), changes(*items))])
    check("trusted/kv")
    delta.update_current(lake, KV)  # a first current: appended
    check("current/kv")
    delta.write_days(lake, KV, [day_write(date(2026, 3, 2), changes(*[("update", 900, "raw/b.csv", i + 1, i * 3, "w") for i in range(500)]))])
    assert delta.update_current(lake, KV).updated == 500  # a MERGE rewrites the files it touches
    check("current/kv")
    delta.update_current(lake, KV, rebuild=True)
    check("current/kv")
    delta.maintain(lake, "current/kv", z_order=["id"], retention_hours=0, keys=["id"])
    delta.maintain(lake, "trusted/kv", retention_hours=0, keys=["id"])
    check("current/kv")
    check("trusted/kv")
    expected = sorted((i, "w" if i % 3 == 0 and i < 1500 else f"v{i % 7}") for i in range(3000))
    assert live(lake) == expected
    files = [u.removeprefix("file://") for u in delta.open_table(lake, "current/kv").file_uris()]  # DuckDB's own Parquet reader
    assert duckdb.execute("SELECT id, v FROM read_parquet(?) WHERE _op <> 'delete' ORDER BY id", [files]).fetchall() == expected
