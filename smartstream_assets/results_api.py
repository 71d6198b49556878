"""Results for other applications, from the Dagster webserver's GraphQL API.

The attrition guide's drift API served the latest drift results to a dashboard
(``/drift/feature/latest``). Here the webserver already holds them, as the metadata of
each domain's latest ``<domain>/drift_report`` and ``<domain>/<model>_champion``
materialisations: another app polls ``POST <webserver>/graphql`` with ``LATEST_QUERY``
and never reads the lake.

    smartstream results employees [--url http://127.0.0.1:3000]

prints ``latest_results`` as JSON: the drift report (partition, drift share, drifted
columns, prediction drift, report URL, model version) and the gate's decision (status,
candidate, champion before / after).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

# One request, both assets (GraphQL aliases). Metadata entries come as typed values; the
# fragments pick the value of each type the two assets record.
LATEST_QUERY = """
query LatestResults($drift: AssetKeyInput!, $gate: AssetKeyInput!) {
  drift: assetOrError(assetKey: $drift) { ...Latest }
  gate: assetOrError(assetKey: $gate) { ...Latest }
}
fragment Latest on AssetOrError {
  __typename
  ... on Asset {
    assetMaterializations(limit: 1) {
      partition
      timestamp
      runId
      metadataEntries {
        label
        ... on FloatMetadataEntry { floatValue }
        ... on IntMetadataEntry { intValue }
        ... on BoolMetadataEntry { boolValue }
        ... on TextMetadataEntry { text }
        ... on UrlMetadataEntry { url }
        ... on PathMetadataEntry { path }
        ... on JsonMetadataEntry { jsonString }
        ... on MarkdownMetadataEntry { mdStr }
      }
    }
  }
}
"""

DRIFT_FIELDS = ("drift_share", "drifted", "dataset_drift", "prediction_drift", "drift_share_threshold", "report_html", "model_version", "run_date")
GATE_FIELDS = ("status", "deployment_status", "candidate_version", "champion_before", "champion_after")


class ResultsApiError(RuntimeError):
    """The webserver could not be asked, or has no such domain; the message says which."""


def latest_results(webserver_url: str, domain: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """The latest drift report and gate decision of ``domain`` (a registered domain name)."""
    from .domains import all_domains
    from .keys import asset_keys

    known = {d.name: d for d in all_domains()}
    if domain not in known:
        raise ResultsApiError(f"unknown domain {domain!r}; the registry has: {', '.join(sorted(known))}")
    keys = asset_keys(known[domain])
    variables = {"drift": {"path": list(keys["drift"].path)}, "gate": {"path": list(keys["deployment"].path)}}
    data = _post(webserver_url, {"query": LATEST_QUERY, "variables": variables}, timeout)
    return {
        "domain": domain,
        "drift": _latest(data["drift"], DRIFT_FIELDS, keys["drift"].to_user_string()),
        "gate": _latest(data["gate"], GATE_FIELDS, keys["deployment"].to_user_string()),
    }


def _post(url: str, body: dict, timeout: float) -> dict:
    endpoint = url.rstrip("/") + "/graphql"
    request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            doc = json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ResultsApiError(f"cannot ask the Dagster webserver at {endpoint}: {reason}") from None
    if doc.get("errors"):
        raise ResultsApiError(f"{endpoint} answered with errors: " + "; ".join(e.get("message", "?") for e in doc["errors"]))
    return doc["data"]


def _latest(node: dict, fields: tuple[str, ...], spelled: str) -> dict[str, Any] | None:
    """The latest materialisation's partition, time, run and the wanted metadata; None
    when the asset was never materialised."""
    if node.get("__typename") != "Asset":
        raise ResultsApiError(f"the webserver does not know {spelled} ({node.get('__typename')}): is it serving the smartstream code location?")
    events = node.get("assetMaterializations") or []
    if not events:
        return None
    event = events[0]
    values = {entry["label"]: _value(entry) for entry in event["metadataEntries"]}
    out = {"partition": event["partition"], "timestamp": float(event["timestamp"]) / 1000.0, "run_id": event["runId"]}
    out.update({name: values[name] for name in fields if name in values})
    return out


def _value(entry: dict) -> Any:
    for name in ("floatValue", "intValue", "boolValue", "text", "url", "path", "mdStr"):
        if name in entry:
            return entry[name]
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    return None
