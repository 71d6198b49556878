"""Lake-level ingestion steps, raw -> trusted -> current, free of Dagster.

The assets in ``assets/ingestion.py`` are thin wrappers around these functions, and
the benchmark calls them directly.

Layout (see DESIGN.md):
    trusted/<table>/ingest_date=YYYY-MM-DD/data.parquet      change log of that day's raw objects
    quarantine/<table>/ingest_date=YYYY-MM-DD/data.parquet   rejected records with their reason
    current/<table>/data.parquet                             current state (changes applied)
    _state/current/<table>/state.parquet                     what current is made from: the last
                                                             change of every key (deletes too) and
                                                             which partitions are applied, ONE object
Every partition is one object, so writing it is atomic and rewriting replaces it.
The trusted partition records which raw objects (key, etag) it was built from, so a
re-run can tell a raw object that vanished, and the sensor can tell a date that is
already ingested.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
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
from .keys import current_key, quarantine_key, state_key, trusted_key  # noqa: F401 (the lake keys, re-exported)
from .lake import Lake, LakeError, ObjectInfo, PreconditionFailed, parquet_bytes, parquet_from_bytes
from .tables import TableSpec

_DATED_FOLDERS = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})(?=/|$)")
_HIVE_DATE = re.compile(r"(?:^|/)ingest_date=(\d{4})-(\d{2})-(\d{2})(?=/|$)")
_DATED_FOLDER_END = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/$")
_HIVE_FOLDER_END = re.compile(r"(?:^|/)ingest_date=(\d{4})-(\d{2})-(\d{2})/$")
_SOURCES_KEY = b"smartstream.sources"  # trusted partition: raw objects it was built from
_APPLIED_KEY = b"smartstream.applied"  # state: trusted partition key -> etag applied
_GENERATION_KEY = b"smartstream.generation"  # state and current: how many updates made them
_MASK = (1 << 64) - 1
CAS_ATTEMPTS = 20


class RawObjectsMissing(LakeError):
    """Raw objects a trusted partition was built from are gone (retention?)."""


def ingest_date_of(obj: ObjectInfo, raw_prefix: str = "") -> date:
    """The leftmost valid ``ingest_date=YYYY-MM-DD`` or ``YYYY/MM/DD`` folder of the key
    (below ``raw_prefix``), else its LastModified date (UTC)."""
    rel = obj.key[len(raw_prefix) :] if obj.key.startswith(raw_prefix) else obj.key
    folders = rel.rpartition("/")[0] + "/" if "/" in rel else ""
    matches = sorted(
        (m for pattern in (_HIVE_DATE, _DATED_FOLDERS) for m in pattern.finditer(folders)), key=lambda m: m.start()
    )
    for m in matches:
        day = _valid_date(m)
        if day is not None:
            return day
    return obj.last_modified.date()


def _valid_date(m: re.Match) -> date | None:
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None  # 2026/13/45 is not a date


def raw_objects_by_date(lake: Lake, spec: TableSpec, days: Iterable[date] | None = None) -> dict[date, list[ObjectInfo]]:
    """Raw objects of the table grouped by ingest date (restricted to ``days`` if given), in key order.

    With ``days``, only what those dates need is listed: dated folders of other days
    are never entered (see ``_walk_for_days``), so a run's listing costs O(its day's
    objects + folders), not O(the whole prefix).
    """
    wanted = set(days) if days is not None else None
    listing = lake.list(spec.raw_prefix) if wanted is None else _walk_for_days(lake, spec.raw_prefix, wanted)
    grouped: dict[date, list[ObjectInfo]] = defaultdict(list)
    for obj in listing:
        if obj.key.endswith("/"):  # folder markers some tools create
            continue
        day = ingest_date_of(obj, spec.raw_prefix)
        if wanted is None or day in wanted:
            grouped[day].append(obj)
    for objects in grouped.values():
        objects.sort(key=lambda o: o.key.encode("utf-8"))
    return dict(grouped)


def _walk_for_days(lake: Lake, prefix: str, wanted: set[date]) -> Iterator[ObjectInfo]:
    """Every object under ``prefix`` whose ingest date can be one of ``wanted``.

    Folder by folder (S3 Delimiter listings). The first valid date folder on a path
    decides the date of everything below it (``ingest_date_of`` takes the leftmost),
    so a date folder of another day is skipped whole; objects outside date folders
    are dated by LastModified, so those are always listed.
    """
    stack: list[tuple[str, bool]] = [(prefix, False)]  # (folder, already inside a date folder)
    while stack:
        folder, dated = stack.pop()
        objects, folders = lake.list_level(folder)
        yield from objects
        for sub in folders:
            if sub.rsplit("/", 2)[-2].startswith(".tmp-"):
                continue
            day = None if dated else _folder_date(sub[len(prefix) :])
            if day is not None and day not in wanted:
                continue
            stack.append((sub, dated or day is not None))


def _folder_date(rel_folder: str) -> date | None:
    for pattern in (_HIVE_FOLDER_END, _DATED_FOLDER_END):
        m = pattern.search(rel_folder)
        if m:
            return _valid_date(m)
    return None


def object_hash(obj: ObjectInfo) -> int:
    digest = hashlib.blake2b(f"{obj.key}\0{obj.size}\0{obj.etag}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def objects_digest(objects: Iterable[ObjectInfo]) -> str:
    """``<count>:<hex>``, order-independent: the same for the sensor's incremental and full
    listings and for the run, so a date already ingested from exactly these objects is known."""
    count, total = 0, 0
    for obj in objects:
        count += 1
        total = (total + object_hash(obj)) & _MASK
    return f"{count}:{total:016x}"


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
    raw_digest: str = "0:0000000000000000"  # objects_digest of the raw objects read
    empty_objects: list[str] = field(default_factory=list)  # raw objects that held no record
    vanished_objects: list[str] = field(default_factory=list)  # gone since the last build (allow_shrink)


def build_trusted_partition(
    lake: Lake, spec: TableSpec, day: date, objects: list[ObjectInfo], *, allow_shrink: bool = False
) -> TrustedReport:
    """Parse the day's raw objects and write its trusted and quarantine partitions.

    A raw object that cannot be read fails the whole partition (``UnreadableObject``
    names the key) before anything is written, so no half partition appears. Raw
    objects the partition was built from that are gone now fail it too
    (``RawObjectsMissing`` names them) unless ``allow_shrink``: raw is never modified,
    so a vanished object is retention or a mistake, and rebuilding without it would
    silently drop its changes.
    """
    report = TrustedReport(day=day, objects=len(objects), raw_digest=objects_digest(objects))
    previous = _sources_of(lake, trusted_key(spec.name, day))
    vanished = sorted(set(previous) - {obj.key for obj in objects})
    if vanished and not allow_shrink:
        shown = ", ".join(lake.describe(k) for k in vanished[:5]) + (f" and {len(vanished) - 5} more" if len(vanished) > 5 else "")
        raise RawObjectsMissing(
            f"{spec.name} {day}: {len(vanished)} raw object(s) this partition was built from are gone: {shown}. "
            "Restore them, or re-run with allow_shrink: true to rebuild the partition without them."
        )
    report.vanished_objects = vanished
    changes, rejected = [], []
    for obj in objects:
        parsed = parse_object(spec, obj.key, lake.read_bytes(obj.key), obj.last_modified)
        changes.append(parsed.changes)
        rejected.append(parsed.quarantine)
        report.rows_in += parsed.rows_in
        report.tombstones += parsed.tombstones
        if parsed.empty:
            report.empty_objects.append(obj.key)
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
        sources = json.dumps({"digest": report.raw_digest, "objects": [[o.key, o.etag] for o in objects]})
        lake.write_parquet(trusted_key(spec.name, day), trusted.replace_schema_metadata({_SOURCES_KEY: sources.encode()}))
    else:  # no raw objects (any more) for that day: no partition
        lake.delete(trusted_key(spec.name, day))
    if quarantine.num_rows:
        lake.write_parquet(quarantine_key(spec.name, day), quarantine)
    else:
        lake.delete(quarantine_key(spec.name, day))
    return report


def _sources_of(lake: Lake, key: str) -> list[str]:
    """Raw object keys an existing trusted partition was built from ([] when there is none)."""
    found = lake.read_parquet_metadata(key)
    if found is None:
        return []
    if _SOURCES_KEY in found[0]:
        return [k for k, _ in json.loads(found[0][_SOURCES_KEY])["objects"]]
    # Written before sources were recorded: the source keys of its changes.
    return pc.unique(lake.read_parquet(key).column("_source_key")).to_pylist()


def trusted_raw_digest(lake: Lake, spec: TableSpec, day: date) -> str | None:
    """The ``objects_digest`` a trusted partition was built from, if it records one."""
    found = lake.read_parquet_metadata(trusted_key(spec.name, day))
    if found is None or _SOURCES_KEY not in found[0]:
        return None
    return json.loads(found[0][_SOURCES_KEY])["digest"]


@dataclass
class CurrentReport:
    rows: int
    tombstones: int
    partitions_applied: list[str]
    changes_applied: int
    rebuilt: bool
    current: pa.Table
    generation: int = 0
    conflicts: int = 0  # concurrent updates that made this one start over


def update_current(lake: Lake, spec: TableSpec, *, rebuild: bool = False) -> CurrentReport:
    """Fold every trusted partition written since the last update into the current state.

    The state (the last change of every key, deletes included) and the map of applied
    trusted partitions (key -> etag) are ONE object, written with compare-and-swap:
    two updates running at once cannot leave the state of one with the map of the
    other; the loser reloads and applies again (applying a change twice is a no-op).
    Memory is bounded by the number of keys plus one partition. ``current/`` is then
    published from the state, never older than a version already published.
    ``rebuild`` starts from nothing and reads every partition.
    """
    conflicts = 0
    for _ in range(CAS_ATTEMPTS):
        if rebuild:  # start from nothing, but replace exactly the version seen, one generation on
            old = lake.read_parquet_metadata(state_key(spec.name))
            loaded = None if old is None else (b"", old[1])
            state, applied, generation = None, {}, 0 if old is None else int(old[0].get(_GENERATION_KEY, b"0"))
        else:
            loaded = lake.read_versioned(state_key(spec.name))
            state, applied, generation = _decode_state(spec, loaded)
        partitions = [obj for obj in lake.list(f"trusted/{spec.name}/") if obj.key.endswith("/data.parquet")]
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
        if pending or loaded is None or rebuild:  # else the stored state stays as it is
            generation += 1
            meta = {_APPLIED_KEY: json.dumps(applied, sort_keys=True).encode(), _GENERATION_KEY: str(generation).encode()}
            try:
                lake.write_bytes(
                    state_key(spec.name),
                    parquet_bytes(state.replace_schema_metadata(meta)),
                    **({"if_absent": True} if loaded is None else {"if_match": loaded[1]}),
                )
            except PreconditionFailed:
                conflicts += 1
                continue
            if loaded is None:  # the layout before state.parquet kept deletes apart: gone now
                lake.delete(f"_state/current/{spec.name}/tombstones.parquet")
        current = current_rows(state)
        _publish_current(lake, spec, current, generation)
        return CurrentReport(
            rows=current.num_rows,
            tombstones=state.num_rows - current.num_rows,
            partitions_applied=[_partition_of(obj.key) for obj in pending],
            changes_applied=changes_applied,
            rebuilt=rebuild,
            current=current,
            generation=generation,
            conflicts=conflicts,
        )
    raise LakeError(
        f"cannot update {lake.describe(state_key(spec.name))}: {CAS_ATTEMPTS} concurrent updates won in a row; "
        "limit the concurrency of current/" + spec.name
    )


def _decode_state(spec: TableSpec, loaded: tuple[bytes, str] | None) -> tuple[pa.Table | None, dict[str, str], int]:
    """(state, applied map, generation) of a stored state object."""
    if loaded is None or not loaded[0]:
        return None, {}, 0
    table = parquet_from_bytes(loaded[0])
    meta = table.schema.metadata or {}
    applied = json.loads(meta.get(_APPLIED_KEY, b"{}"))
    generation = int(meta.get(_GENERATION_KEY, b"0"))
    table = table.replace_schema_metadata(None)
    if table.schema != trusted_schema(spec):
        return None, {}, generation  # the table's declared columns changed: rebuild from trusted
    return table, applied, generation


def _publish_current(lake: Lake, spec: TableSpec, current: pa.Table, generation: int) -> None:
    """Write current/ from the state of ``generation``, unless a newer one is published:
    two updates that finish out of order never leave the older state on top."""
    key = current_key(spec.name)
    body = None
    for _ in range(CAS_ATTEMPTS):
        found = lake.read_parquet_metadata(key)
        if found is not None and int(found[0].get(_GENERATION_KEY, b"-1")) >= generation:
            return  # this state (or a newer one) is published already
        if body is None:  # serialised only when it will be written
            body = parquet_bytes(current.replace_schema_metadata({_GENERATION_KEY: str(generation).encode()}))
        try:
            lake.write_bytes(key, body, **({"if_absent": True} if found is None else {"if_match": found[1]}))
            return
        except PreconditionFailed:
            continue
    raise LakeError(f"cannot publish {lake.describe(key)}: it kept changing under this update")


def _partition_of(key: str) -> str:
    return key.rsplit("/", 2)[-2].removeprefix("ingest_date=")


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    if len(column) == 0:
        return {}
    return {d["values"]: d["counts"] for d in pc.value_counts(column).to_pylist()}
