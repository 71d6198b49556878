"""Celery workers that execute the steps of runs using the ``celery`` executor
(``executor.py``), and ``make workers``, which starts two of them on this machine.

    eval "$(python -m smartstream_assets.local_stack env)"   # broker, lake, MLflow, instance
    python -m smartstream_assets.celery_worker --workers 2   # make workers; Ctrl-C stops them

This module is also the Celery app the workers load (``celery -A
smartstream_assets.celery_worker worker``): dagster-celery's task bound to a broker taken
from $SMARTSTREAM_CELERY_BROKER. dagster-celery's own ``dagster-celery worker start``
would write the broker URL, password included, into a file under $DAGSTER_HOME; this
app reads it from the environment instead.

A worker executes a step in the code location it imports (this package: the worker's
image or virtualenv must be the code location's), against the run's instance (the task
carries its reference: PostgreSQL with $DAGSTER_PG_PASSWORD), with the lake and MLflow of
its environment. Each worker takes one step at a time (``--concurrency 1``, prefetch 1):
steps are long and memory-heavy, so a busy worker should not hoard queued ones.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from .executor import BACKEND_ENV, BROKER_ENV, CELERY_QUEUE

APP_MODULE = "smartstream_assets.celery_worker"  # not __name__: that is __main__ under -m
app = make_app(
    CeleryExecutor.for_cli(
        broker=os.environ.get(BROKER_ENV) or None,
        backend=os.environ.get(BACKEND_ENV) or os.environ.get(BROKER_ENV) or None,
    ).app_args()
)
execute_plan = create_task(app)


def worker_command(name: str, *, loglevel: str = "INFO") -> list[str]:
    """The command line of one worker called ``name@<host>``."""
    celery = os.path.join(os.path.dirname(sys.executable), "celery")
    return [
        celery if os.path.exists(celery) else "celery",
        "-A", APP_MODULE, "worker",
        "-n", f"{name}@{socket.gethostname()}",
        "-Q", CELERY_QUEUE,
        "--concurrency", "1", "--prefetch-multiplier", "1",
        "--without-gossip", "--without-mingle",  # two workers on one host: no chatter
        "--loglevel", loglevel,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartstream_assets.celery_worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="how many workers to start (default 2)")
    parser.add_argument("--name", default="smartstream", help="workers are called <name>-<i>@<host>")
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    if not os.environ.get(BROKER_ENV, "").strip():
        print(f"error: {BROKER_ENV} is not set; with the local stack: eval \"$(python -m smartstream_assets.local_stack env)\"", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    workers = [
        subprocess.Popen(worker_command(f"{args.name}-{i}", loglevel=args.loglevel), start_new_session=True)
        for i in range(1, args.workers + 1)
    ]
    stopping = False

    def stop(signum, frame):  # noqa: ARG001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(f"started {len(workers)} Celery workers (pids {', '.join(str(w.pid) for w in workers)}) on queue {CELERY_QUEUE!r}; Ctrl-C stops them", flush=True)
    while not stopping and all(w.poll() is None for w in workers):
        time.sleep(0.5)
    # SIGTERM: Celery's warm shutdown, the step in hand finishes first
    for w in workers:
        if w.poll() is None:
            os.killpg(w.pid, signal.SIGTERM)
    codes = [w.wait() for w in workers]
    return 0 if stopping else max(c for c in codes if c is not None) or 1


if __name__ == "__main__":
    sys.exit(main())
