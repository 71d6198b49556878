"""Results for other applications through the real Dagster webserver's GraphQL API: the
latest drift report (drift share, drifted columns, report URL) and gate decision of a
domain, as the metadata of its materialisations (``results_api.py``)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from smartstream_assets.assets.vitals import HOURLY_KEY
from smartstream_assets.results_api import LATEST_QUERY, ResultsApiError, latest_results

from .test_vitals import FAST, K, SPECS, VitalsProject

pytestmark = [pytest.mark.slow, pytest.mark.integration]
HOUR = "2026-11-24-02:00"
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    project = VitalsProject(root)
    project.instance = dg.DagsterInstance.from_config(str(home))  # what the webserver reads
    project.ingest(*SPECS)
    project.materialize(K["features"], K["model"], K["deployment"], run_config=FAST)
    project.materialize(HOURLY_KEY, K["predictions"], K["drift"], partition=HOUR)
    port = _free_port()
    env = {**project.env(DAGSTER_HOME=str(home)), "PYTHONUNBUFFERED": "1"}
    log = open(root / "webserver.log", "w")
    server = subprocess.Popen([str(BIN / "dagster-webserver"), "-m", "smartstream_assets", "-h", "127.0.0.1", "-p", str(port)],
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                latest_results(url, "vitals", timeout=5)
                break
            except ResultsApiError:
                if time.time() > deadline or server.poll() is not None:
                    raise AssertionError((root / "webserver.log").read_text()[-3000:]) from None
                time.sleep(1)
        yield url, project
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        project.instance.dispose()


def _metadata(project, key) -> dict:
    event = project.instance.get_latest_materialization_event(key)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_the_latest_drift_report_and_gate_decision_come_from_graphql(served):
    url, project = served
    results = latest_results(url, "vitals")
    drift, stored = results["drift"], _metadata(project, K["drift"])
    assert drift["partition"] == HOUR and drift["run_date"] == HOUR
    assert drift["drift_share"] == pytest.approx(stored["drift_share"]) and 0 <= drift["drift_share"] <= 1
    assert drift["drifted"] == stored["drifted"] and isinstance(drift["drifted"], list)
    assert drift["report_html"] == stored["report_html"] and drift["report_html"].endswith("report.html")
    assert drift["model_version"] == "1"
    gate, stored_gate = results["gate"], _metadata(project, K["deployment"])
    assert gate["status"] == stored_gate["status"] and gate["deployment_status"] == stored_gate["deployment_status"]
    assert gate["candidate_version"] == "1" and gate["champion_after"] == "1"
    assert gate["timestamp"] <= time.time() and gate["run_id"]


def test_a_domain_never_scored_has_no_results_and_an_unknown_one_is_an_error(served):
    url, _ = served
    results = latest_results(url, "employees")
    assert results["drift"] is None and results["gate"] is None
    with pytest.raises(ResultsApiError, match="unknown domain 'payroll'"):
        latest_results(url, "payroll")


def test_the_query_as_documented_and_the_cli(served):
    url, _ = served
    body = json.dumps({"query": LATEST_QUERY, "variables": {"drift": {"path": ["vitals", "drift_report"]},
                                                            "gate": {"path": ["vitals", "sepsis_champion"]}}}).encode()  # fmt: skip
    request = urllib.request.Request(url + "/graphql", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        doc = json.loads(response.read())
    labels = {e["label"] for e in doc["data"]["drift"]["assetMaterializations"][0]["metadataEntries"]}
    assert {"drift_share", "drifted", "report_html"} <= labels
    env = {k: v for k, v in os.environ.items() if k != "SMARTSTREAM_TABLES"}
    out = subprocess.run([str(BIN / "smartstream"), "results", "vitals", "--url", url], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["drift"]["partition"] == HOUR
