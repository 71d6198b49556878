"""Where a run's steps execute: in subprocesses of the run (Dagster's default), or on
Celery workers (``dagster-celery``) with a real broker, so steps of many runs spread over
machines (``make workers`` starts two on this one).

    SMARTSTREAM_EXECUTOR=celery            # default: multiprocess
    SMARTSTREAM_CELERY_BROKER=redis://:<password>@host:6379/0
    SMARTSTREAM_CELERY_BACKEND=redis://:<password>@host:6379/1   # default: the broker

``local_stack env`` exports both URLs for the stack's Redis. The executor's config names
the variables, never their values: the broker password is in no run config, event or log
of Dagster. Jobs that choose their executor themselves (the vitals stream runs in
process: one step, latency first) keep it.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "SMARTSTREAM_EXECUTOR"
BROKER_ENV = "SMARTSTREAM_CELERY_BROKER"
BACKEND_ENV = "SMARTSTREAM_CELERY_BACKEND"
CELERY_QUEUE = "dagster"  # dagster-celery's default queue; the workers listen on it


class ExecutorConfigError(ValueError):
    """SMARTSTREAM_EXECUTOR asks for something this code location cannot give."""


def executor_from_env(environ: dict[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The code location's default executor: None (Dagster's multiprocess executor)
    unless $SMARTSTREAM_EXECUTOR says ``celery``."""
    environ = os.environ if environ is None else environ
    kind = environ.get(EXECUTOR_ENV, "").strip().lower()
    if kind in ("", "multiprocess"):
        return None
    if kind != "celery":
        raise ExecutorConfigError(f"{EXECUTOR_ENV}={kind!r}: expected 'multiprocess' (the default) or 'celery'")
    if not environ.get(BROKER_ENV, "").strip():
        raise ExecutorConfigError(
            f"{EXECUTOR_ENV}=celery needs {BROKER_ENV} (e.g. redis://:<password>@127.0.0.1:6379/0; "
            "`python -m smartstream_assets.local_stack env` exports the stack's)"
        )
    from dagster_celery import celery_executor

    backend = BACKEND_ENV if environ.get(BACKEND_ENV, "").strip() else BROKER_ENV
    return celery_executor.configured(
        {"broker": {"env": BROKER_ENV}, "backend": {"env": backend}}, name="celery"
    )
