"""Dagster resources. Nothing secret lives here: S3 credentials, endpoint and region
come from boto3's standard chain (AWS_* variables, profiles, instance roles)."""

from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from .lake import Lake, lake_from_url


class LakeResource(dg.ConfigurableResource):
    """The lake: ``s3://bucket/prefix`` or a local folder."""

    url: str = Field(
        default="",
        description="s3://bucket/prefix or a local path; empty: $SMARTSTREAM_LAKE, else .smartstream/lake",
    )
    _lake: Lake | None = PrivateAttr(default=None)

    def get(self) -> Lake:
        if self._lake is None:
            self._lake = lake_from_url(self.url or None)
        return self._lake


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking and model registry. Empty fields fall back to MLflow's own
    variables (MLFLOW_TRACKING_URI, MLFLOW_REGISTRY_URI), then to the embedded default:
    a sqlite store under .smartstream/ with artifacts beside it."""

    tracking_uri: str = Field(default="", description="empty: $MLFLOW_TRACKING_URI, else sqlite under .smartstream/")
    registry_uri: str = Field(default="", description="empty: $MLFLOW_REGISTRY_URI, else the tracking URI")
    ui_url: str = Field(default="", description="base URL of the MLflow UI for links; empty: the server, or `mlflow ui`'s")

    def registry(self):
        from .ml.registry import Registry

        return Registry(self.tracking_uri, self.registry_uri, self.ui_url)


class AlertResource(dg.ConfigurableResource):
    """Where alerts go: always the run's log, plus a webhook and/or an SNS topic.

    Both settings are secrets or close to it (a Slack webhook URL is a credential).
    Leave them empty and set the variables: they are read when a run uses the resource,
    so their values never enter the resource config that the UI shows. To name another
    variable, pass ``dg.EnvVar("NAME")``: the UI then shows the variable's name only.
    Never pass a literal URL: Dagster displays literal config values.
    """

    webhook_url: str = Field(
        default="",
        description="Slack-compatible webhook; pass dg.EnvVar(...), never a literal. "
        "Empty: $SMARTSTREAM_ALERT_WEBHOOK, read at run time (not shown in the UI); unset: no webhook",
    )
    sns_topic_arn: str = Field(
        default="",
        description="SNS topic ARN. Empty: $SMARTSTREAM_ALERT_SNS_TOPIC, read at run time; unset: no SNS",
    )

    def alerter(self, log=None):
        """An ``Alerter`` on the log channel (``log``: e.g. ``context.log``) plus the
        configured webhook and SNS topic. Its ``send`` never raises."""
        import os

        from .ml.alerts import SNS_TOPIC_ENV, WEBHOOK_ENV, build_alerter

        return build_alerter(
            webhook_url=self.webhook_url or os.environ.get(WEBHOOK_ENV, ""),
            sns_topic_arn=self.sns_topic_arn or os.environ.get(SNS_TOPIC_ENV, ""),
            log=log,
        )


class PredictionsDbResource(dg.ConfigurableResource):
    """An optional SQL table next to the lake's predictions (PostgreSQL or SQLite).

    ``url`` is a SQLAlchemy URL with a password: leave it empty and set
    ``SMARTSTREAM_PREDICTIONS_DB`` (read at run time, never shown in the UI), or pass
    ``dg.EnvVar("NAME")``. Unset: ``enabled()`` is False and nothing is written.
    """

    url: str = Field(
        default="",
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db; pass dg.EnvVar(...), never a "
        "literal. Empty: $SMARTSTREAM_PREDICTIONS_DB, read at run time; unset: no table",
    )

    def enabled(self) -> bool:
        """True when a database is configured (here or in $SMARTSTREAM_PREDICTIONS_DB)."""
        return bool(self._url())

    def upsert(self, table: str, frame, key: list[str]) -> int:
        """``upsert_rows`` into ``table`` (see ``smartstream_assets.ml.sinks``); returns the
        rows written. Raises ``SinkError`` (password hidden) on failure or when disabled."""
        from .ml.sinks import SinkError, upsert_rows

        url = self._url()
        if not url:
            raise SinkError(f"no predictions database: set $SMARTSTREAM_PREDICTIONS_DB to write {table!r}")
        return upsert_rows(url, table, frame, key)

    def _url(self) -> str:
        from .ml.sinks import predictions_db_url

        return self.url.strip() or predictions_db_url()


class SourceDbResource(dg.ConfigurableResource):
    """An optional SQL table a domain reads its training set from instead of the lake
    (the reviews domain: ``labelled_reviews``). ``url`` is a SQLAlchemy URL: leave it
    empty and set the environment variable named by ``env`` (read at run time, never
    shown), or pass ``dg.EnvVar("NAME")``. Unset: ``enabled()`` is False."""

    url: str = Field(default="", description="SQLAlchemy URL; pass dg.EnvVar(...), never a literal. Empty: $<env>")
    env: str = Field(default="SMARTSTREAM_REVIEWS_DB", description="the variable holding the URL when url is empty")

    def enabled(self) -> bool:
        return bool(self._url())

    def describe(self, table: str) -> str:
        from .ml.sinks import safe_url

        return f"table {table} at {safe_url(self._url())}"

    def read(self, table: str, columns: list[str]):
        """The table's rows (``sinks.read_rows``); ``SinkError`` (password hidden) on failure."""
        from .ml.sinks import SinkError, read_rows

        url = self._url()
        if not url:
            raise SinkError(f"no source database: set ${self.env} to read {table!r}")
        return read_rows(url, table, columns)

    def _url(self) -> str:
        import os

        return self.url.strip() or os.environ.get(self.env, "").strip()
