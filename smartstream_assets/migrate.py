"""Convert a lake of the Parquet layout (one object per partition) to Delta tables.

The Parquet layout was:
    trusted/<table>/ingest_date=D/data.parquet       (sources in its schema metadata)
    quarantine/<table>/ingest_date=D/data.parquet
    current/<table>/data.parquet
    _state/current/<table>/state.parquet            last change per key, deletes included

``migrate_table`` writes every trusted and quarantine day into the Delta tables (one
commit each), keeps the old state as current (so changes whose raw objects are gone stay
applied, as they did), applies trusted over it (idempotent: last write wins), and only
then deletes the old objects. A run killed at any point is run again from the start
and ends the same. ``smartstream table migrate`` runs it; ``rebuild: true`` on the
current asset is the other way (from trusted alone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date


from . import delta
from .cdc import QUARANTINE_SCHEMA, trusted_schema
from .lake import Lake
from .tables import TableSpec

LEGACY_SOURCES = b"smartstream.sources"


def legacy_state_key(table: str) -> str:
    return f"_state/current/{table}/state.parquet"


def legacy_objects(lake: Lake, table: str) -> dict[str, list[str]]:
    """The Parquet-layout objects of ``table`` by zone (empty lists: nothing to migrate)."""
    found = {"trusted": [], "quarantine": [], "current": [], "state": []}
    for zone in ("trusted", "quarantine"):
        found[zone] = sorted(o.key for o in lake.list(f"{zone}/{table}/") if o.key.endswith("/data.parquet") and "/ingest_date=" in o.key)
    if lake.exists(f"current/{table}/data.parquet"):
        found["current"].append(f"current/{table}/data.parquet")
    for key in (legacy_state_key(table), f"_state/current/{table}/tombstones.parquet"):
        if lake.exists(key):
            found["state"].append(key)
    return found


def has_legacy_layout(lake: Lake, table: str) -> bool:
    return any(legacy_objects(lake, table).values())


@dataclass
class Migration:
    table: str
    days: list[str] = field(default_factory=list)
    trusted_rows: int = 0
    quarantined_rows: int = 0
    state_rows: int = 0
    current_rows: int = 0
    deleted_objects: int = 0
    current_version: int | None = None


def _day_of(key: str) -> date:
    return date.fromisoformat(key.rsplit("/", 2)[-2].removeprefix("ingest_date="))


def migrate_table(lake: Lake, spec: TableSpec) -> Migration | None:
    """Convert one table; None when it has nothing in the Parquet layout."""
    old = legacy_objects(lake, spec.name)
    if not any(old.values()):
        return None
    result = Migration(spec.name)
    schema = trusted_schema(spec)
    quarantine_by_day = {_day_of(k): k for k in old["quarantine"]}
    writes = []
    for key in old["trusted"]:
        day = _day_of(key)
        table = lake.read_parquet(key)
        meta = table.schema.metadata or {}
        sources = json.loads(meta[LEGACY_SOURCES]) if LEGACY_SOURCES in meta else None
        trusted = table.replace_schema_metadata(None).select(schema.names).cast(schema)
        q_key = quarantine_by_day.pop(day, None)
        quarantine = lake.read_parquet(q_key).cast(QUARANTINE_SCHEMA) if q_key else QUARANTINE_SCHEMA.empty_table()
        writes.append(delta.DayWrite(day, trusted, quarantine, sources))
        result.days.append(day.isoformat())
        result.trusted_rows += trusted.num_rows
        result.quarantined_rows += quarantine.num_rows
    for day, q_key in quarantine_by_day.items():  # quarantine without trusted changes
        quarantine = lake.read_parquet(q_key).cast(QUARANTINE_SCHEMA)
        writes.append(delta.DayWrite(day, schema.empty_table(), quarantine, delta.trusted_sources(lake, spec.name, day)))
        result.quarantined_rows += quarantine.num_rows
    if writes:
        delta.write_days(lake, spec, writes, allow_legacy=True)
    if old["state"] and lake.exists(legacy_state_key(spec.name)):
        state = lake.read_parquet(legacy_state_key(spec.name)).replace_schema_metadata(None)
        if state.schema.names == schema.names:  # else the columns changed: rebuilt from trusted below
            result.state_rows = state.num_rows
            delta.write_state(lake, spec, state.cast(schema))
    if delta.open_table(lake, delta.trusted_table(spec.name)) is not None:
        if not delta.update_current(lake, spec, allow_legacy=True).committed:
            delta.record_applied(lake, spec)  # the state held every change already
    for key in old["trusted"] + old["quarantine"] + old["current"] + old["state"]:
        lake.delete(key)
        result.deleted_objects += 1
    result.current_rows = delta.count_rows(lake, delta.current_table(spec.name), "_op <> 'delete'")
    result.current_version = delta.table_version(lake, delta.current_table(spec.name))
    return result


def as_json(m: Migration) -> str:
    return json.dumps(m.__dict__, default=str)

