"""Lake-level ingestion steps, raw -> trusted -> current, free of Dagster.

The assets in ``assets/ingestion.py`` are thin wrappers around these functions, and
the benchmark calls them directly.

Layout (see DESIGN.md and ``delta.py``): Delta Lake tables, written with delta-rs.
    trusted/<table>/      change log, partitioned by ingest_date; a run's days are ONE commit
    quarantine/<table>/   rejected records with their reason, partitioned by ingest_date
    current/<table>/      the last change of every key, deletes as soft-deleted rows;
                          applied with MERGE, the trusted version applied in the same commit
    _state/trusted/<table>/ingest_date=YYYY-MM-DD/sources.json
                          the raw objects (key, etag) a trusted day was built from, so a
                          re-run can tell a raw object that vanished, and the sensor can
                          tell a date that is already ingested.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import delta, quality
from .cdc import ParsedObject, parse_object
from .delta import read_current  # noqa: F401 (re-exported: what readers of current/ call)
from .keys import current_key, quarantine_key, trusted_key  # noqa: F401 (the lake keys, re-exported)
from .lake import Lake, LakeError, ObjectInfo
from .tables import TableSpec

_DATED_FOLDERS = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})(?=/|$)")
_HIVE_DATE = re.compile(r"(?:^|/)ingest_date=(\d{4})-(\d{2})-(\d{2})(?=/|$)")
_DATED_FOLDER_END = re.compile(r"(?:^|/)(\d{4})/(\d{2})/(\d{2})/$")
_HIVE_FOLDER_END = re.compile(r"(?:^|/)ingest_date=(\d{4})-(\d{2})-(\d{2})/$")
_MASK = (1 << 64) - 1


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
    delta_version: int | None = None  # the trusted table's version holding this day (one commit per run)
    commit_retries: int = 0  # times that commit lost the race for its version to another writer


def build_trusted_partition(
    lake: Lake, spec: TableSpec, day: date, objects: list[ObjectInfo], *, allow_shrink: bool = False
) -> TrustedReport:
    """Parse one day's raw objects and replace its trusted and quarantine partitions."""
    return build_trusted_days(lake, spec, {day: objects}, allow_shrink=allow_shrink)[0]


def build_trusted_days(
    lake: Lake, spec: TableSpec, objects_by_day: dict[date, list[ObjectInfo]], *, allow_shrink: bool = False
) -> list[TrustedReport]:
    """Parse the days' raw objects and replace their trusted partitions in ONE commit
    (and their quarantine partitions in one commit of the quarantine table).

    Raw objects a day was built from that are gone fail the run before anything is read
    (``RawObjectsMissing``, unless ``allow_shrink``). The objects are then parsed on a few
    threads (Arrow's CSV reader and numpy release the GIL) and streamed into the commit
    one object at a time (``delta.write_parsed``): a raw object that cannot be read
    (``UnreadableObject`` names the key) aborts the commit, so no half backfill appears.
    """
    days = sorted(objects_by_day)
    vanished = {day: _vanished(lake, spec, day, objects_by_day[day], allow_shrink) for day in days}
    digests = {day: objects_digest(objects_by_day[day]) for day in days}
    reports: dict[date, TrustedReport] = {}

    def parse() -> Iterator[tuple[date, pa.Table, pa.Table]]:
        reports.clear()  # a restarted commit parses again
        for day in days:
            objects = objects_by_day[day]
            reports[day] = TrustedReport(day=day, objects=len(objects), raw_digest=digests[day],
                                         vanished_objects=vanished[day])  # fmt: skip
        jobs = [(day, obj) for day in days for obj in objects_by_day[day]]
        for (day, obj), parsed in _parse_in_order(lake, spec, jobs):
            _add_object(reports[day], obj, parsed, spec)
            yield day, _one_source(parsed.changes, obj.key), parsed.quarantine

    sources = {
        day: {"digest": digests[day], "objects": [[o.key, o.etag] for o in objs]} if (objs := objects_by_day[day]) else None
        for day in days
    }  # no raw objects (any more) for a day: no partition, no manifest
    commit = delta.write_parsed(lake, spec, sources, parse)
    for report in reports.values():
        report.delta_version, report.commit_retries = commit.version, commit.retries
    return [reports[day] for day in days]


PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))


def _parse_in_order(lake: Lake, spec: TableSpec, jobs: list[tuple[date, ObjectInfo]]) -> Iterator[tuple[tuple[date, ObjectInfo], ParsedObject]]:
    """Every job's raw object read and parsed, on PARSE_THREADS threads, yielded in order.
    At most one object per thread is read ahead, so memory holds a few objects, not a day."""
    def parse_one(job: tuple[date, ObjectInfo]) -> ParsedObject:
        obj = job[1]
        return parse_object(spec, obj.key, lake.read_bytes(obj.key), obj.last_modified)

    if PARSE_THREADS == 1 or len(jobs) < 2:
        for job in jobs:
            yield job, parse_one(job)
        return
    with ThreadPoolExecutor(PARSE_THREADS, thread_name_prefix="parse") as pool:
        ahead: deque = deque()
        pending = iter(jobs)
        for job in islice(pending, PARSE_THREADS):
            ahead.append((job, pool.submit(parse_one, job)))
        while ahead:
            job, future = ahead.popleft()
            for nxt in islice(pending, 1):
                ahead.append((nxt, pool.submit(parse_one, nxt)))
            try:
                parsed = future.result()
            except BaseException:
                for _, other in ahead:
                    other.cancel()
                raise
            yield job, parsed


def _one_source(changes: pa.Table, key: str) -> pa.Table:
    """The object's changes with ``_source_key`` (``key`` on every row) as a dictionary of
    that one value: what the trusted commit takes without re-encoding it (``delta.write_parsed``)."""
    if not changes.num_rows or changes.column("_source_key")[0].as_py() != key:
        return changes  # parse_object stamps every change with its object's key; anything else goes as it is
    codes = pa.array(np.zeros(changes.num_rows, np.int32))
    index = changes.schema.get_field_index("_source_key")
    return changes.set_column(index, "_source_key", pa.DictionaryArray.from_arrays(codes, pa.array([key])))


def _add_object(report: TrustedReport, obj: ObjectInfo, parsed: ParsedObject, spec: TableSpec) -> None:
    """One parsed raw object's figures added to its day's report."""
    trusted, quarantine = parsed.changes, parsed.quarantine
    report.rows_in += parsed.rows_in
    report.tombstones += parsed.tombstones
    if parsed.empty:
        report.empty_objects.append(obj.key)
    report.rows_out += trusted.num_rows
    report.quarantined += quarantine.num_rows
    report.ops.update(_value_counts(trusted.column("_op")))
    report.quarantine_reasons.update(_value_counts(quarantine.column("_reason_code")))
    if trusted.num_rows:
        bounds = pc.min_max(trusted.column("_commit_ts"))
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        report.min_commit_ts = lo if report.min_commit_ts is None else min(report.min_commit_ts, lo)
        report.max_commit_ts = hi if report.max_commit_ts is None else max(report.max_commit_ts, hi)
    shown = 0 if report.preview is None else report.preview.num_rows
    if shown < 10 and trusted.num_rows:
        head = trusted.slice(0, 10 - shown)
        report.preview = head if report.preview is None else pa.concat_tables([report.preview, head])
    report.null_keys += quality.null_key_count(trusted, spec.primary_key)
    for problem in quality.schema_mismatches(trusted, spec):
        if problem not in report.schema_mismatches:
            report.schema_mismatches.append(problem)


def _vanished(lake: Lake, spec: TableSpec, day: date, objects: list[ObjectInfo], allow_shrink: bool) -> list[str]:
    """Raw objects the day was built from that are gone now: ``RawObjectsMissing`` unless
    ``allow_shrink``. Raw is never modified, so that is retention or a mistake, and
    rebuilding without them would silently drop their changes."""
    vanished = sorted(set(_sources_of(lake, spec, day)) - {obj.key for obj in objects})
    if vanished and not allow_shrink:
        shown = ", ".join(lake.describe(k) for k in vanished[:5]) + (f" and {len(vanished) - 5} more" if len(vanished) > 5 else "")
        raise RawObjectsMissing(
            f"{spec.name} {day}: {len(vanished)} raw object(s) this partition was built from are gone: {shown}. "
            "Restore them, or re-run with allow_shrink: true to rebuild the partition without them."
        )
    return vanished


def _sources_of(lake: Lake, spec: TableSpec, day: date) -> list[str]:
    """Raw object keys an existing trusted day was built from ([] when there is none)."""
    manifest = delta.trusted_sources(lake, spec.name, day)
    if manifest is not None:
        return [k for k, _ in manifest["objects"]]
    # A day written without its manifest (a run killed between the commit and it):
    # the source keys of its changes.
    found = delta.read_trusted(lake, spec.name, [day])
    return pc.unique(found.column("_source_key")).to_pylist() if found.num_rows else []


def trusted_raw_digest(lake: Lake, spec: TableSpec, day: date) -> str | None:
    """The ``objects_digest`` a trusted day was built from, if it records one."""
    manifest = delta.trusted_sources(lake, spec.name, day)
    return None if manifest is None else manifest["digest"]


@dataclass
class CurrentReport:
    rows: int  # rows that exist (soft-deleted ones excluded)
    tombstones: int  # deleted keys the table remembers
    partitions_applied: list[str]  # ingest dates whose changes this update read
    changes_applied: int
    rebuilt: bool
    version: int | None  # current's Delta version after the update
    trusted_version: int | None  # the trusted version it reflects
    committed: bool  # False: nothing won (a replay), no new version
    inserted: int = 0
    updated: int = 0
    conflicts: int = 0  # commit retries and restarts after concurrent writers
    checks: dict = field(default_factory=dict)  # duplicate_rows, null_key_rows, mismatches
    preview: pa.Table | None = None


def update_current(lake: Lake, spec: TableSpec, *, rebuild: bool = False) -> CurrentReport:
    """Apply every trusted change written since the last update to current (``delta.update_current``:
    one MERGE commit, trusted version recorded in it), then measure the table for the checks
    with SQL over the Delta table (never the whole table in memory)."""
    merged = delta.update_current(lake, spec, rebuild=rebuild)
    stats = delta.current_stats(lake, spec, merged.changed_scope)
    return CurrentReport(
        rows=stats["rows"],
        tombstones=stats["deleted"],
        partitions_applied=merged.days_applied,
        changes_applied=merged.changes_applied,
        rebuilt=merged.rebuilt,
        version=merged.version,
        trusted_version=merged.trusted_version,
        committed=merged.committed,
        inserted=merged.inserted,
        updated=merged.updated,
        conflicts=merged.retries + merged.restarts,
        checks={k: stats[k] for k in ("duplicate_rows", "duplicate_scope", "null_key_rows", "mismatches")},
        preview=stats["preview"],
    )


def _partition_of(key: str) -> str:
    return key.rsplit("/", 2)[-2].removeprefix("ingest_date=")


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    if len(column) == 0:
        return {}
    return {d["values"]: d["counts"] for d in pc.value_counts(column).to_pylist()}
