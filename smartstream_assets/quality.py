"""Data-quality rules shared by the asset checks: pure functions over Arrow tables."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from .tables import COLUMN_TYPES, TableSpec


def null_key_count(table: pa.Table, primary_key) -> int:
    """Rows with any primary-key column empty."""
    if table.num_rows == 0:
        return 0
    mask = None
    for k in primary_key:
        m = pc.is_null(table.column(k))
        mask = m if mask is None else pc.or_(mask, m)
    return int(pc.sum(mask).as_py() or 0)


def duplicate_key_count(table: pa.Table, primary_key) -> int:
    """Rows beyond the first for each primary key (0 when the key is unique)."""
    if table.num_rows == 0:
        return 0
    distinct = table.group_by(list(primary_key)).aggregate([]).num_rows
    return table.num_rows - distinct


def schema_mismatches(table: pa.Table, spec: TableSpec) -> list[str]:
    """Declared columns that are missing or typed differently from the registry."""
    problems = []
    for name, type_name in spec.columns.items():
        if name not in table.column_names:
            problems.append(f"{name}: missing")
        elif table.schema.field(name).type != COLUMN_TYPES[type_name]:
            problems.append(f"{name}: {table.schema.field(name).type} instead of {type_name}")
    return problems
