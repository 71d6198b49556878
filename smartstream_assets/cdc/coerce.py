"""Type raw records into the trusted change log; everything else goes to quarantine.

One place for the typing rules of every format. Checks run vectorised over the
whole object; Python only touches the rejected records.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..tables import COLUMN_TYPES, TableSpec
from .formats import RawRecords

META_COLUMNS = ("_op", "_commit_ts", "_source_key", "_source_line")
OPS = ("insert", "update", "delete")
TS_TYPE = pa.timestamp("us", tz="UTC")
QUARANTINE_SCHEMA = pa.schema(
    [
        ("_source_key", pa.string()),
        ("_source_line", pa.int64()),
        ("_reason_code", pa.string()),
        ("_reason", pa.string()),
        ("_raw", pa.string()),
    ]
)

_INT = r"^\s*[+-]?\d+\s*$"
_FLOAT = r"(?i)^\s*[+-]?((\d+\.?\d*)|(\.\d+))(e[+-]?\d+)?\s*$|^\s*[+-]?(nan|inf|infinity)\s*$"
_BOOL_TRUE = ["true", "t", "1", "yes", "y"]
_BOOL_FALSE = ["false", "f", "0", "no", "n"]
_DATE = r"^\s*\d{4}-\d{2}-\d{2}\s*$"
_TIMESTAMP = r"^\s*\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?\s*$"
_ZONED = r"(Z|[+-]\d{2}(:?\d{2})?)\s*$"


def trusted_schema(spec: TableSpec) -> pa.Schema:
    meta = [("_op", pa.string()), ("_commit_ts", TS_TYPE), ("_source_key", pa.string()), ("_source_line", pa.int64())]
    return pa.schema(meta + list(zip(spec.arrow_schema.names, spec.arrow_schema.types)))


def coerce(spec: TableSpec, records: RawRecords, source_key: str, default_ts: datetime) -> tuple[pa.Table, pa.Table]:
    """(changes, quarantine) for one raw object.

    ``default_ts`` is the commit time of records that carry none (full loads
    without a timestamp column, append-only files): the object's LastModified.
    """
    n = len(records)
    problems = _Problems(n)

    if records.ops is None:
        op_index = pa.array(np.zeros(n, np.int8))
    else:
        codes = pc.utf8_upper(pc.utf8_trim_whitespace(records.ops))
        op_index = pc.index_in(codes, value_set=pa.array(["I", "U", "D"]))
        problems.add(
            pc.is_null(op_index),
            "unknown_op",
            lambda i: f"unknown Op {records.ops[i].as_py()!r} (expected I, U or D)",
        )

    if records.commit_ts is None:
        commit_ts = pa.array(np.full(n, np.datetime64(default_ts.astimezone(timezone.utc).replace(tzinfo=None), "us")), TS_TYPE)
    else:
        commit_ts, bad = _to_timestamp(records.commit_ts)
        problems.add(bad, "bad_commit_ts", lambda i: f"commit timestamp {records.commit_ts[i].as_py()!r} is not a timestamp")
        problems.add(
            pc.and_(pc.is_null(commit_ts), pc.invert(bad)), "bad_commit_ts", lambda i: "commit timestamp is empty"
        )

    typed: dict[str, pa.Array] = {}
    for name, type_name in spec.columns.items():
        raw = records.fields.get(name)
        if raw is None:
            typed[name] = pa.nulls(n, COLUMN_TYPES[type_name])
            continue
        typed[name], bad = coerce_column(raw, type_name)
        problems.add(
            bad,
            "bad_value",
            lambda i, name=name, raw=raw, t=type_name: f"column {name}: {raw[i].as_py()!r} is not a valid {t}",
        )
    for name in spec.primary_key:
        problems.add(pc.is_null(typed[name]), "missing_key", lambda i, name=name: f"primary key {name} is empty")

    good = pa.array(~problems.bad)
    op_names = pa.array(OPS).take(pc.fill_null(op_index, 0))
    changes = pa.Table.from_arrays(
        [op_names, commit_ts, pa.repeat(pa.scalar(source_key), n), pa.array(records.lines, pa.int64())]
        + [typed[c] for c in spec.columns],
        schema=trusted_schema(spec),
    ).filter(good)
    return changes, _quarantine(records, source_key, problems)


def coerce_column(values: pa.Array, type_name: str) -> tuple[pa.Array, pa.Array]:
    """(typed values, mask of non-null values that are not valid for the type)."""
    target = COLUMN_TYPES[type_name]
    if values.type == target:
        return values, pa.array(np.zeros(len(values), bool))
    if type_name == "timestamp":
        return _to_timestamp(values)
    if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
        try:  # typed input (Parquet): a safe cast or per-value rejection
            return values.cast(target), pa.array(np.zeros(len(values), bool))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            values = values.cast(pa.string())
    if type_name == "string":
        return values, pa.array(np.zeros(len(values), bool))
    if type_name == "bool":
        low = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        is_true, is_false = pc.is_in(low, pa.array(_BOOL_TRUE)), pc.is_in(low, pa.array(_BOOL_FALSE))
        typed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        bad = pc.and_(pc.is_valid(values), pc.invert(pc.or_(is_true, is_false)))
        return typed, pc.fill_null(bad, False)
    pattern = {"int64": _INT, "float64": _FLOAT, "date": _DATE}[type_name]
    return _cast_matching(values, pattern, target)


def _cast_matching(values: pa.Array, pattern: str, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Cast the values that match ``pattern``; the others (non-null) are bad."""
    ok = pc.fill_null(pc.match_substring_regex(values, pattern), True)
    bad = pc.invert(ok)
    trimmed = pc.utf8_trim_whitespace(pc.if_else(ok, values, pa.scalar(None, pa.string())))
    if pa.types.is_integer(target):
        trimmed = pc.replace_substring_regex(trimmed, r"^\+", "")
    try:
        return trimmed.cast(target), bad
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # Matched the pattern yet does not fit (int overflow, month 13): find those
        # few per value; this path only runs on files that contain such values.
        out, extra = [], np.zeros(len(values), bool)
        for i, v in enumerate(trimmed.to_pylist()):
            try:
                out.append(None if v is None else pa.scalar(v).cast(target).as_py())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                out.append(None)
                extra[i] = True
        return pa.array(out, target), pc.or_(bad, pa.array(extra))


def _to_timestamp(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Timestamps as UTC microseconds; text without a zone is taken as UTC (DMS writes UTC)."""
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        if pa.types.is_timestamp(values.type) and values.type.tz is None:
            values = values.cast(pa.timestamp(values.type.unit))
        return values.cast(TS_TYPE), pa.array(np.zeros(len(values), bool))
    if not pa.types.is_string(values.type):
        values = values.cast(pa.string())
    zoned = pc.fill_null(pc.match_substring_regex(values, _ZONED), False)
    naive_typed, naive_bad = _cast_matching(pc.if_else(zoned, pa.scalar(None, pa.string()), values), _TIMESTAMP, pa.timestamp("us"))
    zoned_typed, zoned_bad = _cast_matching(pc.if_else(zoned, values, pa.scalar(None, pa.string())), _TIMESTAMP, TS_TYPE)
    typed = pc.if_else(zoned, zoned_typed, naive_typed.cast(TS_TYPE))
    return typed, pc.or_(naive_bad, zoned_bad)


class _Problems:
    """The first problem found for each record: code and a readable reason."""

    def __init__(self, n: int):
        self.bad = np.zeros(n, bool)
        self.found: dict[int, tuple[str, str]] = {}

    def add(self, mask: pa.Array, code: str, reason) -> None:
        m = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        new = m & ~self.bad
        for i in np.flatnonzero(new):
            self.found[int(i)] = (code, reason(int(i)))
        self.bad |= m


def _quarantine(records: RawRecords, source_key: str, problems: _Problems) -> pa.Table:
    idx = np.array(sorted(problems.found), dtype=np.int64)
    texts = records.raw_text(idx) if len(idx) else []
    rows = [
        (int(records.lines[i]), problems.found[int(i)][0], problems.found[int(i)][1], text)
        for i, text in zip(idx, texts)
    ]
    rows += [(r.line, r.code, r.reason, r.raw) for r in records.rejected]
    rows.sort(key=lambda r: r[0])
    return pa.Table.from_pydict(
        {
            "_source_key": [source_key] * len(rows),
            "_source_line": [r[0] for r in rows],
            "_reason_code": [r[1] for r in rows],
            "_reason": [r[2] for r in rows],
            "_raw": [r[3] for r in rows],
        },
        schema=QUARANTINE_SCHEMA,
    )
