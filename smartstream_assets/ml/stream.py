"""Scoring raw micro-batches as they land: no message lost, none scored twice, each
score computed from the entity's earlier readings whichever batch they came in.

The pieces, all without Dagster (``assets/vitals_stream.py`` is the thin asset):

- ``StreamState``: what the stream remembers between runs, ONE lake object written with
  compare-and-swap (``_state/stream/<domain>/state.parquet``): the recent readings of every
  entity (its ``tails``: the history the next batch's rolling features need, and what a
  replayed message is recognised by), the highest raw key scored (``high_water``) and when
  each entity was last alerted on.
- ``run_stream``: scores a run's raw objects in key order. Objects between the state's high
  water mark and the run's own that are not scored yet (a run that failed or is still
  queued) are scored first, so every object sees every earlier one as history, whatever
  order the runs execute in. Each object's scores and quarantine are written (one object
  per hour of ``ts``; rewriting one replaces it), THEN the state is committed: a run killed
  in between leaves scores that the next run rewrites identically, never a message marked
  scored without its score. A commit that loses a race reloads and starts over.
- Messages already in the state (a replayed batch, the same reading sent twice) and
  messages older than what the state remembers are quarantined with their reason, not
  scored again and not dropped.

The rolling features and the model are the caller's (``score``): vitals passes
``ml.vitals.rolling_features`` and the champion pipeline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from ..cdc import parse_object
from ..cdc.coerce import QUARANTINE_SCHEMA
from ..cdc.formats import UnreadableObject
from ..lake import Lake, LakeError, ObjectInfo, PreconditionFailed, parquet_bytes, parquet_from_bytes
from ..tables import TableSpec

_META = b"smartstream.stream"
CAS_ATTEMPTS = 20
HOUR_FORMAT = "%Y-%m-%dT%H"  # hive value of predictions/<domain>/stream/hour=...
BATCH = "_batch"  # the state's column: the raw object each remembered reading came from


def state_key(domain: str) -> str:
    return f"_state/stream/{domain}/state.parquet"


def scores_prefix(domain: str) -> str:
    return f"predictions/{domain}/stream/"


def scores_key(domain: str, hour: str, raw_key: str, raw_prefix: str) -> str:
    """One file per raw object and hour of its readings: ``hour=YYYY-MM-DDTHH/<object>.parquet``."""
    return f"{scores_prefix(domain)}hour={hour}/{_object_name(raw_key, raw_prefix)}.parquet"


def stream_quarantine_key(domain: str, raw_key: str, raw_prefix: str) -> str:
    """Beside the table's quarantine Delta table, never inside it (``quarantine/<table>/``
    is a Delta table, whose vacuum deletes every file its log does not name; table names
    cannot start with ``_``)."""
    return f"quarantine/_stream/{domain}/{_object_name(raw_key, raw_prefix)}.parquet"


def _object_name(raw_key: str, raw_prefix: str) -> str:
    rel = raw_key.removeprefix(raw_prefix)
    for ext in (".gz", ".jsonl", ".json"):
        rel = rel.removesuffix(ext)
    return rel.replace("/", "_")


@dataclass(frozen=True)
class StreamSettings:
    entity: str  # patient_id
    time: str  # ts
    columns: tuple[str, ...]  # the typed columns the state keeps (the table's)
    keep_last: int  # readings per entity the features need before a new one (window - 1)
    horizon_hours: float = 24.0  # replays recognised within this many hours of an entity's newest reading
    idle_hours: float = 7 * 24.0  # entities without a reading for this long are forgotten
    alert_threshold: float = 0.5  # probability at or above which a score is high risk
    alert_every_hours: float = 6.0  # at most one alert per entity in this many hours (reading time)


@dataclass
class StreamState:
    tails: pd.DataFrame
    high_water: str | None = None
    alerts: dict[str, str] = field(default_factory=dict)  # entity -> ts (ISO) of its last alert
    generation: int = 0
    etag: str | None = None  # the stored version this was read from (None: none stored)

    @classmethod
    def empty(cls, settings: StreamSettings) -> "StreamState":
        return cls(tails=pd.DataFrame({c: pd.Series(dtype=object) for c in (*settings.columns, BATCH)}))


def load_state(lake: Lake, key: str, settings: StreamSettings) -> StreamState:
    loaded = lake.read_versioned(key)
    if loaded is None:
        return StreamState.empty(settings)
    table = parquet_from_bytes(loaded[0])
    meta = json.loads((table.schema.metadata or {}).get(_META, b"{}"))
    tails = table.replace_schema_metadata(None).to_pandas()
    if list(tails.columns) != [*settings.columns, BATCH]:
        raise LakeError(
            f"{lake.describe(key)} keeps columns {list(tails.columns)[:-1]}, the table declares {list(settings.columns)}: "
            "the stream's state predates a change of the table; move it aside to start the stream over"
        )
    return StreamState(tails, meta.get("high_water"), dict(meta.get("alerts", {})), int(meta.get("generation", 0)), loaded[1])


def commit_state(lake: Lake, key: str, state: StreamState) -> int:
    """Write ``state`` over exactly the version it was read from; the new generation.
    Raises ``PreconditionFailed`` when another run committed meanwhile."""
    generation = state.generation + 1
    meta = {"high_water": state.high_water, "alerts": state.alerts, "generation": generation}
    table = pa.Table.from_pandas(state.tails, preserve_index=False).replace_schema_metadata({_META: json.dumps(meta).encode()})
    lake.write_bytes(key, parquet_bytes(table), **({"if_absent": True} if state.etag is None else {"if_match": state.etag}))
    return generation


# ------------------------------------------------------------------ per batch, pure


@dataclass
class Triage:
    fresh: pd.DataFrame  # rows to score, in (entity, time) order
    done: pd.DataFrame  # rows this very object scored before (a rerun of its run): nothing to do
    replayed: pd.DataFrame  # rows whose (entity, time) another object brought (or repeated in the batch)
    too_late: pd.DataFrame  # older than what the state remembers of their entity
    late: int  # fresh rows older than their entity's newest known reading (scored)


def triage(rows: pd.DataFrame, tails: pd.DataFrame, settings: StreamSettings, batch: str) -> Triage:
    """Which of object ``batch``'s typed rows to score. A (entity, time) the state holds
    from this same object was scored by an earlier attempt of this run; from another
    object (or earlier in the batch: the batch's last line of a repeated key is kept, as
    CDC's last write wins), it is a replay. A row older than the entity's newest known
    reading minus the horizon cannot be told from a replay any more, so it is held back
    (``too_late``)."""
    e, t = settings.entity, settings.time
    rows = rows.assign(_t=_utc(rows[t]))
    repeated = rows.duplicated([e, "_t"], keep="last").to_numpy()
    known = tails[[e, t, BATCH]].assign(_t=_utc(tails[t]))[[e, "_t", BATCH]]
    found = rows[[e, "_t"]].merge(known.drop_duplicates([e, "_t"], keep="last"), on=[e, "_t"], how="left")[BATCH].to_numpy()
    in_state = pd.notna(found)
    done = in_state & (found == batch)
    replayed = (repeated | in_state) & ~done
    newest = known.groupby(e)["_t"].max()
    entity_newest = rows[e].map(newest)
    horizon = pd.Timedelta(hours=settings.horizon_hours)
    too_late = ~replayed & ~done & (rows["_t"] < entity_newest - horizon).fillna(False).to_numpy()
    fresh_mask = ~replayed & ~done & ~too_late
    late = int((rows.loc[fresh_mask, "_t"] < entity_newest[fresh_mask]).fillna(False).sum())
    fresh = rows.loc[fresh_mask].sort_values([e, "_t"], kind="stable").drop(columns="_t")
    pick = lambda mask: rows.loc[mask].drop(columns="_t")  # noqa: E731
    return Triage(fresh, pick(done), pick(replayed), pick(too_late), late)


def advance(tails: pd.DataFrame, fresh: pd.DataFrame, settings: StreamSettings, batch: str) -> pd.DataFrame:
    """The state's readings after ``fresh``: per entity, those within the horizon of its
    newest reading and at least its last ``keep_last``; entities idle past ``idle_hours``
    (against the newest reading of all) are forgotten."""
    e, t = settings.entity, settings.time
    columns = [*settings.columns, BATCH]
    frames = [f[columns] for f in (tails, fresh.assign(**{BATCH: batch})) if len(f)]
    if not frames:
        return tails
    both = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].reset_index(drop=True)
    stamp = pd.to_datetime(both[t], utc=True)
    both = both.assign(_t=stamp).sort_values([e, "_t"], kind="stable")
    newest = both.groupby(e)["_t"].transform("max")
    rank_from_end = both.groupby(e).cumcount(ascending=False)
    keep = (both["_t"] >= newest - pd.Timedelta(hours=settings.horizon_hours)) | (rank_from_end < settings.keep_last)
    keep &= newest >= both["_t"].max() - pd.Timedelta(hours=settings.idle_hours)
    return both.loc[keep].drop(columns="_t").reset_index(drop=True)


def due_alerts(scored: pd.DataFrame, alerts: dict[str, str], settings: StreamSettings) -> tuple[pd.DataFrame, dict[str, str]]:
    """High-risk rows that alert (at most one per entity per ``alert_every_hours`` of
    reading time, the first such reading), and the alert memory after them."""
    e, t = settings.entity, settings.time
    alerts = dict(alerts)
    high = scored.loc[scored["probability"] >= settings.alert_threshold].sort_values([e, t], kind="stable")
    every = pd.Timedelta(hours=settings.alert_every_hours)
    chosen = []
    for index, entity, stamp in zip(high.index, high[e], pd.to_datetime(high[t], utc=True)):
        last = alerts.get(entity)
        if last is None or stamp - pd.Timestamp(last) >= every:
            chosen.append(index)
            alerts[entity] = stamp.isoformat()
    if alerts:  # forget alerts too old to silence anything
        newest = pd.to_datetime(scored[t], utc=True).max() if len(scored) else None
        if newest is not None:
            alerts = {k: v for k, v in alerts.items() if newest - pd.Timestamp(v) < every}
    return scored.loc[chosen], alerts


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True).astype("datetime64[ns, UTC]")


# ------------------------------------------------------------------ per run


# (features frame of fresh rows, their history) -> scored frame: the rows with
# "probability" (of the positive class) and "prediction" (the class) added
Scorer = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]


@dataclass
class ObjectOutcome:
    key: str
    messages: int = 0  # records read (scored + quarantined)
    scored: int = 0
    malformed: int = 0  # quarantined by parsing / typing
    replayed: int = 0  # quarantined: already scored
    too_late: int = 0  # quarantined: older than the stream remembers
    late: int = 0  # scored, older than the entity's newest reading
    previously_scored: int = 0  # this object's rows an earlier attempt of its run scored
    high_risk: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)  # score files written
    quarantine_file: str | None = None
    caught_up: bool = False  # scored by a run for a later object (its own run had not)
    frame: pd.DataFrame | None = None  # what was scored (for previews)
    written_at: datetime | None = None  # the raw object's LastModified

    @property
    def quarantined(self) -> int:
        return self.malformed + self.replayed + self.too_late


@dataclass
class StreamRun:
    outcomes: list[ObjectOutcome]
    alerts: pd.DataFrame  # rows that alert (entity, time, probability, batch)
    generation: int
    conflicts: int  # commits lost to another run (started over)
    high_water: str | None
    unreadable: dict[str, str]  # own objects that could not be read: key -> reason


def run_stream(
    lake: Lake,
    spec: TableSpec,
    own: Sequence[str],
    *,
    domain: str,
    settings: StreamSettings,
    score: Scorer,
    model_version: str,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> StreamRun:
    """Score the raw objects ``own`` (keys under ``spec.raw_prefix``) and the unscored
    objects between the state's high water mark and them; commit the state."""
    key = state_key(domain)
    conflicts = 0
    own = sorted(set(own))
    for _ in range(CAS_ATTEMPTS):
        state = load_state(lake, key, settings)
        todo = _objects_to_score(lake, spec, own, state.high_water)
        tails, alerts_memory = state.tails, state.alerts
        outcomes, alerting, unreadable = [], [], {}
        for obj in todo:
            try:
                outcome, tails = _score_object(lake, spec, obj, tails, settings, score, model_version, domain, now)
            except UnreadableObject as exc:
                if obj.key in own:
                    unreadable[obj.key] = str(exc)
                continue  # another object's run: left to its own run, which fails naming it
            outcome.caught_up = obj.key not in own
            if outcome.frame is not None and len(outcome.frame):
                chosen, alerts_memory = due_alerts(outcome.frame, alerts_memory, settings)
                alerting.append(chosen)
            outcomes.append(outcome)
        high_water = max([state.high_water or "", *(o.key for o in outcomes)]) or None
        new_state = StreamState(tails, high_water, alerts_memory, state.generation, state.etag)
        try:
            generation = commit_state(lake, key, new_state)
        except PreconditionFailed:
            conflicts += 1
            time.sleep(0.05 * conflicts)
            continue
        alerts = pd.concat(alerting, ignore_index=True) if alerting else pd.DataFrame()
        return StreamRun(outcomes, alerts, generation, conflicts, high_water, unreadable)
    raise LakeError(f"cannot commit {lake.describe(key)}: {CAS_ATTEMPTS} other runs committed first in a row")


def _objects_to_score(lake: Lake, spec: TableSpec, own: Sequence[str], high_water: str | None) -> list[ObjectInfo]:
    """The run's own objects plus, once the stream has a high water mark, the objects after
    it up to the run's last one, in key order (S3 servers need not list in order)."""
    infos: dict[str, ObjectInfo] = {}
    if high_water is not None and own:
        last = max(own)
        for obj in lake.list(spec.raw_prefix, start_after=high_water):
            if high_water < obj.key <= last and not obj.key.endswith("/"):
                infos[obj.key] = obj
    for k in own:
        if k not in infos:
            info = lake.stat(k)
            if info is None:
                raise LakeError(f"raw object {lake.describe(k)} is gone: the run cannot score it")
            infos[k] = info
    return [infos[k] for k in sorted(infos)]


def _score_object(lake, spec, obj: ObjectInfo, tails, settings: StreamSettings, score: Scorer, model_version, domain, now):
    e, t = settings.entity, settings.time
    data = lake.read_bytes(obj.key)
    parsed = parse_object(spec, obj.key, data, obj.last_modified)
    rows = parsed.changes.to_pandas()
    lines = rows.pop("_source_line").to_numpy()
    rows = rows.drop(columns=[c for c in ("_op", "_commit_ts", "_source_key") if c in rows.columns])
    rows["_line"] = lines
    sorted_out = triage(rows, tails, settings, obj.key)
    outcome = ObjectOutcome(obj.key, messages=len(rows) + parsed.quarantine.num_rows, malformed=parsed.quarantine.num_rows,
                            replayed=len(sorted_out.replayed), too_late=len(sorted_out.too_late), late=sorted_out.late,
                            previously_scored=len(sorted_out.done), written_at=obj.last_modified)  # fmt: skip
    reasons: dict[str, int] = {}
    for code in parsed.quarantine.column("_reason_code").to_pylist():
        reasons[code] = reasons.get(code, 0) + 1
    texts = _lines_of(data)
    held = [parsed.quarantine]
    for frame, code, why in (
        (sorted_out.replayed, "already_scored", "this reading (entity and time) was scored already: a replayed message"),
        (sorted_out.too_late, "too_late", f"older than the {settings.horizon_hours:g} h the stream remembers of this entity"),
    ):
        if len(frame):
            reasons[code] = reasons.get(code, 0) + len(frame)
            held.append(pa.table({"_source_key": [obj.key] * len(frame), "_source_line": frame["_line"].astype("int64").to_numpy(),
                                  "_reason_code": [code] * len(frame), "_reason": [why] * len(frame),
                                  "_raw": [texts.get(int(n), "") for n in frame["_line"]]}, schema=QUARANTINE_SCHEMA))  # fmt: skip
    outcome.reasons = reasons
    quarantine = pa.concat_tables(held)
    q_key = stream_quarantine_key(domain, obj.key, spec.raw_prefix)
    if quarantine.num_rows:
        lake.write_parquet(q_key, quarantine)
        outcome.quarantine_file = q_key
    fresh = sorted_out.fresh
    if len(fresh):
        scored = score(fresh.drop(columns="_line"), tails)
        scored = scored.reset_index(drop=True)
        probability = scored["probability"].to_numpy(np.float64)
        out = pd.DataFrame({
            e: scored[e].to_numpy(),
            t: pd.to_datetime(scored[t], utc=True),
            "probability": probability,
            "prediction": scored["prediction"].astype("int64").to_numpy(),
            "high_risk": probability >= settings.alert_threshold,
            "original": [texts.get(int(n), "") for n in fresh["_line"]],
            "model_version": str(model_version),
            "batch": obj.key,
            "scored_at": pd.Timestamp(now()),
        })  # fmt: skip
        hours = out[t].dt.strftime(HOUR_FORMAT)
        for hour, part in out.groupby(hours, sort=True):
            key = scores_key(domain, hour, obj.key, spec.raw_prefix)
            lake.write_parquet(key, _with_both_classes(pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)))
            outcome.files.append(key)
        outcome.frame, outcome.scored, outcome.high_risk = out, len(out), int(out["high_risk"].sum())
        tails = advance(tails, fresh.drop(columns="_line"), settings, obj.key)
    return outcome, tails


def _with_both_classes(table: pa.Table) -> pa.Table:
    """``prediction_probabilities`` after ``probability``: [P(0), P(1)] per row, as the seed sends."""
    p = table.column("probability").to_numpy()
    pairs = pa.FixedSizeListArray.from_arrays(pa.array(np.column_stack([1.0 - p, p]).ravel(), pa.float64()), 2)
    return table.add_column(table.schema.get_field_index("probability") + 1, "prediction_probabilities", pairs)


def _lines_of(data: bytes) -> dict[int, str]:
    """Line number (1-based, as the parser counts) -> the line as received."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return {n: raw.strip().decode("utf-8", "replace") for n, raw in enumerate(data.split(b"\n"), start=1) if raw.strip()}


def read_scores(lake: Lake, domain: str, hours: Iterable[str] | None = None) -> pd.DataFrame:
    """Every score file of the stream (or of ``hours``), one frame."""
    frames = []
    for obj in lake.list(scores_prefix(domain)):
        if not obj.key.endswith(".parquet"):
            continue
        hour = obj.key.removeprefix(scores_prefix(domain)).split("/", 1)[0].removeprefix("hour=")
        if hours is not None and hour not in set(hours):
            continue
        frames.append(lake.read_parquet(obj.key).to_pandas().assign(hour=hour))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
