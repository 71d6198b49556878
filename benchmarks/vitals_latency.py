"""Vitals scored as data lands: from a micro-batch object written to its scores visible.

    .venv/bin/python benchmarks/vitals_latency.py                     # 180 s per mode, local lake and SeaweedFS
    .venv/bin/python benchmarks/vitals_latency.py --seconds 300 --lakes local

A producer writes one micro-batch a second (``--rate`` messages each) under
raw/icu/vitals/ for ``--seconds``; a poller lists predictions/vitals/stream/ every
0.25 s and records when each batch's scores appear. Modes, each on a fresh lake prefix
and Dagster instance, the same champion (trained once, 2 trials, on the sample):

  dagster, strict     `dagster dev` (webserver + daemon: sensor every 5 s, queued run
                      coordinator dequeuing every second, 4 runs at once), vitals_raw_sensor with one run per
                      object (SMARTSTREAM_STREAM_BATCHES_PER_RUN=1, no in-flight limit):
                      the baseline, what "a run per micro-batch" costs
  dagster, adaptive   the same with the defaults: one run per object while at most 2 are
                      in flight, else one run takes the waiting objects (each still its
                      own partition)
  long-running loop   one process that loads the champion once and calls the same
                      ``ml.stream.run_stream`` on new objects every second: what a
                      long-running scorer launched by Dagster (Dagster Pipes) would cost

Then, inside one run: messages per second of ``run_stream`` on one object of
``--big`` messages (target >= 20,000), and the fixed cost of one run: `dagster asset
materialize` of a one-message object, wall time against the scoring time it reports.

Prints p50 / p95 / max latency per mode and lake, batches not visible within
``--drain`` seconds after the producer stopped, run counts, objects per run and the
median run duration / queue wait / scoring time of the Dagster runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DAGSTER = str(Path(sys.executable).with_name("dagster"))
PREFIX = "raw/icu/vitals/"
SCORES = "predictions/vitals/stream/"


def instance_yaml(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: QueuedRunCoordinator\n"
        "  config:\n    dequeue_interval_seconds: 1\n"
        "concurrency:\n  runs:\n    max_concurrent_runs: 4\n  pools:\n    default_limit: 1\n    granularity: op\n"
    )


def train(env: dict, tmp: Path) -> None:
    """The sample's labelled history ingested and a champion trained (2 trials), on a lake of its own."""
    code = """
import dagster as dg
from _devserver import wait_for_ui
from smartstream_assets.local_stack import free_port
from smartstream_assets.definitions import build_definitions
from smartstream_assets.domains import vitals
from smartstream_assets.keys import asset_keys, table_asset_keys
from smartstream_assets.demo import SAMPLE_DIR
from smartstream_assets.lake import lake_from_url
from smartstream_assets.tables import load_tables
from smartstream_assets import ingestion
spec = load_tables()["vitals_labelled"]
lake = lake_from_url()
for path in sorted((SAMPLE_DIR / "raw/icu/vitals_labelled").rglob("*.jsonl")):
    lake.write_bytes(path.relative_to(SAMPLE_DIR).as_posix(), path.read_bytes())
for day, objects in sorted(ingestion.raw_objects_by_date(lake, spec).items()):
    ingestion.build_trusted_partition(lake, spec, day, objects)
ingestion.update_current(lake, spec)
defs = build_definitions([vitals.PLUGIN], [spec, load_tables()["vitals"]])
k = asset_keys(vitals.VITALS_DOMAIN)
with dg.DagsterInstance.ephemeral() as instance:
    result = dg.materialize(list(defs.assets), selection=dg.AssetSelection.assets(k["features"], k["model"], k["deployment"]),
                            resources=defs.resources, instance=instance,
                            run_config={"ops": {"vitals__sepsis_candidate": {"config": {"trials": 2}}}})
    assert result.success
"""
    train_env = dict(env, SMARTSTREAM_LAKE=str(tmp / "train-lake"))
    subprocess.run([sys.executable, "-c", code], env=train_env, check=True, capture_output=True, text=True)


def population_rows(n_patients: int, hours: int):
    from smartstream_assets.producers.vitals import population

    start = datetime(2026, 11, 24, tzinfo=timezone.utc)
    frame = population(n_patients, seed=[3, 3], start=start - timedelta(hours=hours), id_prefix="B", stay_hours=(hours, hours + 1), labelled=False)
    import pandas as pd

    t = pd.to_datetime(frame["ts"], utc=True)
    return frame.assign(_t=t).sort_values(["_t", "patient_id"], kind="stable").drop(columns="_t").reset_index(drop=True)


class Poller(threading.Thread):
    """Records when each batch's first score file appears (file names carry the object's name)."""

    def __init__(self, lake):
        super().__init__(daemon=True)
        self.lake, self.seen, self.stop = lake, {}, threading.Event()

    def run(self):
        while not self.stop.is_set():
            now = time.time()
            try:
                for obj in self.lake.list(SCORES):
                    name = obj.key.rsplit("/", 1)[-1].removesuffix(".parquet")
                    self.seen.setdefault(name, now)
            except Exception:  # noqa: BLE001 - a listing racing a write: next round
                pass
            self.stop.wait(0.25)


def produce(lake, rows, seconds: int, rate: int) -> dict[str, float]:
    """One batch a second; object name -> time its write returned."""
    from smartstream_assets.ml.stream import _object_name
    from smartstream_assets.producers.vitals import batch_key, to_jsonl

    written, begin = {}, time.monotonic()
    for seq in range(seconds):
        batch = rows.iloc[seq * rate : (seq + 1) * rate]
        if batch.empty:
            break
        key = PREFIX + batch_key(datetime.now(timezone.utc), seq)
        lake.write_bytes(key, to_jsonl(batch))
        written[_object_name(key, PREFIX)] = time.time()
        pause = begin + seq + 1 - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    return written


def latency(written: dict[str, float], seen: dict[str, float], ended: float) -> dict:
    """p50 / p95 / max from written to visible; a batch never seen counts as at least
    ``ended`` - written (the figures are then lower bounds, marked ``censored``)."""
    values = sorted(seen[k] - t if k in seen else ended - t for k, t in written.items())
    missing = sum(1 for k in written if k not in seen)
    if not values:
        return {"batches": 0, "visible": 0, "missing": 0, "p50": float("nan"), "p95": float("nan"), "max": float("nan"), "censored": False}
    q = statistics.quantiles(values, n=20, method="inclusive") if len(values) > 1 else [values[0]] * 19
    return {"batches": len(written), "visible": len(written) - missing, "missing": missing, "censored": missing > 0,
            "p50": statistics.median(values), "p95": q[18], "max": values[-1]}  # fmt: skip


def run_stats(home: Path, job: str | None = "vitals_stream") -> dict:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name=job) if job else None)
        durations, queued, objects, scoring, failed = [], [], [], [], 0
        for r in records:
            if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS:
                failed += r.dagster_run.status == dg.DagsterRunStatus.FAILURE
                continue
            if r.start_time and r.end_time:
                durations.append(r.end_time - r.start_time)
                queued.append(r.start_time - r.create_timestamp.timestamp())
            objects.append(int(r.dagster_run.tags.get("smartstream/raw_objects", "1")))
            events = instance.get_records_for_run(r.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1).records
            if events:
                meta = events[0].event_log_entry.asset_materialization.metadata
                if "run_scoring_seconds" in meta:
                    scoring.append(float(meta["run_scoring_seconds"].value))
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    return {"runs": len(records), "failed": failed, "objects_per_run": med(objects), "run_s": med(durations),
            "queue_s": med(queued), "scoring_s": med(scoring)}  # fmt: skip


def dagster_mode(name: str, env: dict, lake, rows, args, tmp: Path, extra_env: dict) -> dict:
    home = tmp / f"home-{name}"
    instance_yaml(home)
    env = dict(env, DAGSTER_HOME=str(home), **extra_env)
    port = free_port()
    log = open(tmp / f"dagster-{name}.log", "w")
    dev = subprocess.Popen(
        [DAGSTER, "dev", "-m", "smartstream_assets", "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        wait_for_ui(port, 180, dev, tmp / f"dagster-{name}.log")
        subprocess.run([DAGSTER, "sensor", "start", "vitals_raw_sensor", "-m", "smartstream_assets"], env=env, cwd=ROOT,
                       check=True, capture_output=True, text=True)  # fmt: skip
        poller = Poller(lake)
        poller.start()
        written = produce(lake, rows, args.seconds, args.rate)
        deadline = time.time() + args.drain
        while time.time() < deadline and any(k not in poller.seen for k in written):
            time.sleep(1)
        poller.stop.set()
        poller.join()
        result = latency(written, poller.seen, time.time())
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGINT)
        try:
            dev.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        log.close()
    result.update(run_stats(home))
    return result


def loop_mode(env: dict, lake, rows, args) -> dict:
    """A long-running scorer: champion loaded once, new objects scored every second."""
    for k, v in env.items():
        if k.startswith(("AWS_", "MLFLOW_", "SMARTSTREAM_")):
            os.environ[k] = v
    from smartstream_assets.domains.vitals import VITALS_DOMAIN, stream_scorer, stream_settings
    from smartstream_assets.ml import scoring
    from smartstream_assets.ml.registry import CHAMPION, Registry
    from smartstream_assets.ml.stream import run_stream
    from smartstream_assets.tables import load_tables

    spec = load_tables()["vitals"]
    registry = Registry(env["MLFLOW_TRACKING_URI"])
    version = registry.version(VITALS_DOMAIN.registered_model, CHAMPION).version
    pipeline = registry.load_pipeline(VITALS_DOMAIN.registered_model, version)
    score = stream_scorer(pipeline, scoring.model_input_columns(pipeline, VITALS_DOMAIN.features))
    done, stop, cycles = set(), threading.Event(), []

    def scorer():
        high = None
        while not stop.is_set():
            t = time.perf_counter()
            new = sorted(o.key for o in lake.list(PREFIX, start_after=high) if o.key not in done)
            if new:
                run_stream(lake, spec, new, domain="vitals", settings=stream_settings(), score=score, model_version=version)
                done.update(new)
                high = new[-1]
                cycles.append(time.perf_counter() - t)
            stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))

    worker = threading.Thread(target=scorer, daemon=True)
    poller = Poller(lake)
    worker.start()
    poller.start()
    written = produce(lake, rows, args.seconds, args.rate)
    deadline = time.time() + args.drain
    while time.time() < deadline and any(k not in poller.seen for k in written):
        time.sleep(0.5)
    stop.set()
    poller.stop.set()
    worker.join()
    poller.join()
    out = latency(written, poller.seen, time.time())
    out.update({"runs": 1, "failed": 0, "objects_per_run": float("nan"), "run_s": float("nan"), "queue_s": 0.0,
                "scoring_s": statistics.median(cycles) if cycles else float("nan")})  # fmt: skip
    return out


def throughput(env: dict, lake, big: int) -> dict:
    """Messages per second of run_stream on one object of ``big`` messages (fresh state),
    then on the next ``big`` messages of the same patients (history from the state)."""
    from smartstream_assets.domains.vitals import VITALS_DOMAIN, stream_scorer, stream_settings
    from smartstream_assets.ml import scoring
    from smartstream_assets.ml.registry import CHAMPION, Registry
    from smartstream_assets.ml.stream import run_stream
    from smartstream_assets.producers.vitals import batch_key, to_jsonl
    from smartstream_assets.tables import load_tables

    spec = load_tables()["vitals"]
    registry = Registry(env["MLFLOW_TRACKING_URI"])
    version = registry.version(VITALS_DOMAIN.registered_model, CHAMPION).version
    pipeline = registry.load_pipeline(VITALS_DOMAIN.registered_model, version)
    score = stream_scorer(pipeline, scoring.model_input_columns(pipeline, VITALS_DOMAIN.features))
    rows = population_rows(max(1, big // 24), 48).head(2 * big)
    out = {}
    for i, label in enumerate(("fresh state", "with history")):
        key = PREFIX + batch_key(datetime(2026, 11, 25, tzinfo=timezone.utc) + timedelta(minutes=i), 900000 + i)
        lake.write_bytes(key, to_jsonl(rows.iloc[i * big : (i + 1) * big]))
        t = time.perf_counter()
        run = run_stream(lake, spec, [key], domain="vitals", settings=stream_settings(), score=score, model_version=version)
        seconds = time.perf_counter() - t
        out[label] = (run.outcomes[0].scored, seconds)
    return out


def one_run_overhead(env: dict, lake, tmp: Path) -> dict:
    """`dagster asset materialize` of one one-message object: wall time and the scoring time it reports."""
    import dagster as dg

    from smartstream_assets.producers.vitals import batch_key, to_jsonl

    home = tmp / "home-cli"
    instance_yaml(home)
    env = dict(env, DAGSTER_HOME=str(home))
    rows = population_rows(1, 6)
    walls = []
    for i in range(3):
        rel = batch_key(datetime(2026, 11, 26, tzinfo=timezone.utc) + timedelta(minutes=i), 990000 + i)
        lake.write_bytes(PREFIX + rel, to_jsonl(rows.iloc[[i]]))
        with dg.DagsterInstance.from_config(str(home)) as instance:
            instance.add_dynamic_partitions("vitals_batches", [rel])
        t = time.perf_counter()
        subprocess.run([DAGSTER, "asset", "materialize", "-m", "smartstream_assets", "--select", "vitals/scores", "--partition", rel],
                       env=env, cwd=ROOT, check=True, capture_output=True, text=True)  # fmt: skip
        walls.append(time.perf_counter() - t)
    stats = run_stats(home, job=None)  # the CLI runs an implicit asset job
    return {"wall_s": statistics.median(walls), "run_s": stats["run_s"], "scoring_s": stats["scoring_s"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=180, help="how long the producer writes, one batch a second")
    parser.add_argument("--rate", type=int, default=30, help="messages per batch")
    parser.add_argument("--drain", type=int, default=120, help="seconds to wait for the last scores after the producer stops")
    parser.add_argument("--lakes", default="local,s3")
    parser.add_argument("--modes", default="strict,adaptive,loop")
    parser.add_argument("--big", type=int, default=100_000, help="messages in the one-object throughput measurement")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (instances, lakes, logs) and print it")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore")
    from smartstream_assets import local_stack
    from smartstream_assets.lake import LocalLake, S3Lake

    results, extras = [], {}
    import contextlib

    with contextlib.nullcontext(tempfile.mkdtemp(prefix="smartstream-vitals-latency-")) if args.keep else tempfile.TemporaryDirectory(prefix="smartstream-vitals-latency-") as tmp:
        tmp = Path(tmp)
        if args.keep:
            print(f"keeping {tmp}")
        base = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSTREAM_")}
        base.update(MLFLOW_TRACKING_URI=f"sqlite:///{tmp}/mlflow.db", OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
        base.pop("MLFLOW_REGISTRY_URI", None)
        print("training the champion (2 trials) ...", flush=True)
        train(base, tmp)
        patients = max(1, args.rate * 2)  # each batch: half the patients' next reading
        rows = population_rows(patients, args.seconds * args.rate // patients + 2)
        server = None
        try:
            for lake_name in args.lakes.split(","):
                if lake_name == "s3":
                    server = local_stack.start_seaweedfs(tmp / "s3", "benchkey", "benchsecret-0123456789")
                    aws = server.aws_env()
                for mode in args.modes.split(","):
                    if lake_name == "s3":
                        lake_url = f"s3://{server.bucket}/{mode}"
                        os.environ.update(aws)
                        lake = S3Lake(server.bucket, mode)
                        env = dict(base, **aws, SMARTSTREAM_LAKE=lake_url)
                    else:
                        lake = LocalLake(tmp / f"lake-{mode}")
                        env = dict(base, SMARTSTREAM_LAKE=str(tmp / f"lake-{mode}"))
                    print(f"{lake_name} / {mode}: producing for {args.seconds} s ...", flush=True)
                    if mode == "loop":
                        r = loop_mode(env, lake, rows, args)
                    else:
                        extra = {"SMARTSTREAM_STREAM_BATCHES_PER_RUN": "1", "SMARTSTREAM_STREAM_RUNS_IN_FLIGHT": "100000"} if mode == "strict" else {}
                        r = dagster_mode(f"{lake_name}-{mode}", env, lake, rows, args, tmp, extra)
                    r.update(lake=lake_name, mode=mode)
                    results.append(r)
                    print(json.dumps(r), flush=True)
                if lake_name == "local":
                    env = dict(base, SMARTSTREAM_LAKE=str(tmp / "lake-throughput"))
                    os.environ.update(MLFLOW_TRACKING_URI=base["MLFLOW_TRACKING_URI"])
                    extras["throughput"] = throughput(env, LocalLake(tmp / "lake-throughput"), args.big)
                    extras["one_run"] = one_run_overhead(env, LocalLake(tmp / "lake-throughput"), tmp)
        finally:
            if server is not None:
                server.stop()

    print()
    print(f"producer: 1 batch/s of {args.rate} messages for {args.seconds} s; drain {args.drain} s")
    print(f"{'lake':<7}{'mode':<10}{'batches':>8}{'late':>6}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'runs':>6}{'obj/run':>8}{'run s':>7}{'queue s':>8}{'score s':>8}")
    for r in results:
        mark = ">" if r["censored"] else " "  # batches never scored: at least the time waited
        print(f"{r['lake']:<7}{r['mode']:<10}{r['batches']:>8}{r['missing']:>6}{mark}{r['p50']:>7.1f}{mark}{r['p95']:>7.1f}{mark}{r['max']:>7.1f}"
              f"{r['runs']:>6}{r['objects_per_run']:>8.1f}{r['run_s']:>7.1f}{r['queue_s']:>8.1f}{r['scoring_s']:>8.2f}")  # fmt: skip
    print("(late: batches with no scores within the drain, counted at the time waited: '>' marks lower bounds;")
    print(" run s / queue s / score s: medians of the successful Dagster runs;")
    print(" loop: one process, champion loaded once; score s = one polling cycle)")
    strict = {r["lake"]: r for r in results if r["mode"] == "strict"}
    for r in results:
        if r["mode"] != "strict" and r["lake"] in strict and strict[r["lake"]]["p95"] == strict[r["lake"]]["p95"]:
            print(f"{r['lake']} {r['mode']}: p95 {strict[r['lake']]['p95'] / r['p95']:.1f}x lower than strict (one run per object){', at least' if strict[r['lake']]['censored'] else ''}")
    if "throughput" in extras:
        for label, (n, s) in extras["throughput"].items():
            print(f"inside one run, {label}: {n:,} messages in {s:.2f} s = {n / s:,.0f} messages/s (target >= 20,000)")
        o = extras["one_run"]
        print(f"one run of one message via the CLI: {o['wall_s']:.1f} s wall, {o['run_s']:.1f} s run, {o['scoring_s']:.3f} s scoring "
              f"-> fixed overhead {o['wall_s'] - o['scoring_s']:.1f} s per run")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
