"""The whole employees lineage on 100,000 employees, and the costs of its parts.

    .venv/bin/python benchmarks/employees_lineage.py                       # 100,000 employees
    .venv/bin/python benchmarks/employees_lineage.py --employees 20000 --trials 3

Generates the HR table with the project's simulator (a DMS full load of N employees,
then a year of monthly CDC files), then in a child process (so peak RSS is the run's
own) materialises through Dagster, on a fresh lake, MLflow store and instance:
ingestion (every ingest date, one run), then features → candidate (Optuna) → gate →
anomalies → headcount forecast → predictions → drift report → dashboard. Prints each
step's time, the wall time and peak RSS, and, measured in the same run:

  scoring overhead   ``score_batch`` (what employees/predictions scores with) against
                     the bare fitted pipeline's ``predict_proba`` on the same frame,
                     medians of 5 (target: ratio <= 1.3)
  drift report       ``drift_report`` on the N current rows against the reference sample
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
START = datetime(2025, 11, 3, 9, tzinfo=timezone.utc)


def generate(lake_dir: Path, employees: int, months: int, seed: int) -> dict:
    from smartstream_assets.producers import dms
    from smartstream_assets.producers.employees import EmployeeSimulator
    from smartstream_assets.tables import load_tables

    spec = load_tables(extra="")["employees"]
    sim = EmployeeSimulator(seed)

    def put(key: str, data: bytes) -> None:
        path = lake_dir / spec.raw_prefix / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    full = sim.full_load(employees, START)
    put(dms.dated_folder(START) + dms.full_load_file_name(1), dms.dms_csv(spec, full, commit_ts=[START] * employees))
    events = employees
    for month in range(1, months + 1):
        when = (START.replace(day=1) + timedelta(days=32 * month)).replace(day=1, hour=10)
        ops, stamps, frame = sim.changes(when, employees // 20)  # ~5% of the workforce changes a month
        put(dms.dated_folder(when) + dms.cdc_file_name(when), dms.dms_csv(spec, frame, ops=ops, commit_ts=stamps))
        events += len(frame)
    return {"events": events, "first": START.date().isoformat(), "last": when.date().isoformat()}


def child(args) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import dagster as dg

    from smartstream_assets.definitions import defs
    from smartstream_assets.domains.employees import ATTRITION as D
    from smartstream_assets.demo import ml_steps
    from smartstream_assets.keys import asset_keys, table_asset_keys
    from smartstream_assets.ml.drift import drift_report
    from smartstream_assets.ml.registry import CHAMPION, Registry
    from smartstream_assets.ml.scoring import score_batch
    from smartstream_assets.io import LakeParquetIOManager
    from smartstream_assets.resources import AlertResource, LakeResource, MlflowResource, PredictionsDbResource, SourceDbResource

    work = Path(args.work)
    tracking = f"sqlite:///{work}/mlflow.db"
    resources = {
        "lake": LakeResource(url=str(work / "lake")),
        "ml_io": LakeParquetIOManager(lake=LakeResource(url=str(work / "lake"))),
        "mlflow": MlflowResource(tracking_uri=tracking),
        "alerts": AlertResource(),
        "predictions_db": PredictionsDbResource(),
        "reviews_db": SourceDbResource(),
    }
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    steps: dict[str, float] = {}
    started = time.perf_counter()
    with dg.DagsterInstance.ephemeral() as instance:
        runs = [
            (dg.AssetSelection.assets(*table_asset_keys("employees")), {"dagster/asset_partition_range_start": args.first, "dagster/asset_partition_range_end": args.last}, {}, None),
            *[
                (selection, tags, {"ops": {"employees__attrition_candidate": {"config": {"trials": args.trials}}}}, partition)
                for _, selection, tags, partition in ml_steps(["employees"])
            ],
        ]
        for selection, tags, config, partition in runs:
            # the search budget goes to the run that trains; the others have no such op
            job_ops = config if asset_keys(D)["model"] in selection.resolve(defs.resolve_asset_graph()) else {}
            result = dg.materialize(
                list(defs.assets), selection=selection, resources=resources, instance=instance, tags=tags,
                run_config={**quiet, **job_ops}, raise_on_error=True, partition_key=partition,
            )  # fmt: skip
            began = {}
            for entry in instance.all_logs(result.run_id):  # the event log has the timestamps
                event = entry.dagster_event
                if event is not None and event.event_type_value == "STEP_START":
                    began[event.step_key] = entry.timestamp
                elif event is not None and event.event_type_value == "STEP_SUCCESS":
                    steps[event.step_key] = entry.timestamp - began[event.step_key]
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # scoring: the function the predictions asset uses vs the bare pipeline, same frame
    import pandas as pd

    registry = Registry(tracking)
    champion = registry.version(D.registered_model, CHAMPION)
    pipeline = registry.load_pipeline(D.registered_model, champion.version)
    frame = D.scoring_rows(pd.read_parquet(work / "lake" / "features" / "employees" / "data.parquet"))  # what the asset scores
    bare, ours = [], []
    for _ in range(5):
        t = time.perf_counter()
        pipeline.predict_proba(frame[D.features])
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        score_batch(pipeline, frame, id_column=D.id_column, features=D.features)
        ours.append(time.perf_counter() - t)

    # drift: the current rows against the champion's reference sample
    _, reference, reference_predictions = registry.reference(D.registered_model)
    current = frame[D.features].assign(probability=pipeline.predict_proba(frame[D.features])[:, 1])
    baseline = reference[D.features].assign(probability=reference_predictions["probability"].to_numpy())
    drift_times = []
    for _ in range(3):
        t = time.perf_counter()
        drift_report(baseline, current, numerical=list(D.numeric), categorical=list(D.categorical), prediction_column="probability")
        drift_times.append(time.perf_counter() - t)
    print(json.dumps({
        "wall": wall, "peak_rss_mb": peak, "steps": steps, "rows": len(frame), "reference_rows": len(reference),
        "bare": statistics.median(bare), "ours": statistics.median(ours), "drift": statistics.median(drift_times),
        "estimator": registry.client.get_run(champion.run_id).data.params.get("estimator"),
        "roc_auc": registry.client.get_run(champion.run_id).data.metrics.get("roc_auc"),
    }))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--first", help=argparse.SUPPRESS)
    parser.add_argument("--last", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    with tempfile.TemporaryDirectory(prefix="smartstream-lineage-") as tmp:
        t = time.perf_counter()
        info = generate(Path(tmp) / "lake", args.employees, args.months, args.seed)
        print(f"generated {args.employees:,} employees, {info['events']:,} CDC events over {args.months} months in {time.perf_counter() - t:.1f}s")
        cmd = [sys.executable, __file__, "--child", "--work", tmp, "--first", info["first"], "--last", info["last"], "--trials", str(args.trials)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"the lineage run failed:\n{proc.stderr[-4000:]}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])

    print()
    print(f"{'step':<40}{'seconds':>9}")
    for step, seconds in sorted(r["steps"].items(), key=lambda kv: -kv[1]):
        print(f"{step:<40}{seconds:>9.1f}")
    print()
    print(f"whole lineage (ingestion + ML, {args.trials} trials): {r['wall']:.1f}s wall, peak RSS {r['peak_rss_mb']:.0f} MiB")
    print(f"champion: {r['estimator']}, holdout ROC AUC {r['roc_auc']:.3f}")
    print(f"batch scoring {r['rows']:,} rows: score_batch {r['ours']:.3f}s vs bare predict_proba {r['bare']:.3f}s "
          f"-> overhead ratio {r['ours'] / r['bare']:.2f} (target <= 1.3); {r['rows'] / r['ours']:,.0f} rows/s")  # fmt: skip
    print(f"drift report, {r['rows']:,} current vs {r['reference_rows']:,} reference rows: {r['drift']:.2f}s")


if __name__ == "__main__":
    main()
