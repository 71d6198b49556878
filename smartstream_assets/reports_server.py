"""Serve the local lake's ``reports/`` folder so report links open in a browser.

`make ui` runs it next to `dagster dev`: the drift report's metadata links
``LocalLake.browser_url(key)``, i.e. $SMARTSTREAM_REPORTS_URL (default
http://127.0.0.1:3001/) plus the key's path inside ``reports/``. On an S3 lake the
links are presigned URLs instead, and this exits at once.

The standard library's ``http.server`` is enough here, though its docs call it unfit
for production, because what it does is small and bounded:

- it listens on 127.0.0.1 only, whatever host the URL names, so nothing off this
  machine can reach it (anyone with a shell on this machine can, as they can reach
  ``dagster dev`` on port 3000);
- it serves static files read-only: ``SimpleHTTPRequestHandler`` answers GET and HEAD
  (anything else is 501), and maps a request path under ``directory`` after dropping
  ``.`` / ``..`` segments, so the rest of the lake (raw HR data, models) is never
  served, only the reports zone, which holds rendered reports and charts.

It needs no TLS, authentication or performance: one person opens a report now and then.
"""

from __future__ import annotations

import functools
import signal
import sys
import urllib.parse
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from smartstream_assets.lake import REPORTS_URL_ENV, REPORTS_ZONE, LocalLake, lake_from_url, reports_base_url

HOST = "127.0.0.1"


def reports_port(base_url: str | None = None) -> int:
    """The port of $SMARTSTREAM_REPORTS_URL (3001 by default; the scheme's if none)."""
    parts = urllib.parse.urlsplit(base_url or reports_base_url())
    return parts.port or (443 if parts.scheme == "https" else 80)


def make_server(directory: Path | str, port: int, host: str = HOST) -> ThreadingHTTPServer:
    """A server of ``directory``'s files on ``host:port`` (call ``serve_forever``)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(directory))
    return ThreadingHTTPServer((host, port), handler)


def _stop(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    lake = lake_from_url()
    if not isinstance(lake, LocalLake):
        print(f"reports server: the lake is {lake.url}; report links are presigned S3 URLs, nothing to serve")
        return 0
    base = reports_base_url()
    port = reports_port(base)
    directory = lake.root / REPORTS_ZONE.rstrip("/")
    try:
        server = make_server(directory, port)
    except OSError as exc:
        print(
            f"reports server: cannot listen on {HOST}:{port} ({exc.strerror or exc}); "
            f"set {REPORTS_URL_ENV} to a free port, e.g. http://{HOST}:3002/",
            file=sys.stderr,
        )
        return 1
    note = "" if directory.is_dir() else " (empty until the first report is written)"
    print(f"reports server: {directory}{note} on http://{HOST}:{port}/, linked as {base}", flush=True)
    # stop on SIGTERM too (make ui's trap, a test's terminate()), even when the process was
    # started with SIGTERM ignored or blocked (a launcher can pass either down through exec)
    signal.signal(signal.SIGTERM, _stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
