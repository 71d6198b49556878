"""Every asset key, op name and lake key of the project, in one place.

Asset keys read domain (or table) first, then the role, so a node in the UI's graph
(which shows the last part of a key) and an op name in the CLI say what they are:
``employees/trusted``, ``employees/attrition_candidate``, ``employees/predictions``.
The lake keeps its zone-first layout (``trusted/<table>/...``, ``features/<domain>/...``):
what a Spark or Athena user lists under a zone does not change with the graph.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Dagster is imported where a key is made: the lake keys below serve
    import dagster as dg  # the pure ingestion module, which must not import Dagster

# ------------------------------------------------------------------ asset keys: tables


def _asset_key(parts: list[str]) -> dg.AssetKey:
    import dagster as dg

    return dg.AssetKey(parts)


def _table_role(table: str, role: str) -> list[str]:
    """``[table, role]``, or ``[table, <label>_<role>]`` for a table with an ``asset_label``
    in the registry (vitals' and reviews' live tables: their domain's graph also shows the
    labelled table's ``current``)."""
    label = _asset_labels(os.environ.get("SMARTSTREAM_TABLES", ""))
    return [table, f"{label[table]}_{role}" if table in label else role]


@lru_cache(maxsize=8)
def _asset_labels(extra: str) -> dict[str, str]:
    # read once per registry file: keys are made often (every sensor tick, every asset)
    from .tables import load_tables

    return {name: spec.asset_label for name, spec in load_tables(extra or None).items() if spec.asset_label}


def trusted_asset_key(table: str) -> dg.AssetKey:
    return _asset_key(_table_role(table, "trusted"))


def current_asset_key(table: str) -> dg.AssetKey:
    return _asset_key(_table_role(table, "current"))


def table_asset_keys(table: str) -> list[dg.AssetKey]:
    """The table's ingestion assets: ``<table>/trusted``, ``<table>/current`` (with the
    table's ``asset_label``: ``<table>/<label>_trusted``, ...)."""
    return [trusted_asset_key(table), current_asset_key(table)]


def table_group(table: str, domains: Iterable) -> str:
    """The group of a table's assets: the name of the (first) domain built on the table,
    so a domain's group holds its whole lineage from raw; else the table's own name, or
    ``<table>_ingestion`` when a domain of that name is built on another table (the
    reviews domain trains on ``reviews_labelled``: the hourly ``reviews`` table's
    ``trusted`` and ``current`` would otherwise sit beside ``reviews_labelled``'s in one
    group, two nodes of each name)."""
    domains = list(domains)
    owner = next((domain.name for domain in domains if domain.table == table), None)
    if owner is not None:
        return owner
    return f"{table}_ingestion" if any(domain.name == table for domain in domains) else table


def trusted_op_name(table: str) -> str:
    """Dagster names an asset's op by its key joined with ``__``."""
    return "__".join(_table_role(table, "trusted"))


def current_op_name(table: str) -> str:
    return "__".join(_table_role(table, "current"))


# ------------------------------------------------------------------ asset keys: domains

# role -> the last part of the key (``<model>`` is the domain's model role, e.g. "attrition")
DOMAIN_ROLES = {
    "features": "features",
    "model": "{model}_candidate",
    "deployment": "{model}_champion",
    "approval": "{model}_approval",
    "anomaly": "anomalies",
    "predictions": "predictions",
    "drift": "drift_report",
    # with Domain.monitoring
    "data_quality_monitor": "data_quality_monitor",
    "model_quality_monitor": "model_quality_monitor",
    "bias_drift_monitor": "bias_drift_monitor",
}
MONITOR_ROLES = ("data_quality_monitor", "model_quality_monitor", "bias_drift_monitor")


def domain_asset_key(domain_name: str, role: str) -> dg.AssetKey:
    """``<domain>/<role>`` for a role of the domain's own (extras: ``headcount_forecast``)."""
    return _asset_key([domain_name, role])


def asset_keys(domain) -> dict[str, dg.AssetKey]:
    """The shared lineage's keys of one domain, by role (see ``DOMAIN_ROLES``); ``anomaly``
    only when the domain has an anomaly model, the monitors only when it declares monitoring."""
    keys = {
        role: domain_asset_key(domain.name, last.format(model=domain.model))
        for role, last in DOMAIN_ROLES.items()
        if role != "anomaly" and (role not in MONITOR_ROLES or getattr(domain, "monitoring", None) is not None)
    }
    if domain.anomaly_model:
        keys["anomaly"] = domain_asset_key(domain.name, DOMAIN_ROLES["anomaly"])
    return keys


def spelled(key: dg.AssetKey) -> str:
    """A key as the UI and the CLI's ``--select`` spell it: ``employees/predictions``."""
    return key.to_user_string()


# ------------------------------------------------------------------ lake keys (zone first)


def trusted_key(table: str, day: date) -> str:
    """A partition (folder) of the trusted Delta table: read it through ``delta``, not as files."""
    return f"trusted/{table}/ingest_date={day.isoformat()}"


def trusted_table(table: str) -> str:
    """The trusted Delta table of ``table``, partitioned by ingest_date."""
    return f"trusted/{table}"


def quarantine_table(table: str) -> str:
    return f"quarantine/{table}"


def trusted_prefix(table: str) -> str:
    """Every trusted partition of ``table`` lies under this prefix."""
    return f"trusted/{table}/"


def quarantine_key(table: str, day: date) -> str:
    return f"quarantine/{table}/ingest_date={day.isoformat()}"


def current_key(table: str) -> str:
    """The current Delta table of ``table`` (a folder with ``_delta_log/``)."""
    return f"current/{table}"


def features_key(domain) -> str:
    return f"features/{domain.name}/data.parquet"


def features_split_key(domain, split: str) -> str:
    """A time split's window of the feature frame (train, validation, test), as the
    SageMaker pipeline's preprocessing step writes them."""
    return f"features/{domain.name}/split={split}/data.parquet"


def anomalies_key(domain) -> str:
    return f"predictions/{domain.anomaly_model}/data.parquet"


def predictions_key(domain, partition: str) -> str:
    return f"predictions/{domain.name}/run_date={partition}/data.parquet"


def predictions_prefix(domain) -> str:
    return f"predictions/{domain.name}/run_date="


def drift_report_key(domain, partition: str, ext: str) -> str:
    return f"reports/{domain.name}/drift/run_date={partition}/report.{ext}"


def monitor_report_key(domain, kind: str, partition: str, ext: str) -> str:
    """A monitor's report of one scoring partition (kind: data_quality, model_quality, bias_drift)."""
    return f"reports/{domain.name}/monitors/{kind}/run_date={partition}/report.{ext}"


def evaluation_key(domain, version: str) -> str:
    """The candidate's evaluation document (``evaluation.json``), per model version."""
    return f"reports/{domain.name}/evaluation/version={version}/evaluation.json"


def forecast_key(name: str, file: str) -> str:
    """A domain's forecast outputs: ``forecasts/<name>/<file>``."""
    return f"forecasts/{name}/{file}"


def domain_report_key(domain_name: str, file: str) -> str:
    """A domain's own report files (a dashboard): ``reports/<domain>/<file>``."""
    return f"reports/{domain_name}/{file}"
