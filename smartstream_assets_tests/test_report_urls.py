"""Report links a browser can open: ``Lake.browser_url`` and the local reports server.

Local lake: $SMARTSTREAM_REPORTS_URL + the key's path inside ``reports/``, served by
``smartstream_assets.reports_server`` (started by `make ui`). S3: a presigned GET URL.
"""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from smartstream_assets import reports_server
from smartstream_assets.lake import LocalLake
from smartstream_assets.local_stack import free_port

REPORT = "reports/employees/drift/run_date=2026-10-01/report.html"
EXPIRY = "SMARTSTREAM_REPORT_URL_EXPIRY_SECONDS"
BASE = "SMARTSTREAM_REPORTS_URL"
HTML = b"<html><body>drift report \xe2\x9c\x93</body></html>"


@pytest.fixture(autouse=True)
def _no_report_settings(monkeypatch):
    for name in (BASE, EXPIRY):
        monkeypatch.delenv(name, raising=False)


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


# --- the local lake ---------------------------------------------------------------


def test_a_local_report_links_under_the_default_reports_url_each_segment_quoted(tmp_path):
    lake = LocalLake(tmp_path)
    assert lake.browser_url(REPORT) == "http://127.0.0.1:3001/employees/drift/run_date%3D2026-10-01/report.html"
    assert lake.browser_url("reports/a b/é?#.html") == "http://127.0.0.1:3001/a%20b/%C3%A9%3F%23.html"


def test_smartstream_reports_url_changes_the_base(tmp_path, monkeypatch):
    lake = LocalLake(tmp_path)
    monkeypatch.setenv(BASE, "http://127.0.0.1:3002")  # a missing final slash is added
    assert lake.browser_url(REPORT) == "http://127.0.0.1:3002/employees/drift/run_date%3D2026-10-01/report.html"
    monkeypatch.setenv(BASE, "https://reports.example.com/smartstream/")
    assert lake.browser_url(REPORT) == "https://reports.example.com/smartstream/employees/drift/run_date%3D2026-10-01/report.html"


@pytest.mark.parametrize("value", ["127.0.0.1:3001", "ftp://127.0.0.1/", "http://127.0.0.1:99999/", "http:///x", "http://h/?q=1"])
def test_a_bad_reports_url_is_refused_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv(BASE, value)
    with pytest.raises(ValueError, match=BASE):
        LocalLake(tmp_path).browser_url(REPORT)


@pytest.mark.parametrize(
    "key",
    ["current/employees/_delta_log/00000000000000000000.json", "reports", "reports/", "reportsx/a.html", "reports/../trusted/x.csv",
     "reports/a/../../x", "reports//a.html", "reports/./a.html", "raw/reports/a.html"],
)  # fmt: skip
def test_only_files_in_the_reports_zone_get_a_local_url(tmp_path, key):
    with pytest.raises(ValueError, match="reports/"):
        LocalLake(tmp_path).browser_url(key)


# --- the local reports server -------------------------------------------------------


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A local lake with a report and a file outside reports/, its reports/ served in a
    thread on a free port that $SMARTSTREAM_REPORTS_URL names."""
    lake = LocalLake(tmp_path / "lake")
    lake.write_bytes(REPORT, HTML)
    lake.write_bytes("trusted/employees/secret.csv", b"EmployeeID,Salary\n1,99999\n")
    server = reports_server.make_server(lake.root / "reports", 0)
    port = server.server_address[1]
    monkeypatch.setenv(BASE, f"http://127.0.0.1:{port}/")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield lake, port
    server.shutdown()
    server.server_close()


def raw_request(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    """The path exactly as given (urllib would not normalise it, but be explicit)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_server_serves_the_report_at_its_browser_url(served):
    lake, port = served
    url = lake.browser_url(REPORT)
    assert url == f"http://127.0.0.1:{port}/employees/drift/run_date%3D2026-10-01/report.html"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == HTML
        assert response.headers.get_content_type() == "text/html"


@pytest.mark.parametrize(
    "path",
    ["/../trusted/employees/secret.csv", "/%2e%2e/trusted/employees/secret.csv", "/employees/../../trusted/employees/secret.csv",
     "/..%2ftrusted%2femployees%2fsecret.csv", "/trusted/employees/secret.csv"],
)  # fmt: skip
def test_nothing_outside_reports_is_served(served, path):
    _, port = served
    status, body = raw_request(port, path)
    assert status in (403, 404) and b"99999" not in body


def test_the_server_is_read_only(served):
    _, port = served
    assert raw_request(port, "/employees/drift/run_date%3D2026-10-01/report.html", "PUT")[0] == 501
    assert raw_request(port, "/employees/drift/run_date%3D2026-10-01/report.html", "DELETE")[0] == 501


def test_the_server_has_nothing_to_do_on_an_s3_lake(monkeypatch, capsys):
    monkeypatch.setenv("SMARTSTREAM_LAKE", "s3://some-bucket/prefix")
    assert reports_server.main() == 0
    assert "presigned" in capsys.readouterr().out


def test_a_taken_port_is_reported_with_the_variable_to_change(tmp_path, monkeypatch, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("SMARTSTREAM_LAKE", str(tmp_path))
        monkeypatch.setenv(BASE, f"http://127.0.0.1:{taken.getsockname()[1]}/")
        assert reports_server.main() == 1
    assert BASE in capsys.readouterr().err


@pytest.mark.integration
def test_make_ui_s_server_process_serves_the_lake_s_reports(tmp_path, monkeypatch):
    lake = LocalLake(tmp_path / "lake")
    lake.write_bytes(REPORT, HTML)
    port = free_port()
    monkeypatch.setenv("SMARTSTREAM_LAKE", str(lake.root))
    monkeypatch.setenv(BASE, f"http://127.0.0.1:{port}/")
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartstream_assets.reports_server"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        banner = proc.stdout.readline()  # printed once it listens
        assert f"on http://127.0.0.1:{port}/" in banner, (banner, proc.stderr.read() if proc.poll() is not None else "")
        url = lake.browser_url(REPORT)
        assert url == f"http://127.0.0.1:{port}/employees/drift/run_date%3D2026-10-01/report.html"
        assert get(url) == HTML
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(url.replace("2026-10-01", "2026-11-01"))
        assert missing.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()


# --- S3: presigned URLs ----------------------------------------------------------------


@pytest.mark.integration
def test_an_s3_report_links_a_presigned_url_without_the_secret(s3_env, s3_server, monkeypatch):
    s3_env.write_bytes(REPORT, HTML)
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret == s3_server.secret_key
    url = s3_env.browser_url(REPORT)
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    assert url.startswith(s3_server.endpoint_url.rstrip("/") + "/") and parts.scheme == "http"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"] and query["X-Amz-Expires"] == ["604800"]
    assert query["X-Amz-Credential"][0].startswith(s3_server.access_key + "/")
    for form in (secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        assert form not in url
    # whoever opens the link needs no AWS variables (nor boto3): it is a plain GET
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    assert get(url) == HTML


@pytest.mark.integration
def test_the_expiry_of_the_presigned_url_is_configurable_within_sigv4_s_limit(s3_env, monkeypatch):
    s3_env.write_bytes(REPORT, HTML)
    monkeypatch.setenv(EXPIRY, "3600")
    url = s3_env.browser_url(REPORT)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Expires"] == ["3600"]
    assert get(url) == HTML
    for bad in ("0", "-1", "604801", "soon", "1.5"):
        monkeypatch.setenv(EXPIRY, bad)
        with pytest.raises(ValueError, match=EXPIRY):
            s3_env.browser_url(REPORT)


@pytest.mark.integration
def test_an_expired_presigned_url_is_refused(s3_env, monkeypatch):
    s3_env.write_bytes(REPORT, HTML)
    monkeypatch.setenv(EXPIRY, "1")
    url = s3_env.browser_url(REPORT)
    time.sleep(2.5)
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(url)
    assert refused.value.code == 403
