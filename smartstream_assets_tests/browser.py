"""The Dagster UI in a real browser for the tests: Debian's chromium driven by Playwright
(never a downloaded browser), ``dagster dev`` in its own process group, and the
screenshots kept as test artifacts.

    with DagsterDev(project_root, env, log_path) as dev:   # webserver + daemon
        with chromium_browser() as browser: ...

If /usr/bin/chromium is missing, ``ensure_chromium`` installs Debian's package when
running as root (and says so), else fails with what to install: the UI tests never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from smartstream_assets import local_stack

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
ARTIFACTS_ENV = "SMARTSTREAM_TEST_ARTIFACTS"


def ensure_chromium() -> Path:
    """/usr/bin/chromium, installed from Debian's archive first if missing and root."""
    import pytest

    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.fail(
            f"{CHROMIUM} is missing and this is not root: install Debian's chromium "
            "(sudo apt-get install -y --no-install-recommends chromium); the UI tests never download a browser"
        )
    print(f"{CHROMIUM} is missing: installing Debian's chromium (apt-get install -y --no-install-recommends chromium)", file=sys.stderr)
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:  # an image without package lists: fetch them once, then again
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(f"installing chromium failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return CHROMIUM


@contextmanager
def chromium_browser():
    """Headless chromium (the Debian binary) through Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(executable), headless=True, args=list(LAUNCH_ARGS))
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir(project_root: Path) -> Path:
    """Where the screenshots go: ``$SMARTSTREAM_TEST_ARTIFACTS/ui/``, else the project's
    ``.smartstream/test-artifacts/ui/`` (gitignored)."""
    base = os.environ.get(ARTIFACTS_ENV)
    folder = (Path(base) if base else project_root / ".smartstream" / "test-artifacts") / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, folder: Path, step: str) -> Path:
    """A full-page PNG of ``page`` named by the step."""
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', step)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class DagsterDev:
    """``dagster dev -h 127.0.0.1 -p PORT`` (webserver + daemon) in ``cwd`` (its
    workspace.yaml), in a process group of its own, output (stdout and stderr) into
    ``log_path``. Stopping ends the whole group: webserver, daemon, code servers, runs."""

    def __init__(self, dagster: Path, cwd: Path, env: dict, log_path: Path, port: int | None = None):
        self.dagster, self.cwd, self.env, self.log_path = Path(dagster), Path(cwd), env, Path(log_path)
        self.port = port or local_stack.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300.0) -> "DagsterDev":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [str(self.dagster), "dev", "-h", "127.0.0.1", "-p", str(self.port)],
            cwd=self.cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        try:
            self.wait_until_loaded(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def graphql(self, query: str, variables: dict | None = None, timeout: float = 30.0) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def wait_until_loaded(self, timeout: float) -> None:
        """Until the webserver answers and the workspace's code location is loaded (not
        an error); fails with dagster dev's output if it exits or the deadline passes."""
        query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"dagster dev exited with {self.process.returncode}:\n{self.output()[-4000:]}")
            try:
                entries = self.graphql(query, timeout=10)["workspaceOrError"]["locationEntries"]
            except (urllib.error.URLError, ConnectionError, OSError, KeyError, TypeError) as exc:
                last = repr(exc)
            else:
                last = repr(entries)
                errors = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
                if errors:
                    raise AssertionError(f"the code location failed to load: {errors}\n{self.output()[-4000:]}")
                if entries and all(e["loadStatus"] == "LOADED" and e["locationOrLoadError"] for e in entries):
                    return
            time.sleep(1)
        raise AssertionError(f"dagster dev not ready within {timeout:.0f}s ({last}):\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM to dagster dev itself, which stops its webserver, daemon and code servers
        in order (a signal to each of them at once leaves them hanging); then SIGKILL to
        whatever of the group is left (a run's worker, a process that did not stop)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and local_stack._group_alive(self.process.pid):
            time.sleep(0.2)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(10)
        self._log.close()

    def __enter__(self) -> "DagsterDev":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def venv_bin(name: str) -> Path:
    """An executable of the interpreter's own environment (the venv's ``dagster``)."""
    found = Path(sys.executable).parent / name
    return found if found.exists() else Path(shutil.which(name) or name)
