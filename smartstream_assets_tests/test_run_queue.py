"""Issue 12, part 7: what breaks when the run queue is real.

The real ``dagster-daemon run`` against the project's ``workspace.yaml``, on the
production instance (``instance_config.write_instance``) in the test PostgreSQL, a local
lake and a sqlite MLflow store under ``tmp_path``; ``employees_raw_sensor`` is switched on
with ``dagster sensor start`` and launches the ingest runs itself.

- Runs of one table launched together queue (``max_concurrent_runs``) and their
  ``employees__current`` steps take turns on the pool ``smartstream_current_employees``;
  ``current/employees`` is what applying every day gives.
- A run whose worker is killed (``kill -9``, with the step process it started) in
  ``employees__current`` is marked failed: by the code server that launched it, which
  watches its run processes (the default run launcher offers run monitoring no worker
  health check). The pool slot the step held stays claimed until the daemon frees it
  (``free_slots_after_run_end_seconds``), and the sensor requests the date again
  (``sensors.failed_dates``): the new run succeeds and ``current/employees`` is right.

To stop a step mid-way deterministically, the test holds a gate: an exclusive flock on a
file that ``delta.update_current`` waits for in every process of the daemon (a
``sitecustomize`` on the daemon's PYTHONPATH wraps it; the product has no such hook), so
the step waits after STEP_START, as it would on a slow store.

The in-process tests at the end pin ``failed_dates``: one run per failure, none after a
success, none for a canceled run, at most ``MAX_RUNS_PER_CONTENT`` runs for the same objects.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import psutil
import pytest
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import PARTITION_NAME_TAG, RUN_KEY_TAG, SENSOR_NAME_TAG

from smartstream_assets import delta, ingestion
from smartstream_assets.instance_config import PASSWORD_ENV, write_instance
from smartstream_assets.lake import LocalLake
from smartstream_assets.sensors import MAX_RUNS_PER_CONTENT
from smartstream_assets.tables import load_tables

from .helpers import emp, fresh_project_env, tick
from .postgres import postgres_server  # noqa: F401  (the session fixture)

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEC = load_tables(extra="")["employees"]
SENSOR = "employees_raw_sensor"
CURRENT_STEP = "employees__current"
TRUSTED_STEP = "employees__trusted"
POOL = "smartstream_current_employees"
FREE_SLOTS_SECONDS = 10  # production: 60 (instance_config); shorter keeps the test short


# ------------------------------------------------------------------ the raw objects


def land(lake: LocalLake, day: int, *lines: str) -> None:
    """A DMS object for 2026-03-<day>: the full load (no op column) on day 1, CDC after."""
    name = "LOAD00000001.csv" if day == 1 else f"202603{day:02d}-100000.csv"
    lake.write_bytes(f"{SPEC.raw_prefix}2026/03/{day:02d}/{name}", "".join(lines).encode())


def land_three_days(lake: LocalLake) -> None:
    land(lake, 1, *(emp("", "2026-03-01 00:00:00", i) for i in range(1, 41)))
    land(lake, 2, *(emp("U", "2026-03-02 10:00:00", i, city="Bangalore") for i in range(1, 11)),
         *(emp("D", "2026-03-02 10:00:01", i) for i in range(11, 16)),
         *(emp("I", "2026-03-02 10:00:02", i, city="Delhi") for i in range(41, 46)))  # fmt: skip
    land(lake, 3, *(emp("U", "2026-03-03 09:00:00", i, city="Mumbai") for i in range(1, 6)),
         emp("I", "2026-03-03 09:00:01", 11, city="Chennai"), emp("D", "2026-03-03 09:00:02", 41))  # fmt: skip


# what the three days leave, worked out by hand: id -> City
THREE_DAYS_CITY = (
    {i: "Pune" for i in range(1, 41)}
    | {i: "Bangalore" for i in range(1, 11)}
    | {i: "Delhi" for i in range(41, 46)}
    | {i: "Mumbai" for i in range(1, 6)}
    | {11: "Chennai"}
)
for _gone in (12, 13, 14, 15, 41):
    del THREE_DAYS_CITY[_gone]


def sequential_current(raw_root: Path, work: Path) -> list[dict]:
    """current/employees from the pure functions, one day after the other, on a copy of raw."""
    lake = LocalLake(work)
    shutil.copytree(raw_root / "raw", work / "raw")
    for day, objects in sorted(ingestion.raw_objects_by_date(lake, SPEC).items()):
        ingestion.build_trusted_partition(lake, SPEC, day, objects)
        ingestion.update_current(lake, SPEC)
    return table_rows(lake)


def table_rows(lake: LocalLake) -> list[dict]:
    table = delta.read_current(lake, "employees")
    assert table is not None, "no current/employees"
    return sorted(table.to_pylist(), key=lambda row: row["EmployeeID"])


def has_current(lake: LocalLake) -> bool:
    return delta.open_table(lake, ingestion.current_key("employees")) is not None


# Installed in every Python process of the daemon (its code server, run workers and step
# processes) through PYTHONPATH: update_current first waits for the gate's lock.
GATE_ENV = "SMARTSTREAM_TEST_CURRENT_GATE"
SITECUSTOMIZE = f"""
import os
if os.environ.get({GATE_ENV!r}):
    import fcntl
    import smartstream_assets.delta as _delta

    _update_current = _delta.update_current

    def update_current(*args, **kwargs):
        with open(os.environ[{GATE_ENV!r}], "a") as gate:
            fcntl.flock(gate, fcntl.LOCK_SH)  # waits while the test holds it exclusively
            fcntl.flock(gate, fcntl.LOCK_UN)
        return _update_current(*args, **kwargs)

    _delta.update_current = update_current
"""


class Gate:
    """Held until ``release()``: meanwhile every update_current of the daemon waits."""

    def __init__(self, path: Path):
        import fcntl

        self.fh = open(path, "a")
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def release(self) -> None:
        if not self.fh.closed:
            self.fh.close()  # closing drops the flock


# ------------------------------------------------------------ the daemon and its instance


class Deadline(AssertionError):
    pass


def wait_for(condition, *, timeout: float, what: str, log: Path | None = None, every: float = 0.5):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = "" if log is None or not log.exists() else "\n--- daemon log ---\n" + log.read_text()[-4000:]
            raise Deadline(f"after {timeout:.0f} s still waiting for {what}{tail}")
        time.sleep(every)


class Queue:
    """The production instance on a fresh database, the environment of the daemon."""

    def __init__(self, tmp_path: Path, server, monkeypatch, max_concurrent_runs: int):
        db = f"run_queue_{uuid.uuid4().hex[:10]}"
        with server.connect() as conn:
            conn.execute(f"CREATE DATABASE {db}")
        self.env = fresh_project_env(tmp_path)
        self.env[PASSWORD_ENV] = server.password
        self.env["OMP_WAIT_POLICY"] = "PASSIVE"
        self.env["PYTHONUNBUFFERED"] = "1"
        monkeypatch.setenv(PASSWORD_ENV, server.password)
        self.home = Path(self.env["DAGSTER_HOME"])
        write_instance(self.home, host=server.host, port=server.port, user=server.user, db=db,
                       max_concurrent_runs=max_concurrent_runs, monitoring_poll_seconds=2,
                       free_slots_seconds=FREE_SLOTS_SECONDS)  # fmt: skip
        self.lake = LocalLake(Path(self.env["SMARTSTREAM_LAKE"]))
        self.log = tmp_path / "daemon.log"
        hooks = tmp_path / "hooks"
        hooks.mkdir()
        (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hooks), self.env.get("PYTHONPATH", "")) if p)
        self.env[GATE_ENV] = str(tmp_path / "current.gate")

    def hold_current(self) -> Gate:
        return Gate(Path(self.env[GATE_ENV]))

    def start_sensor(self) -> None:
        proc = subprocess.run([str(BIN / "dagster"), "sensor", "start", SENSOR, "-w", "workspace.yaml"],
                              cwd=PROJECT, env=self.env, capture_output=True, text=True, timeout=180)  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr

    @contextmanager
    def daemon(self):
        """``dagster-daemon run`` in a session of its own (its code server and run workers
        with it), killed as a group at the end."""
        with open(self.log, "w") as out:
            proc = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=PROJECT,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            yield proc
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


@pytest.fixture
def queue_factory(tmp_path, postgres_server, monkeypatch):  # noqa: F811
    return lambda max_concurrent_runs: Queue(tmp_path, postgres_server, monkeypatch, max_concurrent_runs)


def sensor_runs(instance) -> list[DagsterRun]:
    return instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_NAME_TAG: SENSOR}))


def step_events(instance, run_id: str, step_key: str, *types) -> list:
    return [e for e in instance.all_logs(run_id, of_type=set(types)) if e.step_key == step_key]


def blocked_by_pool(instance, run_id: str) -> bool:
    return any(
        (e.message or "").startswith(f"Step blocked by limit for pool {POOL}")
        for e in step_events(instance, run_id, CURRENT_STEP, dg.DagsterEventType.ENGINE_EVENT)
    )


def current_started(instance, run_id: str) -> bool:
    return bool(step_events(instance, run_id, CURRENT_STEP, dg.DagsterEventType.STEP_START))


def step_window(instance, run_id: str, step_key: str) -> tuple[float, float]:
    start = step_events(instance, run_id, step_key, dg.DagsterEventType.STEP_START)
    end = step_events(instance, run_id, step_key, dg.DagsterEventType.STEP_SUCCESS)
    assert len(start) == 1 and len(end) == 1, f"{run_id} {step_key}: {len(start)} starts, {len(end)} successes"
    return start[0].timestamp, end[0].timestamp


def worker_pid(instance, run_id: str) -> int:
    """The run worker's pid, as the run's own event log names it."""
    for event in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        found = re.match(r"Started process for run \(pid: (\d+)\)", event.message or "")
        if found:
            return int(found.group(1))
    raise AssertionError(f"no 'Started process for run' event in {run_id}")


def claimed_by(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


# ------------------------------------------------------------------------- the tests


def test_sensor_runs_of_one_table_queue_and_take_turns_on_current(queue_factory, tmp_path):
    """Three dates land at once: the sensor requests three runs; two start (the queue's
    limit), the third waits in the queue; their current steps take turns on the pool."""
    q = queue_factory(max_concurrent_runs=2)
    land_three_days(q.lake)
    expected = sequential_current(q.lake.root, tmp_path / "sequential")
    assert {row["EmployeeID"]: row["City"] for row in expected} == THREE_DAYS_CITY
    gate = q.hold_current()  # the first current step to start waits inside update_current
    began = time.monotonic()
    q.start_sensor()
    try:
        with q.daemon(), dg.DagsterInstance.from_config(str(q.home)) as instance:
            daemon_at = time.monotonic()

            def one_in_current_one_blocked_one_queued():
                runs = sensor_runs(instance)
                if len(runs) != 3:
                    return None
                in_current = [r for r in runs if current_started(instance, r.run_id)]
                blocked = [r for r in runs if r not in in_current and blocked_by_pool(instance, r.run_id)]
                queued = [r for r in runs if r.status == dg.DagsterRunStatus.QUEUED]
                return (in_current, blocked, queued) if len(in_current) == 1 and len(blocked) == 1 and len(queued) == 1 else None

            holder, blocked, queued = wait_for(one_in_current_one_blocked_one_queued, timeout=300, every=1.0, log=q.log,
                                               what="one run in employees__current, one blocked by the pool, one queued")  # fmt: skip
            # while the holder is in its step: no other current step started, the queue held the third
            runs = {r.run_id: r for r in sensor_runs(instance)}
            assert sorted(r.tags[PARTITION_NAME_TAG] for r in runs.values()) == ["2026-03-01", "2026-03-02", "2026-03-03"]
            assert len({r.tags[RUN_KEY_TAG] for r in runs.values()}) == 3
            assert [r.run_id for r in sensor_runs(instance) if current_started(instance, r.run_id)] == [holder[0].run_id]
            assert claimed_by(instance) == {holder[0].run_id}
            assert sum(r.status in (dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED) for r in sensor_runs(instance)) == 2
            assert instance.get_run_by_id(queued[0].run_id).status == dg.DagsterRunStatus.QUEUED
            assert not has_current(q.lake)
            gate.release()
            released_at = time.monotonic()

            wait_for(lambda: all(r.is_finished for r in sensor_runs(instance)), timeout=300, every=1.0, log=q.log,
                     what="all three runs to finish")  # fmt: skip
            runs = sensor_runs(instance)
            assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * 3, [(r.run_id, r.status) for r in runs]
            for run in runs:  # every run went through the queue
                assert instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)
            # the current steps never overlapped: each started after the one before it finished
            windows = sorted(step_window(instance, r.run_id, CURRENT_STEP) for r in runs)
            for (_, earlier_end), (later_start, _) in zip(windows, windows[1:]):
                assert later_start >= earlier_end, windows
            # ...while the runs themselves did: the third was dequeued only when one ended
            run_windows = {r.run_id: (instance.get_run_record_by_id(r.run_id).start_time,
                                      instance.get_run_record_by_id(r.run_id).end_time) for r in runs}  # fmt: skip
            third_start = run_windows[queued[0].run_id][0]
            assert third_start >= min(end for run_id, (_, end) in run_windows.items() if run_id != queued[0].run_id)
            assert sum(start < run_windows[holder[0].run_id][1] for start, _ in run_windows.values()) == 2
            assert claimed_by(instance) == set()
            done_at = time.monotonic()
    finally:
        gate.release()
    assert table_rows(q.lake) == expected
    print(f"\nsensor started in {daemon_at - began:.0f} s; the daemon's runs reached the pool in {released_at - daemon_at:.0f} s, "
          f"finished {done_at - released_at:.0f} s after; current steps {[round(e - s, 1) for s, e in windows]} s")  # fmt: skip


def test_a_run_killed_in_current_is_failed_frees_its_slot_and_the_sensor_requests_it_again(queue_factory, tmp_path):
    q = queue_factory(max_concurrent_runs=4)
    land(q.lake, 1, *(emp("", "2026-03-01 00:00:00", i) for i in range(1, 21)))
    expected = sequential_current(q.lake.root, tmp_path / "sequential")
    assert len(expected) == 20
    gate = q.hold_current()
    q.start_sensor()
    try:
        with q.daemon(), dg.DagsterInstance.from_config(str(q.home)) as instance:
            first = wait_for(lambda: next((r for r in sensor_runs(instance) if current_started(instance, r.run_id)), None),
                             timeout=240, every=0.5, log=q.log, what="the run to start employees__current")  # fmt: skip
            assert len(sensor_runs(instance)) == 1 and first.tags[PARTITION_NAME_TAG] == "2026-03-01"
            # mid-step: trusted is done (with the digest the sensor's triage would call "ingested"), current is not
            assert instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.STARTED
            assert step_events(instance, first.run_id, TRUSTED_STEP, dg.DagsterEventType.STEP_SUCCESS)
            assert not step_events(instance, first.run_id, CURRENT_STEP, dg.DagsterEventType.STEP_SUCCESS)
            assert ingestion.trusted_raw_digest(q.lake, SPEC, date(2026, 3, 1)) == first.tags[RUN_KEY_TAG].split(":", 2)[2]
            assert not has_current(q.lake)
            assert claimed_by(instance) == {first.run_id}

            # kill -9 the run worker and the step process it started (a worker dying takes its steps with it)
            worker = psutil.Process(worker_pid(instance, first.run_id))
            assert "dagster" in " ".join(worker.parent().cmdline())  # launched by the code server (DefaultRunLauncher)
            tree = [worker, *worker.children(recursive=True)]
            assert len(tree) >= 2  # the multiprocess executor runs the step in a child process
            for process in tree:
                process.send_signal(signal.SIGKILL)
            killed_at = time.time()

            failed = wait_for(lambda: instance.get_run_by_id(first.run_id).status == dg.DagsterRunStatus.FAILURE,
                              timeout=120, log=q.log, what="the killed run to be marked failed")  # fmt: skip
            marked_after = time.time() - killed_at
            messages = [e.message or "" for e in instance.all_logs(first.run_id)]
            assert failed and any("SIGKILL" in m for m in messages), messages[-5:]
            # the killed step never freed its slot: until the daemon frees it, current/ is locked
            assert claimed_by(instance) == {first.run_id}
            gate.release()
            wait_for(lambda: first.run_id not in claimed_by(instance), timeout=FREE_SLOTS_SECONDS + 90, log=q.log,
                     what="the daemon to free the killed run's pool slot")  # fmt: skip
            freed_after = time.time() - killed_at

            # the next tick requests the date again, under a key naming the attempt
            again = wait_for(lambda: next((r for r in sensor_runs(instance) if r.run_id != first.run_id), None),
                             timeout=120, log=q.log, what="the sensor to request 2026-03-01 again")  # fmt: skip
            requested_after = instance.get_run_record_by_id(again.run_id).create_timestamp.timestamp() - killed_at
            assert again.tags[PARTITION_NAME_TAG] == "2026-03-01"
            assert again.tags[RUN_KEY_TAG] == first.tags[RUN_KEY_TAG] + ":attempt2"
            wait_for(lambda: instance.get_run_by_id(again.run_id).is_finished, timeout=300, every=1.0, log=q.log,
                     what="the new run to finish")  # fmt: skip
            assert instance.get_run_by_id(again.run_id).status == dg.DagsterRunStatus.SUCCESS
            assert [r.run_id for r in sensor_runs(instance)] == [again.run_id, first.run_id]
            assert claimed_by(instance) == set()
    finally:
        gate.release()
    assert table_rows(q.lake) == expected
    print(f"\nkilled run marked failed after {marked_after:.1f} s, its slot freed after {freed_after:.1f} s, "
          f"the date requested again after {requested_after:.1f} s")  # fmt: skip


# ------------------------------------------------------- failed_dates, in process


@pytest.fixture
def lake(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    land(lake, 1, emp("", "2026-03-01 00:00:00", 1))
    land(lake, 2, emp("U", "2026-03-02 00:00:00", 1, city="Goa"))
    return lake


def record(instance, request: dg.RunRequest, status: dg.DagsterRunStatus) -> DagsterRun:
    """The run the daemon would have created for ``request``, in ``status``."""
    run = DagsterRun(job_name="employees_ingest", run_id=str(uuid.uuid4()), status=status,
                     tags={SENSOR_NAME_TAG: SENSOR, PARTITION_NAME_TAG: request.partition_key, RUN_KEY_TAG: request.run_key})  # fmt: skip
    return instance.add_run(run)


def test_a_failed_date_is_requested_again_once_per_failure_and_not_after_a_success(lake):
    instance = dg.DagsterInstance.ephemeral()
    first = tick(lake, instance=instance)
    day1, day2 = first.run_requests
    record(instance, day1, dg.DagsterRunStatus.SUCCESS)
    record(instance, day2, dg.DagsterRunStatus.FAILURE)
    retry = tick(lake, cursor=first.cursor, instance=instance)
    assert [(r.partition_key, r.run_key) for r in retry.run_requests] == [("2026-03-02", day2.run_key + ":attempt2")]
    assert retry.run_requests[0].run_config == day2.run_config
    # a tick before the daemon created that run asks for the same key (Dagster runs it once)
    assert [r.run_key for r in tick(lake, cursor=retry.cursor, instance=instance).run_requests] == [day2.run_key + ":attempt2"]
    # a lost cursor: the same, not the failed run's key that Dagster would drop
    assert [r.run_key for r in tick(lake, instance=instance).run_requests] == [day1.run_key, day2.run_key + ":attempt2"]
    attempt = record(instance, retry.run_requests[0], dg.DagsterRunStatus.STARTED)
    assert tick(lake, cursor=retry.cursor, instance=instance).run_requests == []  # in flight
    instance.report_dagster_event(dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name="employees_ingest"), run_id=attempt.run_id)
    assert instance.get_run_by_id(attempt.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert tick(lake, cursor=retry.cursor, instance=instance).run_requests == []


def test_a_date_that_keeps_failing_stops_after_the_limit_and_a_canceled_run_is_left_alone(lake):
    instance = dg.DagsterInstance.ephemeral()
    first = tick(lake, instance=instance)
    day1, day2 = first.run_requests
    record(instance, day1, dg.DagsterRunStatus.CANCELED)
    request, cursor = day2, first.cursor
    for attempt in range(2, MAX_RUNS_PER_CONTENT + 1):
        record(instance, request, dg.DagsterRunStatus.FAILURE)
        result = tick(lake, cursor=cursor, instance=instance)
        assert [r.run_key for r in result.run_requests] == [f"{day2.run_key}:attempt{attempt}"]
        request, cursor = result.run_requests[0], result.cursor
    record(instance, request, dg.DagsterRunStatus.FAILURE)
    given_up = tick(lake, cursor=cursor, instance=instance)
    assert given_up.run_requests == []
    assert f"1 dates failed {MAX_RUNS_PER_CONTENT} runs" in given_up.skip_reason.skip_message
    assert "2026-03-02" in given_up.skip_reason.skip_message
    # new objects for that day: a new content key, requested as usual
    lake.write_bytes(f"{SPEC.raw_prefix}2026/03/02/20260302-200000.csv", emp("U", "2026-03-02 20:00:00", 1, city="Agra").encode())
    fresh = tick(lake, cursor=cursor, instance=instance)
    assert [r.partition_key for r in fresh.run_requests] == ["2026-03-02"]
    assert ":attempt" not in fresh.run_requests[0].run_key and fresh.run_requests[0].run_key != day2.run_key


def test_the_production_instance_frees_the_slots_of_killed_steps():
    from smartstream_assets.instance_config import production_instance_yaml

    text = production_instance_yaml(host="h", port=1, user="u", db="d")
    assert "  poll_interval_seconds: 30\n  # a step" in text
    assert "  free_slots_after_run_end_seconds: 60\n" in text
