"""The table registry: which raw prefixes hold which tables, in which format.

The built-in registry is ``tables.yaml`` in this package; the YAML file named by
``$SMARTSTREAM_TABLES`` adds tables. Adding a table is adding an entry, not code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date, datetime
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
    # prefixes the roles of the table's asset keys (``<table>/<label>_current``), so the UI's
    # graph, which shows a key's last part, tells it from another table's ``current``
    asset_label: str = ""

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(name, COLUMN_TYPES[t]) for name, t in self.columns.items()])


def load_tables(extra: str | os.PathLike | None = None) -> dict[str, TableSpec]:
    """The built-in tables plus those of ``extra`` (default: ``$SMARTSTREAM_TABLES``)."""
    tables = _read_registry(BUILTIN_REGISTRY)
    origin = {name: BUILTIN_REGISTRY for name in tables}
    extra = extra if extra is not None else os.environ.get("SMARTSTREAM_TABLES")
    if extra:
        path = Path(extra)
        for name, spec in _read_registry(path).items():
            if name in tables:
                raise RegistryError(f"{extra}: table {name!r} is already defined by the built-in registry")
            for other, known in tables.items():
                _check_prefixes(spec, path, known, origin[other])
            tables[name] = spec
            origin[name] = path
    return tables


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping.

    YAML says mapping keys are unique, but PyYAML silently keeps the last of
    duplicates: a table declared twice in one file would replace the first without
    a word (its raw prefix unread, its records landing nowhere), and a column or a
    setting given twice would take its last value unnoticed. So we raise instead.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *base" merges; keys it brings may be overridden
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.setdefault(key, line)
                except TypeError:
                    continue  # an unhashable key: SafeLoader reports it
                if first != line:
                    raise _DuplicateKey(key, first, line)
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first: int, again: int):
        super().__init__(key, first, again)
        self.key, self.first, self.again = key, first, again


def _read_registry(path: Path) -> dict[str, TableSpec]:
    try:
        doc = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except OSError as exc:
        raise RegistryError(f"cannot read table registry {path}: {exc.strerror or exc}") from exc
    except _DuplicateKey as exc:
        raise RegistryError(
            f"{path}: {exc.key!r} is declared twice in one mapping (lines {exc.first} and {exc.again}); "
            "a table, column or setting may appear only once"
        ) from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("tables"), dict):
        raise RegistryError(f"{path}: expected a mapping with a 'tables' key")
    tables: dict[str, TableSpec] = {}
    for name, entry in doc["tables"].items():
        spec = _parse_table(path, name, entry)
        for known in tables.values():
            _check_prefixes(spec, path, known, path)
        tables[name] = spec
    return tables


def _check_prefixes(spec: TableSpec, path: Path, other: TableSpec, other_path: Path) -> None:
    """Two tables must not read the same objects: neither raw prefix may contain the other."""
    a, b = spec.raw_prefix, other.raw_prefix
    if a.startswith(b) or b.startswith(a):
        where = f"{path}" if path == other_path else f"{path} and {other_path}"
        raise RegistryError(
            f"{where}: raw prefixes overlap: table {spec.name!r} reads {a} and table {other.name!r} reads {b}; "
            "each raw object must belong to one table"
        )


_KEYS = {"raw_prefix", "format", "primary_key", "columns", "dms", "start_date", "allow_nonfinite", "asset_label"}
_DMS_KEYS = {"timestamp_column", "add_column_name", "include_op_for_full_load"}


def _parse_table(path: Path, name, entry) -> TableSpec:
    where = f"{path}: table {name!r}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise RegistryError(f"{where}: a table name must be letters, digits and _")
    if name.startswith("_"):  # quarantine/_stream/, quarantine/_annotations/: the lake's own folders
        raise RegistryError(f"{where}: a table name cannot start with _ (reserved for the lake's own folders)")
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: expected a mapping")
    unknown = set(map(str, entry)) - _KEYS
    if unknown:
        raise RegistryError(f"{where}: unknown keys {sorted(unknown)}")
    raw_prefix = _string(where, entry, "raw_prefix")
    if not raw_prefix.startswith("raw/"):
        raise RegistryError(f"{where}: raw_prefix must be a string under raw/ (got {raw_prefix!r})")
    if not raw_prefix.endswith("/"):
        raw_prefix += "/"
    fmt = _string(where, entry, "format")
    if fmt not in FORMATS:
        raise RegistryError(f"{where}: format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    columns = entry.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise RegistryError(f"{where}: columns must be a non-empty mapping name -> type")
    for col, typ in columns.items():
        if not isinstance(col, str) or not _NAME.match(col) or col.startswith("_"):
            raise RegistryError(f"{where}: column name {col!r} must be letters, digits and _, not starting with _")
        if not isinstance(typ, str) or typ not in COLUMN_TYPES:
            raise RegistryError(f"{where}: column {col!r} has type {typ!r}; use one of {', '.join(COLUMN_TYPES)}")
    pk = entry.get("primary_key")
    if isinstance(pk, str):
        pk = [pk]
    if (
        not isinstance(pk, list)
        or not pk
        or any(not isinstance(k, str) or k not in columns for k in pk)
        or len(set(pk)) != len(pk)
    ):
        raise RegistryError(f"{where}: primary_key must list columns of the table, each once (got {pk!r})")
    dms_entry = entry.get("dms")
    if dms_entry is None:
        dms_entry = {}
    if not isinstance(dms_entry, dict):
        raise RegistryError(f"{where}: dms must be a mapping of DMS settings (got {dms_entry!r})")
    if dms_entry and not fmt.startswith("dms_"):
        raise RegistryError(f"{where}: a dms block only applies to dms_csv / dms_parquet")
    unknown = set(map(str, dms_entry)) - _DMS_KEYS
    if unknown:
        raise RegistryError(f"{where}: unknown dms settings {sorted(unknown)}")
    dms = DmsSettings(
        timestamp_column=_string(where, dms_entry, "timestamp_column", "dms.timestamp_column", required=False),
        add_column_name=_boolean(where, dms_entry, "add_column_name", "dms.add_column_name"),
        include_op_for_full_load=_boolean(where, dms_entry, "include_op_for_full_load", "dms.include_op_for_full_load"),
    )
    if dms.timestamp_column in columns:
        raise RegistryError(f"{where}: dms.timestamp_column {dms.timestamp_column!r} clashes with a column")
    label = _string(where, entry, "asset_label", required=False) or ""
    if label and not re.fullmatch(r"[a-z][a-z0-9_]*", label):
        raise RegistryError(f"{where}: asset_label must be lower-case letters, digits and _ (got {label!r})")
    return TableSpec(
        name=name,
        raw_prefix=raw_prefix,
        format=fmt,
        primary_key=tuple(pk),
        columns=dict(columns),
        dms=dms,
        start_date=_start_date(where, entry.get("start_date", date(2020, 1, 1))),
        allow_nonfinite=_boolean(where, entry, "allow_nonfinite"),
        asset_label=label,
    )


def _string(where: str, entry: dict, key: str, label: str | None = None, *, required: bool = True) -> str | None:
    """A non-empty YAML string; absent (or null) only when not ``required``."""
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise RegistryError(f"{where}: {label or key} must be a non-empty string (got {value!r})")
    return value


def _boolean(where: str, entry: dict, key: str, label: str | None = None) -> bool:
    """A YAML boolean (true/false), default false. A quoted "false" is a string and
    would read as true: refused, like any other type."""
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise RegistryError(f"{where}: {label or key} must be true or false, unquoted (got {value!r})")
    return value


def _start_date(where: str, value) -> date:
    if isinstance(value, datetime):  # a date with a time of day: not a partition date
        raise RegistryError(f"{where}: start_date must be a date YYYY-MM-DD (got {value!r})")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, date):
        raise RegistryError(f"{where}: start_date must be a date YYYY-MM-DD (got {value!r})")
    return value
