"""Readers for the raw formats producers really write, one per format.

Each reader turns one raw object into ``RawRecords``: untyped column values, the
change operation, the commit time and the line each record came from, plus the
records it already had to reject (broken JSON, wrong field count, ...). Typing
and validation happen once, for every format, in ``coerce.py``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..lake import LakeError, parquet_from_bytes
from ..tables import COLUMN_TYPES, TableSpec


class UnreadableObject(LakeError):
    """A raw object that cannot be read at all (not gzip, not Parquet, ...)."""


@dataclass(frozen=True)
class Rejection:
    line: int
    raw: str
    code: str
    reason: str


@dataclass
class RawRecords:
    fields: dict[str, pa.Array]  # declared column -> values (strings, or typed for Parquet)
    ops: pa.Array | None  # I / U / D codes; None: every record is an insert
    commit_ts: pa.Array | None  # strings or timestamps; None: the object's LastModified
    lines: np.ndarray  # int64 line (or row) number of each record in the object
    raw_text: Callable[[np.ndarray], list[str]]  # the raw text of records, for quarantine
    rejected: list[Rejection] = field(default_factory=list)
    tombstones: int = 0  # Debezium null events: deletes already carried by the 'd' event

    def __len__(self) -> int:
        return len(self.lines)


def read_records(spec: TableSpec, key: str, data: bytes) -> RawRecords:
    """Dispatch on the table's format. Raises ``UnreadableObject`` naming ``key``."""
    if key.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise UnreadableObject(f"cannot read raw object {key}: not valid gzip ({exc})") from None
    if spec.format == "dms_csv":
        return _read_dms_csv(spec, key, data)
    if spec.format == "csv":
        return _read_header_csv(spec, key, data, op_column=None, ts_column=None)
    if spec.format == "dms_parquet":
        return _read_dms_parquet(spec, key, data)
    if spec.format == "debezium_json":
        return _read_json_lines(spec, key, data, _debezium_event)
    if spec.format == "jsonl":
        return _read_json_lines(spec, key, data, _plain_record)
    raise ValueError(f"unknown format {spec.format!r}")  # the registry rejects these first


def is_full_load(key: str) -> bool:
    """DMS names full-load files LOAD00000001.csv, CDC files by their timestamp."""
    return key.rsplit("/", 1)[-1].upper().startswith("LOAD")


# --------------------------------------------------------------------------- CSV


def _read_dms_csv(spec: TableSpec, key: str, data: bytes) -> RawRecords:
    op_column = "Op" if (not is_full_load(key) or spec.dms.include_op_for_full_load) else None
    ts_column = spec.dms.timestamp_column
    if spec.dms.add_column_name:
        return _read_header_csv(spec, key, data, op_column=op_column, ts_column=ts_column)
    names = ([op_column] if op_column else []) + ([ts_column] if ts_column else []) + list(spec.columns)
    table = read_csv_records(key, data, names=names, header=False, types=_fast_types(spec, ts_column))
    return _from_csv_table(spec, table, op_column, ts_column)


def _read_header_csv(spec, key, data, *, op_column, ts_column) -> RawRecords:
    table = read_csv_records(key, data, names=None, header=True, types=_fast_types(spec, ts_column))
    present = set(table.names)
    return _from_csv_table(
        spec,
        table,
        op_column if op_column in present else None,
        ts_column if ts_column in present else None,
    )


def _from_csv_table(spec, table: "CsvRecords", op_column, ts_column) -> RawRecords:
    cols = dict(zip(table.names, table.columns))
    return RawRecords(
        fields={name: cols[name] for name in spec.columns if name in cols},
        ops=cols.get(op_column) if op_column else None,
        commit_ts=cols.get(ts_column) if ts_column else None,
        lines=table.lines,
        raw_text=table.raw_text,
        rejected=table.rejected,
    )


@dataclass
class CsvRecords:
    names: list[str]
    columns: list[pa.Array]  # all strings; NULL for an empty unquoted field
    lines: np.ndarray
    raw_text: Callable[[np.ndarray], list[str]]
    rejected: list[Rejection]


def _fast_types(spec: TableSpec, ts_column: str | None) -> dict[str, pa.DataType]:
    """Types pyarrow may convert to while parsing (see _parse_with_arrow).

    Timestamps are parsed without a zone (DMS writes UTC without one) and made UTC
    by the coercer; bools are left as text because our accepted spellings are wider.
    """
    types = {}
    for name, type_name in spec.columns.items():
        if type_name in ("int64", "float64", "date"):
            types[name] = COLUMN_TYPES[type_name]
        elif type_name == "timestamp":
            types[name] = pa.timestamp("us")
    if ts_column:
        types[ts_column] = pa.timestamp("us")
    return types


def read_csv_records(
    key: str, data: bytes, *, names: list[str] | None, header: bool, types: dict[str, pa.DataType] | None = None
) -> CsvRecords:
    """RFC 4180 CSV into string columns, with the physical line of every record.

    pyarrow's CSV reader does the parsing (it is an order of magnitude faster
    than the csv module), but it cannot tell which line a row came from nor keep
    going past a row with the wrong field count while telling us which one. So we
    first find record boundaries ourselves, vectorised with numpy: a newline or
    comma ends a record/field only outside quotes, i.e. after an even number of
    quote characters (escaped quotes come in pairs). Records with the wrong field
    count are rejected here; pyarrow parses the rest.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    buf = np.frombuffer(data, dtype=np.uint8)
    all_newlines = np.flatnonzero(buf == 10)
    quotes = np.flatnonzero(buf == 34)
    newlines, commas = all_newlines, np.flatnonzero(buf == 44)
    quoted_newlines = False
    if quotes.size and not _quotes_are_field_delimiters(buf, quotes):
        # A quote inside an unquoted field (O"Brien) breaks the parity rule.
        return _read_csv_slowly(data, names, header)
    if quotes.size:
        outside = np.searchsorted(quotes, newlines) % 2 == 0
        quoted_newlines = not outside.all()
        newlines = newlines[outside]
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))  # CRLF
    keep = ends > starts  # pyarrow skips empty lines too
    starts, ends = starts[keep], ends[keep]
    lines = np.searchsorted(all_newlines, starts) + 1
    nfields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1

    def text_of(i) -> str:
        return data[starts[i] : ends[i]].decode("utf-8", errors="replace")

    rejected: list[Rejection] = []
    first = 0
    if header:
        if not len(starts):
            return CsvRecords(list(names or []), [], np.zeros(0, np.int64), lambda idx: [], [])
        names = next(csv.reader([data[starts[0] : ends[0]].decode("utf-8", errors="replace")]))
        names = [n.strip() for n in names]
        first = 1
    starts, ends, lines, nfields = starts[first:], ends[first:], lines[first:], nfields[first:]
    assert names is not None
    good = nfields == len(names)
    for i in np.flatnonzero(~good):
        rejected.append(
            Rejection(
                int(lines[i]),
                text_of(i),
                "wrong_field_count",
                f"expected {len(names)} fields, found {int(nfields[i])}",
            )
        )
    # Bytes that are not UTF-8 would fail the whole file in pyarrow: find those records.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        for i in np.flatnonzero(good):
            try:
                data[starts[i] : ends[i]].decode("utf-8")
            except UnicodeDecodeError as exc:
                good[i] = False
                rejected.append(Rejection(int(lines[i]), text_of(i), "bad_encoding", f"not UTF-8: {exc.reason}"))
    if good.all():
        body = data[starts[0] :] if len(starts) else b""
    else:
        body = b"\n".join(data[s:e] for s, e in zip(starts[good], ends[good]))
    starts, ends, lines = starts[good], ends[good], lines[good]
    columns = _parse_with_arrow(body, names, types or {}, quoted_newlines) if len(lines) else [
        pa.array([], pa.string()) for _ in names
    ]
    if columns and len(columns[0]) != len(lines):
        # A stray quote inside an unquoted field makes our split and pyarrow's
        # disagree; the csv module follows the same rules as pyarrow, so use it.
        return _read_csv_slowly(data, names, header)

    def raw_text(idx: np.ndarray) -> list[str]:
        return [data[starts[i] : ends[i]].decode("utf-8", errors="replace") for i in idx]

    return CsvRecords(list(names), columns, lines.astype(np.int64), raw_text, rejected)


def _quotes_are_field_delimiters(buf: np.ndarray, quotes: np.ndarray) -> bool:
    """In the parity model, every opening quote starts a field and every closing
    quote ends one (or is half of an escaped pair)."""
    opening, closing = quotes[0::2], quotes[1::2]
    before = buf[np.maximum(opening - 1, 0)]
    ok_open = (opening == 0) | np.isin(before, (44, 10, 13, 34))
    after = buf[np.minimum(closing + 1, len(buf) - 1)]
    ok_close = (closing == len(buf) - 1) | np.isin(after, (44, 10, 13, 34))
    return bool(ok_open.all() and ok_close.all() and len(quotes) % 2 == 0)


def _parse_with_arrow(body: bytes, names: list[str], types: dict[str, pa.DataType], quoted_newlines: bool) -> list[pa.Array]:
    """Parse with pyarrow, converting numbers and timestamps on the way (fast, in C++).

    If any value does not convert, parse again as text and let the coercer find
    the bad records: what is accepted is the same either way, because everything
    pyarrow converts also passes the coercer's rules.
    """
    auto = [f"f{i}" for i in range(len(names))]
    typed = {a: types[n] for a, n in zip(auto, names) if n in types}
    for column_types in (typed, {}) if typed else ({},):
        try:
            table = pacsv.read_csv(
                pa.BufferReader(body),
                read_options=pacsv.ReadOptions(column_names=auto, block_size=1 << 20),
                parse_options=pacsv.ParseOptions(newlines_in_values=quoted_newlines, ignore_empty_lines=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: column_types.get(c, pa.string()) for c in auto},
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,  # DMS: NULL is empty, "" is an empty string
                    timestamp_parsers=[pacsv.ISO8601],
                ),
            )
            return [table.column(c).combine_chunks() for c in auto]
        except pa.ArrowInvalid:
            continue
    return [pa.array([], pa.string())]  # a row-count mismatch sends the caller to the slow path


def _read_csv_slowly(data: bytes, names: list[str] | None, header: bool) -> CsvRecords:
    text = data.decode("utf-8", errors="replace")
    rows, lines, raws, rejected = [], [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    start_line = 1
    physical = text.split("\n")
    for i, row in enumerate(reader):
        line = start_line
        start_line = reader.line_num + 1
        if header and i == 0:
            names = [n.strip() for n in row]
            continue
        if not row:
            continue
        raw = "\n".join(physical[line - 1 : reader.line_num]).rstrip("\r")
        if len(row) != len(names):
            rejected.append(Rejection(line, raw, "wrong_field_count", f"expected {len(names)} fields, found {len(row)}"))
            continue
        rows.append(row)
        lines.append(line)
        raws.append(raw)
    names = names or []
    # csv cannot tell "" from an empty unquoted field; the slow path treats both as NULL.
    columns = [pa.array([r[j] or None for r in rows], pa.string()) for j in range(len(names))]
    return CsvRecords(
        list(names), columns, np.asarray(lines, np.int64), lambda idx: [raws[i] for i in idx], rejected
    )


# ----------------------------------------------------------------------- Parquet


def _read_dms_parquet(spec: TableSpec, key: str, data: bytes) -> RawRecords:
    try:
        table = parquet_from_bytes(data)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableObject(f"cannot read raw object {key}: not valid Parquet ({exc})") from None
    names = set(table.column_names)
    op_column = "Op" if "Op" in names else None
    ts_column = spec.dms.timestamp_column if spec.dms.timestamp_column in names else None

    def raw_text(idx: np.ndarray) -> list[str]:
        rows = table.take(pa.array(idx, pa.int64())).to_pylist()
        return [json.dumps(r, default=str) for r in rows]

    return RawRecords(
        fields={c: table.column(c).combine_chunks() for c in spec.columns if c in names},
        ops=table.column(op_column).combine_chunks().cast(pa.string()) if op_column else None,
        commit_ts=table.column(ts_column).combine_chunks() if ts_column else None,
        lines=np.arange(1, table.num_rows + 1, dtype=np.int64),
        raw_text=raw_text,
    )


# -------------------------------------------------------------------- JSON lines

_DEBEZIUM_OPS = {"c": "I", "r": "I", "u": "U", "d": "D"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Debezium's logical types for temporal columns carried as numbers.
_TIME_UNITS = {
    "io.debezium.time.Timestamp": 1_000,
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000,
}


class _Skip(Exception):
    """A line that is valid but not a change (Debezium tombstone)."""


def _read_json_lines(spec: TableSpec, key: str, data: bytes, to_change) -> RawRecords:
    """JSON parsing is per line so that one broken line never fails the file."""
    columns = list(spec.columns)
    values: dict[str, list] = {c: [] for c in columns}
    ops: list[str] = []
    stamps: list[int | None] = []
    lines: list[int] = []
    raws: list[str] = []
    rejected: list[Rejection] = []
    tombstones = 0
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.strip()
        if not raw:
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            rejected.append(Rejection(lineno, raw.decode("utf-8", "replace"), "bad_encoding", f"not UTF-8: {exc.reason}"))
            continue
        try:
            doc = json.loads(text)
        except ValueError as exc:
            rejected.append(Rejection(lineno, text, "broken_json", f"not JSON: {exc}"))
            continue
        try:
            op, row, ts_ms, hints = to_change(doc)
        except _Skip:
            tombstones += 1
            continue
        except ValueError as exc:
            rejected.append(Rejection(lineno, text, str(exc.args[0]), str(exc.args[1])))
            continue
        for c in columns:
            values[c].append(_as_text(row.get(c), spec.columns[c], hints.get(c)))
        ops.append(op)
        stamps.append(ts_ms)
        lines.append(lineno)
        raws.append(text)
    has_ts = any(s is not None for s in stamps)
    return RawRecords(
        fields={c: pa.array(v, pa.string()) for c, v in values.items()},
        ops=pa.array(ops, pa.string()),
        commit_ts=pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")) if has_ts else None,
        lines=np.asarray(lines, np.int64),
        raw_text=lambda idx: [raws[i] for i in idx],
        rejected=rejected,
        tombstones=tombstones,
    )


def _plain_record(doc):
    if not isinstance(doc, dict):
        raise ValueError("broken_json", f"expected a JSON object, found {type(doc).__name__}")
    return "I", doc, None, {}


def _debezium_event(doc):
    if doc is None:
        raise _Skip()
    if not isinstance(doc, dict):
        raise ValueError("broken_json", f"expected a JSON object, found {type(doc).__name__}")
    hints: dict[str, str] = {}
    if "payload" in doc and "schema" in doc:
        hints = _temporal_hints(doc.get("schema"))
        doc = doc["payload"]
        if doc is None:
            raise _Skip()
        if not isinstance(doc, dict):
            raise ValueError("bad_event", "payload is not a JSON object")
    op_code = doc.get("op")
    op = _DEBEZIUM_OPS.get(op_code)
    if op is None:
        raise ValueError("unknown_op", f"unknown Debezium op {op_code!r}")
    row = doc.get("before") if op == "D" else doc.get("after")
    if not isinstance(row, dict):
        side = "before" if op == "D" else "after"
        raise ValueError("bad_event", f"op {op_code!r} without a {side!r} row image")
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    ts_ms = source.get("ts_ms", doc.get("ts_ms"))
    if ts_ms is not None and (not isinstance(ts_ms, int) or isinstance(ts_ms, bool)):
        raise ValueError("bad_commit_ts", f"ts_ms {ts_ms!r} is not an integer")
    return op, row, ts_ms, hints


def _temporal_hints(schema) -> dict[str, str]:
    """Column -> Debezium logical type name, from the envelope's 'after' schema."""
    hints: dict[str, str] = {}
    try:
        for part in schema.get("fields", []):
            if part.get("field") in ("after", "before"):
                for f in part.get("fields", []):
                    if f.get("name"):
                        hints[f["field"]] = f["name"]
    except AttributeError:
        pass
    return hints


def _as_text(value, column_type: str, hint: str | None) -> str | None:
    """A JSON value as the text the coercer parses, so every format types alike."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and column_type == "timestamp":
        unit = _TIME_UNITS.get(hint or "", 1_000)  # bare numbers: Debezium's default, ms
        return (_EPOCH + timedelta(microseconds=value * 1_000_000 // unit)).isoformat()
    if isinstance(value, int) and column_type == "date":
        return (_EPOCH + timedelta(days=value)).date().isoformat()  # io.debezium.time.Date
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
