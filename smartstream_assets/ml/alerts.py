"""Alerts: one message, several channels, chosen by the environment.

    alerter = alerter_from_env(log=context.log)
    deliveries = alerter.send(Alert("drift_detected", "employees: drift detected (share 0.60)",
                                    "8 of 12 columns drifted", {"domain": "employees", "share": 0.6}))

The log channel is always there; a webhook (Slack-compatible JSON) is added when
``SMARTSTREAM_ALERT_WEBHOOK`` holds a URL, an SNS topic when ``SMARTSTREAM_ALERT_SNS_TOPIC``
holds an ARN. Sending never raises: an alert must not fail the run that raised it. A
channel that fails is logged as a warning and reported in the returned ``Delivery``.

Webhook URLs are secrets (a Slack webhook's path IS the credential): channel names and
errors show the scheme and host only, and the path never appears in what is returned
or logged. SNS uses boto3's standard credential and endpoint chain; no key is read here.

urllib and boto3 are imported when a message is sent, not when the code location loads.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

WEBHOOK_ENV = "SMARTSTREAM_ALERT_WEBHOOK"
SNS_TOPIC_ENV = "SMARTSTREAM_ALERT_SNS_TOPIC"

# SNS: "Subjects must be ASCII text ... no line breaks or control characters, and
# less than 100 characters long" (Publish API reference).
SNS_SUBJECT_MAX = 100
# Answers after which the receiver did not take the message: worth a retry.
RETRY_STATUSES = (500, 502, 503, 504)

_logger = logging.getLogger(__name__)

# A logging.Logger, Dagster's context.log, or a plain callable such as context.log.info.
Log = Any


@dataclass(frozen=True)
class Alert:
    """One thing that happened, in the same shape for every channel."""

    # "drift_detected" | "promoted" | "held_for_approval" | "rejected" | monitors: "data_quality" |
    # "model_degraded" | "bias_drift"
    kind: str
    title: str  # one line, e.g. "employees: drift detected (share 0.60)"
    text: str = ""  # a few lines of detail
    fields: Mapping[str, Any] = field(default_factory=dict)  # small key -> scalar facts
    url: str | None = None  # a link (MLflow run, report), if any

    def as_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready values (numpy scalars and dates become plain values)."""
        return {
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "fields": {str(k): _plain(v) for k, v in self.fields.items()},
            "url": self.url,
        }


@dataclass(frozen=True)
class Delivery:
    """What became of an alert on one channel; ``error`` never holds a secret."""

    channel: str
    ok: bool
    error: str | None = None


class AlertDeliveryError(RuntimeError):
    """A channel could not deliver; the message is safe to log (no URL path, no key)."""


class Channel(Protocol):
    """Anything with a display-safe ``name`` and a ``send`` that raises on failure."""

    name: str

    def send(self, alert: Alert) -> None: ...


class Alerter:
    """Sends each alert to every channel; one failing channel does not stop the others."""

    def __init__(self, channels: Sequence[Channel], log: Log = None):
        self.channels = list(channels)
        self._info, self._warning = _log_functions(log)

    def send(self, alert: Alert) -> list[Delivery]:
        """Deliver ``alert`` on every channel. Never raises (an alert must not fail a run);
        a failure is logged as a warning and returned as ``Delivery(ok=False, error=...)``."""
        deliveries = []
        for channel in self.channels:
            try:
                channel.send(alert)
                deliveries.append(Delivery(channel.name, True))
            except Exception as exc:  # noqa: BLE001 - any failure of any channel is reported, not raised
                error = _safe_error(channel, exc)
                self._warning(f"alert {alert.kind!r} not delivered to {channel.name}: {error}")
                deliveries.append(Delivery(channel.name, False, error))
        return deliveries


def alerter_from_env(env: Mapping[str, str] | None = None, log: Log = None) -> Alerter:
    """The log channel, plus a webhook if ``SMARTSTREAM_ALERT_WEBHOOK`` is set and an SNS
    topic if ``SMARTSTREAM_ALERT_SNS_TOPIC`` is set (``env`` defaults to ``os.environ``)."""
    env = os.environ if env is None else env
    return build_alerter(
        webhook_url=env.get(WEBHOOK_ENV, ""),
        sns_topic_arn=env.get(SNS_TOPIC_ENV, ""),
        log=log,
    )


def build_alerter(*, webhook_url: str = "", sns_topic_arn: str = "", log: Log = None) -> Alerter:
    """The log channel, plus a webhook and an SNS topic for the settings that are not empty.

    A malformed setting does not raise here (settings must not fail a run): its channel
    reports the problem on every send instead, so it shows in the deliveries.
    """
    channels: list[Channel] = [LogChannel(log)]
    if webhook_url.strip():
        channels.append(WebhookChannel(webhook_url.strip()))
    if sns_topic_arn.strip():
        channels.append(SnsChannel(sns_topic_arn.strip()))
    return Alerter(channels, log)


# ------------------------------------------------------------------------ channels


class LogChannel:
    """Writes the alert to a logger (or ``context.log``, or any ``callable(str)``) at INFO."""

    name = "log"

    def __init__(self, log: Log = None):
        self._info, _ = _log_functions(log)

    def send(self, alert: Alert) -> None:
        lines = [f"[alert {alert.kind}] {alert.title}"]
        if alert.text:
            lines.append(alert.text)
        if alert.fields:
            lines.append(", ".join(f"{k}={_plain(v)}" for k, v in alert.fields.items()))
        if alert.url:
            lines.append(alert.url)
        self._info("\n".join(lines))


class WebhookChannel:
    """HTTP POST of Slack-compatible JSON: ``text`` (title and detail) and ``blocks`` for
    Slack, plus the whole alert under ``smartstream`` for any other receiver.

    A 2xx answer is a delivery; redirects are not followed (a redirected POST would
    arrive as an empty GET). A refused or failed connection and 500/502/503/504 answers
    are retried ``retries`` times after a short backoff; an answer that does not come
    within ``timeout`` is not (the receiver may have taken the message, and a duplicate
    alert is worse than a missing one that is logged as such).
    """

    def __init__(self, url: str, *, timeout: float = 10.0, retries: int = 2, backoff: float = 0.25):
        self._url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            self.name = f"webhook({parts.scheme}://{parts.netloc.rpartition('@')[2]})"
            self._problem = None
        else:
            self.name = "webhook(invalid URL)"
            self._problem = f"the webhook URL (${WEBHOOK_ENV} or the resource's webhook_url) is not an http(s) URL"

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name})"

    def send(self, alert: Alert) -> None:
        if self._problem:
            raise AlertDeliveryError(self._problem)
        body = json.dumps(slack_payload(alert), default=_plain).encode()
        for attempt in range(max(self.retries, 0) + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            failure = self._post(body)
            if failure is None:
                return
            retry, reason = failure
            if not retry:
                break
        raise AlertDeliveryError(self.redact(reason))

    def redact(self, text: str) -> str:
        """``text`` without the URL, its path, its query or any long part of them."""
        parts = urlsplit(self._url)
        secrets = {self._url, parts.path, parts.query, f"{parts.path}?{parts.query}"}
        secrets.update(piece for piece in re.split(r"[/?&=]", f"{parts.path}?{parts.query}") if len(piece) >= 6)
        if parts.password:
            secrets.add(parts.password)
        for secret in sorted((s for s in secrets if s and s not in ("/", "?")), key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return text

    def _post(self, body: bytes) -> tuple[bool, str] | None:
        """One POST: None if delivered, else (worth a retry, why not)."""
        # urllib from the standard library rather than requests/urllib3: urllib3 logs
        # the request path (this URL's secret) when it retries and at DEBUG level.
        import ssl
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            self._url,
            data=body,
            headers={"Content-Type": "application/json", "User-Agent": "smartstream-alerts"},
            method="POST",
        )
        opener = urllib.request.build_opener(_refuse_redirects_handler())  # proxies from the environment still apply
        try:
            with opener.open(request, timeout=self.timeout) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:  # any status but 2xx
            with exc:
                detail = " ".join(exc.read(2000).decode(errors="replace").split())[:200]
            return exc.code in RETRY_STATUSES, f"HTTP {exc.code} {exc.reason}: {detail}".rstrip(": ")
        except urllib.error.URLError as exc:  # connecting or sending failed: nothing was answered
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                return True, f"could not connect within {self.timeout:g} s"
            return not isinstance(reason, ssl.SSLError), f"connection failed: {reason}"
        except TimeoutError:  # sent, but no answer in time
            return False, f"no answer within {self.timeout:g} s"
        except OSError as exc:  # sent, then the connection broke (http.client.RemoteDisconnected, ...)
            return False, f"connection lost after sending: {type(exc).__name__}"


class SnsChannel:
    """``sns.publish`` to a topic: Subject = the title (ASCII, one line, at most 100 chars),
    Message = the alert as JSON. The client follows boto3's standard chain (credentials,
    ``AWS_ENDPOINT_URL_SNS``), in the topic's own region, and is built on first send."""

    def __init__(self, topic_arn: str, *, client=None, timeout: float = 10.0, retries: int = 3):
        self.topic_arn = topic_arn
        self.timeout = timeout
        self.retries = retries
        self._client = client
        parts = topic_arn.split(":")
        if len(parts) == 6 and parts[0] == "arn" and parts[2] == "sns" and parts[3] and parts[5]:
            self.region, topic = parts[3], parts[5]
            self.name = f"sns({self.region}/{topic})"
            self._problem = None
        else:
            self.region = None
            self.name = "sns(invalid topic ARN)"
            self._problem = f"the SNS topic (${SNS_TOPIC_ENV} or the resource's sns_topic_arn) is not an SNS topic ARN"

    def __repr__(self) -> str:
        return f"SnsChannel({self.name})"

    def send(self, alert: Alert) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if self._problem:
            raise AlertDeliveryError(self._problem)
        try:
            self._sns().publish(
                TopicArn=self.topic_arn,
                Subject=sns_subject(alert.title),
                Message=json.dumps(alert.as_dict(), default=_plain),
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise AlertDeliveryError(
                f"{error.get('Code', 'error')} (HTTP {status}): {error.get('Message', '')}"
            ) from None
        except BotoCoreError as exc:
            # botocore's messages name endpoints and missing settings, never key values.
            raise AlertDeliveryError(f"{type(exc).__name__}: {exc}") from None

    def _sns(self):
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.session.Session().client(
                "sns",
                # A topic is published to in its own region, whatever AWS_REGION says.
                region_name=self.region,
                config=Config(
                    retries={"max_attempts": self.retries, "mode": "standard"},
                    connect_timeout=self.timeout,
                    read_timeout=self.timeout,
                ),
            )
        return self._client


# ------------------------------------------------------------------------ formats


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The webhook body: Slack's ``text`` (also the notification fallback) and ``blocks``,
    and the alert itself under ``smartstream`` for receivers that are not Slack."""
    blocks: list[dict[str, Any]] = [
        # Slack caps a header at 150 characters and a section text at 3000.
        {"type": "header", "text": {"type": "plain_text", "text": alert.title[:150] or alert.kind}},
    ]
    if alert.text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(alert.text)[:3000]}})
    if alert.fields:
        facts = list(alert.fields.items())[:10]  # a section holds at most 10 fields
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{_slack_escape(str(k))}*\n{_slack_escape(str(_plain(v)))}"[:2000]}
                    for k, v in facts
                ],
            }
        )
    if alert.url:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{alert.url}|details>"}]})
    text = f"{alert.title}\n{alert.text}" if alert.text else alert.title
    return {"text": _slack_escape(text), "blocks": blocks, "smartstream": alert.as_dict()}


def sns_subject(title: str) -> str:
    """``title`` as SNS accepts a Subject: ASCII, no control characters, at most 100 chars."""
    one_line = re.sub(r"[\x00-\x1f\x7f]+", " ", title).strip()
    ascii_only = one_line.encode("ascii", "replace").decode("ascii")
    return ascii_only[:SNS_SUBJECT_MAX] or "smartstream alert"


# ------------------------------------------------------------------------ helpers


def _log_functions(log: Log) -> tuple[Callable[[str], None], Callable[[str], None]]:
    """(info, warning) of a logger-like object; a bare callable serves both."""
    if log is None:
        log = _logger
    if hasattr(log, "info") and hasattr(log, "warning"):
        return log.info, log.warning
    if callable(log):
        return log, log
    raise TypeError("log must be a logging.Logger, a Dagster context.log, or a callable taking a string")


def _safe_error(channel: Channel, exc: Exception) -> str:
    if isinstance(exc, AlertDeliveryError):
        return str(exc)
    # An unexpected failure: its message may quote whatever the channel holds.
    redact = getattr(channel, "redact", None)
    message = f"{type(exc).__name__}: {exc}"
    return redact(message) if callable(redact) else message


def _refuse_redirects_handler():
    import urllib.request

    class RefuseRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # the 3xx surfaces as an HTTPError, i.e. a failed delivery

    return RefuseRedirects()


def _slack_escape(text: str) -> str:
    # Slack reads <...> as links and mentions; its docs ask for these three escapes.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy scalars unwrapped, dates in ISO format, others as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (dt.date, dt.datetime)):  # pandas Timestamps included
        return value.isoformat()
    if getattr(getattr(value, "dtype", None), "kind", "") in ("M", "m"):
        return str(value)  # numpy datetime64 / timedelta64: .item() may give nanoseconds as an int
    if hasattr(value, "item") and callable(value.item):
        try:
            return _plain(value.item())
        except (TypeError, ValueError):
            pass
    return str(value)
