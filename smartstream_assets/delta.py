"""trusted/, current/ and quarantine/ as Delta Lake tables (delta-rs: no JVM).

Layout (one Delta table each, on the local lake or S3):
    trusted/<table>/      the change log, partitioned by ``ingest_date`` (date). Re-running
                          days replaces exactly those partitions in ONE commit (a predicate
                          overwrite), so a backfill of many days is one commit. The change
                          data feed is on: ``current`` reads only what changed since it
                          last looked.
    quarantine/<table>/   rejected records with their reason, partitioned like trusted.
    current/<table>/      the state: the last change of every key, deletes INCLUDED as rows
                          with ``_op = 'delete'`` (soft deletes), so a late update older
                          than a delete cannot resurrect the row. Readers take
                          ``_op <> 'delete'`` (``read_current`` does; see the README for
                          DuckDB, Spark and Athena).

CDC is applied with MERGE, with exactly the semantics of ``cdc.apply_changes``: the
last write wins by ``(_commit_ts, _source_key, _source_line)``; a change that does not
win (a replay, a late update older than a delete) leaves the target row alone, and a
MERGE in which nothing wins writes no commit at all. The trusted version a MERGE has
applied is a Delta app transaction (``txn``) of the same commit, so the state and its
bookkeeping cannot disagree; two updates at once conflict on it and the loser retries.

Concurrency on S3 is delta-rs's: commits are conditional PUTs of the next log entry
(``If-None-Match``), which AWS and SeaweedFS enforce; a writer that loses re-reads the
log and retries (``num_retries`` in the commit's metrics) or fails, never both win.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .cdc import QUARANTINE_SCHEMA, trusted_schema
from .cdc.apply import last_change_per_key, winning_rows
from .keys import current_key as current_table
from .keys import quarantine_table, trusted_table
from .lake import Lake, LakeError, LocalLake, S3Lake
from .tables import TableSpec

PARTITION = "ingest_date"
APPLIED_APP_ID = "smartstream.trusted_version"  # current's txn: the trusted version applied
TRUSTED_CONFIG = {"delta.enableChangeDataFeed": "true"}
# current: small files (~90k employees rows), so a MERGE of recent keys rewrites few rows:
# one CDC day into 3M rows took 0.59 s with 8 MiB files, 0.18 s with 2 MiB (benchmarks/delta_merge.py)
TARGET_FILE_BYTES = 2 << 20
COMMIT_RETRIES = 15
UPDATE_ATTEMPTS = 5  # whole updates started over after a concurrent update won
DEFAULT_RETENTION_HOURS = 168  # Delta's default: 7 days of versions stay readable
_READ_CONFIG = {"datafusion.execution.batch_size": str(1 << 18)}  # whole-table reads, see _scan
_WINS = (  # a source change replaces the target row only when it is later
    "s._commit_ts > t._commit_ts OR (s._commit_ts = t._commit_ts AND (s._source_key > t._source_key"
    " OR (s._source_key = t._source_key AND s._source_line > t._source_line)))"
)


class DeltaTableError(LakeError):
    """A Delta table could not be read or written; the message names the table, never a secret."""


class LegacyLayout(DeltaTableError):
    """The table is still in the Parquet layout: writing Delta beside it would hide its history."""


def _refuse_legacy(lake: Lake, table: str) -> None:
    from .migrate import has_legacy_layout

    if has_legacy_layout(lake, table):
        raise LegacyLayout(
            f"{table} is still in the Parquet layout (one object per partition) under {lake.describe('')}: "
            f"convert it first with `smartstream table migrate {table}` (or rebuild current from trusted)."
        )


def sources_key(table: str, day: date) -> str:
    """The raw objects a trusted day was built from (written after its commit: a crash in
    between only makes the sensor ingest the day again, which is idempotent)."""
    return f"_state/trusted/{table}/ingest_date={day.isoformat()}/sources.json"


# ------------------------------------------------------------------ where and how


def table_uri(lake: Lake, path: str) -> str:
    if isinstance(lake, LocalLake):
        return str(Path(lake.root) / path)
    if isinstance(lake, S3Lake):
        return f"s3://{lake.bucket}/{lake.prefix}{path}"
    raise DeltaTableError(f"no Delta tables on {type(lake).__name__}")


def storage_options(lake: Lake) -> dict[str, str] | None:
    """delta-rs's options for the lake: on S3, the endpoint, region and credentials boto3
    resolves from the standard variables, profiles or roles (so the lake and its Delta
    tables always use the same account). They are handed to delta-rs only, never logged."""
    if not isinstance(lake, S3Lake):
        return None
    from .lake import _SESSION_LOCK, _boto_session

    with _SESSION_LOCK:
        session = _boto_session()
        credentials = session.get_credentials()
    options = {"conditional_put": "etag"}  # the commit protocol: If-None-Match on the next log entry
    endpoint = lake.client.meta.endpoint_url
    if endpoint and not endpoint.endswith("amazonaws.com"):
        options["AWS_ENDPOINT_URL"] = endpoint
        if endpoint.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    region = lake.client.meta.region_name or session.region_name
    if region:
        options["AWS_REGION"] = region
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        options["AWS_ACCESS_KEY_ID"] = frozen.access_key
        options["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
        if frozen.token:
            options["AWS_SESSION_TOKEN"] = frozen.token
    return options


def _clean(lake: Lake, path: str, exc: Exception) -> str:
    """delta-rs's message, without anything from the storage options."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    for value in (storage_options(lake) or {}).values():
        if len(value) >= 8 and value in text:
            text = text.replace(value, "***")
    return f"{lake.describe(path)}: {text}"


def open_table(lake: Lake, path: str, version: int | None = None):
    """The Delta table at ``path`` (at ``version``), or None when there is none."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    uri, options = table_uri(lake, path), storage_options(lake)
    try:
        return DeltaTable(uri, version=version, storage_options=options)  # one log read, not two
    except TableNotFoundError:
        return None
    except Exception as exc:
        raise DeltaTableError(f"cannot open Delta table {_clean(lake, path, exc)}") from None


def table_version(lake: Lake, path: str) -> int | None:
    found = open_table(lake, path)
    return None if found is None else found.version()


# ------------------------------------------------------------------ trusted and quarantine


@dataclass
class DayWrite:
    day: date
    trusted: pa.Table  # trusted_schema(spec)
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    sources: dict | None  # {"digest": ..., "objects": [[key, etag], ...]}; None: no raw objects any more


@dataclass
class TrustedCommit:
    version: int | None  # the trusted table's version after the commit (None: nothing written)
    retries: int


def _with_day(table: pa.Table, day: date) -> pa.Table:
    # pa.repeat, not a list of dates: 3M rows took 0.49 s of Python (holding the GIL, in the
    # thread that feeds delta-rs) against 0.01 s
    return table.append_column(pa.field(PARTITION, pa.date32()), pa.repeat(pa.scalar(day, pa.date32()), table.num_rows))


_PACKED_ALWAYS = ("_commit_ts", "_source_line")  # in every table that has them (trusted, current)


def _writer_properties(schema: pa.Schema, keys: Iterable[str] = ()):
    """Parquet settings for the columns whose values are many and close to their
    neighbours: the commit time, the line and integer, date or time keys. Dictionary
    encoding gives up on those once its page fills and falls back to PLAIN, 8 bytes a
    value; DELTA_BINARY_PACKED stores the differences. A 3M-change trusted write: 15 MB
    instead of 47 MB and ~25% less CPU (``benchmarks/ingest.py``). Every engine the
    README names reads it (Spark's vectorized reader since 3.3). None: nothing to set."""
    from deltalake import ColumnProperties, WriterProperties

    def close_together(kind: pa.DataType) -> bool:
        return pa.types.is_integer(kind) or pa.types.is_date(kind) or pa.types.is_timestamp(kind)

    names = [n for n in dict.fromkeys([*_PACKED_ALWAYS, *keys]) if n in schema.names and close_together(schema.field(n).type)]
    if not names:
        return None
    packed = ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
    return WriterProperties(column_properties={n: packed for n in names})


def _days_predicate(days: Iterable[date]) -> str:
    listed = ", ".join(f"'{d.isoformat()}'" for d in sorted(set(days)))
    return f"{PARTITION} IN ({listed})"


def write_days(lake: Lake, spec: TableSpec, writes: list[DayWrite], *, allow_legacy: bool = False) -> TrustedCommit:
    """Replace the trusted and quarantine partitions of these days (parsed already), each
    table in ONE commit. See ``write_parsed``."""
    return write_parsed(
        lake, spec, {w.day: w.sources for w in writes}, lambda: ((w.day, w.trusted, w.quarantine) for w in writes),
        allow_legacy=allow_legacy,
    )  # fmt: skip


Parsed = Callable[[], Iterable[tuple[date, pa.Table, pa.Table]]]


def write_parsed(
    lake: Lake, spec: TableSpec, sources: Mapping[date, dict | None], parse: Parsed, *, allow_legacy: bool = False
) -> TrustedCommit:
    """Replace the trusted and quarantine partitions of the days of ``sources``, each table
    in ONE commit, with what ``parse()`` yields: ``(day, changes, quarantined)`` for every
    raw object, in day order.

    The changes are streamed into the trusted commit: delta-rs writes data files as they
    arrive, so a backfill holds one object's changes at a time, not every day's (a 3M-event
    backfill peaked at 1.6 GiB holding them all). Nothing is visible before the commit: an
    error ``parse`` raises (an unreadable object) aborts it, and is raised as it was.
    ``parse`` is called again when the commit must start over (another writer's commit
    could not be reconciled), so it must yield the same from the raw objects each time.

    Trusted first, then quarantine (kept in memory: rejected records), the sources
    manifests last: a run killed in between has no manifest for a new day (the sensor runs
    it again, which rewrites all three the same way), and a re-run of unchanged objects
    finds the quarantine it would write. Days without raw objects any more (``None``
    sources) lose their partitions.
    """
    days = sorted(sources)
    if not days:
        return TrustedCommit(None, 0)
    if not allow_legacy and open_table(lake, trusted_table(spec.name)) is None:
        _refuse_legacy(lake, spec.name)
    schema = trusted_schema(spec)
    streamed = _source_as_dictionary(schema)
    quarantined: list[pa.Table] = []

    def changes() -> Iterator[pa.Table]:
        quarantined.clear()  # a restarted commit parses again
        for day, trusted, quarantine in parse():
            quarantined.append(_with_day(quarantine.cast(QUARANTINE_SCHEMA), day))
            if trusted.num_rows:
                yield _with_day(trusted.select(schema.names).cast(streamed), day)

    version, retries = _overwrite_days(
        lake, trusted_table(spec.name), changes, _with_day(streamed.empty_table(), days[0]).schema, days,
        {"smartstream.table": spec.name}, configuration=TRUSTED_CONFIG, writer_properties=_writer_properties(schema, spec.primary_key),
    )  # fmt: skip
    quarantine = pa.concat_tables(quarantined) if quarantined else _with_day(QUARANTINE_SCHEMA.empty_table(), days[0])
    _overwrite_days(lake, quarantine_table(spec.name), lambda: iter([quarantine]), quarantine.schema, days,
                    {"smartstream.table": spec.name})  # fmt: skip
    for day in days:
        if sources[day] is None:
            lake.delete(sources_key(spec.name, day))
        else:
            lake.write_bytes(sources_key(spec.name, day), json.dumps(sources[day]).encode())
    return TrustedCommit(version, retries)


def _source_as_dictionary(schema: pa.Schema) -> pa.Schema:
    """``schema`` with ``_source_key`` dictionary-encoded, as the data is handed to delta-rs.

    A raw object's changes share one source key (~50 bytes repeated per row): as a
    dictionary, the Parquet writer takes the codes instead of hashing and comparing every
    value (3M trusted rows: 0.70 s instead of 0.87 s to write, in a probe). The Delta
    table's column stays a string."""
    index = schema.get_field_index("_source_key")
    return schema.set(index, schema.field(index).with_type(pa.dictionary(pa.int32(), pa.string())))


def _undictionary(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in schema])


class _Stream:
    """``produce()``'s tables as one RecordBatchReader for delta-rs, keeping the exception
    ``produce`` raised (delta-rs only reports its text, wrapped) to raise it as it was."""

    def __init__(self, produce: Callable[[], Iterator[pa.Table]], schema: pa.Schema):
        self.tables = iter(produce())
        self.schema = schema
        self.error: Exception | None = None
        self.first = self._next()
        while self.first is not None and not self.first.num_rows:
            self.first = self._next()  # None: nothing to write

    def _next(self) -> pa.Table | None:
        try:
            return next(self.tables)
        except StopIteration:
            return None
        except Exception as exc:
            self.error = exc
            raise

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Iterator[pa.RecordBatch]:
            table = self.first
            while table is not None:
                yield from table.to_batches()
                table = self._next()

        return pa.RecordBatchReader.from_batches(self.schema, batches())


def _overwrite_days(
    lake: Lake, path: str, produce: Callable[[], Iterator[pa.Table]], schema: pa.Schema, days: list[date], metadata: dict,
    configuration: dict | None = None, writer_properties=None,
) -> tuple[int, int]:
    """(version of this commit, its retries). ``produce()``: the days' rows, as tables
    of ``schema``; called again for each attempt. Creating the table races with other first
    writers: the loser finds the table there and overwrites its days in it instead."""
    from deltalake import CommitProperties, DeltaTable, write_deltalake
    from deltalake.exceptions import CommitFailedError

    commit_id = uuid.uuid4().hex  # finds this commit in the log, whatever committed around it
    shown = ", ".join(d.isoformat() for d in sorted(set(days))[:5])
    props = CommitProperties(
        custom_metadata=metadata | {"smartstream.days": ",".join(d.isoformat() for d in sorted(set(days))), "smartstream.commit": commit_id},
        max_commit_retries=COMMIT_RETRIES,
    )
    last_error: Exception | None = None
    for _ in range(UPDATE_ATTEMPTS):
        stream = _Stream(produce, schema)
        found = open_table(lake, path)
        if found is None:
            if stream.first is None:
                return (-1, 0)  # nothing to keep and no table yet: no table
            # An empty table first (its schema, partitioning, settings), then the same
            # predicate overwrite as every run: two first writers racing for version 0
            # must not both append (the loser of a create is retried as a later version).
            try:
                DeltaTable.create(table_uri(lake, path), _undictionary(schema), mode="ignore", partition_by=[PARTITION],
                                  configuration=configuration, storage_options=storage_options(lake))  # fmt: skip
            except Exception as exc:
                last_error = exc
            found = open_table(lake, path)
            if found is None:
                continue
        try:
            write_deltalake(found, stream.reader(), partition_by=[PARTITION], mode="overwrite", predicate=_days_predicate(days),
                            schema_mode="merge", writer_properties=writer_properties, commit_properties=props)  # fmt: skip
            break
        except CommitFailedError as exc:  # a concurrent commit (a create's retry, a schema change): again
            last_error = exc
        except Exception as exc:
            if stream.error is not None:  # parsing failed (an unreadable raw object): its own error
                raise stream.error from None
            raise DeltaTableError(f"cannot write {shown} to {_clean(lake, path, exc)}") from None
    else:
        raise DeltaTableError(f"cannot write {shown} to {_clean(lake, path, last_error)}")
    return found.version(), _retries_of(lake, path, commit_id)


def _retries_of(lake: Lake, path: str, commit_id: str) -> int:
    """How often the commit ``commit_id`` lost the race for its version and tried again.
    (Found by its id: ``history()``'s own version numbers shift while others commit.)"""
    for entry in open_table(lake, path).history(200):
        if entry.get("smartstream.commit") == commit_id:
            return int((entry.get("operationMetrics") or {}).get("num_retries") or 0)
    return 0


def trusted_sources(lake: Lake, table: str, day: date) -> dict | None:
    """The sources manifest of a trusted day ({"digest", "objects"}), None when there is none."""
    key = sources_key(table, day)
    if not lake.exists(key):
        return None
    return json.loads(lake.read_bytes(key))


def read_trusted(lake: Lake, table: str, days: Iterable[date] | None = None, version: int | None = None) -> pa.Table:
    """Trusted changes (of ``days`` if given) with their ``ingest_date``; an empty table when there is none."""
    return _read_partitioned(lake, trusted_table(table), days, version)


def read_quarantine(lake: Lake, table: str, days: Iterable[date] | None = None, version: int | None = None) -> pa.Table:
    """Quarantined records (of ``days`` if given) with their ``ingest_date``; an empty table when there is none."""
    return _read_partitioned(lake, quarantine_table(table), days, version)


def _read_partitioned(lake: Lake, path: str, days: Iterable[date] | None, version: int | None) -> pa.Table:
    found = open_table(lake, path, version)
    if found is None:
        return pa.table({})
    if days is None:
        return _scan(lake, path, found)
    listed = ", ".join(f"DATE '{d.isoformat()}'" for d in sorted(set(days)))
    return _scan(lake, path, found, where=f"{PARTITION} IN ({listed})")


def _scan(lake: Lake, path: str, found, columns: list[str] | None = None, where: str | None = None) -> pa.Table:
    """The table (the version ``found`` holds) read by delta-rs's own engine (DataFusion).

    Not ``to_pyarrow_dataset()``: pyarrow's C++ I/O threads calling back into delta-rs's
    filesystem made the interpreter abort at exit ("terminate called without an active
    exception") in 4 of 50 runs of a script that wrote from threads and then read that
    way, and in 0 of 40 reading through this.

    In batches of 256k rows (DataFusion's default is 8k): reading 3M trusted rows into
    one table, string views cast to strings, took ~1.1 s in 8k batches, ~0.3 s in these."""
    # one cast of one chunk: ~2x faster than per batch
    return _plain(_read(lake, path, found, columns, where=where).combine_chunks())


def trusted_days(lake: Lake, table: str) -> list[date]:
    found = open_table(lake, trusted_table(table))
    if found is None:
        return []
    values = {p[PARTITION] for p in found.partitions()}
    return sorted(date.fromisoformat(v) for v in values if v)


# ------------------------------------------------------------------ current: MERGE


@dataclass
class MergeReport:
    version: int | None  # current's version after the update
    trusted_version: int | None  # the trusted version it reflects
    days_applied: list[str]
    changes_applied: int  # trusted rows read (each day's changes)
    inserted: int
    updated: int  # rows replaced by a later change (a delete counts here: it becomes a soft delete)
    committed: bool  # False: nothing won, no new version
    rebuilt: bool
    retries: int  # delta-rs's retries of the commit (another writer took its version first)
    restarts: int = 0  # whole updates started over (a concurrent commit conflicted with this one)
    # Where this update could have changed keys (SQL over ``t``): None = anywhere (a rebuild,
    # string keys), "FALSE" = nowhere (nothing won). The checks look there.
    changed_scope: str | None = None


def update_current(lake: Lake, spec: TableSpec, *, rebuild: bool = False, allow_legacy: bool = False) -> MergeReport:
    """Apply trusted's changes since the version current last applied, in ONE MERGE commit
    that also records the new trusted version (an app transaction).

    Only the change data feed since that version is read, so the cost follows the day's
    changes and the files they touch, not the table. A current table whose columns no
    longer match the registry, a missing one, ``rebuild`` or a feed that is no longer
    there (vacuumed) read trusted whole instead; ``rebuild`` also replaces current.
    """
    if not allow_legacy:
        _refuse_legacy_current(lake, spec.name)
    last_error = None
    for attempt in range(UPDATE_ATTEMPTS):
        try:
            report = _update_current_once(lake, spec, rebuild)
            report.restarts = attempt
            return report
        except _Conflict as exc:  # a concurrent update committed first: start over from its state
            last_error = exc.__cause__ or exc
    raise DeltaTableError(
        f"cannot apply trusted to {_clean(lake, current_table(spec.name), last_error)}: {UPDATE_ATTEMPTS} concurrent "
        f"updates won in a row; limit the concurrency of current/{spec.name}"
    )


class _Conflict(Exception):
    pass


def _refuse_legacy_current(lake: Lake, table: str) -> None:
    if open_table(lake, current_table(table)) is None:
        _refuse_legacy(lake, table)


def _update_current_once(lake: Lake, spec: TableSpec, rebuild: bool) -> MergeReport:
    from deltalake import CommitProperties, Transaction, write_deltalake
    from deltalake.exceptions import CommitFailedError

    trusted = open_table(lake, trusted_table(spec.name))
    if trusted is None:
        raise DeltaTableError(f"no trusted table at {lake.describe(trusted_table(spec.name))}: ingest a day first")
    target_version = trusted.version()
    schema = trusted_schema(spec)
    path = current_table(spec.name)
    current = open_table(lake, path)
    if current is not None and _plain_schema(current) != schema:
        rebuild = True  # the registry's columns changed: rebuild from trusted
    if current is None:
        # An empty table first, then a MERGE like every update: two first updates racing
        # then conflict on the MERGE (and its app transaction) like any other two. (An
        # overwrite that lost the race to a create would keep both writers' rows.)
        current = _create_current(lake, spec)
    applied = None if rebuild else current.transaction_version(APPLIED_APP_ID)
    if applied is not None and applied >= target_version:
        return MergeReport(current.version(), applied, [], 0, 0, 0, False, False, 0, changed_scope="FALSE")
    found = _latest_changes(lake, trusted, applied, trusted_table(spec.name), spec)
    days, latest = found.days, found.rows
    encodings = _writer_properties(schema, spec.primary_key)
    commit_id = uuid.uuid4().hex
    props = CommitProperties(
        app_transactions=[Transaction(APPLIED_APP_ID, target_version)],
        custom_metadata={"smartstream.days": ",".join(days), "smartstream.trusted_version": str(target_version),
                         "smartstream.commit": commit_id},
        max_commit_retries=COMMIT_RETRIES,
    )  # fmt: skip
    try:
        if rebuild:  # replace the table: what trusted holds now, nothing else
            write_deltalake(current, found.reader(schema), mode="overwrite", schema_mode="overwrite",
                            target_file_size=TARGET_FILE_BYTES, writer_properties=encodings, commit_properties=props)  # fmt: skip
            return MergeReport(current.version(), target_version, days, found.read, latest.num_rows, 0, True, True,
                               _retries_of(lake, path, commit_id))
        if applied is None and not current.file_uris():
            # A new, empty current: nothing to merge into, so an append (a first backfill
            # of 3M changes: 1.2 s instead of 6 s of MERGE). It carries the same app
            # transaction, on which delta-rs refuses a second first update racing this one.
            write_deltalake(current, found.reader(schema), mode="append", target_file_size=TARGET_FILE_BYTES,
                            writer_properties=encodings, commit_properties=props)  # fmt: skip
            return MergeReport(current.version(), target_version, days, found.read, latest.num_rows, 0, True, False,
                               _retries_of(lake, path, commit_id))
        latest = found.in_key_order(schema)
        key_range = _key_range(latest, spec)
        on = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in spec.primary_key) + key_range
        metrics = (
            current.merge(latest, on, source_alias="s", target_alias="t", writer_properties=encodings, commit_properties=props)
            .when_matched_update_all(predicate=_WINS)
            .when_not_matched_insert_all()
            .execute()
        )
    except Exception as exc:
        if isinstance(exc, CommitFailedError):
            raise _Conflict() from exc
        raise DeltaTableError(f"cannot apply trusted v{target_version} to {_clean(lake, path, exc)}") from None
    inserted, updated = int(metrics.get("num_target_rows_inserted", 0)), int(metrics.get("num_target_rows_updated", 0))
    if not (inserted or updated):  # nothing won (a replay): delta-rs writes no commit
        return MergeReport(current.version(), applied, days, found.read, 0, 0, False, rebuild, 0, changed_scope="FALSE")
    return MergeReport(current.version(), target_version, days, found.read, inserted, updated, True, rebuild,
                       _retries_of(lake, path, commit_id), changed_scope=key_range.removeprefix(" AND ") or None)


def _key_range(source: pa.Table, spec: TableSpec) -> str:
    """`` AND t.k >= lo AND t.k <= hi`` for each integer, date or timestamp key column:
    literals on the target let delta-rs skip the files whose statistics lie outside the
    day's keys (a join condition alone makes it scan every file); readings keyed by time
    (co2, vitals) prune by their timestamps. Strings are left out (Delta truncates their
    statistics, and quoting)."""
    terms = []
    for k in spec.primary_key:
        column = source.column(k)
        kind = column.type
        if source.num_rows == 0 or not (pa.types.is_integer(kind) or pa.types.is_date(kind) or pa.types.is_timestamp(kind)):
            continue
        bounds = pc.min_max(column)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        if lo is None:
            continue
        if pa.types.is_date(kind):
            lo, hi = f"DATE '{lo.isoformat()}'", f"DATE '{hi.isoformat()}'"
        elif pa.types.is_timestamp(kind):  # aware (UTC) in the registry's types: ISO with its offset
            lo, hi = f"TIMESTAMP '{lo.isoformat()}'", f"TIMESTAMP '{hi.isoformat()}'"
        terms.append(f" AND t.{_q(k)} >= {lo} AND t.{_q(k)} <= {hi}")
    return "".join(terms)


def _create_current(lake: Lake, spec: TableSpec):
    from deltalake import DeltaTable

    path = current_table(spec.name)
    try:
        DeltaTable.create(table_uri(lake, path), trusted_schema(spec), mode="ignore", storage_options=storage_options(lake),
                          configuration={"delta.dataSkippingNumIndexedCols": str(len(spec.primary_key) + 4)})  # fmt: skip
    except Exception as exc:
        if open_table(lake, path) is None:  # else another update created it first
            raise DeltaTableError(f"cannot create {_clean(lake, path, exc)}") from None
    return open_table(lake, path)


def record_applied(lake: Lake, spec: TableSpec) -> int:
    """Record in current that everything trusted holds now is applied, by a commit with no
    data (after a migration, whose state already held it all)."""
    from deltalake import CommitProperties, Transaction, write_deltalake

    current, trusted = open_table(lake, current_table(spec.name)), open_table(lake, trusted_table(spec.name))
    props = CommitProperties(app_transactions=[Transaction(APPLIED_APP_ID, trusted.version())])
    write_deltalake(current, trusted_schema(spec).empty_table(), mode="append", commit_properties=props)
    return current.version()


def write_state(lake: Lake, spec: TableSpec, state: pa.Table) -> int:
    """Replace current with ``state`` (the last change of every key, deletes included) with
    no trusted version recorded, so the next update applies trusted whole over it."""
    from deltalake import write_deltalake

    schema = trusted_schema(spec)
    state = state.select(schema.names).cast(schema).sort_by([(k, "ascending") for k in spec.primary_key])
    try:
        write_deltalake(table_uri(lake, current_table(spec.name)), state, mode="overwrite", schema_mode="overwrite",
                        target_file_size=TARGET_FILE_BYTES, writer_properties=_writer_properties(schema, spec.primary_key),
                        storage_options=storage_options(lake))  # fmt: skip
    except Exception as exc:
        raise DeltaTableError(f"cannot write {_clean(lake, current_table(spec.name), exc)}") from None
    return open_table(lake, current_table(spec.name)).version()


@dataclass
class _Latest:
    """The last change of every key among the changes an update reads."""

    rows: pa.Table  # the winning changes, in any order
    key_order: pa.Array | None  # indices putting ``rows`` in primary-key order (None: they are)
    read: int  # trusted rows read
    days: list[str]  # ingest dates they came from

    def in_key_order(self, schema: pa.Schema) -> pa.Table:
        rows = self.rows if self.key_order is None else self.rows.take(self.key_order)
        return rows.select(schema.names).cast(schema)

    def reader(self, schema: pa.Schema, batch_rows: int = 1 << 17) -> pa.RecordBatchReader:
        """In key order, a batch at a time: delta-rs encodes one while the next is gathered,
        and the table is never copied whole. The source key goes as a dictionary (see
        ``_source_as_dictionary``); the table's column stays a string."""
        streamed = _source_as_dictionary(schema)

        def batches() -> Iterator[pa.RecordBatch]:
            for start in range(0, self.rows.num_rows, batch_rows):
                part = self.rows.slice(start, batch_rows) if self.key_order is None else self.rows.take(self.key_order.slice(start, batch_rows))
                yield from part.select(schema.names).cast(streamed).to_batches()

        return pa.RecordBatchReader.from_batches(streamed, batches())


def _latest_changes(lake: Lake, trusted, applied: int | None, path: str, spec: TableSpec) -> _Latest:
    """The trusted rows written after version ``applied`` (every row when None) up to the
    version ``trusted`` holds (the one recorded as applied), reduced to the last change
    of every key. After ``applied``: the change feed's inserts. Rows an overwrite removed
    stay applied, as they were before the overwrite (a rebuild forgets them)."""
    schema = trusted_schema(spec)
    if applied is not None:
        try:
            feed = trusted.load_cdf(starting_version=applied + 1, ending_version=trusted.version())
            feed = _plain(pa.table(feed.read_all()) if hasattr(feed, "read_all") else pa.table(feed))
        except Exception:
            feed = None  # the feed of those versions is gone (vacuumed): read trusted whole
        if feed is not None:
            changes = feed.filter(pc.is_in(feed.column("_change_type"), value_set=pa.array(["insert", "update_postimage"])))
            days = sorted(d.isoformat() for d in pc.unique(changes.column(PARTITION)).to_pylist()) if changes.num_rows else []
            latest = last_change_per_key(changes.select(schema.names).cast(schema), list(spec.primary_key))
            return _Latest(latest, None, changes.num_rows, days)
    return _latest_of_all(lake, trusted, path, spec)


def _latest_of_all(lake: Lake, trusted, path: str, spec: TableSpec) -> _Latest:
    """The last change of every key in the whole table, in two passes that never hold it all.

    1. The keys and the order columns alone decide the winners (``winning_rows``),
       each remembered as (source object, line): that pair names one trusted row, because
       a raw object lands in one ingest date and each of its lines in one row.
    2. The table is streamed again, a batch at a time, keeping the winners' rows.

    A first backfill of 3M changes read whole (and its string columns cast) peaked at
    ~1.9 GiB; see ``benchmarks/ingest.py``.
    """
    schema = trusted_schema(spec)
    keys = list(spec.primary_key)
    order = _read(lake, path, trusted, [*keys, "_commit_ts", "_source_key", "_source_line", PARTITION], dictionary=["_source_key"])
    read = order.num_rows
    days = sorted(d.isoformat() for d in pc.unique(order.column(PARTITION)).to_pylist()) if read else []
    if not read:
        return _Latest(schema.empty_table(), None, 0, days)
    encoded = order.column("_source_key").combine_chunks()  # the batches' dictionaries unified
    sources = encoded.dictionary.cast(pa.string())  # each object once
    source_index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    line_column = order.column("_source_line")
    if line_column.null_count or pc.min_max(line_column)["min"].as_py() < 0:  # no slot for such a line
        return _latest_in_memory(lake, path, trusted, spec, read, days)
    lines = line_column.to_numpy()
    rank_of = np.empty(len(sources), np.int64)
    rank_of[pc.sort_indices(sources).to_numpy()] = np.arange(len(sources))  # the source keys' order
    winners = winning_rows(_plain(order.select(keys)), order.column("_commit_ts"), rank_of[source_index], lines)
    del order, encoded
    # Each winner's place in key order, in a slot per (object, line): objects' lines are
    # numbered from 1, so the slots number about the lines read (4 bytes each). A lookup per
    # row in pass 2, where a sort of the winners' codes and a binary search took ~0.2 s at 3M.
    last_line = np.zeros(len(sources), np.int64)
    np.maximum.at(last_line, source_index, lines)
    first_slot = np.cumsum(last_line + 1) - (last_line + 1)
    if int(last_line.sum()) + len(sources) > 8 * read + (1 << 20):  # sparse lines: slots would outgrow the rows
        return _latest_in_memory(lake, path, trusted, spec, read, days)
    slot = np.full(int(last_line.sum()) + len(sources), -1, np.int32)
    slot[first_slot[source_index[winners]] + lines[winners]] = np.arange(len(winners), dtype=np.int32)
    del source_index, lines
    kept, ranks = [], []  # the winners' rows, and each one's place in key order
    for batch in _batches(lake, path, trusted, schema.names, dictionary=["_source_key"]):
        batch = _plain(pa.table(batch))  # Arrow's filter takes no string views
        if not batch.num_rows:
            continue
        source = batch.column("_source_key").chunk(0)  # a dictionary of the batch's few objects
        local = pc.index_in(source.dictionary.cast(pa.string()), value_set=sources).fill_null(-1).to_numpy()
        index = local[source.indices.fill_null(0).to_numpy()]
        line = batch.column("_source_line").fill_null(-1).to_numpy()
        known = (index >= 0) & (line >= 0) & (line <= last_line[index])  # rows written since pass 1 are not
        rank = np.full(len(line), -1, np.int32)
        rank[known] = slot[first_slot[index[known]] + line[known]]
        hit = rank >= 0
        kept.append(batch.filter(pa.array(hit)))
        ranks.append(rank[hit])
    rows = pa.concat_tables(kept) if kept else schema.empty_table()  # chunked: the reader takes from the chunks (a combine copied 1M rows, ~0.35 s)
    rank = np.concatenate(ranks) if ranks else np.empty(0, np.int32)
    found = np.zeros(len(winners), bool)
    found[rank] = True
    if rows.num_rows != len(winners) or not found.all():  # the table changed under the scan, or a (source, line) repeats
        return _latest_in_memory(lake, path, trusted, spec, read, days)
    # the key order is known from the winners: no sort of the rows (~0.55 s at 1M rows)
    key_order = np.empty(len(rank), np.int64)
    key_order[rank] = np.arange(len(rank))
    return _Latest(rows, pa.array(key_order), read, days)


def _latest_in_memory(lake: Lake, path: str, trusted, spec: TableSpec, read: int, days: list[str]) -> _Latest:
    schema = trusted_schema(spec)
    changes = _scan(lake, path, trusted, columns=schema.names)
    return _Latest(last_change_per_key(changes.cast(schema), list(spec.primary_key)), None, read, days)


def _read(lake: Lake, path: str, found, columns: list[str] | None = None, *, where: str | None = None,
          dictionary: Iterable[str] = ()) -> pa.Table:  # fmt: skip
    """These columns (all: None) of the version ``found`` holds, as delta-rs returns them
    (string views; the ``dictionary`` ones dictionary-encoded)."""
    try:
        return pa.table(_query(found, columns, where, dictionary).read_all())
    except Exception as exc:
        raise _unreadable(lake, path, found, exc) from None


def _batches(lake: Lake, path: str, found, columns: list[str], dictionary: Iterable[str] = ()) -> Iterator:
    """These columns of the version ``found`` holds, a batch at a time; the ``dictionary``
    ones dictionary-encoded (a column of few distinct values: no string copied per row)."""
    try:
        yield from _query(found, columns, None, dictionary)
    except Exception as exc:
        raise _unreadable(lake, path, found, exc) from None


def _query(found, columns: list[str] | None, where: str | None, dictionary: Iterable[str]):
    from deltalake import QueryBuilder

    encoded = set(dictionary)
    listed = "*" if columns is None else ", ".join(
        f"arrow_cast({_q(c)}, 'Dictionary(Int32, Utf8)') AS {_q(c)}" if c in encoded else _q(c) for c in columns
    )  # fmt: skip
    sql = f"SELECT {listed} FROM t" + (f" WHERE {where}" if where else "")
    return QueryBuilder(_READ_CONFIG).register("t", found).execute(sql)


def _unreadable(lake: Lake, path: str, found, exc: Exception) -> DeltaTableError:
    """A file of that version is gone: vacuumed, or removed by hand."""
    return DeltaTableError(f"cannot read version {found.version()} of {_clean(lake, path, exc)} (vacuumed past its retention?)")


def _plain(table: pa.Table) -> pa.Table:
    """delta-rs (DataFusion) returns string_view / binary_view columns; the rest of the
    project, pandas and older pyarrow readers expect plain string and binary."""
    views = {pa.string_view(): pa.string(), pa.binary_view(): pa.binary(), pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    if not any(f.type in views for f in table.schema):
        return table
    return table.cast(pa.schema([f.with_type(views.get(f.type, f.type)) for f in table.schema]))


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _plain_schema(table) -> pa.Schema:
    schema = table.schema()
    arrow = schema.to_arrow() if hasattr(schema, "to_arrow") else schema.to_pyarrow()
    return pa.schema(arrow)


def read_current(
    lake: Lake, table: str, columns: list[str] | None = None, *, version: int | None = None, include_deleted: bool = False
) -> pa.Table | None:
    """The rows that exist now (or at ``version``), without ``_op``; None when there is no table.
    ``columns``: only these (and what the filter needs). ``include_deleted`` keeps the
    soft-deleted rows and ``_op`` (the whole state)."""
    found = open_table(lake, current_table(table), version)
    if found is None:
        return None
    wanted = None if columns is None else list(dict.fromkeys(["_op", *columns]))
    state = _scan(lake, current_table(table), found, columns=wanted)
    if include_deleted:
        return state
    return state.filter(pc.not_equal(state.column("_op"), "delete")).drop_columns(["_op"])


def query(lake: Lake, tables: Mapping[str, str], sql: str) -> pa.Table:
    """SQL (DataFusion, inside delta-rs) over Delta tables registered under names: it
    streams the files, so counting a table of any size does not load it."""
    from deltalake import QueryBuilder

    builder = QueryBuilder()
    for name, path in tables.items():
        found = open_table(lake, path)
        if found is None:
            raise DeltaTableError(f"no Delta table at {lake.describe(path)}")
        builder = builder.register(name, found)
    try:
        return _plain(pa.table(builder.execute(sql).read_all()))
    except Exception as exc:
        raise DeltaTableError(f"query over {', '.join(lake.describe(p) for p in tables.values())} failed: {exc}") from None


def count_rows(lake: Lake, path: str, where: str | None = None) -> int:
    """Rows of a Delta table (0 when there is none), matching ``where`` (SQL) if given."""
    if open_table(lake, path) is None:
        return 0
    sql = "SELECT count(*) AS n FROM t" + (f" WHERE {where}" if where else "")
    return int(query(lake, {"t": path}, sql).column("n")[0].as_py())


def current_stats(lake: Lake, spec: TableSpec, scope: str | None = None) -> dict:
    """What current's checks and metadata need, by SQL over the table: rows, deleted keys,
    null primary keys among the rows (one streaming pass), duplicate keys, columns unlike
    the registry, a preview.

    Duplicates need a GROUP BY over the keys, whose memory grows with the table (4.5 GiB
    at 30M rows): ``scope`` (SQL over ``t``, ``MergeReport.changed_scope``) limits it to
    where the update could have changed keys, the only place a MERGE of a deduplicated
    day can create one ("FALSE": nowhere, None: the whole table, as the maintenance job
    checks it)."""
    from . import quality

    keys = ", ".join(f"t.{_q(k)}" for k in spec.primary_key)
    nulls = " OR ".join(f"t.{_q(k)} IS NULL" for k in spec.primary_key)
    live = "t._op <> 'delete'"
    path = current_table(spec.name)
    counts = (
        f"SELECT count(*) FILTER (WHERE {live}) AS rows, count(*) FILTER (WHERE NOT ({live})) AS deleted, "
        f"count(*) FILTER (WHERE {live} AND ({nulls})) AS null_keys FROM t"
    )
    figures = query(lake, {"t": path}, counts).to_pylist()[0]
    duplicates = 0
    if scope != "FALSE":
        where = live + (f" AND ({scope})" if scope else "")
        dup_sql = f"SELECT coalesce(sum(n - 1), 0) AS extra FROM (SELECT count(*) AS n FROM t WHERE {where} GROUP BY {keys} HAVING count(*) > 1)"
        duplicates = int(query(lake, {"t": path}, dup_sql).column("extra")[0].as_py() or 0)
    preview = query(lake, {"t": path}, f"SELECT * FROM t WHERE {live} LIMIT 10").drop_columns(["_op"])
    return {
        "rows": int(figures["rows"] or 0),
        "deleted": int(figures["deleted"] or 0),
        "null_key_rows": int(figures["null_keys"] or 0),
        "duplicate_rows": duplicates,
        "duplicate_scope": "nothing changed" if scope == "FALSE" else (scope or "the whole table"),
        "mismatches": quality.schema_mismatches(preview, spec),
        "preview": preview,
    }


# ------------------------------------------------------------------ maintenance


@dataclass
class Maintenance:
    table: str
    version: int
    optimized: dict
    vacuumed: list[str]
    retention_hours: int


def maintain(lake: Lake, path: str, *, z_order: Iterable[str] | None = None, retention_hours: int = DEFAULT_RETENTION_HOURS,
             dry_run: bool = False, keys: Iterable[str] = ()) -> Maintenance | None:  # fmt: skip
    """Compact small files (Z-ordered by ``z_order`` when given, so a MERGE of a key range
    touches few files), then vacuum files no version within ``retention_hours`` needs,
    and checkpoint the log. Never removes what a retained version reads. Rewritten files
    keep the encodings of ``_writer_properties`` (``keys``: the table's primary key)."""
    found = open_table(lake, path)
    if found is None:
        return None
    try:
        columns = list(z_order or [])
        # current keeps its small files (see TARGET_FILE_BYTES); the logs take delta-rs's default
        encodings = _writer_properties(_plain_schema(found), keys)
        optimized = (found.optimize.z_order(columns, target_size=TARGET_FILE_BYTES, writer_properties=encodings) if columns
                     else found.optimize.compact(writer_properties=encodings))  # fmt: skip
        found = open_table(lake, path)
        vacuumed = found.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=False)
        found.create_checkpoint()
    except Exception as exc:
        raise DeltaTableError(f"cannot maintain {_clean(lake, path, exc)}") from None
    return Maintenance(path, open_table(lake, path).version(), dict(optimized), list(vacuumed), retention_hours)


def history(lake: Lake, path: str, limit: int | None = None) -> list[Mapping]:
    found = open_table(lake, path)
    return [] if found is None else found.history(limit)
