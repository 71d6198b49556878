"""Steps on Celery workers (``executor.py``, ``celery_worker.py``) with a real broker:
Debian's redis-server on 127.0.0.1 with a password, two workers started the way
``make workers`` starts them, the run's instance on a real PostgreSQL. The run is the
real CLI's partition-range backfill of a table (two steps: trusted, then current)."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import dagster as dg
import psutil
import pytest

from smartstream_assets import delta, local_stack
from smartstream_assets.executor import BACKEND_ENV, BROKER_ENV, EXECUTOR_ENV, ExecutorConfigError, executor_from_env
from smartstream_assets.instance_config import PASSWORD_ENV, write_instance
from smartstream_assets.lake import LocalLake

from .helpers import current_table, fresh_project_env
from .postgres import postgres_server  # noqa: F401  (the session fixture)
from .test_cli import DAGSTER, PROJECT, seed_two_days

REDIS_PASSWORD = "celery-broker-password-" + os.urandom(6).hex()


def test_the_executor_is_chosen_by_the_environment_and_names_only_variables():
    assert executor_from_env({}) is None and executor_from_env({EXECUTOR_ENV: "multiprocess"}) is None
    with pytest.raises(ExecutorConfigError, match=BROKER_ENV):
        executor_from_env({EXECUTOR_ENV: "celery"})
    with pytest.raises(ExecutorConfigError, match="expected 'multiprocess'"):
        executor_from_env({EXECUTOR_ENV: "dask"})
    celery = executor_from_env({EXECUTOR_ENV: "Celery", BROKER_ENV: f"redis://:{REDIS_PASSWORD}@127.0.0.1:1/0"})
    assert celery.name == "celery"  # that it holds the variables' names, not the URL, the run below shows


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    local_stack.ensure_redis_server()  # installs Debian's redis-server as root, else fails clearly
    server = local_stack.start_redis(tmp_path_factory.mktemp("redis"), REDIS_PASSWORD)
    yield server
    server.stop()


def test_redis_refuses_clients_without_the_password(redis_server):
    import redis

    with redis.Redis(host="127.0.0.1", port=redis_server.port, password=REDIS_PASSWORD) as client:
        assert client.ping()
    for password in (None, "wrong-password"):
        with pytest.raises(redis.AuthenticationError), redis.Redis(host="127.0.0.1", port=redis_server.port, password=password) as client:
            client.ping()
    assert REDIS_PASSWORD not in Path(redis_server.log_path).read_text()
    listening = {c.laddr.ip for c in psutil.Process(redis_server.pid).net_connections("inet") if c.status == psutil.CONN_LISTEN}
    assert listening == {"127.0.0.1"}


@pytest.fixture
def celery_project(tmp_path, redis_server, postgres_server, monkeypatch):  # noqa: F811
    """A fresh lake with three days of employees CDC, a production instance on PostgreSQL,
    and two Celery workers (``python -m smartstream_assets.celery_worker --workers 2``)."""
    with postgres_server.connect() as conn:
        conn.execute("CREATE DATABASE dagster_celery_test")
    env = fresh_project_env(tmp_path)
    home = tmp_path / "pg-home"
    write_instance(home, host=postgres_server.host, port=postgres_server.port, user=postgres_server.user, db="dagster_celery_test")
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)  # this process reads the instance too
    env.update({
        "DAGSTER_HOME": str(home), PASSWORD_ENV: postgres_server.password,
        BROKER_ENV: redis_server.broker_url(0), BACKEND_ENV: redis_server.broker_url(1),
        "OMP_WAIT_POLICY": "PASSIVE",
    })  # fmt: skip
    lake = LocalLake(tmp_path / "lake")
    seed_two_days(lake)
    log = open(tmp_path / "workers.log", "w")
    workers = subprocess.Popen([sys.executable, "-m", "smartstream_assets.celery_worker", "--workers", "2", "--name", "sstest"],
                               cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        names = wait_for_workers(redis_server, workers, tmp_path / "workers.log", expected=2)
        yield env, lake, workers, names, tmp_path / "workers.log"
    finally:
        if workers.poll() is None:
            os.killpg(workers.pid, signal.SIGTERM)  # it stops its workers (warm shutdown)
        try:
            workers.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(workers.pid, signal.SIGKILL)
            workers.wait()
        for process in psutil.process_iter(["cmdline"]):  # the workers lead their own groups
            if "sstest-" in " ".join(process.info["cmdline"] or []):
                process.kill()
        log.close()


def wait_for_workers(redis_server, starter, log_path, *, expected, timeout=90.0) -> list[str]:
    """The names of the workers answering a ping through the broker, once ``expected`` do."""
    from celery import Celery

    probe = Celery(broker=redis_server.broker_url(0), backend=redis_server.broker_url(1))
    deadline, names = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        assert starter.poll() is None, Path(log_path).read_text()[-3000:]
        names = sorted(name for reply in probe.control.ping(timeout=1.0) for name in reply)
        if len(names) >= expected:
            return names
    raise AssertionError(f"only {names} answered within {timeout} s:\n{Path(log_path).read_text()[-3000:]}")


def test_a_multi_step_run_executes_its_steps_on_the_celery_workers(celery_project):
    env, lake, workers, names, log_path = celery_project
    assert sorted(n.split("@")[0] for n in names) == ["sstest-1", "sstest-2"]
    proc = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "smartstream_assets", "--select", "employees/trusted,employees/current",
         "--partition-range", "2026-03-01...2026-03-03"],
        cwd=PROJECT, env={**env, EXECUTOR_ENV: "celery"}, capture_output=True, text=True, timeout=420,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "RUN_SUCCESS" in out, out[-4000:] + Path(log_path).read_text()[-3000:]
    # the lake holds what the same backfill gives in process (test_cli.py)
    assert delta.trusted_days(lake, "employees") == [date(2026, 3, 1), date(2026, 3, 3)]
    current = current_table(lake, "employees")
    assert current.column("EmployeeID").to_pylist() == [1] and current.column("City").to_pylist() == ["Bangalore"]

    worker_pids = {p.pid for w in psutil.Process(workers.pid).children() for p in [w, *w.children(recursive=True)]}
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        (run,) = instance.get_runs()
        assert run.is_success
        records = instance.get_records_for_run(run.run_id).records
        entries = [r.event_log_entry for r in records]
        delegated = {e.step_key: e.dagster_event.engine_event_data.metadata["Celery worker"].value
                     for e in entries if e.is_dagster_event and "in celery worker" in (e.dagster_event.message or "")}  # fmt: skip
        steps = {e.step_key for e in entries if e.is_dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_SUCCESS}
        assert len(steps) == 2 and set(delegated) == steps, (delegated, steps)  # both steps, each through a worker
        assert set(delegated.values()) <= set(names)
        started = {e.step_key: e.dagster_event.pid for e in entries if e.is_dagster_event and e.dagster_event.event_type == dg.DagsterEventType.STEP_START}
        # each step ran inside a worker's process tree, not in the CLI's run process
        assert set(started) == steps and set(started.values()) <= worker_pids, (started, worker_pids)
        run_pid = next(e.dagster_event.pid for e in entries if e.is_dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_START)
        assert run_pid not in worker_pids
        # the broker's password is nowhere in the run: its config names the variable only
        serialized = json.dumps([r.event_log_entry.to_json() for r in records]) + json.dumps(run.run_config)
        assert REDIS_PASSWORD not in serialized and REDIS_PASSWORD not in out
    assert REDIS_PASSWORD not in Path(log_path).read_text()

