"""A real PostgreSQL server from the machine's server binaries (Debian's postgresql-15 puts
them in /usr/lib/postgresql/15/bin), on 127.0.0.1 with a password: the test suite's
throwaway server (``smartstream_assets_tests/postgres.py``) and the local stack's
persistent one (``local_stack up``: the production Dagster instance's database).

initdb and postgres refuse to run as root. When run as root, both run as the
unprivileged ``postgres`` account (else ``nobody``): the child drops its groups and
switches user between fork and exec, in a folder that account owns (a throwaway cluster
under /tmp; the stack's under /var/tmp, since the stack folder is private to its owner).
"""

from __future__ import annotations

import ctypes
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

HOST = "127.0.0.1"
USER = "smartstream_test"
DATABASE = "postgres"
SEARCH_GLOB = "/usr/lib/postgresql/*/bin"


class PostgresError(RuntimeError):
    """The server could not be found, started or stopped."""


@dataclass
class PostgresServer:
    """A running PostgreSQL: ``url`` is a SQLAlchemy URL (psycopg 3) with the password."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    workdir: Path
    process: subprocess.Popen = field(repr=False)
    started_in: float = 0.0  # seconds from start_postgres() to the first connection

    @property
    def url(self) -> str:
        return self.url_with_password(self.password)

    def url_with_password(self, password: str) -> str:
        return f"postgresql+psycopg://{self.user}:{quote_plus(password)}@{self.host}:{self.port}/{DATABASE}"

    def connect(self):
        """A psycopg connection (autocommit) as the superuser."""
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=DATABASE, autocommit=True
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL to the group after ``timeout``; remove the folder."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, checkpoint
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _kill_group(self.process.pid)
                    self.process.wait(5)
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.workdir / "postgres.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def start_postgres(timeout: float = 30.0, *, workdir: Path | None = None, password: str | None = None,
                   port: int | None = None, detach: bool = False, user: str = USER) -> PostgresServer:  # fmt: skip
    """Start ``postgres`` on a cluster in ``workdir`` (initdb'd first if it has none; None:
    a new throwaway folder, no fsync), return once a password login works. ``detach``: the
    server outlives this process (else it gets SIGINT when it dies). Raises PostgresError
    with the server's log if it does not come up."""
    started = time.monotonic()
    bindir = find_postgres_bin()
    account = _unprivileged_account()
    throwaway = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="smartstream-pg-")) if throwaway else Path(workdir)
    try:
        if throwaway or not (workdir / "data" / "PG_VERSION").exists():
            workdir.mkdir(parents=True, exist_ok=True)
            workdir.chmod(0o700)
            password = password or secrets.token_hex(16)
            _init_cluster(bindir, workdir, account, password, fast=throwaway, user=user)
        elif not password:
            raise PostgresError(f"{workdir} holds a cluster: its password is needed to use it")
        for attempt in range(3):  # a free port can be taken between picking and binding
            chosen = port or _free_port()
            process = _launch(bindir, workdir, account, chosen, fast=throwaway, detach=detach)
            server = PostgresServer(HOST, chosen, user, password, workdir, process)
            try:
                _wait_ready(server, timeout)
                server.started_in = time.monotonic() - started
                return server
            except PostgresError:
                _stop_process(process)
                if "could not bind" not in server.log_tail() or attempt == 2 or port:
                    raise
    except BaseException:
        if throwaway:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def find_postgres_bin() -> Path:
    """The folder with ``initdb`` and ``postgres``: the newest /usr/lib/postgresql/*/bin,
    else wherever ``initdb`` is on PATH."""
    candidates = sorted(glob.glob(SEARCH_GLOB), key=lambda p: _version(Path(p).parent.name), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for folder in map(Path, candidates):
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "postgres")):
            return folder
    raise PostgresError(
        f"PostgreSQL server binaries (initdb, postgres) not found in {SEARCH_GLOB} nor on PATH: "
        "install the PostgreSQL server (Debian: apt-get install postgresql-15)"
    )


# ------------------------------------------------------------------------ helpers


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int


def _unprivileged_account() -> _Account | None:
    """Who runs the server: None (ourselves) unless we are root, which initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return _Account(entry.pw_uid, entry.pw_gid)
    raise PostgresError("running as root, and neither a `postgres` nor a `nobody` account exists to run PostgreSQL")


def _init_cluster(bindir: Path, workdir: Path, account: _Account | None, password: str, *, fast: bool = True, user: str = USER) -> None:
    pwfile = workdir / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if account:
        for path in (workdir, pwfile):
            os.chown(path, account.uid, account.gid)
    cmd = [
        str(bindir / "initdb"),
        "-D", str(workdir / "data"),
        "-U", user,
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",  # every login, local or TCP, needs the password
        "--no-locale", "--encoding=UTF8",
        *(["--no-sync"] if fast else []),  # a throwaway cluster: no fsync, ~1 s instead of several
    ]  # fmt: skip
    result = subprocess.run(
        cmd,
        cwd=workdir,
        capture_output=True,
        text=True,
        env=_server_env(),
        preexec_fn=_child_setup(account, die_with_parent=False),
    )
    pwfile.unlink()
    if result.returncode != 0:
        raise PostgresError(f"initdb failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


def _launch(bindir: Path, workdir: Path, account: _Account | None, port: int, *, fast: bool = True, detach: bool = False) -> subprocess.Popen:
    log = open(workdir / "postgres.log", "ab")
    if account:
        os.chown(workdir / "postgres.log", account.uid, account.gid)
    cmd = [
        str(bindir / "postgres"),
        "-D", str(workdir / "data"),
        "-p", str(port),
        "-c", f"listen_addresses={HOST}",
        "-c", "unix_socket_directories=",  # TCP only: no socket file in a shared folder
        # Durability is worthless for a test cluster; speed is not.
        *(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] if fast else []),
    ]  # fmt: skip
    with log:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: no terminal signals, killable as a group
            preexec_fn=_child_setup(account, die_with_parent=not detach),
        )


def _wait_ready(server: PostgresServer, timeout: float) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise PostgresError(f"postgres exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with psycopg.connect(
                host=server.host, port=server.port, user=server.user, password=server.password,
                dbname=DATABASE, connect_timeout=2,
            ):  # fmt: skip
                return
        except psycopg.OperationalError as exc:
            last = str(exc)
            time.sleep(0.1)
    raise PostgresError(f"postgres did not accept a login within {timeout:g} s ({last}):\n{server.log_tail()}")


def _child_setup(account: _Account | None, *, die_with_parent: bool):
    """What the child does between fork and exec, in libc calls only: become ``account``
    (if any), THEN ask for SIGINT when the test process dies (Linux clears that request
    on a change of user, so subprocess's own ``user=``, applied after preexec_fn, would
    undo it). A killed test run so leaves no server behind."""
    linux = sys.platform.startswith("linux")
    if account is None and not (die_with_parent and linux):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # looked up before the fork

    def setup() -> None:
        if account is not None:
            # Groups first: once the user is switched there is no right to change them.
            for call, args in (
                (libc.setgroups, (0, None)),
                (libc.setgid, (account.gid,)),
                (libc.setuid, (account.uid,)),
            ):
                if call(*args) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"{call.__name__} failed: {os.strerror(errno)}")
        if die_with_parent and linux:
            libc.prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG

    return setup


def _server_env() -> dict[str, str]:
    # Only what the server needs: the caller's PG* variables must not steer initdb.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait(5)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())
