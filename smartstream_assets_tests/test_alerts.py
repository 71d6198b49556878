"""Alerts over real HTTP: a receiver on 127.0.0.1 (http.server in a thread) stands in
for Slack and for SNS (it answers Publish the way SNS's query API does), so every
request is really built, sent and parsed by requests / boto3."""

import json
import logging

import dagster as dg
import numpy as np
import pytest
from dagster import serialize_value
# Private on purpose: RepositorySnap is exactly what the webserver/UI receives; no public API exposes it.
from dagster._core.remote_representation.external_data import RepositorySnap

from smartstream_assets.ml.alerts import (
    SNS_TOPIC_ENV,
    WEBHOOK_ENV,
    Alert,
    Alerter,
    Delivery,
    LogChannel,
    SnsChannel,
    WebhookChannel,
    alerter_from_env,
)
from smartstream_assets.resources import AlertResource

from .helpers import SECRET_PATH, Receiver, dead_port, http_receiver

# A Slack webhook's path is its credential: none of it may show in errors or logs.
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:smartstream-alerts"
ACCESS_KEY = "AKIASMARTSTREAMTEST1"
SECRET_KEY = "sns-test-secret-key-do-not-print-3f9a"

ALERT = Alert(
    kind="drift_detected",
    title="employees: drift detected (share 0.60)",
    text="6 of 10 columns drifted\nretraining requested",
    fields={"domain": "employees", "model_version": np.int64(7), "drift_share": np.float64(0.6)},
    url="http://127.0.0.1:5000/#/experiments/1/runs/abc",
)


# ------------------------------------------------------------------ the receiver


def assert_no_secret(text: str | None) -> None:
    assert text is not None
    for piece in (SECRET_PATH, "xoxbSecretWebhookToken42", "T0SMART01", "B0STREAM2", SECRET_KEY):
        assert piece not in text, f"{piece!r} leaked into {text!r}"


# --------------------------------------------------------------------- webhook


def test_webhook_delivers_slack_compatible_json(caplog):
    caplog.set_level(logging.INFO)
    with http_receiver() as receiver:
        alerter = Alerter([LogChannel(logging.getLogger("alerts-test")), WebhookChannel(receiver.url())])
        deliveries = alerter.send(ALERT)

    assert deliveries == [Delivery("log", True), Delivery(f"webhook(http://127.0.0.1:{receiver.port})", True)]
    [request] = receiver.requests
    assert request.path == SECRET_PATH
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["text"] == "employees: drift detected (share 0.60)\n6 of 10 columns drifted\nretraining requested"
    assert body["smartstream"] == {
        "kind": "drift_detected",
        "title": "employees: drift detected (share 0.60)",
        "text": "6 of 10 columns drifted\nretraining requested",
        "fields": {"domain": "employees", "model_version": 7, "drift_share": 0.6},
        "url": "http://127.0.0.1:5000/#/experiments/1/runs/abc",
    }
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": ALERT.title}}
    facts = [f["text"] for b in body["blocks"] if "fields" in b for f in b["fields"]]
    assert facts == ["*domain*\nemployees", "*model_version*\n7", "*drift_share*\n0.6"]
    assert "<http://127.0.0.1:5000/#/experiments/1/runs/abc|details>" in json.dumps(body["blocks"])
    # the log channel wrote the alert too
    logged = [r.getMessage() for r in caplog.records if r.name == "alerts-test"]
    assert len(logged) == 1 and "[alert drift_detected] employees: drift detected" in logged[0]
    assert "drift_share=0.6" in logged[0]


def test_webhook_escapes_slack_markup_but_keeps_the_raw_alert():
    alert = Alert("rejected", "co2: candidate <v3> rejected & kept v2", "rmse 1.2 > 1.0")
    with http_receiver() as receiver:
        [delivery] = Alerter([WebhookChannel(receiver.url())]).send(alert)
    assert delivery.ok
    body = receiver.requests[0].json()
    assert body["text"] == "co2: candidate &lt;v3&gt; rejected &amp; kept v2\nrmse 1.2 &gt; 1.0"
    assert body["smartstream"]["title"] == "co2: candidate <v3> rejected & kept v2"


def test_webhook_retries_after_a_server_error():
    with http_receiver(script=[(500, "boom")]) as receiver:
        [delivery] = Alerter([WebhookChannel(receiver.url())]).send(ALERT)
    assert delivery.ok and delivery.error is None
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body


def test_webhook_gives_up_after_its_retries_and_reports_the_last_status():
    with http_receiver(default=(503, "unavailable")) as receiver:
        [delivery] = Alerter([WebhookChannel(receiver.url(), retries=2)]).send(ALERT)
    assert not delivery.ok
    assert delivery.error.startswith("HTTP 503")
    assert len(receiver.requests) == 3  # the first try and two retries, no more


def test_webhook_404_is_reported_not_raised_and_hides_the_url(caplog):
    caplog.set_level(logging.INFO)
    log = logging.getLogger("alerts-test")
    # The failing receiver echoes the request path, as some proxies do.
    with http_receiver(default=(404, "no_service for {path}")) as failing, http_receiver() as working:
        alerter = Alerter([LogChannel(log), WebhookChannel(failing.url()), WebhookChannel(working.url())], log)
        deliveries = alerter.send(ALERT)

    assert [d.ok for d in deliveries] == [True, False, True]  # one failure stops nobody
    failed = deliveries[1]
    assert failed.channel == f"webhook(http://127.0.0.1:{failing.port})"
    assert failed.error.startswith("HTTP 404")
    assert "no_service for <redacted>" in failed.error
    assert_no_secret(failed.error)
    assert len(failing.requests) == 1  # a 4xx is not retried
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"not delivered to webhook(http://127.0.0.1:{failing.port})" in warnings[0] and "HTTP 404" in warnings[0]
    for record in caplog.records:
        assert_no_secret(record.getMessage())


def test_webhook_to_a_dead_port_fails_fast_and_is_reported(caplog):
    port = dead_port()
    [delivery] = Alerter([WebhookChannel(f"http://127.0.0.1:{port}{SECRET_PATH}")]).send(ALERT)
    assert not delivery.ok
    assert delivery.error.startswith("connection failed") and "Connection refused" in delivery.error
    assert_no_secret(delivery.error)
    for record in caplog.records:
        assert_no_secret(record.getMessage())


def test_webhook_that_never_answers_times_out_without_a_duplicate():
    with http_receiver(delay=3.0) as receiver:
        [delivery] = Alerter([WebhookChannel(receiver.url(), timeout=0.5)]).send(ALERT)
    assert not delivery.ok
    assert delivery.error == "no answer within 0.5 s"  # the client's timeout fired, not the 3 s answer
    assert len(receiver.requests) == 1  # a read timeout is not retried: the message may have arrived


def test_webhook_redirect_is_not_followed_but_reported():
    # Followed, a 302 would turn the POST into an empty GET that "succeeds".
    with http_receiver(default=(302, "moved")) as receiver:
        [delivery] = Alerter([WebhookChannel(receiver.url())]).send(ALERT)
    assert not delivery.ok and delivery.error.startswith("HTTP 302")
    assert len(receiver.requests) == 1


def test_a_channel_that_raises_anything_becomes_a_failed_delivery(caplog):
    class Broken:
        name = "broken"

        def send(self, alert):
            raise KeyError("nope")

    deliveries = Alerter([Broken(), LogChannel(lambda message: None)]).send(ALERT)
    assert deliveries == [Delivery("broken", False, "KeyError: 'nope'"), Delivery("log", True)]


# ---------------------------------------------------------------- configuration


def test_alerter_from_env_builds_the_configured_channels():
    assert [c.name for c in alerter_from_env({}).channels] == ["log"]
    assert [c.name for c in alerter_from_env({WEBHOOK_ENV: "  ", SNS_TOPIC_ENV: ""}).channels] == ["log"]

    both = alerter_from_env({WEBHOOK_ENV: f"https://hooks.slack.com{SECRET_PATH}", SNS_TOPIC_ENV: TOPIC_ARN})
    assert [c.name for c in both.channels] == [
        "log",
        "webhook(https://hooks.slack.com)",
        "sns(eu-west-1/smartstream-alerts)",
    ]
    assert [type(c) for c in both.channels] == [LogChannel, WebhookChannel, SnsChannel]
    assert_no_secret(repr(both.channels))


def test_malformed_settings_fail_each_send_without_raising_or_echoing_the_value():
    alerter = alerter_from_env({WEBHOOK_ENV: "hooks.slack.com" + SECRET_PATH, SNS_TOPIC_ENV: "smartstream-alerts"})
    deliveries = alerter.send(ALERT)
    assert [(d.channel, d.ok) for d in deliveries] == [
        ("log", True),
        ("webhook(invalid URL)", False),
        ("sns(invalid topic ARN)", False),
    ]
    assert WEBHOOK_ENV in deliveries[1].error and SNS_TOPIC_ENV in deliveries[2].error
    assert_no_secret(deliveries[1].error)


def test_log_channel_takes_a_plain_callable():
    lines: list[str] = []
    Alerter([LogChannel(lines.append)]).send(ALERT)
    assert lines == [
        "[alert drift_detected] employees: drift detected (share 0.60)\n"
        "6 of 10 columns drifted\nretraining requested\n"
        "domain=employees, model_version=7, drift_share=0.6\n"
        "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    ]


# ------------------------------------------------------------------------- SNS

PUBLISH_OK = """<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult><MessageId>94f20ce6-13c5-43a0-9a9e-ca52d816e90b</MessageId></PublishResult>
  <ResponseMetadata><RequestId>f187a3c1-376f-11df-8963-01868b7c937a</RequestId></ResponseMetadata>
</PublishResponse>"""

PUBLISH_DENIED = """<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error><Type>Sender</Type><Code>AuthorizationError</Code>
    <Message>User is not authorized to perform: SNS:Publish on resource: smartstream-alerts</Message></Error>
  <RequestId>9b2b3c4d-0000-4000-8000-000000000000</RequestId>
</ErrorResponse>"""


@pytest.fixture
def sns_env(monkeypatch, tmp_path):
    """boto3's standard chain points at a local receiver (set per test) with test keys."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # the topic's region must win

    def point_at(receiver: Receiver) -> None:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{receiver.port}")

    return point_at


def test_sns_channel_publishes_subject_and_json_message_over_http(sns_env):
    long_title = "employees: candidate v8 held for approval \u2014 " + "x" * 120 + "\nsecond line"
    alert = Alert("held_for_approval", long_title, "auc 0.91 vs 0.89", {"domain": "employees", "version": 8})
    with http_receiver(default=(200, PUBLISH_OK), content_type="text/xml") as receiver:
        sns_env(receiver)
        deliveries = alerter_from_env({SNS_TOPIC_ENV: TOPIC_ARN}, log=lambda m: None).send(alert)

    assert deliveries == [Delivery("log", True), Delivery("sns(eu-west-1/smartstream-alerts)", True)]
    [request] = receiver.requests
    form = request.form()
    assert form["Action"] == "Publish"
    assert form["TopicArn"] == TOPIC_ARN
    subject = form["Subject"]
    assert len(subject) == 100 and subject.isascii() and "\n" not in subject
    assert subject.startswith("employees: candidate v8 held for approval ? xxx")
    assert json.loads(form["Message"]) == {
        "kind": "held_for_approval",
        "title": long_title,
        "text": "auc 0.91 vs 0.89",
        "fields": {"domain": "employees", "version": 8},
        "url": None,
    }
    # signed with the standard chain's key, for the topic's region (not AWS_REGION's)
    authorization = request.headers["Authorization"]
    assert f"Credential={ACCESS_KEY}/" in authorization and "/eu-west-1/sns/aws4_request" in authorization
    assert SECRET_KEY not in json.dumps(request.headers)


def test_sns_refusal_is_reported_with_its_code_and_no_credentials(sns_env, caplog):
    with http_receiver(default=(403, PUBLISH_DENIED), content_type="text/xml") as receiver:
        sns_env(receiver)
        [delivery] = Alerter([SnsChannel(TOPIC_ARN)]).send(ALERT)
    assert not delivery.ok
    assert delivery.error.startswith("AuthorizationError (HTTP 403): User is not authorized")
    assert len(receiver.requests) == 1  # a refusal is not retried
    for text in [delivery.error, *(r.getMessage() for r in caplog.records)]:
        assert_no_secret(text)
        assert ACCESS_KEY not in text


def test_sns_endpoint_that_is_down_is_reported(sns_env, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SNS", f"http://127.0.0.1:{dead_port()}")
    [delivery] = Alerter([SnsChannel(TOPIC_ARN, timeout=2)]).send(ALERT)
    assert not delivery.ok
    assert delivery.error.startswith("EndpointConnectionError: Could not connect to the endpoint URL")


# -------------------------------------------------------------- Dagster resource


@dg.asset
def drift_alert(context: dg.AssetExecutionContext, alerts: AlertResource) -> dg.MaterializeResult:
    deliveries = alerts.alerter(context.log).send(ALERT)
    return dg.MaterializeResult(metadata={"alerts": {d.channel: d.ok for d in deliveries}})


def _snapshot_text(resource: AlertResource) -> tuple[str, dict]:
    defs = dg.Definitions(assets=[drift_alert], resources={"alerts": resource})
    snap = RepositorySnap.from_def(defs.get_repository_def())
    [alerts] = [r for r in snap.resources if r.name == "alerts"]
    return serialize_value(snap), alerts.configured_values


def test_alert_resource_keeps_the_webhook_out_of_what_the_ui_shows(monkeypatch):
    secret_url = f"https://hooks.slack.com{SECRET_PATH}"
    monkeypatch.setenv(WEBHOOK_ENV, secret_url)
    monkeypatch.setenv("OTHER_WEBHOOK", secret_url)

    # Empty fields: the variable is read at run time, the UI shows "".
    text, values = _snapshot_text(AlertResource())
    assert values["webhook_url"] == '""'
    assert "xoxbSecretWebhookToken42" not in text
    # dg.EnvVar: the UI shows the variable's name only.
    text, values = _snapshot_text(AlertResource(webhook_url=dg.EnvVar("OTHER_WEBHOOK")))
    assert values["webhook_url"].name == "OTHER_WEBHOOK"
    assert "xoxbSecretWebhookToken42" not in text
    # Why both matter: a literal value is shown as is.
    text, _ = _snapshot_text(AlertResource(webhook_url=secret_url))
    assert "xoxbSecretWebhookToken42" in text


@pytest.mark.parametrize("configured", ["from the variable", "through dg.EnvVar"])
def test_alert_resource_delivers_from_a_dagster_run(monkeypatch, configured):
    for name in (WEBHOOK_ENV, SNS_TOPIC_ENV, "OTHER_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    with http_receiver() as receiver:
        if configured == "from the variable":
            monkeypatch.setenv(WEBHOOK_ENV, receiver.url())
            resource = AlertResource()
        else:
            monkeypatch.setenv("OTHER_WEBHOOK", receiver.url())
            resource = AlertResource(webhook_url=dg.EnvVar("OTHER_WEBHOOK"))
        result = dg.materialize([drift_alert], resources={"alerts": resource})

    assert result.success
    [materialization] = result.asset_materializations_for_node("drift_alert")
    assert materialization.metadata["alerts"].value == {"log": True, f"webhook(http://127.0.0.1:{receiver.port})": True}
    assert len(receiver.requests) == 1 and receiver.requests[0].json()["smartstream"]["kind"] == "drift_detected"


def test_alert_resource_without_settings_only_logs(monkeypatch):
    for name in (WEBHOOK_ENV, SNS_TOPIC_ENV):
        monkeypatch.delenv(name, raising=False)
    assert [c.name for c in AlertResource().alerter().channels] == ["log"]
