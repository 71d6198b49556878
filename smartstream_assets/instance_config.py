"""The production Dagster instance: ``dagster.yaml`` on PostgreSQL, a run queue with limits,
run monitoring.

    python -m smartstream_assets.instance_config --dir DAGSTER_HOME --host 127.0.0.1 --port 5432 \\
        --user smartstream --db dagster        # then: export DAGSTER_HOME=... DAGSTER_PG_PASSWORD=...

What it writes (``production_instance_yaml``), against the embedded default's sqlite:

- run, event-log and schedule storage in PostgreSQL (``dagster-postgres``); the password
  is read from ``$DAGSTER_PG_PASSWORD`` when the instance loads, never written in the file;
- the queued run coordinator, dequeuing every second, at most ``max_concurrent_runs``
  runs at once;
- pools at limit 1 (op granularity): the runs that update one ``current/<table>`` (pool
  ``smartstream_current_<table>``) and the runs scoring vitals micro-batches take turns;
- run monitoring: a run stuck starting or cancelling is failed after the timeouts. A run
  whose worker died (``kill -9``) is marked failed by the code server that launched it
  (the default run launcher has no worker health check); the pool slot its step held is
  freed ``free_slots_seconds`` after that (else ``current/<table>`` stays locked for
  good); the raw sensors request the failed dates again on their next tick
  (``sensors.failed_dates``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PASSWORD_ENV = "DAGSTER_PG_PASSWORD"


def production_instance_yaml(*, host: str, port: int, user: str, db: str, max_concurrent_runs: int = 4,
                             monitoring_poll_seconds: int = 30, free_slots_seconds: int = 60) -> str:  # fmt: skip
    if max_concurrent_runs < 1:
        raise ValueError(f"max_concurrent_runs must be >= 1 (got {max_concurrent_runs})")
    return f"""# The production instance of smartstream (written by smartstream_assets.instance_config).
# The password comes from ${PASSWORD_ENV} when the instance loads.
storage:
  postgres:
    postgres_db:
      username: {user}
      password:
        env: {PASSWORD_ENV}
      hostname: {host}
      port: {port}
      db_name: {db}
      # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, whose server-side binding
      # breaks dagster-postgres' "NOTIFY run_events, %(id)s": the driver it was written for
      scheme: postgresql+psycopg2
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
concurrency:
  runs:
    max_concurrent_runs: {max_concurrent_runs}
  pools:
    default_limit: 1
    granularity: op
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
  poll_interval_seconds: {monitoring_poll_seconds}
  # a step killed with its run never frees its pool slot: free it this long after the run ended
  free_slots_after_run_end_seconds: {free_slots_seconds}
telemetry:
  enabled: false
nux:
  enabled: false
"""


def write_instance(home: Path | str, **settings) -> Path:
    """``home/dagster.yaml`` (``production_instance_yaml(**settings)``); the folder is created."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    path.write_text(production_instance_yaml(**settings))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartstream_assets.instance_config", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, type=Path, help="the DAGSTER_HOME to write dagster.yaml into")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", required=True)
    parser.add_argument("--db", default="dagster")
    parser.add_argument("--max-concurrent-runs", type=int, default=4)
    args = parser.parse_args(argv)
    path = write_instance(args.dir, host=args.host, port=args.port, user=args.user, db=args.db, max_concurrent_runs=args.max_concurrent_runs)
    print(f"wrote {path}; export DAGSTER_HOME={args.dir} and {PASSWORD_ENV}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
