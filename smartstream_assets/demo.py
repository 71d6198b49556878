"""``make demo``: put the sample raw data into the lake and materialise the whole graph.

Runs on whatever the environment points at: the embedded default (a local folder
under .smartstream/, the sqlite Dagster instance of $DAGSTER_HOME) or a real stack
(SMARTSTREAM_LAKE=s3://..., AWS_* variables). Runs go into the Dagster instance,
so `dagster dev` shows them afterwards. Safe to run again: raw objects already in
the lake are left alone and every materialisation is idempotent.

``SMARTSTREAM_DEMO_OPS_CONFIG`` (JSON, op name -> config) gives assets a run config,
e.g. ``{"reviews__absa_candidate": {"fine_tune_epochs": 1}}`` for a quicker reviews
model (the suite's demo test uses it); unset, every asset runs with the domain's defaults.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .lake import PROJECT_ROOT, Lake, lake_from_url

SAMPLE_DIR = PROJECT_ROOT / "data"


def main() -> int:
    import dagster as dg

    from . import ingestion
    from .definitions import defs
    from .domains import all_domains
    from .keys import asset_keys, table_asset_keys
    from .tables import load_tables

    os.environ.setdefault("DAGSTER_HOME", str(PROJECT_ROOT))
    lake = lake_from_url()
    tables = load_tables()
    print(f"lake: {lake.url}")
    copied, kept = seed_raw_zone(lake, SAMPLE_DIR)
    print(f"raw zone: copied {copied} sample objects from {SAMPLE_DIR / 'raw'} ({kept} already there)")

    steps = []
    for spec in tables.values():
        days = [d for d in ingestion.raw_objects_by_date(lake, spec) if d >= spec.start_date]
        if not days:
            continue
        first, last = min(days).isoformat(), max(days).isoformat()
        steps.append(
            (
                f"{spec.name} ingestion, ingest dates {first}...{last} in one run",
                dg.AssetSelection.assets(*table_asset_keys(spec.name)),
                {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            )
        )
    if not steps:
        print("no raw objects in the lake: nothing to materialise", file=sys.stderr)
        return 1
    steps += ml_steps(list(tables), lake)
    ops_config = _ops_config()
    graph = defs.resolve_asset_graph()
    with dg.DagsterInstance.get() as instance:
        for title, selection, tags, *partition in steps:
            partition = [partition[0]() if partition and callable(partition[0]) else (partition[0] if partition else None)]
            tags = tags(instance) if callable(tags) else tags
            title = title.replace("{partition}", str(partition[0]))
            started = time.perf_counter()
            result = dg.materialize(
                list(defs.assets),
                selection=selection,
                instance=instance,
                resources=defs.resources,
                tags=tags,
                partition_key=partition[0],
                run_config={
                    "loggers": {"console": {"config": {"log_level": "INFO"}}},
                    **_step_ops(ops_config, selection.resolve(graph)),
                },
                raise_on_error=False,
            )
            status = "ok" if result.success else "FAILED"
            print(f"materialised {title}: {status} in {time.perf_counter() - started:.1f}s (run {result.run_id})")
            if not result.success:
                print("see the run's logs in the UI: make ui", file=sys.stderr)
                return 1
    print()
    print(summary(lake, tables))
    print()
    print(ml_summary(lake))
    print()
    print("Open the UI on the same instance and lake:  make ui          (http://127.0.0.1:3000)")
    print("Open MLflow (runs, registry, aliases):      make mlflow-ui   (http://127.0.0.1:5000)")
    print("Stream new CDC files for the sensors:       .venv/bin/smartstream produce employees --files 10")
    return 0


def _ops_config() -> dict:
    import json

    raw = os.environ.get("SMARTSTREAM_DEMO_OPS_CONFIG", "").strip()
    if not raw:
        return {}
    try:
        found = json.loads(raw)
    except ValueError as exc:
        raise SystemExit(f"SMARTSTREAM_DEMO_OPS_CONFIG is not JSON: {exc}") from None
    if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
        raise SystemExit('SMARTSTREAM_DEMO_OPS_CONFIG must map op names to configs, e.g. {"reviews__absa_candidate": {"trials": 2}}')
    return found


def _step_ops(ops_config: dict, keys) -> dict:
    """The run config of the ops among ``keys`` (a step's assets) that ``ops_config`` names."""
    names = {key.to_python_identifier() for key in keys}
    wanted = {op: {"config": config} for op, config in ops_config.items() if op in names}
    return {"ops": wanted} if wanted else {}


def ml_steps(table_names, lake: Lake | None = None) -> list[tuple]:
    """After ingestion: (title, selection, tags, partition key) of the ML runs. First
    everything unpartitioned downstream of the tables (features, models, gates, forecasts)
    but the approvals, which wait for a person; then each domain's scoring job for its
    latest complete scoring partition (cadences differ, so one run per domain)."""
    import dagster as dg

    from .domains import all_plugins
    from .keys import MONITOR_ROLES, asset_keys, table_asset_keys

    plugins = all_plugins()
    ingested = dg.AssetSelection.assets(*(key for name in table_names for key in table_asset_keys(name)))
    approvals = dg.AssetSelection.assets(*(asset_keys(p.domain)["approval"] for p in plugins))
    scored = dg.AssetSelection.assets(
        *(asset_keys(p.domain)[r] for p in plugins for r in ("predictions", "drift")),
        *(key for p in plugins if p.domain.scoring_source for key in p.load_extras().scoring_keys),  # partitioned sources
    )
    streams = [stream for p in plugins for stream in p.load_extras().streams]
    streamed = dg.AssetSelection.assets(*(stream.key for stream in streams))
    monitors = MONITOR_ROLES
    steps = [
        (
            "features, models, promotion gates, forecasts",
            ingested.downstream() - ingested - approvals - scored.downstream() - streamed,
            {},
            None,
        )
    ]
    for plugin in plugins:
        domain, keys = plugin.domain, asset_keys(plugin.domain)
        last = domain.scoring_cadence.partitions_def().get_last_partition_key()
        # the newest partition with data: asked when the step runs, after ingestion
        partition = last if not (plugin.latest_partition and lake is not None) else _latest(plugin.latest_partition, lake, last)
        roles = ("anomaly", "predictions", "drift", *monitors) if domain.scoring_source else ("features", "anomaly", "predictions", "drift", *monitors)
        wanted = [keys[r] for r in roles if r in keys]
        steps.append(
            (
                f"{domain.name} scoring, partition {{partition}}: predictions, drift report and extras",
                dg.AssetSelection.assets(*wanted, *plugin.load_extras().scoring_keys),
                {},
                partition,
            )
        )
    for stream in streams:
        if lake is None or not stream.partitions(lake):
            continue
        steps.append((f"{stream.key.to_user_string()}: every sample micro-batch (one partition each) in one run",
                      dg.AssetSelection.assets(stream.key), _stream_range(stream, lake), None))  # fmt: skip
    return steps


def _stream_range(stream, lake: Lake):
    """Tags of one run over every raw object's partition, added first (what the sensor does)."""

    def tags(instance) -> dict:
        partitions = stream.partitions(lake)
        known = set(instance.get_dynamic_partitions(stream.partitions_def.name))
        instance.add_dynamic_partitions(stream.partitions_def.name, [p for p in partitions if p not in known])
        return {"dagster/asset_partition_range_start": partitions[0], "dagster/asset_partition_range_end": partitions[-1]}

    return tags


def _latest(find, lake: Lake, default: str):
    """A step's partition, found when the step runs: ``find(lake)``, else ``default``."""
    return lambda: find(lake) or default


def seed_raw_zone(lake: Lake, sample_dir: Path) -> tuple[int, int]:
    """Copy ``sample_dir/raw/**`` into the lake's raw zone; objects already there stay
    as they are (the raw zone is never modified)."""
    copied = kept = 0
    for path in sorted((sample_dir / "raw").rglob("*")):
        if not path.is_file():
            continue
        key = path.relative_to(sample_dir).as_posix()
        if lake.exists(key):
            kept += 1
            continue
        lake.write_bytes(key, path.read_bytes())
        copied += 1
    return copied, kept


def summary(lake: Lake, tables) -> str:
    """What the lake holds now, zone by zone, per table."""
    from . import delta

    lines = [
        "| table | raw objects | trusted partitions | changes | quarantined | current rows | current version |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, spec in tables.items():
        raw = sum(1 for _ in lake.list(spec.raw_prefix))
        partitions = len(delta.trusted_days(lake, name))
        changes = delta.count_rows(lake, delta.trusted_table(name))
        quarantined = delta.count_rows(lake, delta.quarantine_table(name))
        current = delta.count_rows(lake, delta.current_table(name), "_op <> 'delete'")
        version = delta.table_version(lake, delta.current_table(name))
        lines.append(f"| {name} | {raw} | {partitions} | {changes} | {quarantined} | {current} | {'' if version is None else version} |")
    return "\n".join(lines)


def ml_summary(lake: Lake) -> str:
    """Each domain's champion, its latest scores and drift report: one table per set of
    summary metrics the domains declare (``Domain.summary``: declared, else the task kind's)."""
    import json

    from .assets.ml import drift_report_key, latest_run_date, predictions_key
    from .domains import all_domains
    from .ml.registry import CHAMPION, Registry

    registry = Registry()
    tables: dict[tuple, list[str]] = {}
    for domain in all_domains():
        names = [name for name, _ in domain.summary]
        lines = tables.setdefault(domain.summary, _summary_header([header for _, header in domain.summary]))
        champion = registry.version(domain.registered_model, CHAMPION)
        if champion is None:
            lines.append(f"| {domain.registered_model} | none |{' |' * len(names)} | | | |")
            continue
        metrics = registry.client.get_run(champion.run_id).data.metrics
        run_date = latest_run_date(lake, domain)
        scored = lake.read_parquet(predictions_key(domain, run_date)).num_rows
        drift = json.loads(lake.read_bytes(drift_report_key(domain, run_date, "json")))
        values = "".join(f" {metrics.get(name, 0):.3f} |" for name in names)
        lines.append(
            f"| {domain.registered_model} | v{champion.version} |{values} "
            f"{scored} | {run_date} | {drift['drift_share']:.2f} | {lake.describe(drift_report_key(domain, run_date, 'html'))} |"
        )
    return "\n\n".join("\n".join(lines) for lines in tables.values())


def _summary_header(metric_headers: list[str]) -> list[str]:
    columns = ["model", "champion", *metric_headers, "scored", "run date", "drift share", "report"]
    aligns = ["---", "---", *["---:"] * len(metric_headers), "---:", "---", "---:", "---"]
    return [f"| {' | '.join(columns)} |", f"|{'|'.join(aligns)}|"]


if __name__ == "__main__":
    sys.exit(main())
