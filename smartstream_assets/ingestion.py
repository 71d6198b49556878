"""Lake-level ingestion steps, raw -> trusted -> current, free of Dagster.

The assets in ``assets/ingestion.py`` are thin wrappers around these functions, and
the benchmark calls them directly.

Layout (see DESIGN.md):
    trusted/<table>/ingest_date=YYYY-MM-DD/data.parquet      change log of that day's raw objects
    quarantine/<table>/ingest_date=YYYY-MM-DD/data.parquet   rejected records with their reason
    current/<table>/data.parquet                             current state (changes applied)
    _state/current/<table>/tombstones.parquet                deleted keys + which partitions are applied
Every partition is one object, so writing it is atomic and rewriting replaces it.
The state that changes are applied to is current + tombstones (see update_current).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from . import quality
from .cdc import (
    QUARANTINE_SCHEMA,
    apply_changes,
    current_rows,
    parse_object,
    trusted_schema,
)
from .lake import Lake, ObjectInfo
from .tables import TableSpec

_DATED_FOLDERS = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})(?:/|$)")
_HIVE_DATE = re.compile(r"(?:^|/)ingest_date=(\d{4})-(\d{2})-(\d{2})(?:/|$)")
_APPLIED_KEY = b"smartstream.applied"


def trusted_key(table: str, day: date) -> str:
    return f"trusted/{table}/ingest_date={day.isoformat()}/data.parquet"


def quarantine_key(table: str, day: date) -> str:
    return f"quarantine/{table}/ingest_date={day.isoformat()}/data.parquet"


def current_key(table: str) -> str:
    return f"current/{table}/data.parquet"


def tombstones_key(table: str) -> str:
    return f"_state/current/{table}/tombstones.parquet"


def ingest_date_of(obj: ObjectInfo, raw_prefix: str = "") -> date:
    """The ``ingest_date=YYYY-MM-DD`` or ``YYYY/MM/DD`` part of the key, else LastModified (UTC)."""
    rel = obj.key[len(raw_prefix) :] if obj.key.startswith(raw_prefix) else obj.key
    for pattern in (_HIVE_DATE, _DATED_FOLDERS):
        m = pattern.search(rel)
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                pass  # 2026/13/45 is not a date: fall back to LastModified
    return obj.last_modified.date()


def raw_objects_by_date(lake: Lake, spec: TableSpec, days: Iterable[date] | None = None) -> dict[date, list[ObjectInfo]]:
    """Raw objects of the table grouped by ingest date (restricted to ``days`` if given), in key order."""
    wanted = set(days) if days is not None else None
    grouped: dict[date, list[ObjectInfo]] = defaultdict(list)
    for obj in lake.list(spec.raw_prefix):
        if obj.key.endswith("/"):  # folder markers some tools create
            continue
        day = ingest_date_of(obj, spec.raw_prefix)
        if wanted is None or day in wanted:
            grouped[day].append(obj)
    return dict(grouped)


@dataclass
class TrustedReport:
    day: date
    objects: int = 0
    rows_in: int = 0
    rows_out: int = 0
    quarantined: int = 0
    tombstones: int = 0
    ops: Counter = field(default_factory=Counter)
    quarantine_reasons: Counter = field(default_factory=Counter)
    min_commit_ts: datetime | None = None
    max_commit_ts: datetime | None = None
    preview: pa.Table | None = None
    null_keys: int = 0  # checks on what was written
    schema_mismatches: list[str] = field(default_factory=list)


def build_trusted_partition(lake: Lake, spec: TableSpec, day: date, objects: list[ObjectInfo]) -> TrustedReport:
    """Parse the day's raw objects and write its trusted and quarantine partitions.

    A raw object that cannot be read fails the whole partition (``UnreadableObject``
    names the key) before anything is written, so no half partition appears.
    """
    report = TrustedReport(day=day, objects=len(objects))
    changes, rejected = [], []
    for obj in objects:
        parsed = parse_object(spec, obj.key, lake.read_bytes(obj.key), obj.last_modified)
        changes.append(parsed.changes)
        rejected.append(parsed.quarantine)
        report.rows_in += parsed.rows_in
        report.tombstones += parsed.tombstones
    trusted = pa.concat_tables(changes) if changes else trusted_schema(spec).empty_table()
    quarantine = pa.concat_tables(rejected) if rejected else QUARANTINE_SCHEMA.empty_table()
    report.rows_out, report.quarantined = trusted.num_rows, quarantine.num_rows
    report.ops = Counter(_value_counts(trusted.column("_op")))
    report.quarantine_reasons = Counter(_value_counts(quarantine.column("_reason_code")))
    if trusted.num_rows:
        bounds = pc.min_max(trusted.column("_commit_ts"))
        report.min_commit_ts, report.max_commit_ts = bounds["min"].as_py(), bounds["max"].as_py()
    report.preview = trusted.slice(0, 10)
    report.null_keys = quality.null_key_count(trusted, spec.primary_key)
    report.schema_mismatches = quality.schema_mismatches(trusted, spec)

    if objects:
        lake.write_parquet(trusted_key(spec.name, day), trusted)
    else:  # no raw objects (any more) for that day: no partition
        lake.delete(trusted_key(spec.name, day))
    if quarantine.num_rows:
        lake.write_parquet(quarantine_key(spec.name, day), quarantine)
    else:
        lake.delete(quarantine_key(spec.name, day))
    return report


@dataclass
class CurrentReport:
    rows: int
    tombstones: int
    partitions_applied: list[str]
    changes_applied: int
    rebuilt: bool
    current: pa.Table


def update_current(lake: Lake, spec: TableSpec, *, rebuild: bool = False) -> CurrentReport:
    """Fold every trusted partition written since the last update into the current state.

    The state remembers which version (etag) of each trusted partition it holds, so
    a run only reads new or rewritten partitions: memory is bounded by the number of
    keys plus one partition, not by the number of days ingested. Re-applying a
    rewritten partition is harmless (applying a change twice is a no-op).
    ``rebuild`` starts from nothing and reads every partition.
    """
    state, applied = (None, {}) if rebuild else _load_state(lake, spec)
    partitions = [
        obj for obj in lake.list(f"trusted/{spec.name}/") if obj.key.endswith("/data.parquet")
    ]
    pending = [obj for obj in partitions if applied.get(obj.key) != obj.etag]
    changes_applied = 0
    for obj in pending:
        changes = lake.read_parquet(obj.key).cast(trusted_schema(spec))
        state = apply_changes(state, changes, spec.primary_key)
        changes_applied += changes.num_rows
        applied[obj.key] = obj.etag
    # Partitions whose raw objects disappeared are gone from the listing; their
    # changes stay applied until a rebuild.
    if state is None:
        state = trusted_schema(spec).empty_table()
    current = current_rows(state)
    tombstones = state.filter(pc.equal(state.column("_op"), "delete"))
    # Current first, then tombstones with the applied map: after a crash between
    # the two, the old map makes the next run re-apply the same partitions, and
    # last-write-wins over (new current + old tombstones + those changes) is right.
    lake.write_parquet(current_key(spec.name), current)
    meta = {_APPLIED_KEY: json.dumps(applied, sort_keys=True).encode()}
    lake.write_parquet(tombstones_key(spec.name), tombstones.replace_schema_metadata(meta))
    return CurrentReport(
        rows=current.num_rows,
        tombstones=state.num_rows - current.num_rows,
        partitions_applied=[_partition_of(obj.key) for obj in pending],
        changes_applied=changes_applied,
        rebuilt=rebuild,
        current=current,
    )


def _load_state(lake: Lake, spec: TableSpec) -> tuple[pa.Table | None, dict[str, str]]:
    """current + tombstones, and the trusted partitions (key -> etag) already applied."""
    if not (lake.exists(tombstones_key(spec.name)) and lake.exists(current_key(spec.name))):
        return None, {}
    tombstones = lake.read_parquet(tombstones_key(spec.name))
    applied = json.loads((tombstones.schema.metadata or {}).get(_APPLIED_KEY, b"{}"))
    current = lake.read_parquet(current_key(spec.name))
    schema = trusted_schema(spec)
    if tombstones.schema.remove_metadata() != schema or current.schema != schema.remove(0):
        return None, {}  # the table's declared columns changed: rebuild from trusted
    live = current.add_column(0, "_op", pa.repeat(pa.scalar("update"), current.num_rows))
    return pa.concat_tables([live, tombstones.replace_schema_metadata(None)]), applied


def _partition_of(key: str) -> str:
    return key.rsplit("/", 2)[-2].removeprefix("ingest_date=")


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    if len(column) == 0:
        return {}
    return {d["values"]: d["counts"] for d in pc.value_counts(column).to_pylist()}
