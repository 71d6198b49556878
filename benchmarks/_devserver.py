"""What the benchmarks that drive `dagster dev` share: waiting for its webserver."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path


def wait_for_ui(port: int, timeout: float, proc, log: Path) -> None:
    """Until dagster dev's webserver answers /server_info; exits with its log's tail if it
    stops or the deadline passes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"dagster dev exited ({proc.returncode}):\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"dagster dev did not answer on port {port} within {timeout:.0f} s:\n" + log.read_text()[-3000:])
