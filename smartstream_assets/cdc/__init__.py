"""Change data capture: read raw objects, type them, apply them to the current state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from ..tables import TableSpec
from .apply import apply_changes, current_rows
from .coerce import QUARANTINE_SCHEMA, coerce, trusted_schema
from .formats import UnreadableObject, is_full_load, read_records

__all__ = [
    "ParsedObject",
    "QUARANTINE_SCHEMA",
    "UnreadableObject",
    "apply_changes",
    "current_rows",
    "is_full_load",
    "parse_object",
    "trusted_schema",
]


@dataclass
class ParsedObject:
    changes: pa.Table  # trusted schema: _op, _commit_ts, _source_key, _source_line, columns
    quarantine: pa.Table  # QUARANTINE_SCHEMA
    tombstones: int = 0  # Debezium tombstones skipped (not changes)
    empty: bool = False  # the object held no record at all (0 bytes, only a header, ...)

    @property
    def rows_in(self) -> int:
        return self.changes.num_rows + self.quarantine.num_rows


def parse_object(spec: TableSpec, key: str, data: bytes, last_modified: datetime) -> ParsedObject:
    """One raw object into typed changes and quarantined records; nothing else is dropped.

    Raises ``UnreadableObject`` (naming ``key``) when the object cannot be read at all.
    """
    records = read_records(spec, key, data)
    changes, quarantine = coerce(spec, records, key, last_modified)
    return ParsedObject(changes, quarantine, records.tombstones, records.empty)
