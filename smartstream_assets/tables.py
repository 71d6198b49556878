"""The table registry: which raw prefixes hold which tables, in which format.

The built-in registry is ``tables.yaml`` in this package; the YAML file named by
``$SMARTSTREAM_TABLES`` adds tables. Adding a table is adding an entry, not code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pyarrow as pa
import yaml

BUILTIN_REGISTRY = Path(__file__).with_name("tables.yaml")

FORMATS = ("dms_csv", "dms_parquet", "debezium_json", "csv", "jsonl")
COLUMN_TYPES: dict[str, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
# Column names become Parquet columns, Dagster metadata keys and SQL identifiers.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class RegistryError(ValueError):
    """The table registry is invalid; the message names the file and the table."""


@dataclass(frozen=True)
class DmsSettings:
    """Mirror of the DMS S3 target-endpoint settings that shape the files."""

    timestamp_column: str | None = None  # TimestampColumnName
    add_column_name: bool = False  # AddColumnName: a header row is present
    include_op_for_full_load: bool = False  # IncludeOpForFullLoad


@dataclass(frozen=True)
class TableSpec:
    name: str
    raw_prefix: str
    format: str
    primary_key: tuple[str, ...]
    columns: dict[str, str]  # ordered: name -> type name
    dms: DmsSettings = field(default_factory=DmsSettings)
    start_date: date = date(2020, 1, 1)  # first ingest date partition
    allow_nonfinite: bool = False  # accept inf / -inf / nan in float64 columns

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, COLUMN_TYPES[t]) for name, t in self.columns.items()])


def load_tables(extra: str | os.PathLike | None = None) -> dict[str, TableSpec]:
    """The built-in tables plus those of ``extra`` (default: ``$SMARTSTREAM_TABLES``)."""
    tables = _read_registry(BUILTIN_REGISTRY)
    extra = extra if extra is not None else os.environ.get("SMARTSTREAM_TABLES")
    if extra:
        for name, spec in _read_registry(Path(extra)).items():
            if name in tables:
                raise RegistryError(f"{extra}: table {name!r} is already defined by the built-in registry")
            tables[name] = spec
    return tables


def _read_registry(path: Path) -> dict[str, TableSpec]:
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RegistryError(f"cannot read table registry {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise RegistryError(f"{path}: expected a mapping with a 'tables' key")
    return {name: _parse_table(path, name, entry) for name, entry in doc["tables"].items()}


def _parse_table(path: Path, name: str, entry) -> TableSpec:
    where = f"{path}: table {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"{where}: a table name must be letters, digits and _")
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected a mapping")
    unknown = set(entry) - {"raw_prefix", "format", "primary_key", "columns", "dms", "start_date", "allow_nonfinite"}
    if unknown:
        raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
    raw_prefix = entry.get("raw_prefix")
    if not isinstance(raw_prefix, str) or not raw_prefix.startswith("raw/"):
        raise RegistryError(f"{where}: raw_prefix must be a string under raw/ (got {raw_prefix!r})")
    if not raw_prefix.endswith("/"):
        raw_prefix += "/"
    fmt = entry.get("format")
    if fmt not in FORMATS:
        raise RegistryError(f"{where}: format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    columns = entry.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise RegistryError(f"{where}: columns must be a non-empty mapping name -> type")
    for col, typ in columns.items():
        if not isinstance(col, str) or not _NAME.match(col) or col.startswith("_"):
            raise RegistryError(f"{where}: column name {col!r} must be letters, digits and _, not starting with _")
        if typ not in COLUMN_TYPES:
            raise RegistryError(f"{where}: column {col!r} has type {typ!r}; use one of {', '.join(COLUMN_TYPES)}")
    pk = entry.get("primary_key")
    if isinstance(pk, str):
        pk = [pk]
    if not isinstance(pk, list) or not pk or any(k not in columns for k in pk):
        raise RegistryError(f"{where}: primary_key must list columns of the table (got {pk!r})")
    dms_entry = entry.get("dms") or {}
    if dms_entry and not fmt.startswith("dms_"):
        raise RegistryError(f"{where}: a dms block only applies to dms_csv / dms_parquet")
    unknown = set(dms_entry) - {"timestamp_column", "add_column_name", "include_op_for_full_load"}
    if unknown:
        raise RegistryError(f"{where}: unknown dms settings {sorted(unknown)}")
    dms = DmsSettings(
        timestamp_column=dms_entry.get("timestamp_column") or None,
        add_column_name=bool(dms_entry.get("add_column_name", False)),
        include_op_for_full_load=bool(dms_entry.get("include_op_for_full_load", False)),
    )
    if dms.timestamp_column in columns:
        raise RegistryError(f"{where}: dms.timestamp_column {dms.timestamp_column!r} clashes with a column")
    return TableSpec(
        name=name,
        raw_prefix=raw_prefix,
        format=fmt,
        primary_key=tuple(pk),
        columns=dict(columns),
        dms=dms,
        start_date=_start_date(where, entry.get("start_date", date(2020, 1, 1))),
        allow_nonfinite=entry.get("allow_nonfinite", False),
    )


def _start_date(where: str, value) -> date:
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, date):
        raise RegistryError(f"{where}: start_date must be a date YYYY-MM-DD (got {value!r})")
    return value
