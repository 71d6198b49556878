"""The employees closed loop, timed on a real local stack: drifted CDC lands in S3 ... the
gate holds the retrained candidate for approval.

    .venv/bin/python benchmarks/closed_loop.py            # ~10 min in all; the timed part target < 5 min
    .venv/bin/python benchmarks/closed_loop.py --keep     # leave the stack (and the temp folder) for inspection
    .venv/bin/python benchmarks/closed_loop.py --seed 3   # other drifted data (the gate may then reject)

What it does, in a fresh temp folder:

1. ``local_stack up`` (SeaweedFS S3, MLflow server, PostgreSQL instance; the whole
   environment is taken from ``local_stack env``), and a tiny HTTP receiver on 127.0.0.1
   as ``SMARTSTREAM_ALERT_WEBHOOK`` that records when each alert arrives.
2. Preparation, not timed: the employees sample (data/raw/hr/employees) copied into the
   lake's raw zone, every ingest date ingested in one run, a champion trained (the
   retrain job: features, candidate with the default 10 trials, gate) and the latest
   month scored (the scoring job): the state a team has before the drift happens.
3. ``dagster dev`` (webserver + daemon) on that instance; ``employees_raw_sensor``,
   ``employees_scoring_sensor`` and ``employees_retrain_sensor`` and the schedule
   ``employees_monthly_scoring`` switched on (through the webserver's GraphQL API, as the
   UI does); their first ticks awaited. The scoring sensor's first tick only records where
   employees/current stands ("watching ... from now on"), which is why it is switched on
   here, after the preparation's scoring and before the drift lands.
4. The timed part: drifted CDC objects (the producer's ``Drift``: older, Pune, one pay
   tier lower, what ``smartstream produce employees --drift age=+8,city=Pune,tier=-1``
   writes) land in today's dated folder; t0 = when the last object is written. The
   instance (runs, materialisations, sensor ticks), the alert receiver and the MLflow
   registry are polled until the gate has decided on the new candidate. Writing starts a
   random 0-30 s after the raw sensor's first tick, so its wait is not always the worst case.
   The gate's decision depends on the data: with the default seed the retrained candidate
   is held for approval; with others it can be rejected (worse than the champion on its
   own holdout); either way the loop has closed and the reasons are printed.

Hop by hop, what triggers what:

  raw objects -> ingest run      employees_raw_sensor (minimum interval 30 s)
  ingest run -> trusted, current the same run (employees_ingest), queued run coordinator
  current -> scoring run         employees_scoring_sensor (minimum interval 30 s): each new
                                 materialisation of employees/current requests the scoring
                                 job for the latest complete month (run key
                                 employees-score-<month>-<storage id>, tag
                                 smartstream/trigger=new_data); the monthly schedule
                                 employees_monthly_scoring stays on beside it. Only sensor
                                 runs created after t0 that cover the drifted ingest count
  scoring -> drift report, alert the same run (employees_scoring); the drift step posts the
                                 alert before its materialisation is stored
  drift report -> retrain run    employees_retrain_sensor (minimum interval 60 s)
  retrain run -> candidate, gate the same run (employees_retrain)

Prints the hops (seconds since the previous hop and since t0), the runs involved (queue
wait, duration, step compute), the baseline measured in the same run (pure compute = the
runs' durations; orchestration overhead = total - compute), the load average at start
and end, and writes it all to benchmarks/out/closed_loop.json. Everything it started
(the stack, dagster dev's process group, the receiver) is stopped on exit, Ctrl-C or
failure, unless ``--keep`` (then the stack stays up; dagster dev is stopped).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PY = sys.executable
DAGSTER = str(Path(sys.executable).with_name("dagster"))
OUT = ROOT / "benchmarks" / "out" / "closed_loop.json"
TARGET_SECONDS = 300.0

RAW_SENSOR = "employees_raw_sensor"
RETRAIN_SENSOR = "employees_retrain_sensor"
SCORING_SENSOR = "employees_scoring_sensor"
SCORING_SCHEDULE = "employees_monthly_scoring"
INGEST_JOB, SCORING_JOB, RETRAIN_JOB = "employees_ingest", "employees_scoring", "employees_retrain"
WEBHOOK_PATH = "/hooks/smartstream-closed-loop"

# Preparation, in a child process on the stack's environment (its own memory, its own
# MLflow and Dagster state): what `make demo` does, for the employees domain only.
PREPARE = r"""
import json, sys, time
import dagster as dg
from _devserver import wait_for_ui
from smartstream_assets.local_stack import free_port
from smartstream_assets import ingestion
from smartstream_assets.definitions import defs
from smartstream_assets.demo import SAMPLE_DIR
from smartstream_assets.domains.employees import ATTRITION, PLUGIN
from smartstream_assets.keys import asset_keys, table_asset_keys
from smartstream_assets.lake import lake_from_url
from smartstream_assets.tables import load_tables

spec = load_tables()["employees"]
lake = lake_from_url()
t = time.perf_counter()
copied = 0
for path in sorted((SAMPLE_DIR / spec.raw_prefix).rglob("*")):
    if path.is_file():
        lake.write_bytes(path.relative_to(SAMPLE_DIR).as_posix(), path.read_bytes())
        copied += 1
print(f"  seeded {copied} sample objects into {lake.describe(spec.raw_prefix)} in {time.perf_counter() - t:.1f}s", flush=True)
days = sorted(d for d in ingestion.raw_objects_by_date(lake, spec) if d >= spec.start_date)
keys = asset_keys(ATTRITION)
partition = ATTRITION.scoring_cadence.partitions_def().get_last_partition_key()
steps = [
    (f"ingestion, ingest dates {days[0]}...{days[-1]} in one run", dg.AssetSelection.assets(*table_asset_keys("employees")),
     {"dagster/asset_partition_range_start": days[0].isoformat(), "dagster/asset_partition_range_end": days[-1].isoformat()}, None),
    ("champion: features, candidate, gate", dg.AssetSelection.assets(keys["features"], keys["model"], keys["deployment"]), {}, None),
    (f"scoring of {partition}: features, anomalies, predictions, drift report, forecast, dashboard",
     dg.AssetSelection.assets(keys["features"], keys["anomaly"], keys["predictions"], keys["drift"], *PLUGIN.load_extras().scoring_keys),
     {}, partition),
]
with dg.DagsterInstance.get() as instance:
    for title, selection, tags, key in steps:
        t = time.perf_counter()
        result = dg.materialize(list(defs.assets), selection=selection, instance=instance, resources=defs.resources,
                                tags=tags, partition_key=key, raise_on_error=False)
        print(f"  {title}: {'ok' if result.success else 'FAILED'} in {time.perf_counter() - t:.1f}s", flush=True)
        if not result.success:
            sys.exit(1)
    drift = instance.fetch_materializations(keys["drift"], limit=1).records[0].asset_materialization.metadata
    gate = instance.fetch_materializations(keys["deployment"], limit=1).records[0].asset_materialization.metadata
    print(json.dumps({"partition": partition, "drift_share": drift["drift_share"].value,
                      "prediction_drift": drift["prediction_drift"].value, "champion": str(gate["candidate_version"].value),
                      "gate": str(gate["status"].value)}))
"""


# ------------------------------------------------------------------ the benchmark


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=5, help="drifted CDC objects written (default 5)")
    parser.add_argument("--events", type=int, default=600, help="changes per object (default 600)")
    parser.add_argument("--seed", type=int, default=7, help="the drifted producer's seed (default 7; the CLI's default is the time)")
    parser.add_argument("--timeout", type=float, default=900, help="give up this many seconds after t0 (default 900)")
    parser.add_argument("--keep", action="store_true", help="leave the stack running and the temp folder for inspection")
    args = parser.parse_args()
    # cleanup runs in the finally blocks below, on Ctrl-C and on SIGTERM (also when started
    # in the background by a shell, which leaves SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)

    tmp = Path(tempfile.mkdtemp(prefix="smartstream-closed-loop-"))
    stack_dir, started = tmp / "stack", {}
    print(f"work folder {tmp}", flush=True)
    try:
        return run(args, tmp, stack_dir, started)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        cleanup(tmp, stack_dir, started, keep=args.keep)


def run(args, tmp: Path, stack_dir: Path, started: dict) -> int:
    print("starting the local stack (SeaweedFS, MLflow, PostgreSQL) ...", flush=True)
    started["stack"] = True
    t = time.perf_counter()
    up = subprocess.run([PY, "-m", "smartstream_assets.local_stack", "--dir", str(stack_dir), "up"], cwd=ROOT,
                        capture_output=True, text=True)  # fmt: skip
    if up.returncode != 0:
        raise SystemExit(f"local_stack up failed:\n{up.stdout[-2000:]}{up.stderr[-2000:]}")
    stack = stack_env(stack_dir)
    print(f"  up in {time.perf_counter() - t:.0f}s; its environment: {', '.join(sorted(stack))}", flush=True)

    receiver = AlertReceiver()
    started["receiver"] = receiver
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTSTREAM_", "MLFLOW_", "AWS_", "DAGSTER_"))}
    env.update(stack, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1", SMARTSTREAM_ALERT_WEBHOOK=receiver.url)
    os.environ.clear()
    os.environ.update(env)  # this process reads the same instance, lake and registry

    print("preparing (not timed): employees sample seeded, ingested, champion trained, latest month scored ...", flush=True)
    t = time.perf_counter()
    with open(tmp / "prepare.log", "w") as prep_log:  # Dagster's run logs
        prep = subprocess.run([PY, "-c", PREPARE], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=prep_log, text=True)
    lines = prep.stdout.rstrip().splitlines()
    for line in lines[:-1]:
        if line.startswith("  "):  # ours; MLflow prints a "View run" line per trial
            print(line)
    if prep.returncode != 0 or not lines:
        raise SystemExit(f"preparation failed ({prep.returncode}):\n{(tmp / 'prepare.log').read_text()[-3000:]}")
    before = json.loads(lines[-1])
    prepare_seconds = time.perf_counter() - t
    print(f"  prepared in {prepare_seconds:.0f}s: champion v{before['champion']} ({before['gate']}), {before['partition']} "
          f"scored, drift share {before['drift_share']:.2f}, prediction drift {before['prediction_drift']}", flush=True)  # fmt: skip

    port = free_port()
    log_path = tmp / "dagster-dev.log"
    log = open(log_path, "w")
    started["dev_log"] = log
    print(f"starting dagster dev on 127.0.0.1:{port} (webserver + daemon, the PostgreSQL instance) ...", flush=True)
    dev = subprocess.Popen(
        [DAGSTER, "dev", "-m", "smartstream_assets", "-h", "127.0.0.1", "-p", str(port)], env=env, cwd=ROOT,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    started["dev"] = dev
    wait_for_ui(port, 240, dev, log_path)
    ui = GraphQL(port)
    automation = ui.switch_on([RAW_SENSOR, SCORING_SENSOR, RETRAIN_SENSOR], [SCORING_SCHEDULE])
    for name, info in automation.items():
        print(f"  switched on {name}: {info['what']}", flush=True)

    import dagster as dg

    instance = dg.DagsterInstance.get()
    started["instance"] = instance
    switched_on = time.time()
    # the scoring sensor's first tick sets its cursor at employees/current as it stands now
    # (after the preparation's runs): only what lands from then on is scored
    for name in (RAW_SENSOR, SCORING_SENSOR, RETRAIN_SENSOR):
        tick = wait_for_tick(instance, name, after=switched_on - 5, timeout=240)
        print(f"  {name} first tick: {tick.status.value}: {tick.skip_reason or tick.run_ids}", flush=True)
        if tick.run_ids:
            raise SystemExit(f"{name} requested runs before any drift: the preparation did not leave the instance settled")

    # Land the drift at a random phase of the raw sensor's interval, not right after a tick.
    phase = random.SystemRandom().uniform(0, automation[RAW_SENSOR]["interval"])
    time.sleep(phase)
    load_start = os.getloadavg()
    written, t_first, t0 = produce_drift(args.files, args.events, args.seed)
    print(f"\nt0 = {iso(t0)}: {len(written)} drifted CDC objects written ({t0 - t_first:.2f}s with reading the current state) "
          f"({args.events} changes each, seed {args.seed}, {phase:.0f}s after the raw sensor's first tick); load {fmt_load(load_start)}", flush=True)  # fmt: skip

    watch = LoopWatch(instance, receiver, files=len(written), t_first=t_first, t0=t0)
    outcome = watch.follow(timeout=args.timeout)
    load_end = os.getloadavg()
    result = report(watch, outcome, automation, before, args, load_start, load_end, prepare_seconds, phase)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten {OUT.relative_to(ROOT)}")
    return 0 if outcome == "closed" else 1


# ------------------------------------------------------------------ following the loop


class LoopWatch:
    """Polls the instance, the receiver and the MLflow registry; records when each hop happened."""

    def __init__(self, instance, receiver, *, files: int, t_first: float, t0: float):
        from smartstream_assets.domains.employees import ATTRITION
        from smartstream_assets.keys import asset_keys, table_asset_keys
        from smartstream_assets.ml.registry import Registry
        from smartstream_assets.sensors import scoring_watch_key

        self.instance, self.receiver = instance, receiver
        self.files, self.t_first, self.t0 = files, t_first, t0
        self.keys = asset_keys(ATTRITION)
        self.trusted_key, self.current_key = table_asset_keys("employees")
        self.watched_key = scoring_watch_key(ATTRITION)  # what the scoring sensor watches (employees/current)
        self.watched_storage_id = None  # its materialisation by the drifted ingest run
        self.model = ATTRITION.registered_model
        self.client = Registry().client
        self.versions_before = {v.version for v in self.client.search_model_versions(f"name='{self.model}'")}
        self.partition = ATTRITION.scoring_cadence.partitions_def().get_last_partition_key()
        self.hops: dict[str, dict] = {}
        self.runs: dict[str, list] = {INGEST_JOB: [], SCORING_JOB: [], RETRAIN_JOB: []}
        self.ingest_run_id = self.scoring_run_id = self.retrain_run_id = None
        self.gate: dict = {}

    def follow(self, timeout: float) -> str:
        """Until the gate has decided on a candidate registered after t0 ("closed"), a run of
        the loop failed ("failed: ...") or ``timeout`` seconds after t0 ("timeout")."""
        deadline = self.t0 + timeout
        shown = set()
        while time.time() < deadline:
            state = self.poll()
            for name, hop in sorted(self.hops.items(), key=lambda kv: kv[1]["at"]):
                if name not in shown:
                    shown.add(name)
                    print(f"  +{hop['at'] - self.t0:6.1f}s  {name}", flush=True)
            if state:
                return state
            time.sleep(1.0)
        return "timeout"

    def poll(self) -> str | None:
        import dagster as dg

        after = datetime.fromtimestamp(self.t_first - 1, timezone.utc)
        for job in self.runs:
            self.runs[job] = sorted(self.instance.get_run_records(dg.RunsFilter(job_name=job, created_after=after)),
                                    key=lambda r: r.create_timestamp)  # fmt: skip
            for record in self.runs[job]:
                if record.dagster_run.status in (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED):
                    return f"failed: {job} run {record.dagster_run.run_id} {record.dagster_run.status.value}"

        # ingestion: the run of today's date that saw every drifted object (a tick in the
        # middle of the writes would have requested one for the first few as well)
        ingest = [r for r in self.runs[INGEST_JOB] if r.dagster_run.tags.get("smartstream/raw_objects") == str(self.files)]
        ingest = ingest[-1] if ingest else None
        if ingest is not None:
            self.ingest_run_id = ingest.dagster_run.run_id
            self.hop("raw sensor requested ingestion", ingest.create_timestamp.timestamp(),
                     f"{RAW_SENSOR}: run {short(ingest)} for {ingest.dagster_run.tags.get('dagster/partition')}, {self.files} objects")  # fmt: skip
            events = self.materialisations(ingest.dagster_run.run_id)
            if self.trusted_key in events:
                self.hop("trusted materialised", events[self.trusted_key], "employees/trusted, today's ingest date")
            if self.current_key in events:
                self.hop("current materialised", events[self.current_key], "employees/current")
            if self.watched_key in events and self.watched_storage_id is None:
                self.watched_storage_id = self.materialisations(ingest.dagster_run.run_id, storage_ids=True)[self.watched_key]

        scoring = self.loop_scoring_run()
        if scoring is not None:
            self.scoring_run_id = scoring.dagster_run.run_id
            tags = scoring.dagster_run.tags
            self.hop("scoring sensor requested scoring", scoring.create_timestamp.timestamp(),
                     f"{SCORING_SENSOR}: run {short(scoring)} for {tags.get('dagster/partition')}, "
                     f"trigger {tags.get('smartstream/trigger')}, run key {tags.get('dagster/run_key')}")  # fmt: skip
            events = self.materialisations(scoring.dagster_run.run_id)
            if self.keys["predictions"] in events:
                self.hop("predictions materialised", events[self.keys["predictions"]], f"employees/predictions {self.partition}")
            if self.keys["drift"] in events:
                meta = self.latest_meta(self.keys["drift"])
                self.hop("drift report materialised", events[self.keys["drift"]],
                         f"drift share {float(meta['drift_share'].value):.2f}, drifted: {', '.join(meta['drifted'].value) or 'none'}")  # fmt: skip
        for alert in self.receiver.after(self.t0):
            if alert["kind"] == "drift_detected":
                self.hop("alert received (drift_detected)", alert["at"], f"webhook: {alert['title']}")
            elif alert["kind"] in ("held_for_approval", "rejected", "promoted"):
                self.hop(f"alert received ({alert['kind']})", alert["at"], f"webhook: {alert['title']}")

        retrain = next((r for r in self.runs[RETRAIN_JOB] if r.dagster_run.tags.get("dagster/sensor_name") == RETRAIN_SENSOR), None)
        if retrain is not None:
            self.retrain_run_id = retrain.dagster_run.run_id
            tags = retrain.dagster_run.tags
            self.hop("retrain sensor requested training", retrain.create_timestamp.timestamp(),
                     f"{RETRAIN_SENSOR}: run {short(retrain)}, trigger {tags.get('smartstream/trigger')}, "
                     f"drift share {tags.get('smartstream/drift_share')}")  # fmt: skip
            new = [v for v in self.client.search_model_versions(f"name='{self.model}'") if v.version not in self.versions_before]
            if new:
                v = max(new, key=lambda v: int(v.version))
                self.hop("candidate registered (MLflow)", v.creation_timestamp / 1000, f"{self.model} v{v.version}")
            events = self.materialisations(retrain.dagster_run.run_id)
            if self.keys["deployment"] in events:
                meta = self.latest_meta(self.keys["deployment"])
                self.gate = {k: str(v.value) for k, v in meta.items() if k in ("status", "deployment_status", "candidate_version", "champion_before", "reasons")}
                self.hop(f"gate decided: {self.gate.get('status')}", events[self.keys["deployment"]],
                         f"employees/attrition_champion on v{self.gate.get('candidate_version')} (champion v{self.gate.get('champion_before')})")  # fmt: skip
                if retrain.dagster_run.status == dg.DagsterRunStatus.SUCCESS:
                    return "closed"
        return None

    def loop_scoring_run(self):
        """The scoring run the scoring sensor requested for the drifted data: created after t0
        by the sensor (tag smartstream/trigger=new_data, run key employees-score-<month>-<storage
        id>) for a materialisation of employees/current at or after the drifted ingest's. A
        run the preparation's or an earlier partial ingest caused does not qualify."""
        if self.watched_storage_id is None:
            return None
        for record in self.runs[SCORING_JOB]:  # oldest first
            tags = record.dagster_run.tags
            if record.create_timestamp.timestamp() < self.t0 or tags.get("dagster/sensor_name") != SCORING_SENSOR:
                continue
            if tags.get("smartstream/trigger") != "new_data":
                continue
            run_key = tags.get("dagster/run_key", "")
            storage_id = run_key.rsplit("-", 1)[-1]
            if run_key.startswith("employees-score-") and storage_id.isdigit() and int(storage_id) >= self.watched_storage_id:
                return record
        return None

    def hop(self, name: str, at: float, detail: str) -> None:
        if name not in self.hops:
            self.hops[name] = {"at": at, "detail": detail}

    def materialisations(self, run_id: str, storage_ids: bool = False) -> dict:
        """asset key -> time (or event storage id) of its (first) materialisation in the run."""
        import dagster as dg

        found = {}
        for record in self.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1000).records:
            key = record.event_log_entry.dagster_event.asset_key
            found.setdefault(key, record.storage_id if storage_ids else record.event_log_entry.timestamp)
        return found

    def latest_meta(self, key):
        return self.instance.fetch_materializations(key, limit=1).records[0].asset_materialization.metadata

    def run_table(self) -> list[dict]:
        """Every run of the loop (the ingest runs of today's date, the scoring runs the drift
        caused, the retrain run): queue wait, duration, and each step's compute (STEP_START ->
        STEP_SUCCESS). The preparation's runs are older than the first drifted write."""
        import dagster as dg

        chosen = [r.dagster_run.run_id for job in (INGEST_JOB, SCORING_JOB) for r in self.runs[job]]
        if self.scoring_run_id and self.scoring_run_id not in chosen:
            chosen.append(self.scoring_run_id)
        if self.retrain_run_id:
            chosen.append(self.retrain_run_id)
        rows = []
        for run_id in chosen:
            run = self.instance.get_run_record_by_id(run_id)  # fresh: start / end times
            steps, starts = {}, {}
            for e in self.instance.all_logs(run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}):
                if e.dagster_event.event_type == dg.DagsterEventType.STEP_START:
                    starts[e.step_key] = e.timestamp
                elif e.step_key in starts:
                    steps[e.step_key] = e.timestamp - starts[e.step_key]
            created = run.create_timestamp.timestamp()
            rows.append({
                "job": run.dagster_run.job_name, "run_id": run_id, "status": run.dagster_run.status.value,
                "partition": run.dagster_run.tags.get("dagster/partition"), "trigger": trigger_of(run.dagster_run.tags),
                "created_at": created, "started_at": run.start_time, "ended_at": run.end_time,
                "created_s": created - self.t0, "queued_s": (run.start_time - created) if run.start_time else None,
                "run_s": (run.end_time - run.start_time) if run.start_time and run.end_time else None,
                "steps_s": sum(steps.values()), "steps": steps,
            })  # fmt: skip
        return rows

    def critical_path(self, runs: list[dict]) -> list[dict]:
        """t0 -> gate decided cut into consecutive segments (they add up to the total): the
        sensors' waits, each run's queue + launch, the compute of the steps on the path, and
        the rest of each run up to the hop (step processes starting, steps off the path
        competing for the executor and the cores)."""
        by_id = {r["run_id"]: r for r in runs}
        at = {name: hop["at"] for name, hop in self.hops.items()}
        gate = next((hop["at"] for name, hop in self.hops.items() if name.startswith("gate decided")), None)
        op = lambda role: self.keys[role].to_python_identifier()  # noqa: E731 - an asset's op (step) name
        legs = [
            (self.ingest_run_id, self.t0, "raw sensor wait (tick interval)", at.get("current materialised"), "current",
             [self.trusted_key.to_python_identifier(), self.current_key.to_python_identifier()]),
            (self.scoring_run_id, at.get("current materialised"), "scoring sensor wait (tick interval)",
             at.get("drift report materialised"), "drift report", [op("features"), op("anomaly"), op("predictions"), op("drift")]),
            (self.retrain_run_id, at.get("drift report materialised"), "retrain sensor wait (tick interval)", gate, "gate",
             [op("features"), op("model"), op("deployment")]),
        ]  # fmt: skip
        out = []
        for run_id, since, wait_label, until, what, path in legs:
            run = by_id.get(run_id)
            if run is None or since is None or until is None or run["started_at"] is None:
                break
            job = run["job"]
            compute = sum(run["steps"].get(step, 0.0) for step in path)
            out += [
                {"segment": wait_label, "seconds": run["created_at"] - since, "kind": "orchestration"},
                {"segment": f"{job}: queued + launched", "seconds": run["started_at"] - run["created_at"], "kind": "orchestration"},
                {"segment": f"{job}: steps on the path ({', '.join(s.split('__')[-1] for s in path)})", "seconds": compute, "kind": "compute"},
                {"segment": f"{job}: rest of the run up to the {what} (step processes, steps off the path)",
                 "seconds": until - run["started_at"] - compute, "kind": "orchestration"},
            ]  # fmt: skip
        return out


def trigger_of(tags) -> str:
    if "dagster/sensor_name" in tags:
        return f"sensor {tags['dagster/sensor_name']}"
    if "dagster/schedule_name" in tags:
        return f"schedule {tags['dagster/schedule_name']}"
    return "launched by hand"


def produce_drift(files: int, events: int, seed: int) -> tuple[list[str], float, float]:
    """``files`` drifted CDC objects into today's dated folder, back to back, as
    ``smartstream produce employees --drift age=+8,city=Pune,tier=-1`` writes them
    (continuing the lake's current state). Returns (keys, first write start, last write end)."""
    from smartstream_assets.lake import lake_from_url
    from smartstream_assets.producers import Drift, produce
    from smartstream_assets.tables import load_tables

    lake, spec = lake_from_url(), load_tables()["employees"]
    started = time.time()
    written = produce(lake, spec, files=files, interval=0, events=events, seed=seed,
                      drift=Drift(age_shift=8, city="Pune", payment_tier_shift=-1),
                      log=lambda line: print(f"  {line}", flush=True))  # fmt: skip
    return written, started, time.time()


# ------------------------------------------------------------------ the report


def report(watch: LoopWatch, outcome: str, automation: dict, before: dict, args, load_start, load_end, prepare_seconds, phase) -> dict:
    t0 = watch.t0
    hops = sorted(watch.hops.items(), key=lambda kv: kv[1]["at"])
    raw_every, retrain_every = automation[RAW_SENSOR]["interval"], automation[RETRAIN_SENSOR]["interval"]
    scoring_every = automation[SCORING_SENSOR]["interval"]
    triggers = {
        "raw sensor requested ingestion": f"{RAW_SENSOR}, every {raw_every:.0f}s",
        "scoring sensor requested scoring": f"{SCORING_SENSOR}, every {scoring_every:.0f}s",
        "alert received (drift_detected)": "drift step posts it",
        "retrain sensor requested training": f"{RETRAIN_SENSOR}, every {retrain_every:.0f}s",
    }
    rows, previous = [], t0
    print()
    print(f"{'hop':<37}{'since prev s':>13}{'since t0 s':>11}  {'trigger / cadence':<44}detail")
    print(f"{'drifted CDC landed (t0)':<37}{'':>13}{0.0:>11.1f}  {'producer (smartstream produce --drift)':<44}{watch.files} objects, {iso(t0)}")
    for name, hop in hops:
        trig = triggers.get(name, "webhook, same run" if name.startswith("alert") else "same run")
        rows.append({"hop": name, "at": iso(hop["at"]), "since_previous_s": hop["at"] - previous, "since_t0_s": hop["at"] - t0,
                     "trigger": trig, "detail": hop["detail"]})  # fmt: skip
        print(f"{name:<37}{hop['at'] - previous:>13.1f}{hop['at'] - t0:>11.1f}  {trig:<44}{hop['detail']}")
        previous = hop["at"]
    gate = next((h for n, h in hops if n.startswith("gate decided")), None)
    total = (gate["at"] - t0) if gate else None

    runs = watch.run_table()
    print()
    print(f"{'run':<19}{'trigger':<48}{'created +s':>11}{'queued s':>10}{'run s':>8}{'steps s':>9}  status, slowest steps")
    for r in runs:
        slow = ", ".join(f"{k.split('__')[-1]} {v:.1f}" for k, v in sorted(r["steps"].items(), key=lambda kv: -kv[1])[:3])
        print(f"{r['job']:<19}{r['trigger']:<48}{r['created_s']:>11.1f}{num(r['queued_s']):>10}{num(r['run_s']):>8}{r['steps_s']:>9.1f}  {r['status']}, {slow}")
    compute = sum(r["run_s"] or 0.0 for r in runs)

    path = watch.critical_path(runs)
    if path:
        print()
        print("the path t0 -> gate decided, cut into consecutive segments:")
        for seg in path:
            print(f"  {seg['seconds']:7.1f}s  {seg['kind']:<14}{seg['segment']}")
    path_compute = sum(seg["seconds"] for seg in path if seg["kind"] == "compute")

    print()
    print(f"outcome: {outcome}" + (f"; gate: {watch.gate.get('status')} (v{watch.gate.get('candidate_version')}, champion v{watch.gate.get('champion_before')})" if watch.gate else ""))
    if watch.gate.get("reasons"):
        print("  the gate's reasons:\n" + "\n".join(f"    {line}" for line in watch.gate["reasons"].splitlines()))
    if total is not None:
        met = total < TARGET_SECONDS
        print(f"TOTAL drifted CDC landed -> gate decided: {total:.1f}s; target < {TARGET_SECONDS:.0f}s on this {os.cpu_count()}-core machine: {'MET' if met else 'NOT met'}")
        print(f"BASELINE measured in the same run, pure compute = the {len(runs)} runs' durations (start -> end, from the instance): {compute:.1f}s")
        print(f"  orchestration overhead = total - compute = {total - compute:.1f}s")
        print(f"  stricter: compute of the steps on the path = {path_compute:.1f}s, everything else on the path = {total - path_compute:.1f}s")
    else:
        met = False
        print(f"the loop did not close within {args.timeout:.0f}s ({outcome}): target NOT met")
    print(f"load average (1, 5, 15 min): start {fmt_load(load_start)}, end {fmt_load(load_end)}; {os.cpu_count()} cores "
          "(other processes on the machine count too)")
    print()
    print("where the time goes (the triggers' intervals and cadences):")
    for name, info in automation.items():
        print(f"  {name}: {info['what']}")
    print("  run queue: the queued run coordinator dequeues every 1 s, at most 4 runs at once (the stack's dagster.yaml);")
    print("  each run starts a process that loads the code location, and its multiprocess executor one more per step")
    print(f"  {SCORING_SENSOR} requested {SCORING_JOB} for {watch.partition} (the latest complete month) on the new")
    print(f"  employees/current; {SCORING_SCHEDULE} stays on beside it (next tick {automation[SCORING_SCHEDULE]['next_tick']})")
    print("  configuration: the product's defaults (no interval shortened; the retrain run's candidate search has its default 10 trials)")
    return {
        "outcome": outcome, "total_s": total, "target_s": TARGET_SECONDS, "target_met": met, "t0": iso(t0),
        "drift": {"files": watch.files, "events_per_file": args.events, "seed": args.seed, "age_shift": 8, "city": "Pune", "payment_tier_shift": -1,
                  "random_delay_after_first_raw_tick_s": phase},
        "hops": rows, "runs": runs, "critical_path": path, "gate": watch.gate,
        "baseline": {"compute_s": compute, "orchestration_overhead_s": (total - compute) if total is not None else None,
                     "path_steps_compute_s": path_compute,
                     "definition": "compute = sum of the loop's runs' durations (start -> end) from the instance; overhead = total - compute"},
        "automation": automation,
        "scoring_trigger": f"sensor {SCORING_SENSOR} (new employees/current -> {SCORING_JOB} for the latest complete month); "
                           f"schedule {SCORING_SCHEDULE} on as well",
        "before_drift": before, "prepare_s": prepare_seconds,
        "load_average": {"start": list(load_start), "end": list(load_end)}, "cpu_count": os.cpu_count(),
        "alerts": [dict(a, at=iso(a["at"])) for a in watch.receiver.after(0)],
    }  # fmt: skip


def num(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def short(record) -> str:
    return record.dagster_run.run_id[:8]


# ------------------------------------------------------------------ the pieces


class AlertReceiver:
    """An HTTP server on 127.0.0.1 that records each POSTed alert and when it arrived."""

    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    alert = json.loads(body).get("smartstream", {})
                except ValueError:
                    alert = {}
                received.append({"at": at, "path_ok": self.path == WEBHOOK_PATH, "kind": alert.get("kind"), "title": alert.get("title"),
                                 "text": alert.get("text")})  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{WEBHOOK_PATH}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def after(self, t: float) -> list[dict]:
        return [a for a in list(self.received) if a["at"] >= t]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GraphQL:
    """The webserver's GraphQL API: what the UI does when a sensor or a schedule is switched on."""

    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"
        data = self.query(
            "{ repositoriesOrError { __typename ... on RepositoryConnection { nodes { name location { name } "
            "sensors { name minIntervalSeconds } schedules { name cronSchedule executionTimezone "
            "futureTicks(limit: 1) { results { timestamp } } } } } ... on PythonError { message } } }"
        )["repositoriesOrError"]
        if data["__typename"] != "RepositoryConnection":
            raise SystemExit(f"the webserver has no code location: {data}")
        [repo] = [n for n in data["nodes"] if any(s["name"] == RAW_SENSOR for s in n["sensors"])]
        self.repo = {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"]}
        self.sensors = {s["name"]: s for s in repo["sensors"]}
        self.schedules = {s["name"]: s for s in repo["schedules"]}

    def query(self, text: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(self.url, data=json.dumps({"query": text, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=120) as answer:
            doc = json.load(answer)
        if doc.get("errors"):
            raise SystemExit(f"GraphQL error: {doc['errors']}")
        return doc["data"]

    def switch_on(self, sensors: list[str], schedules: list[str]) -> dict:
        out = {}
        for name in sensors:
            result = self.query(
                "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename "
                "... on Sensor { sensorState { status } } ... on PythonError { message } } }",
                {"s": {**self.repo, "sensorName": name}},
            )["startSensor"]
            if result["__typename"] != "Sensor":
                raise SystemExit(f"could not start {name}: {result}")
            interval = float(self.sensors[name]["minIntervalSeconds"])
            out[name] = {"kind": "sensor", "interval": interval, "what": f"sensor, minimum interval {interval:.0f}s"}
        for name in schedules:
            result = self.query(
                "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename "
                "... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }",
                {"s": {**self.repo, "scheduleName": name}},
            )["startSchedule"]
            if result["__typename"] != "ScheduleStateResult":
                raise SystemExit(f"could not start {name}: {result}")
            info = self.schedules[name]
            ticks = info["futureTicks"]["results"]
            nxt = iso(float(ticks[0]["timestamp"])) if ticks else "?"
            out[name] = {"kind": "schedule", "cron": info["cronSchedule"], "timezone": info["executionTimezone"], "next_tick": nxt,
                         "what": f"schedule '{info['cronSchedule']}' ({info['executionTimezone'] or 'UTC'}), next tick {nxt}"}  # fmt: skip
        return out


def wait_for_tick(instance, name: str, after: float, timeout: float):
    """The first finished tick of sensor ``name`` after ``after``."""
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    deadline = time.time() + timeout
    while time.time() < deadline:
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name != name:
                continue
            ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=after, limit=5)
            done = [t for t in ticks if t.status != TickStatus.STARTED]
            if done:
                return min(done, key=lambda t: t.timestamp)
        time.sleep(1)
    raise SystemExit(f"{name} did not tick within {timeout:.0f}s of being switched on (is the daemon running?)")


def stack_env(stack_dir: Path) -> dict[str, str]:
    """Every variable ``local_stack env`` exports, whatever they are (never built by hand)."""
    out = subprocess.run([PY, "-m", "smartstream_assets.local_stack", "--dir", str(stack_dir), "env"], cwd=ROOT,
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"local_stack env failed: {out.stderr[-1500:]}")
    env = {}
    for line in out.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            name, value = words[1].split("=", 1)
            env[name] = value
    return env


def cleanup(tmp: Path, stack_dir: Path, started: dict, *, keep: bool) -> None:
    """Stop what was started, in reverse; each step even if an earlier one failed. Ctrl-C
    during cleanup is ignored so it cannot leave servers behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        dev = started.get("dev")
        if dev is not None and dev.poll() is None:
            for sig, wait in ((signal.SIGINT, 60), (signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(dev.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    dev.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if dev is not None:
            try:  # workers of runs still going belong to the same group
                os.killpg(dev.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if started.get("dev_log"):
            started["dev_log"].close()
        if started.get("instance") is not None:
            try:
                started["instance"].dispose()
            except Exception:  # noqa: BLE001 - best effort
                pass
        if started.get("receiver"):
            started["receiver"].stop()
        if started.get("stack"):
            if keep:
                print(f"\n--keep: the stack runs on; point a shell at it with\n"
                      f'    eval "$({PY} -m smartstream_assets.local_stack --dir {stack_dir} env)"\n'
                      f"and stop it with\n    {PY} -m smartstream_assets.local_stack --dir {stack_dir} down"
                      f"\n(dagster dev's log: {tmp / 'dagster-dev.log'})")  # fmt: skip
            else:
                down = subprocess.run([PY, "-m", "smartstream_assets.local_stack", "--dir", str(stack_dir), "down"], cwd=ROOT,
                                      capture_output=True, text=True)  # fmt: skip
                if down.returncode != 0:
                    print(f"local_stack down failed: {down.stderr[-1000:]}", file=sys.stderr)
                from smartstream_assets.local_stack import postgres_workdir

                pg = postgres_workdir(stack_dir)
                if pg != stack_dir / "postgres" and pg.exists():  # as root the cluster lives under /var/tmp
                    shutil.rmtree(pg, ignore_errors=True)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def _terminate(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
