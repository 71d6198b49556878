"""The previous release's ``ingestion.update_current`` (the Parquet layout), kept as the
baseline of ``benchmarks/delta_merge.py``: the state (last change of every key, deletes
included) is ONE Parquet object loaded whole, applied to, and rewritten with
compare-and-swap; ``current/`` is published from it. Not used by the product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from smartstream_assets.cdc import apply_changes, current_rows, trusted_schema
from smartstream_assets.lake import Lake, LakeError, PreconditionFailed, parquet_bytes, parquet_from_bytes
from smartstream_assets.tables import TableSpec

_APPLIED_KEY = b"smartstream.applied"
_GENERATION_KEY = b"smartstream.generation"
CAS_ATTEMPTS = 20


def trusted_key(table: str, day) -> str:
    return f"trusted/{table}/ingest_date={day.isoformat()}/data.parquet"


def current_key(table: str) -> str:
    return f"current/{table}/data.parquet"


def state_key(table: str) -> str:
    return f"_state/current/{table}/state.parquet"


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


