"""ICU vital signs: a generated patient population, and the seed's streaming producer.

``population`` simulates hourly readings of ICU patients (HR, O2Sat, Temp, SBP, MAP, DBP,
Resp with the gaps real charts have, Age, Gender, hours since admission). A few percent
of patients turn septic: over the 12 hours before onset their heart and breathing rates
and temperature rise and their pressures and saturation fall; ``SepsisLabel`` is 1 from
6 hours before onset, as PhysioNet 2019 labels it.

``stream_vitals`` is the seed's producer with S3 as the topic: rows become JSON-lines
messages, one micro-batch object every ``batch_seconds`` under ``YYYY/MM/DD/HH/`` (the
hour it was sent), ``rate`` messages a second, until the rows run out, ``batches`` is
reached, or Ctrl-C: an interrupt only stops the loop after the current batch has been
written whole (each object is one PUT: a batch is in the lake entirely or not at all).
The required columns are checked before anything is sent, and the error names the
missing ones.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ..ml.vitals import VITALS
from .base import RawObject

MESSAGE_COLUMNS = ("patient_id", "ts", *VITALS, "Age", "Gender", "ICULOS")
REQUIRED_COLUMNS = ("patient_id", *VITALS, "Age", "Gender", "ICULOS")  # ts is made from ICULOS when absent
LABEL = "SepsisLabel"
LABELLED_START = datetime(2026, 11, 16, tzinfo=timezone.utc)
LABELLED_DAYS = 4
LABELLED_PATIENTS_PER_DAY = 60
LIVE_START = datetime(2026, 11, 24, tzinfo=timezone.utc)
LIVE_PATIENTS = 30
LIVE_BATCHES = 12  # the sample's micro-batches: one every 15 minutes over 3 hours

# normal means and spreads, the change at onset (12 h ramp), and how often a value is charted
NORMAL = {"HR": (84, 12), "O2Sat": (97, 2), "Temp": (36.9, 0.5), "SBP": (122, 16), "MAP": (82, 10), "DBP": (63, 9), "Resp": (18, 4)}
SEPTIC = {"HR": 22, "O2Sat": -3.5, "Temp": 1.3, "SBP": -18, "MAP": -13, "DBP": -9, "Resp": 7}
CHARTED = {"HR": 0.92, "O2Sat": 0.88, "Temp": 0.35, "SBP": 0.8, "MAP": 0.85, "DBP": 0.8, "Resp": 0.87}
SEPTIC_SHARE = 0.08


class ProducerError(ValueError):
    """The rows cannot be streamed (missing columns, bad values, bad settings)."""


def population(n_patients: int, *, seed, start: datetime, id_prefix: str = "P", stay_hours=(18, 60), labelled: bool = True) -> pd.DataFrame:
    """Hourly readings of ``n_patients`` admitted over one day from ``start`` (seeded)."""
    rng = np.random.default_rng(seed)
    frames = []
    for p in range(n_patients):
        hours = int(rng.integers(*stay_hours))
        admitted = start + timedelta(minutes=int(rng.integers(0, 24 * 60)))
        admitted = admitted.replace(second=0, microsecond=0)
        septic = rng.random() < SEPTIC_SHARE
        onset = int(rng.integers(max(8, hours // 2), hours + 1)) if septic else None
        t = np.arange(hours)
        ramp = np.clip((t - (onset - 12)) / 12, 0, 1) if septic else np.zeros(hours)
        base = {v: rng.normal(mean, sd * 0.6) for v, (mean, sd) in NORMAL.items()}
        row = {"patient_id": f"{id_prefix}{p:05d}", "ICULOS": t + 1}
        for v, (_, sd) in NORMAL.items():
            values = base[v] + SEPTIC[v] * ramp + rng.normal(0, sd * 0.4, hours)
            values = np.where(rng.random(hours) < CHARTED[v], values, np.nan)
            row[v] = np.round(values, 1)
        frame = pd.DataFrame(row)
        frame["O2Sat"] = frame["O2Sat"].clip(upper=100)
        frame["ts"] = [(admitted + timedelta(hours=int(h))).strftime("%Y-%m-%dT%H:%M:%SZ") for h in t]
        frame["Age"] = float(np.clip(round(rng.normal(62, 16)), 18, 95))
        frame["Gender"] = int(rng.integers(0, 2))
        if labelled:
            frame[LABEL] = (t >= onset - 6).astype(int) if septic else 0
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    return out[[*MESSAGE_COLUMNS, *([LABEL] if labelled else [])]]


def to_jsonl(frame: pd.DataFrame) -> bytes:
    """One JSON object per row; NaN (no reading charted) is sent as null, never as a made-up value."""
    if frame.empty:
        return b""
    return frame.to_json(orient="records", lines=True).rstrip("\n").encode() + b"\n"


def batch_key(sent: datetime, seq: int) -> str:
    sent = sent.astimezone(timezone.utc)
    return f"{sent:%Y/%m/%d/%H}/vitals-{sent:%Y%m%dT%H%M%S}-{seq:06d}.jsonl"


class VitalsLabelledProducer:
    """The sample history of ``vitals_labelled``: 4 days of 60 admissions, a file a day."""

    def __init__(self, spec, seed: int = 42):
        self.spec, self.seed = spec, seed

    def history(self) -> list[RawObject]:
        out = []
        for day in range(LABELLED_DAYS):
            start = LABELLED_START + timedelta(days=day)
            frame = population(LABELLED_PATIENTS_PER_DAY, seed=[self.seed, day], start=start, id_prefix=f"H{day}")
            out.append(RawObject(f"{start:%Y/%m/%d}/00/vitals-labelled-{start:%Y%m%d}.jsonl", to_jsonl(frame)))
        return out


class VitalsProducer:
    """The sample history of ``vitals``: 30 patients' readings of the first 3 hours of
    2026-11-24 (their earlier hours included), cut into 12 micro-batches of 15 minutes."""

    def __init__(self, spec, seed: int = 42):
        self.spec, self.seed = spec, seed

    def history(self) -> list[RawObject]:
        frame = population(LIVE_PATIENTS, seed=[self.seed, 99], start=LIVE_START - timedelta(days=1), id_prefix="L", labelled=False)
        ts = pd.to_datetime(frame["ts"], utc=True)
        out = []
        for i in range(LIVE_BATCHES):
            sent = LIVE_START + timedelta(minutes=15 * (i + 1))
            upper = pd.Timestamp(sent)
            lower = pd.Timestamp(LIVE_START - timedelta(days=2)) if i == 0 else pd.Timestamp(sent - timedelta(minutes=15))
            rows = frame.loc[(ts >= lower) & (ts < upper)]
            out.append(RawObject(batch_key(sent, i), to_jsonl(rows)))
        return out


def read_rows(path) -> pd.DataFrame:
    """Rows to stream from a CSV (or .csv.gz): the required columns checked first."""
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ProducerError(f"cannot read {path}: {exc}") from None
    return prepare_rows(frame, source=str(path))


def prepare_rows(frame: pd.DataFrame, *, source: str = "the rows", start: datetime | None = None) -> pd.DataFrame:
    """The message columns of ``frame``, in stream order (per time, then patient). A frame
    without ``ts`` gets one per patient-hour: ``start`` (default: now, on the hour) + ICULOS
    hours, so a patient's readings keep their order and (patient_id, ts) stays unique."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ProducerError(f"{source} lacks the required column(s) {', '.join(missing)} (needs {', '.join(REQUIRED_COLUMNS)})")
    frame = frame.copy()
    if "ts" not in frame.columns:
        start = (start or datetime.now(timezone.utc)).replace(minute=0, second=0, microsecond=0)
        iculos = pd.to_numeric(frame["ICULOS"], errors="coerce")
        if iculos.isna().any():
            raise ProducerError(f"{source}: {int(iculos.isna().sum())} row(s) have no numeric ICULOS to time them by")
        frame["ts"] = (pd.Timestamp(start) + pd.to_timedelta(iculos, unit="h")).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    order = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    if order.isna().any():
        raise ProducerError(f"{source}: {int(order.isna().sum())} row(s) have a ts that is not an ISO-8601 time")
    frame = frame.assign(_t=order).sort_values(["_t", "patient_id"], kind="stable").drop(columns="_t")
    return frame[list(MESSAGE_COLUMNS)].reset_index(drop=True)


def stream_vitals(
    lake,
    spec,
    rows: pd.DataFrame,
    *,
    rate: float,
    batch_seconds: float,
    batches: int = 0,
    log: Callable[[str], None] = print,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> list[str]:
    """Write ``rows`` as micro-batches of ``rate * batch_seconds`` messages, one every
    ``batch_seconds``, until the rows run out, ``batches`` objects (0: no limit) or SIGINT
    (then after the current batch). Returns the keys written."""
    if rate <= 0 or batch_seconds <= 0:
        raise ProducerError(f"--rate and --batch-seconds must be > 0 (got {rate}, {batch_seconds})")
    size = max(1, int(round(rate * batch_seconds)))
    stop = {"asked": False}
    previous = None

    def ask_to_stop(signum, frame):  # Ctrl-C: finish the batch in hand, then stop
        stop["asked"] = True
        log("interrupted: stopping after the current batch")

    try:
        previous = signal.signal(signal.SIGINT, ask_to_stop)
    except ValueError:  # not the main thread: no signal handling, stop by batches / rows
        previous = None
    written: list[str] = []
    sent = 0
    try:
        for seq, begin in enumerate(range(0, len(rows), size)):
            started = time.monotonic()
            key = spec.raw_prefix + batch_key(now(), seq)
            batch = rows.iloc[begin : begin + size]
            lake.write_bytes(key, to_jsonl(batch))
            written.append(key)
            sent += len(batch)
            log(f"batch {seq + 1}: {len(batch)} messages -> {lake.describe(key)}")
            if stop["asked"] or (batches and len(written) >= batches) or begin + size >= len(rows):
                break
            wait = batch_seconds - (time.monotonic() - started)
            if wait > 0:
                sleep(wait)
            if stop["asked"]:
                break
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    log(f"sent {sent} messages in {len(written)} batch(es)")
    return written
