"""The lake, the ingestion assets, the raw sensor and the local stack against a REAL
S3 server (SeaweedFS on 127.0.0.1, see conftest.py), configured through boto3's
standard variables exactly as a user's shell or the Dagster daemon would be."""

import gzip
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import psutil
import pytest

from smartstream_assets import delta, ingestion, local_stack
from smartstream_assets.lake import LakeError, S3Lake, lake_from_url

from .helpers import PREFIX, current_state, run, seed_history, tick, trusted_day

PROJECT = Path(__file__).resolve().parents[1]


def put_many(lake: S3Lake, keys, body: bytes = b"x\n") -> None:
    """Write many small objects fast (PUTs in parallel, boto3 clients are thread-safe)."""
    client = lake.client
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=lake.bucket, Key=lake.prefix + key, Body=body), keys))


def bucket_keys(server, prefix: str) -> list[str]:
    """Keys under ``prefix`` as the bucket itself lists them (not through the lake)."""
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", ())]


def error_text(exc: BaseException) -> str:
    """Everything a log or the Dagster UI could show of ``exc``: message, repr and the
    formatted traceback of it and of every exception chained to it, suppressed or not."""
    parts, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


# ------------------------------------------------------------------ the lake on S3


def test_write_read_exists_delete_round_trip(s3_env):
    lake = s3_env
    assert not lake.exists("raw/a/x.csv")
    lake.write_bytes("raw/a/x.csv", b"one\n")
    lake.write_bytes("raw/a/x.csv", b"two\n")  # replaces
    assert lake.exists("raw/a/x.csv")
    assert lake.read_bytes("raw/a/x.csv") == b"two\n"
    [info] = list(lake.list("raw/a/"))
    assert (info.key, info.size, info.last_modified.tzname()) == ("raw/a/x.csv", 4, "UTC")
    lake.delete("raw/a/x.csv")
    lake.delete("raw/a/x.csv")  # deleting a missing key is not an error
    assert not lake.exists("raw/a/x.csv")
    assert list(lake.list("raw/")) == []


def test_keys_are_relative_to_the_lake_prefix_in_the_bucket(s3_env, s3_server):
    s3_env.write_bytes("raw/a/x.csv", b"1")
    assert bucket_keys(s3_server, s3_env.prefix) == [s3_env.prefix + "raw/a/x.csv"]


def test_a_large_object_is_uploaded_in_parts_and_reads_back_whole(s3_env):
    data = os.urandom(9 * 1024 * 1024)  # above boto3's 8 MB multipart threshold
    s3_env.write_bytes("big/blob.bin", data)
    assert s3_env.read_bytes("big/blob.bin") == data


def test_reading_a_missing_key_raises_lake_error_naming_the_key(s3_env):
    with pytest.raises(LakeError) as info:
        s3_env.read_bytes("raw/nope.csv")
    assert f"{s3_env.url}raw/nope.csv" in str(info.value)
    assert "NoSuchKey" in str(info.value)


def test_parquet_round_trip(s3_env):
    import pyarrow as pa

    table = pa.table({"id": [1, 2], "city": ["Pune", "Delhi"]})
    s3_env.write_parquet("features/t/data.parquet", table)
    assert s3_env.read_parquet("features/t/data.parquet").equals(table)


@pytest.fixture(scope="module")
def many_objects(s3_server):
    """1,250 objects under a prefix of their own, written once for the listing tests."""
    prefix = f"tests/listing-{uuid.uuid4().hex[:8]}"
    keys = [f"k/{i:05d}.csv" for i in range(1250)]
    put_many(S3Lake(s3_server.bucket, prefix, client=s3_server.client()), keys)
    return prefix, keys


def list_calls(lake: S3Lake) -> list:
    """Records the MaxKeys of every ListObjectsV2 request the lake's client sends."""
    calls = []
    lake.client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: calls.append(params.get("MaxKeys"))
    )
    return calls


@pytest.mark.parametrize("page_size, requests", [(1000, 2), (100, 13)])
def test_listing_pages_through_more_than_1000_keys_in_key_order(s3_env, many_objects, page_size, requests):
    prefix, keys = many_objects
    lake = S3Lake(s3_env.bucket, prefix, page_size=page_size)
    calls = list_calls(lake)
    assert [obj.key for obj in lake.list("k/")] == keys
    assert calls == [page_size] * requests  # really paginated, page_size keys a request


def test_listing_after_a_key_returns_only_the_keys_after_it(s3_env, many_objects):
    prefix, keys = many_objects
    lake = S3Lake(s3_env.bucket, prefix, page_size=100)
    assert [obj.key for obj in lake.list("k/", start_after="k/00999.csv")] == keys[1000:]
    assert [obj.key for obj in lake.list("k/0124", start_after="k/01244.csv")] == keys[1245:]


def test_listing_after_a_key_never_returns_a_key_before_it(s3_env):
    s3_env.write_bytes("d/a/x.csv", b"1")
    s3_env.write_bytes("d/a-b.csv", b"1")  # sorts BEFORE d/a/x.csv in UTF-8 byte order
    assert [obj.key for obj in s3_env.list("d/", start_after="d/a/x.csv")] == []


def test_lake_from_url_uses_the_standard_variables(s3_env, s3_server, monkeypatch):
    url = f"s3://{s3_server.bucket}/{s3_env.prefix}"
    lake = lake_from_url(url)
    lake.write_bytes("raw/a.csv", b"hello")
    assert s3_env.read_bytes("raw/a.csv") == b"hello"
    monkeypatch.setenv("SMARTSTREAM_LAKE", url)
    assert lake_from_url().read_bytes("raw/a.csv") == b"hello"


# ------------------------------------------------------------ wrong credentials


@pytest.mark.parametrize(
    "variable, code",
    [("AWS_SECRET_ACCESS_KEY", "SignatureDoesNotMatch"), ("AWS_ACCESS_KEY_ID", "InvalidAccessKeyId")],
)
def test_wrong_credentials_are_rejected_with_the_reason_and_never_shown(s3_env, s3_server, monkeypatch, variable, code):
    s3_env.write_bytes("raw/a.csv", b"1")
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv(variable, wrong)
    lake = S3Lake(s3_env.bucket, s3_env.prefix)  # a new client: reads the variables again
    operations = {
        "read": lambda: lake.read_bytes("raw/a.csv"),
        "list": lambda: list(lake.list("raw/")),
        "write": lambda: lake.write_bytes("raw/b.csv", b"2"),
        "exists": lambda: lake.exists("raw/a.csv"),  # HEAD: a 403 without a body, so no code
        "delete": lambda: lake.delete("raw/a.csv"),
    }
    for name, operation in operations.items():
        with pytest.raises(LakeError) as info:
            operation()
        message = str(info.value)
        assert "403" in message, (name, message)
        if name != "exists":
            assert code in message, (name, message)
        text = error_text(info.value)
        assert wrong not in text and s3_server.secret_key not in text, name
    assert s3_env.read_bytes("raw/a.csv") == b"1"  # nothing was deleted


def test_a_run_with_a_wrong_secret_fails_without_showing_it(s3_env, s3_server, monkeypatch):
    seed_history(s3_env)
    wrong = f"wrong-{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    result = run(s3_env, "2026-03-01", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    shown = failure.event_specific_data.error.to_string()  # with its causes and contexts
    assert "SignatureDoesNotMatch" in shown
    assert wrong not in shown and s3_server.secret_key not in shown


# ------------------------------------------------------- Dagster assets on S3


def test_materialising_partitions_writes_trusted_and_current_into_the_bucket(s3_env, s3_server):
    seed_history(s3_env)
    first = run(s3_env, "2026-03-01")
    second = run(s3_env, "2026-03-02")
    assert first.success and second.success
    stored = bucket_keys(s3_server, s3_env.prefix)
    # Delta tables in the bucket: each with its log, partitions as folders of data files
    for table in (delta.trusted_table("employees"), delta.quarantine_table("employees"), ingestion.current_key("employees")):
        assert f"{s3_env.prefix}{table}/_delta_log/00000000000000000000.json" in stored, table
    for partition in (
        ingestion.trusted_key("employees", date(2026, 3, 1)),
        ingestion.trusted_key("employees", date(2026, 3, 2)),
        ingestion.quarantine_key("employees", date(2026, 3, 2)),
    ):
        assert any(k.startswith(f"{s3_env.prefix}{partition}/") and k.endswith(".parquet") for k in stored), partition
    assert f"{s3_env.prefix}{delta.sources_key('employees', date(2026, 3, 2))}" in stored
    assert delta.trusted_days(s3_env, "employees") == [date(2026, 3, 1), date(2026, 3, 2)]
    trusted = trusted_day(s3_env, "employees", date(2026, 3, 2))
    assert sorted(trusted.column("_op").to_pylist()) == ["delete", "insert", "update"]
    assert current_state(s3_env) == [(1, "Bangalore"), (3, "Pune"), (4, "Pune"), (5, "Pune"), (6, "Pune")]


def test_an_object_that_is_not_gzip_fails_the_run_naming_its_key(s3_env):
    seed_history(s3_env)
    run(s3_env, "2026-03-02")
    before = trusted_day(s3_env, "employees", date(2026, 3, 2))
    version = delta.table_version(s3_env, delta.trusted_table("employees"))
    bad = PREFIX + "2026/03/02/20260302-300000000.csv.gz"
    s3_env.write_bytes(bad, b"this is not gzip")
    result = run(s3_env, "2026-03-02", raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure.event_specific_data.error.cause.cls_name == "UnreadableObject"
    assert bad in failure.event_specific_data.error.cause.message
    assert before.num_rows == 3 and trusted_day(s3_env, "employees", date(2026, 3, 2)).equals(before)
    assert delta.table_version(s3_env, delta.trusted_table("employees")) == version  # nothing committed


def test_a_gzip_object_is_ingested(s3_env):
    line = "I,2026-03-01 10:00:00,7,Bachelors,2017,Pune,3,30,Male,No,2,0\n"
    s3_env.write_bytes(PREFIX + "2026/03/01/20260301-1.csv.gz", gzip.compress(line.encode()))
    run(s3_env, "2026-03-01")
    assert current_state(s3_env) == [(7, "Pune")]


# ---------------------------------------------------------- the raw sensor on S3


def test_sensor_requests_every_ingest_date_once_beyond_1000_keys(s3_env):
    counts = {"2026/03/01": 500, "2026/03/02": 400, "2026/03/03": 200}
    put_many(s3_env, [f"{PREFIX}{day}/{day.replace('/', '')}-{i:05d}.csv" for day, n in counts.items() for i in range(n)])
    first = tick(s3_env)
    assert [(r.partition_key, r.tags["smartstream/raw_objects"]) for r in first.run_requests] == [
        ("2026-03-01", "500"),
        ("2026-03-02", "400"),
        ("2026-03-03", "200"),
    ]
    second = tick(s3_env, cursor=first.cursor)
    assert second.run_requests == []
    assert "1100 listed" not in second.skip_reason.skip_message  # an incremental tick: new keys only


def test_an_object_written_in_the_same_second_as_the_last_seen_one_is_found(s3_env):
    # SeaweedFS's LastModified has 1 s resolution: a cursor on LastModified with a
    # strict ">" would skip the second object. The sensor's cursor is on keys.
    for attempt in range(3):
        lake = S3Lake(s3_env.bucket, f"{s3_env.prefix}attempt-{attempt}")
        time.sleep(1 - time.time() % 1)  # at the start of a second
        lake.write_bytes(PREFIX + "2026/03/01/20260301-1.csv", b"x\n")
        first = tick(lake)
        lake.write_bytes(PREFIX + "2026/03/01/20260301-2.csv", b"x\n")
        if len({obj.last_modified for obj in lake.list(PREFIX)}) == 1:
            break
    else:
        pytest.fail("could not write two objects within one second")
    assert [r.partition_key for r in first.run_requests] == ["2026-03-01"]
    second = tick(lake, cursor=first.cursor)
    assert [(r.partition_key, r.tags["smartstream/raw_objects"]) for r in second.run_requests] == [("2026-03-01", "2")]


def test_incremental_ticks_do_not_count_an_object_twice(s3_env):
    s3_env.write_bytes(PREFIX + "2026/03/01/a.csv", b"x\n")
    s3_env.write_bytes(PREFIX + "2026/03/01-late.csv", b"x\n")  # a file beside a dated folder
    first = tick(s3_env)
    second = tick(s3_env, cursor=first.cursor)
    assert second.run_requests == []


# -------------------------------------------------------------- the local stack


def test_seaweedfs_listens_on_127_0_0_1_only_and_on_the_ports_it_was_given(s3_server):
    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for conn in psutil.Process(s3_server.pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert {ip for ip, _ in listening} == {"127.0.0.1"}
    assert {port for _, port in listening} == set(s3_server.ports.values())
    assert len(s3_server.ports) == len(local_stack.WEED_PORT_FLAGS)


def test_a_server_dies_with_the_process_that_started_it(tmp_path):
    # What keeps a killed test run (a CI timeout, kill -9) from leaving servers behind.
    starter = (
        "import sys, time\n"
        "from smartstream_assets import local_stack\n"
        "server = local_stack.start_seaweedfs(sys.argv[1], 'k', 's')\n"
        "print(server.pid, flush=True)\n"
        "time.sleep(300)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", starter, str(tmp_path)], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        weed = psutil.Process(int(proc.stdout.readline()))
        assert weed.is_running() and "weed" in weed.name()
    finally:
        proc.kill()
        proc.wait()
    weed.wait(timeout=20)  # psutil.TimeoutExpired if it outlived its starter


def test_a_port_asked_for_that_is_taken_fails_the_start_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(local_stack.StackError, match=rf"in use on 127.0.0.1: {port} \(-s3.port\)"):
            local_stack.start_seaweedfs(tmp_path, "k", "s", s3_port=port)
        with pytest.raises(local_stack.StackError, match=rf"in use on 127.0.0.1: {port} \(--port\)"):
            local_stack.start_mlflow(tmp_path, port=port)


@pytest.fixture
def fake_weed(tmp_path, monkeypatch):
    """Replaces the `weed` executable by a shell script of ours; records launched pids."""
    script, pids = tmp_path / "fake-weed", []
    launch = local_stack._launch

    def spy(*args, **kwargs):
        fields = launch(*args, **kwargs)
        pids.append(fields["pid"])
        return fields

    def install(body: str):
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(0o755)
        monkeypatch.setattr(local_stack, "_executable", lambda name, package: str(script))
        monkeypatch.setattr(local_stack, "_launch", spy)
        return tmp_path / "run", pids

    return install


def test_a_server_that_exits_at_start_raises_with_the_tail_of_its_log(fake_weed):
    workdir, _ = fake_weed('echo "F1125 volume.go:42 disk on fire" >&2\nexit 2\n')
    with pytest.raises(local_stack.StackError) as info:
        local_stack.start_seaweedfs(workdir, "k", "s", timeout=10)
    message = str(info.value)
    assert "seaweedfs exited (code 2)" in message and "disk on fire" in message
    assert str(workdir / "seaweedfs.log") in message


def test_a_server_that_never_answers_is_stopped_and_the_error_says_so(fake_weed):
    workdir, pids = fake_weed('echo "still thinking"\nexec sleep 60\n')
    with pytest.raises(local_stack.StackError) as info:
        local_stack.start_seaweedfs(workdir, "k", "s", timeout=1)
    assert "did not come up within 1 s" in str(info.value) and "still thinking" in str(info.value)
    assert len(pids) == 1 and not psutil.pid_exists(pids[0])


def mlflow_api_status(url: str, auth: tuple[str, str] | None = None) -> int:
    """The HTTP status of an MLflow REST call (listing experiments), with or without basic auth."""
    import base64

    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_mlflow_server_with_basic_auth_refuses_strangers_and_stores_artifacts_in_the_bucket(tmp_path, s3_server, monkeypatch):
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    password = "admin-password-" + os.urandom(8).hex()
    server = local_stack.start_mlflow(tmp_path, s3=s3_server, auth=("admin", password))  # 6-15 s here, by load
    try:
        with urllib.request.urlopen(f"{server.tracking_uri}/health", timeout=5) as response:
            assert response.status == 200  # the health probe needs no login
        assert mlflow_api_status(server.url) == 401 and mlflow_api_status(server.url, ("admin", "not-the-password")) == 401
        assert mlflow_api_status(server.url, ("admin", password)) == 200
        # a client without MLflow's credential variables is refused ...
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
        with pytest.raises(MlflowException, match="401|nauthorized|credentials"):
            MlflowClient(tracking_uri=server.tracking_uri).search_experiments()
        # ... and one with them (client_env) logs a run whose artifact lands in the bucket
        for name, value in server.client_env().items():
            monkeypatch.setenv(name, value)
        client = MlflowClient(tracking_uri=server.tracking_uri)
        run_id = client.create_run(client.create_experiment("stack-test")).info.run_id
        client.log_text(run_id, "hello", "notes/hello.txt")
        assert any(key.endswith(f"{run_id}/artifacts/notes/hello.txt") for key in bucket_keys(s3_server, "mlflow/"))
        assert password not in (tmp_path / "mlflow.log").read_text() and password not in (tmp_path / "mlflow-auth.ini").read_text()
        assert stat.S_IMODE((tmp_path / "mlflow-auth.ini").stat().st_mode) == 0o600
    finally:
        assert server.stop()
    assert not psutil.pid_exists(server.pid)


def test_credentials_are_generated_once_and_private(tmp_path):
    first = local_stack.ensure_credentials(tmp_path)
    assert local_stack.ensure_credentials(tmp_path) == first
    assert stat.S_IMODE((tmp_path / "credentials.env").stat().st_mode) == 0o600
    assert first[0] != first[1] and len(first[1]) >= 40


def test_env_needs_a_stack_and_then_exports_the_standard_variables(tmp_path):
    with pytest.raises(local_stack.StackError, match="make stack"):
        local_stack.env_lines(tmp_path)
    access, secret = local_stack.ensure_credentials(tmp_path)
    (tmp_path / "stack.json").write_text(
        json.dumps({"seaweedfs": {"url": "http://127.0.0.1:1234"}, "mlflow": {"url": "http://127.0.0.1:5678"}})
    )
    assert local_stack.env_lines(tmp_path) == [
        "export SMARTSTREAM_LAKE=s3://smartstream/lake",
        "export AWS_ENDPOINT_URL_S3=http://127.0.0.1:1234",
        f"export AWS_ACCESS_KEY_ID={access}",
        f"export AWS_SECRET_ACCESS_KEY={secret}",
        "export AWS_REGION=us-east-1",
        "export MLFLOW_TRACKING_URI=http://127.0.0.1:5678",
    ]


def stack(*args, directory):
    proc = subprocess.run(
        [sys.executable, "-m", "smartstream_assets.local_stack", "--dir", str(directory), *args],
        cwd=PROJECT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


def test_stack_cli_up_env_down(tmp_path):
    directory = tmp_path / "stack"
    try:
        code, out, err = stack("up", directory=directory)
        assert code == 0, out + err
        assert "started seaweedfs" in out and "started mlflow" in out and "started postgres" in out and "started redis" in out and 'eval "$(' in out
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        for private in ("credentials.env", "s3.json"):
            assert stat.S_IMODE((directory / private).stat().st_mode) == 0o600
        _, secret = local_stack.ensure_credentials(directory)
        code, again, _ = stack("up", directory=directory)  # harmless when running
        assert code == 0 and all(f"{name} already running" in again for name in local_stack.SERVERS)

        code, exports, _ = stack("env", directory=directory)
        assert code == 0
        env = dict(line.removeprefix("export ").split("=", 1) for line in exports.splitlines())
        assert env["SMARTSTREAM_LAKE"] == "s3://smartstream/lake" and env["AWS_SECRET_ACCESS_KEY"] == secret
        with urllib.request.urlopen(f"{env['MLFLOW_TRACKING_URI']}/health", timeout=5) as response:
            assert response.status == 200
        # MLflow's basic-auth: strangers are refused, the exported credentials let in
        assert env["MLFLOW_TRACKING_USERNAME"] == "admin" and len(env["MLFLOW_TRACKING_PASSWORD"]) >= 12
        assert mlflow_api_status(env["MLFLOW_TRACKING_URI"]) == 401
        assert mlflow_api_status(env["MLFLOW_TRACKING_URI"], (env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])) == 200
        # Redis, the Celery broker: only with the password
        import redis

        assert redis.Redis.from_url(env["SMARTSTREAM_CELERY_BROKER"]).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=redis.Redis.from_url(env["SMARTSTREAM_CELERY_BROKER"]).connection_pool.connection_kwargs["port"]).ping()
        check = (
            "from smartstream_assets.lake import lake_from_url\n"
            "lake = lake_from_url()\n"
            "lake.write_bytes('raw/hello.txt', b'hi')\n"
            "print(lake.url, [o.key for o in lake.list('raw/')])\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", check], cwd=PROJECT, env={**os.environ, **env}, capture_output=True, text=True
        )
        assert proc.stdout.strip() == "s3://smartstream/lake/ ['raw/hello.txt']", proc.stderr
        # the production Dagster instance on the stack's PostgreSQL, the password from the 0600 file
        assert env["DAGSTER_HOME"] == str((directory / "dagster").resolve()) and env["DAGSTER_PG_PASSWORD"]
        assert env["DAGSTER_PG_PASSWORD"] not in (directory / "dagster" / "dagster.yaml").read_text()
        check = "import dagster as dg\nwith dg.DagsterInstance.get() as i:\n    print(type(i.run_storage).__name__, i.run_monitoring_enabled)\n"
        proc = subprocess.run([sys.executable, "-c", check], cwd=PROJECT, env={**os.environ, **env}, capture_output=True, text=True)
        assert proc.stdout.strip() == "PostgresRunStorage True", proc.stderr[-2000:]

        code, status, _ = stack("status", directory=directory)
        assert code == 0 and all(f"{name}: running" in status for name in local_stack.SERVERS)
        pids = [int((directory / f"{name}.pid").read_text()) for name in local_stack.SERVERS]
        # nothing of the stack listens beyond 127.0.0.1
        listening = []
        for pid in pids:
            for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
                listening += [(process.name(), c.laddr.ip, c.laddr.port) for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and all(ip == "127.0.0.1" for _, ip, _ in listening), listening
        assert {"postgres", "weed", "redis-server"} <= {name for name, _, _ in listening}
        code, stopped, _ = stack("down", directory=directory)
        assert code == 0 and all(f"stopped {name}" in stopped for name in local_stack.SERVERS)
        assert not any(psutil.pid_exists(pid) for pid in pids)
        for value in (secret, env["MLFLOW_TRACKING_PASSWORD"], env["DAGSTER_PG_PASSWORD"]):  # only `env` prints them
            assert value not in out + again + status + stopped
        code, status, _ = stack("status", directory=directory)
        assert code == 3 and "seaweedfs: not running" in status
    finally:
        stack("down", directory=directory)
        shutil.rmtree(local_stack.postgres_workdir(directory), ignore_errors=True)


def test_the_s3_variables_do_not_outlive_the_tests_that_set_them():
    # Runs after the tests above (file order): s3_env's monkeypatch has undone them.
    from .conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY

    assert os.environ.get("AWS_ACCESS_KEY_ID") != TEST_ACCESS_KEY
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != TEST_SECRET_KEY
