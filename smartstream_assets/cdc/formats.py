"""Readers for the raw formats producers really write, one per format.

Each reader turns one raw object into ``RawRecords``: untyped column values, the
change operation, the commit time and the line each record came from, plus the
records it already had to reject (broken JSON, wrong field count, ...). Typing
and validation happen once, for every format, in ``coerce.py``. Every record of
the object ends up in exactly one of the two; one bad record never fails a file.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import gzip
import json
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from ..lake import LakeError, parquet_from_bytes
from ..tables import COLUMN_TYPES, TableSpec

_BOM = b"\xef\xbb\xbf"  # Windows tools start UTF-8 files with one


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
    empty: bool = False  # the object held nothing: no records, no rejections, no tombstones

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
        records = _read_dms_csv(spec, key, data)
    elif spec.format == "csv":
        records = _read_header_csv(spec, key, data)
    elif spec.format == "dms_parquet":
        records = _read_dms_parquet(spec, key, data)
    elif spec.format == "debezium_json":
        records = _read_json_lines(spec, key, data, _debezium_event)
    elif spec.format == "jsonl":
        records = _read_json_lines(spec, key, data, _plain_record)
    else:
        raise ValueError(f"unknown format {spec.format!r}")  # the registry rejects these first
    records.empty = not len(records) and not records.rejected and not records.tombstones
    return records


def is_full_load(key: str) -> bool:
    """DMS names full-load files LOAD00000001.csv, CDC files by their timestamp."""
    return key.rsplit("/", 1)[-1].upper().startswith("LOAD")


def _no_records() -> RawRecords:
    return RawRecords(fields={}, ops=None, commit_ts=None, lines=np.zeros(0, np.int64), raw_text=lambda idx: [])


# --------------------------------------------------------------------------- CSV


def _read_dms_csv(spec: TableSpec, key: str, data: bytes) -> RawRecords:
    cdc = not is_full_load(key)
    op_column = "Op" if (cdc or spec.dms.include_op_for_full_load) else None
    ts_column = spec.dms.timestamp_column
    if spec.dms.add_column_name:
        # Op may head any file but DMS always writes it in CDC files: without it an update would read as an insert.
        return _read_header_csv(spec, key, data, optional=("Op", ts_column), required=("Op",) if cdc else ())
    names = ([op_column] if op_column else []) + ([ts_column] if ts_column else []) + list(spec.columns)
    table = read_csv_records(key, data, names=names, header=False, types=_fast_types(spec, ts_column))
    return _from_csv_table(spec, table, op_column, ts_column)


def _read_header_csv(spec: TableSpec, key: str, data: bytes, *, optional=(), required=()) -> RawRecords:
    """CSV whose first line names the columns: they are mapped by name, in any order,
    and must be exactly the declared ones (plus the DMS ``optional``/``required`` extras)."""
    ts_column = spec.dms.timestamp_column if spec.dms.timestamp_column in optional else None
    table = read_csv_records(key, data, names=None, header=True, types=_fast_types(spec, ts_column))
    mismatch = _header_mismatch(table.names, list(spec.columns), optional, required)
    if mismatch:
        # A header we cannot map would type every record wrong (all NULL): quarantine them all.
        table = _reject_all(table, "schema_mismatch", mismatch)
    present = set(table.names)
    return _from_csv_table(
        spec,
        table,
        "Op" if "Op" in optional and "Op" in present else None,
        ts_column if ts_column in present else None,
    )


def _header_mismatch(found: list[str], declared: list[str], optional=(), required=()) -> str | None:
    """Why a header does not name exactly the declared columns; None when it does."""
    if not found:
        return None  # no header: the object is empty
    expected = [*required, *declared]
    allowed = set(expected) | {c for c in optional if c}
    problems = []
    if missing := [c for c in expected if c not in found]:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected := [c for c in found if c not in allowed]:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if duplicated := sorted({c for c in found if found.count(c) > 1}):
        problems.append(f"duplicated {', '.join(duplicated)}")
    if not problems:
        return None
    return f"header {','.join(found)} does not match the declared columns {','.join(expected)}: {'; '.join(problems)}"


def _reject_all(table: "CsvRecords", code: str, reason: str) -> "CsvRecords":
    """Every record of ``table`` (parsed or already rejected) as one rejection with this reason."""
    texts = table.raw_text(np.arange(len(table.lines)))
    rejected = [Rejection(int(line), text, code, reason) for line, text in zip(table.lines, texts)]
    rejected += [Rejection(r.line, r.raw, code, reason) for r in table.rejected]
    rejected.sort(key=lambda r: r.line)
    columns = [c.slice(0, 0) for c in table.columns]
    return CsvRecords(table.names, columns, np.zeros(0, np.int64), lambda idx: [], rejected)


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


def _no_csv_records(names: list[str]) -> CsvRecords:
    columns = [pa.array([], pa.string()) for _ in names]
    return CsvRecords(list(names), columns, np.zeros(0, np.int64), lambda idx: [], [])


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
    key: str, data: bytes, *, names: list[str] | None, header: bool, types: dict[str, pa.DataType] | None = None,
    count_fields: bool = False,
) -> CsvRecords:
    """RFC 4180 CSV into string columns, with the physical line of every record.

    pyarrow's CSV reader does the parsing (it is an order of magnitude faster
    than the csv module), but it cannot tell which line a row came from nor keep
    going past a row with the wrong field count while telling us which one. So we
    first find record boundaries ourselves, vectorised with numpy: a newline or
    comma ends a record/field only outside quotes, i.e. after an even number of
    quote characters (escaped quotes come in pairs). Records with the wrong field
    count are rejected here; pyarrow parses the rest. Files that break the parity
    rule (a stray or unterminated quote) are read record by record instead.

    A file without quotes whose commas add up to exactly (fields - 1) per record is
    taken as having none wrong (``count_fields`` False): pyarrow refuses a record with
    another field count, and then the file is read again with every record counted.
    """
    given = (key, data, names, header, types)
    data = data.removeprefix(_BOM)
    content = _CONTENT.search(data)
    if content is None:  # nothing but blank lines
        return _no_csv_records(names or [])
    buf = np.frombuffer(data, dtype=np.uint8)
    all_newlines = np.flatnonzero(buf == 10)
    body = 0  # where the records start
    if header:
        names, body = _header_line(data, content.start())
    assert names is not None
    newlines = all_newlines[np.searchsorted(all_newlines, body) :]
    quotes = np.flatnonzero(buf == 34) if b'"' in data else all_newlines[:0]  # memchr first: most files hold none
    quotes = quotes[np.searchsorted(quotes, body) :]
    commas = all_commas = None  # without quotes, counted per record below instead of listed
    if quotes.size:
        commas = np.flatnonzero(buf == 44)
        all_commas = commas = commas[np.searchsorted(commas, body) :]
    spanned = newlines[:0]  # the newlines inside quoted values
    if quotes.size and not _quotes_are_field_delimiters(buf, quotes):
        # A quote inside an unquoted field (O"Brien) or one never closed breaks the parity rule.
        return _read_csv_slowly(data, names, body, all_newlines, types or {})
    if quotes.size:
        outside = np.searchsorted(quotes, newlines) % 2 == 0
        spanned, newlines = newlines[~outside], newlines[outside]
        commas = commas[np.searchsorted(quotes, commas) % 2 == 0]
    quoted_newlines = bool(spanned.size)
    starts = np.concatenate(([body], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    if b"\r" in data:
        ends = ends - ((ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13))  # CRLF
    keep = ends > starts  # pyarrow skips empty lines too
    starts, ends = starts[keep], ends[keep]
    blank = _whitespace_lines(buf, starts, ends)
    if blank is not None:
        starts, ends = starts[~blank], ends[~blank]
    if not len(starts):
        return _no_csv_records(names)
    first, last = np.searchsorted(all_newlines, starts[[0, -1]]) + 1
    if last - first + 1 == len(starts):  # no line skipped (the usual file): no search per record
        lines = np.arange(first, last + 1, dtype=np.int64)
    else:
        lines = np.searchsorted(all_newlines, starts) + 1
    optimistic = False
    if commas is None:
        # No quote: every comma separates two fields, and a blank line holds none. When
        # they add up (one count, ~0.1 ms/MB), every record is taken as good; pyarrow's
        # parse checks each record's count (see below). Otherwise they are counted from
        # each record's start to the next one's in one pass (~2 ms/MB: ~0.6 s of CPU in a
        # 3M-event backfill) instead of listing every comma's position (8 bytes a comma).
        optimistic = not count_fields and int(np.count_nonzero(buf[starts[0] :] == 44)) == len(starts) * (len(names) - 1)
        if optimistic:
            nfields = np.full(len(starts), len(names), np.int64)
        else:
            nfields = np.add.reduceat(buf == 44, starts, dtype=np.int64) + 1
    else:
        nfields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    good = nfields == len(names)
    if quoted_newlines and _may_hide_an_unclosed_quote(
        buf, all_newlines, spanned, quotes, all_commas, ends, lines, good, len(names)
    ):
        return _read_csv_slowly(data, names, body, all_newlines, types or {})

    def text_of(i) -> str:
        return data[starts[i] : ends[i]].decode("utf-8", errors="replace")

    rejected: list[Rejection] = []
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
    if not _is_utf8(data):
        for i in np.flatnonzero(good):
            try:
                data[starts[i] : ends[i]].decode("utf-8")
            except UnicodeDecodeError as exc:
                good[i] = False
                rejected.append(Rejection(int(lines[i]), text_of(i), "bad_encoding", f"not UTF-8: {exc.reason}"))
    if good.all() and blank is None:
        body_bytes = data[starts[0] :]
    else:
        body_bytes = b"\n".join(data[s:e] for s, e in zip(starts[good], ends[good]))
    starts, ends, lines = starts[good], ends[good], lines[good]
    columns = _parse_with_arrow(body_bytes, names, types or {}, quoted_newlines) if len(lines) else [
        pa.array([], pa.string()) for _ in names
    ]
    if optimistic and columns and len(columns[0]) != len(lines):
        # pyarrow refused a record's field count: some had more commas and some fewer
        key, data, names, header, types = given
        return read_csv_records(key, data, names=names, header=header, types=types, count_fields=True)
    if columns and len(columns[0]) != len(lines):
        # A stray quote inside an unquoted field makes our split and pyarrow's disagree.
        return _read_csv_slowly(data, names, body, all_newlines, types or {})

    def raw_text(idx: np.ndarray) -> list[str]:
        return [data[starts[i] : ends[i]].decode("utf-8", errors="replace") for i in idx]

    return CsvRecords(list(names), columns, lines.astype(np.int64), raw_text, rejected)


_CONTENT = re.compile(rb"[^ \t\r\n]")  # a line of spaces and tabs is blank, not a record


def _is_blank(line: bytes) -> bool:
    return not line or (line[0] in b" \t\r" and not line.strip(b" \t\r"))


def _header_line(data: bytes, first: int) -> tuple[list[str], int]:
    """The column names on the first non-blank line (at ``first``; names never span
    lines), and the offset where the records start."""
    start = data.rfind(b"\n", 0, first) + 1
    end = data.find(b"\n", first)
    end = len(data) if end < 0 else end
    text = data[start:end].rstrip(b"\r").decode("utf-8", errors="replace")
    names = [n.strip() for n in next(csv.reader([text]), [])]
    return names, min(end + 1, len(data))


def _whitespace_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """Lines of only spaces and tabs are blank, not records; None when there are none.

    Only lines that start with a space or tab can be blank, so the usual file costs
    one look at the first byte of each line.
    """
    candidates = np.isin(buf[starts], (9, 32))
    if not candidates.any():
        return None
    content = np.flatnonzero(~np.isin(buf, (9, 10, 13, 32)))
    blank = candidates & (np.searchsorted(content, ends) == np.searchsorted(content, starts))
    return blank if blank.any() else None


def _may_hide_an_unclosed_quote(buf, all_newlines, spanned, quotes, all_commas, ends, lines, good, n) -> bool:
    """Whether a record spanning lines might be a quote never closed (see _unclosed_quote).

    Vectorised and generous, over the lines that start inside a quoted value
    (``spanned``: the newlines inside quotes): one might be a record on its own when
    it has exactly n-1 commas, or at least n-1 and quotes that could hide some. When
    in doubt the slow path decides exactly.
    """
    bad = np.flatnonzero(~good)
    if (np.searchsorted(all_newlines, ends[bad]) + 1 > lines[bad]).any():
        return True  # a record spanning lines into the wrong number of fields
    if n < 2:
        return False
    starts = spanned + 1
    after = np.searchsorted(all_newlines, starts)
    line_ends = np.where(after < len(all_newlines), all_newlines[np.minimum(after, len(all_newlines) - 1)], len(buf))
    commas = np.searchsorted(all_commas, line_ends) - np.searchsorted(all_commas, starts)
    has_quote = np.searchsorted(quotes, line_ends) > np.searchsorted(quotes, starts)
    return bool(np.where(has_quote, commas + 1 >= n, commas + 1 == n).any())


def _is_utf8(data: bytes) -> bool:
    if data.isascii():  # no copy (a decode builds the whole str)
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
    pyarrow converts also passes the coercer's rules. The one exception, hex
    integers (pyarrow reads 0x10 as 16), is checked for (see _holds_hex).
    """
    auto = [f"f{i}" for i in range(len(names))]
    typed = {a: types[n] for a, n in zip(auto, names) if n in types}

    def read(column_types: dict[str, pa.DataType], include: list[str] | None = None) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(column_names=auto, block_size=1 << 20),
            parse_options=pacsv.ParseOptions(newlines_in_values=quoted_newlines, ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: column_types.get(c, pa.string()) for c in auto},
                include_columns=include,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,  # DMS: NULL is empty, "" is an empty string
                timestamp_parsers=[pacsv.ISO8601],
            ),
        )

    for column_types in (typed, {}) if typed else ({},):
        try:
            table = read(column_types)
        except pa.ArrowInvalid:
            continue
        if column_types and _holds_hex(body, [c for c, t in column_types.items() if pa.types.is_integer(t)], read):
            continue  # as text, the coercer rejects the hex values alone
        return [table.column(c).combine_chunks() for c in auto]
    return [pa.array([], pa.string())]  # a row-count mismatch sends the caller to the slow path


def _holds_hex(body: bytes, int_columns: list[str], read) -> bool:
    """Whether an integer column pyarrow converted held hex text.

    pyarrow's integer parser takes 0x10 as 16 (and 0xFFFFFFFFFFFFFFFF as -1), the
    coercer's rule only decimal digits: a hex value must be rejected on both paths.
    Hex needs a 0x or 0X, so a body without one is trusted as converted (two
    searches, see _may_hold_hex). Otherwise its integer columns
    are read again as text and the bytes of their values looked at: ~15% more for
    such a file, still typed on the fast path unless an integer value holds one.
    """
    if not int_columns or not _may_hold_hex(body):
        return False
    text = read({}, int_columns)
    for chunk in (chunk for c in int_columns for chunk in text.column(c).chunks):
        values = chunk.buffers()[2]  # every value's bytes, back to back
        if values is not None and (b"x" in (raw := values.to_pybytes()) or b"X" in raw):
            return True
    return False


def _may_hold_hex(body: bytes) -> bool:
    """Whether ``body`` holds ``0x`` or ``0X``. A one-byte search is memchr (several GB/s);
    the two-byte one is CPython's general search, ~5x slower: only bodies holding an x
    (or an X) pay for it."""
    return (b"x" in body and b"0x" in body) or (b"X" in body and b"0X" in body)


def _read_csv_slowly(
    data: bytes, names: list[str], body: int, all_newlines: np.ndarray, types: dict[str, pa.DataType]
) -> CsvRecords:
    """Record boundaries found line by line in Python, for files the vectorised split
    cannot take: a quote inside an unquoted field (O"Brien) or a quote never closed.

    Lines without quotes are taken as they are; records with quotes go through our
    own small RFC 4180 tokenizer rather than the csv module, which on Python 3.11
    cannot tell "" (an empty string) from an empty field (NULL) nor resynchronise
    after a quote that never closes. A record whose quoted field runs over lines
    must be a good one (see _unclosed_quote); otherwise its first line is
    quarantined and reading resumes at the next physical line. The values are then
    parsed by pyarrow like on the fast path, so both paths type a record alike.
    """
    n = len(names)
    first_line = int(np.searchsorted(all_newlines, body)) + 1
    line_starts = [body] + (all_newlines[np.searchsorted(all_newlines, body) :] + 1).tolist()
    physical = data[body:].split(b"\n")  # physical[i] starts at line_starts[i]
    check_encoding = not _is_utf8(data)
    pieces: list[bytes] = []  # each good record as pyarrow is to read it
    lines: list[int] = []
    bounds: list[tuple[int, int]] = []  # byte range of each record, for its raw text
    rejected: list[Rejection] = []
    quoted_newlines = False

    def text(start: int, end: int) -> str:
        return data[start:end].decode("utf-8", "replace")

    i = 0
    while i < len(physical):
        line = physical[i]
        line = line[:-1] if line.endswith(b"\r") else line
        start, lineno = line_starts[i], first_line + i
        if _is_blank(line):
            i += 1
            continue
        if b'"' not in line and b"\r" not in line:  # the common case: as it is
            piece, nfields, end = line, line.count(b",") + 1, start + len(line)
            i += 1
        else:
            fields, stop, status = _tokenize(data, start)
            last = bisect.bisect_right(line_starts, stop) - 1  # index of the line the record ends on
            problem = _unclosed_quote(data, line_starts, i, last, fields, status, n, first_line)
            if problem:
                reason = f"quote opened on line {lineno} {problem}; reading resumes at line {lineno + 1}"
                rejected.append(Rejection(lineno, text(start, start + len(line)), "unterminated_quote", reason))
                i += 1
                continue
            # Written back with every value quoted: the one form pyarrow reads unambiguously.
            piece = b",".join(b"" if f is None else b'"' + f.replace(b'"', b'""') + b'"' for f in fields)
            quoted_newlines = quoted_newlines or b"\n" in piece or b"\r" in piece
            nfields, end = len(fields), (stop - 1 if data[stop - 1 : stop] == b"\r" else stop)
            i = last + 1
        if nfields != n:
            reason = f"expected {n} fields, found {nfields}"
            rejected.append(Rejection(lineno, text(start, end), "wrong_field_count", reason))
            continue
        if check_encoding:
            try:
                data[start:end].decode("utf-8")
            except UnicodeDecodeError as exc:
                rejected.append(Rejection(lineno, text(start, end), "bad_encoding", f"not UTF-8: {exc.reason}"))
                continue
        pieces.append(piece)
        lines.append(lineno)
        bounds.append((start, end))
    if pieces:
        columns = _parse_with_arrow(b"\n".join(pieces), names, types, quoted_newlines)
        if len(columns[0]) != len(pieces):  # cannot happen with the pieces written as above
            raise RuntimeError(f"CSV reader bug: {len(pieces)} records became {len(columns[0])} rows")
    else:
        columns = [pa.array([], pa.string()) for _ in names]
    return CsvRecords(
        list(names), columns, np.asarray(lines, np.int64), lambda idx: [text(*bounds[i]) for i in idx], rejected
    )


def _unclosed_quote(data, line_starts, i, last, fields, status, n, first_line) -> str | None:
    """Why the record read from line index ``i`` to ``last`` is taken as a quote never
    closed; None when it is a good record (or one that fits on its line).

    A quoted field may span lines (RFC 4180), but then it must close cleanly into
    the declared number of fields, and none of the lines after the first may be a
    record on its own: otherwise one missing quote would swallow, or merge, the
    records after it (with one column every line is a record: the last test is off).
    """
    if status == "unterminated":
        return "is never closed"
    if last == i:
        return None
    if status == "tail":
        return f"closes on line {first_line + last} with text after the closing quote, so it is taken as never closed"
    if len(fields) != n:
        lines = f"lines {first_line + i}-{first_line + last}"
        return f"would make {lines} one record of {len(fields)} fields (expected {n}), so it is taken as never closed"
    for j in range(i + 1, last + 1):
        if _is_a_record_alone(data, line_starts, j, n):
            return f"would swallow line {first_line + j}, a record on its own, so it is taken as never closed"
    return None


def _is_a_record_alone(data, line_starts, j, n) -> bool:
    end = line_starts[j + 1] - 1 if j + 1 < len(line_starts) else len(data)
    line = data[line_starts[j] : end]
    line = line[:-1] if line.endswith(b"\r") else line
    if n < 2 or _is_blank(line):
        return False
    fields, _, status = _tokenize(line, 0)
    return status != "unterminated" and len(fields) == n


# A quoted field: anything but a lone quote ("" is an escaped one); possessive, so a
# quote that never closes fails the match instead of backtracking.
_QUOTED = re.compile(rb'"((?:[^"]++|"")*+)"')
_UNQUOTED = re.compile(rb"[^,\n]*+")  # quotes inside an unquoted field are literal (O"Brien)


def _tokenize(data: bytes, pos: int) -> tuple[list[bytes | None], int, str]:
    """The record starting at ``pos``: its fields (None: empty and unquoted), the
    offset of the newline (or end) that ends it, and "ok", "tail" (text after a
    closing quote, kept as the csv module does) or "unterminated" (no closing quote)."""
    fields: list[bytes | None] = []
    status = "ok"
    size = len(data)
    while True:
        quoted = data.startswith(b'"', pos)
        if quoted:
            m = _QUOTED.match(data, pos)
            if m is None:
                return fields, size, "unterminated"
            value = m.group(1).replace(b'""', b'"')
            pos = m.end()
        m = _UNQUOTED.match(data, pos)
        text, pos = m.group(), m.end()
        if (pos == size or data[pos] == 10) and text.endswith(b"\r"):
            text = text[:-1]  # CRLF
        if quoted:
            if text:
                status = "tail"
            fields.append(value + text)
        else:
            fields.append(text or None)
        if pos < size and data[pos] == 44:
            pos += 1
            continue
        return fields, pos, status


# ----------------------------------------------------------------------- Parquet


def _read_dms_parquet(spec: TableSpec, key: str, data: bytes) -> RawRecords:
    if not data:
        return _no_records()  # a 0-byte object holds no rows (any other non-Parquet bytes fail below)
    try:
        table = parquet_from_bytes(data)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableObject(f"cannot read raw object {key}: not valid Parquet ({exc})") from None
    names = set(table.column_names)
    # Some DMS setups and hand-made files spell it op; unless op is a declared column.
    op_column = "Op" if "Op" in names else "op" if "op" in names and "op" not in spec.columns else None
    ts_column = spec.dms.timestamp_column if spec.dms.timestamp_column in names else None

    def raw_text(idx: np.ndarray) -> list[str]:
        rows = table.take(pa.array(idx, pa.int64()))
        try:
            return [json.dumps(r, default=str) for r in rows.to_pylist()]
        except _UNHOLDABLE:  # some value Python cannot hold: find its rows
            return [_parquet_row_text(rows.slice(i, 1)) for i in range(rows.num_rows)]

    return RawRecords(
        fields={c: table.column(c).combine_chunks() for c in spec.columns if c in names},
        ops=table.column(op_column).combine_chunks().cast(pa.string()) if op_column else None,
        commit_ts=table.column(ts_column).combine_chunks() if ts_column else None,
        lines=np.arange(1, table.num_rows + 1, dtype=np.int64),
        raw_text=raw_text,
    )


# What to_pylist raises on values Python's types cannot hold (a date in year 0,
# a timestamp[ms] of 10**18, ...).
_UNHOLDABLE = (ValueError, OverflowError, pa.ArrowException)


def _parquet_row_text(row: pa.Table) -> str:
    """One Parquet row as JSON, like the rows Python can hold; a value it cannot
    hold is given in Arrow's text form instead (or names its type, when Arrow has none)."""
    try:
        return json.dumps(row.to_pylist()[0], default=str)
    except _UNHOLDABLE:
        pass
    values = {}
    for name, column in zip(row.column_names, row.columns):
        try:
            values[name] = column.to_pylist()[0]
        except _UNHOLDABLE:
            try:
                values[name] = column.cast(pa.string())[0].as_py()
            except pa.ArrowException:
                values[name] = f"<{column.type} value>"
    return json.dumps(values, default=str)


# -------------------------------------------------------------------- JSON lines

_DEBEZIUM_OPS = {"c": "I", "r": "I", "u": "U", "d": "D"}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DAY = date(1970, 1, 1)
# Debezium's logical types for temporal columns carried as numbers: units per second.
_TIME_UNITS = {
    "io.debezium.time.Timestamp": 1_000,
    "io.debezium.time.MicroTimestamp": 1_000_000,
    "io.debezium.time.NanoTimestamp": 1_000_000_000,
    "org.apache.kafka.connect.data.Timestamp": 1_000,
}
_DATES = ("io.debezium.time.Date", "org.apache.kafka.connect.data.Date")  # days since the epoch
_DECIMAL = "org.apache.kafka.connect.data.Decimal"  # base64 unscaled value; scale in the schema
_VARIABLE_DECIMAL = "io.debezium.data.VariableScaleDecimal"  # {"scale": s, "value": base64}
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{4}|[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)")
# How a decimal reads in decimal.handling.mode=string (Java's BigDecimal): never a leading +.
_PLAIN_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:-?(?:nan|inf|infinity))")


class _Skip(Exception):
    """A line that is valid but not a change (Debezium tombstone)."""


class _Reject(Exception):
    """A record to quarantine, with its reason code and a readable reason."""

    def __init__(self, code: str, reason: str):
        super().__init__(code, reason)
        self.code, self.reason = code, reason


def _read_json_lines(spec: TableSpec, key: str, data: bytes, to_change) -> RawRecords:
    """JSON parsing is per line so that one broken line never fails the file."""
    data = data.removeprefix(_BOM)
    columns = list(spec.columns)
    typed = list(spec.columns.items())
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
            op, row, ts_ms, schemas = to_change(doc, spec)
            if schemas is None:  # plain JSON lines: the common values without _as_text's checks
                texts = [_plain_text(c, row.get(c), t) for c, t in typed]
            else:
                texts = [_as_text(c, row.get(c), spec.columns[c], schemas) for c in columns]
        except _Skip:
            tombstones += 1
            continue
        except _Reject as exc:
            rejected.append(Rejection(lineno, text, exc.code, exc.reason))
            continue
        for c, t in zip(columns, texts):
            values[c].append(t)
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


def _plain_record(doc, spec: TableSpec):
    """An append-only record: its keys must be the declared columns (an explicit null is fine)."""
    if not isinstance(doc, dict):
        raise _Reject("broken_json", f"expected a JSON object, found {type(doc).__name__}")
    if doc.keys() != spec.columns.keys():
        missing = [c for c in spec.columns if c not in doc]
        unexpected = [k for k in doc if k not in spec.columns]
        problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unexpected {', '.join(unexpected)}"] if unexpected else []
        )
        raise _Reject(
            "schema_mismatch",
            f"keys {','.join(doc)} do not match the declared columns {','.join(spec.columns)}: {'; '.join(problems)}",
        )
    return "I", doc, None, None


def _debezium_event(doc, spec: TableSpec):
    """A change event. Unlike plain JSON lines, row images are not checked against the
    declared columns: they carry every column of the source table (the registry may
    declare a subset) and delete before-images often carry only the key, so an extra
    column is ignored and a missing declared one is NULL."""
    if doc is None:
        raise _Skip()
    if not isinstance(doc, dict):
        raise _Reject("broken_json", f"expected a JSON object, found {type(doc).__name__}")
    schemas: dict[str, dict] = {}
    if "payload" in doc and "schema" in doc:
        schemas = _field_schemas(doc.get("schema"))
        doc = doc["payload"]
        if doc is None:
            raise _Skip()
        if not isinstance(doc, dict):
            raise _Reject("bad_event", "payload is not a JSON object")
    op_code = doc.get("op")
    op = _DEBEZIUM_OPS.get(op_code)
    if op is None:
        raise _Reject("unknown_op", f"unknown Debezium op {op_code!r}")
    row = doc.get("before") if op == "D" else doc.get("after")
    if not isinstance(row, dict):
        side = "before" if op == "D" else "after"
        raise _Reject("bad_event", f"op {op_code!r} without a {side!r} row image")
    source = doc.get("source") if isinstance(doc.get("source"), dict) else {}
    ts_ms = source.get("ts_ms", doc.get("ts_ms"))
    if ts_ms is not None and (not isinstance(ts_ms, int) or isinstance(ts_ms, bool)):
        raise _Reject("bad_commit_ts", f"ts_ms {ts_ms!r} is not an integer")
    if ts_ms is not None and not -(2**63) <= ts_ms < 2**63:
        # Beyond int64 the file's commit times cannot even be held; in range, the coercer checks the years.
        raise _Reject("bad_commit_ts", f"ts_ms {ts_ms} is out of range (milliseconds since the epoch must fit int64)")
    return op, row, ts_ms, schemas


def _field_schemas(schema) -> dict[str, dict]:
    """Column -> its Debezium field schema (type, logical name, parameters), from the
    envelope's 'after' and 'before' structs."""
    schemas: dict[str, dict] = {}
    try:
        for part in schema.get("fields", []):
            if part.get("field") in ("after", "before"):
                for f in part.get("fields", []):
                    if isinstance(f, dict) and isinstance(f.get("field"), str):
                        schemas[f["field"]] = f
    except AttributeError:
        pass
    return schemas


def _plain_text(name: str, value, column_type: str) -> str | None:
    """``_as_text`` of a plain JSON-lines value (no Debezium schema), the common cases first:
    the same text, a third of the time (vitals messages are parsed at 50k+ a second)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float or (kind is int and column_type in ("int64", "float64", "string")):
        return str(value)
    return _as_text(name, value, column_type, None)


def _as_text(name: str, value, column_type: str, schemas: dict[str, dict] | None) -> str | None:
    """A JSON value as the text the coercer parses, so every format types alike.

    ``schemas``: the Debezium field schemas of the event (maybe none), None for plain
    JSON lines. Raises ``_Reject`` for a value whose encoding we can tell is unusable.
    """
    if value is None:
        return None
    schema = schemas.get(name) if schemas else None
    logical = schema.get("name") if schema else None
    if logical in (_DECIMAL, _VARIABLE_DECIMAL) and not isinstance(value, (int, float)):
        return _decimal_text(name, value, schema, column_type)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and column_type in ("timestamp", "date", "string"):
        # An int of another logical type (MicroTime, ...) stays a number: the coercer rejects it.
        if logical in _TIME_UNITS or logical in _DATES or (logical is None and column_type != "string"):
            return _temporal_text(name, value, logical, column_type)
    if isinstance(value, str) and column_type in ("int64", "float64") and schemas is not None and schema is None:
        if _BASE64.fullmatch(value) and not _PLAIN_NUMBER.fullmatch(value):
            raise _Reject(
                "bad_value",
                f"column {name}: {value!r} looks like a base64-encoded decimal, but the event has no schema"
                " to give its scale (enable the JsonConverter schemas or decimal.handling.mode=string)",
            )
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _temporal_text(name: str, value: int, logical: str | None, column_type: str) -> str:
    """Epoch numbers as ISO text; bare numbers (no schema) are Debezium's defaults:
    milliseconds for a timestamp column, days for a date column."""
    is_day = logical in _DATES or (logical is None and column_type == "date")
    try:
        if is_day and column_type == "timestamp":
            return (_EPOCH + timedelta(days=value)).isoformat()  # midnight UTC, stated as a timestamp
        if is_day:
            return (_EPOCH_DAY + timedelta(days=value)).isoformat()
        unit = _TIME_UNITS.get(logical or "", 1_000)
        # The column holds microseconds: finer digits (NanoTimestamp) are floored away.
        return (_EPOCH + timedelta(microseconds=value * 1_000_000 // unit)).isoformat()
    except OverflowError:
        what = "days" if is_day else {1_000: "ms", 1_000_000: "µs", 1_000_000_000: "ns"}[unit]
        raise _Reject("bad_value", f"column {name}: {value} {what} since the epoch is out of range") from None


def _decimal_text(name: str, value, schema: dict, column_type: str) -> str:
    """Debezium's precise decimals (decimal.handling.mode=precise): the unscaled value
    as big-endian two's-complement bytes in base64, decoded exactly."""
    if schema.get("name") == _VARIABLE_DECIMAL:
        scale, encoded = (value.get("scale"), value.get("value")) if isinstance(value, dict) else (None, None)
    else:
        scale, encoded = (schema.get("parameters") or {}).get("scale"), value
    try:
        raw = base64.b64decode(encoded, validate=True)
        if not raw:
            raise ValueError("no bytes")
        unscaled = int.from_bytes(raw, "big", signed=True)
        number = Decimal(f"{unscaled}E{-int(scale)}")  # from text: exact at any precision
    except (TypeError, ValueError, binascii.Error, ArithmeticError):
        raise _Reject("bad_value", f"column {name}: {value!r} is not a Debezium decimal (base64 with a scale)") from None
    if column_type == "int64":
        if number != number.to_integral_value():
            raise _Reject("bad_value", f"column {name}: decimal {number} has a fractional part; not a valid int64")
        if not -(2**63) <= number < 2**63:
            raise _Reject("bad_value", f"column {name}: decimal {number} is out of range for int64")
        return str(int(number))
    return str(number)
