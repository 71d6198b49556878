"""Type raw records into the trusted change log; everything else goes to quarantine.

One place for the typing rules of every format. Checks run vectorised over the
whole object; Python only touches the rejected records (to say why).

Every value ends up typed or its record quarantined with a reason; nothing is
silently altered and no value can fail the whole object. The rules:

``timestamp`` (text)
    ``YYYY-MM-DD``, optionally followed by ``T`` or one space and a time of
    ``HH``, ``HH:MM``, ``HH:MM:SS`` or ``HH:MM:SS.f`` (1 to 6 fraction digits:
    microseconds, the stored precision; more digits are rejected rather than
    rounded), optionally followed (only after a time) by a zone ``Z``, ``+HH``,
    ``+HHMM`` or ``+HH:MM``. Missing parts are zero: ``2026-01-01`` is midnight
    and ``2026-01-01 10`` is 10:00. Text without a zone is UTC (DMS writes UTC).
    Leading and trailing blanks are ignored. The calendar date and the time of
    day must exist (no ``2026-02-30``, no ``24:00``, no leap second) and the
    instant, in UTC, must lie in years 0001-9999 (what Python's datetime, hence
    every consumer of the lake, can represent). Without a zone this is what
    pyarrow's ISO 8601 parser accepts too (plus blanks around, which it refuses),
    so a value gets the same outcome whether the CSV readers' fast path converted
    it while parsing or the file fell back to text because of another bad value
    (test_hostile_typing checks this input by input).
``timestamp`` (typed, e.g. Parquet or Debezium ``ts_ms``)
    converted to UTC microseconds; a value that does not fit, or that carries
    sub-microsecond digits, or lies outside years 0001-9999, is rejected.
``date``
    ``YYYY-MM-DD`` (blanks around ignored), an existing calendar date in years
    0001-9999.
``int64``
    optional sign and decimal digits, within int64.
``float64``
    decimal or scientific notation, ``inf``/``infinity``/``nan`` in any case;
    parsed to the nearest double, so ``1e400`` becomes ``inf``. Non-finite
    results (inf, -inf, nan) are rejected unless the table sets
    ``allow_nonfinite: true``.
``bool``
    true/t/1/yes/y and false/f/0/no/n in any case.
``string``
    as is; a string primary key that is empty or only blanks is ``missing_key``.

Typed input (Parquet) is converted with Arrow's safe casts: a value that would
overflow or change (``uint64`` above int64, ``5`` into a bool, a timestamp with
a time of day into a date) is rejected per record.
"""

from __future__ import annotations

import json
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
# Month, day, hour, minute and second ranges are in the grammar; whether the day
# exists in its month (February 30) is checked by _no_such_day. So casts of text
# that passes both cannot fail: no per-value work even when every value is bad.
_YMD = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_DATE = rf"^\s*{_YMD}\s*$"
_ZONE = r"(Z|[+-]([01]\d|2[0-3])(:?[0-5]\d)?)"
_TIME = r"[ T]([01]\d|2[0-3])(:[0-5]\d(:[0-5]\d(\.\d{1,6})?)?)?"
# Matched against trimmed text; see the module docstring.
_NAIVE_TIMESTAMP = rf"^{_YMD}({_TIME})?$"
_ZONED_TIMESTAMP = rf"^{_YMD}{_TIME}{_ZONE}$"  # a zone only after a time

# Years 0001-9999: what Python's date / datetime (to_pylist, pandas objects) can hold.
_DATE_MIN = pa.scalar(-719_162, pa.int32()).cast(pa.date32())  # 0001-01-01
_DATE_MAX = pa.scalar(2_932_896, pa.int32()).cast(pa.date32())  # 9999-12-31
_TS_MIN = pa.scalar(-62_135_596_800_000_000, pa.int64()).cast(TS_TYPE)  # 0001-01-01 00:00:00 UTC
_TS_MAX = pa.scalar(253_402_300_799_999_999, pa.int64()).cast(TS_TYPE)  # 9999-12-31 23:59:59.999999 UTC

_EXPECTED = {
    "int64": "an integer",
    "float64": "a number",
    "date": "YYYY-MM-DD",
    "timestamp": "YYYY-MM-DD[ HH[:MM[:SS[.ffffff]]][zone]]",
    "bool": "true/false",
}
_NO_FIT = {
    "int64": "does not fit in int64",
    "date": "is not a calendar date",
    "timestamp": "is not a calendar date and time of day",
}
_OUT_OF_RANGE = "is outside years 0001-9999"
_NONFINITE = "is non-finite (inf, nan, or beyond float64's range); set allow_nonfinite: true on the table to keep it"


_OP_CODES = pa.array(["I", "U", "D"])


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
        op_index = pc.index_in(records.ops, value_set=_OP_CODES)
        if op_index.null_count:  # lower case or padded codes (or bad ones): normalised, then looked up
            codes = pc.utf8_upper(pc.utf8_trim_whitespace(records.ops))
            op_index = pc.index_in(codes, value_set=_OP_CODES)
        problems.add(
            pc.is_null(op_index),
            "unknown_op",
            lambda i: f"unknown Op {records.ops[i].as_py()!r} (expected I, U or D)",
        )

    if records.commit_ts is None:
        commit_ts = pa.array(np.full(n, np.datetime64(default_ts.astimezone(timezone.utc).replace(tzinfo=None), "us")), TS_TYPE)
    else:
        raw_ts = records.commit_ts
        commit_ts, failures = _coerce(raw_ts, "timestamp", allow_nonfinite=False)
        for mask, why in failures:
            problems.add(mask, "bad_commit_ts", lambda i, why=why: f"commit timestamp {_show(raw_ts, i)} {why}")
        problems.add(pc.is_null(commit_ts), "bad_commit_ts", lambda i: "commit timestamp is empty")

    typed: dict[str, pa.Array] = {}
    for name, type_name in spec.columns.items():
        raw = records.fields.get(name)
        if raw is None:
            typed[name] = pa.nulls(n, COLUMN_TYPES[type_name])
            continue
        typed[name], failures = _coerce(raw, type_name, allow_nonfinite=spec.allow_nonfinite)
        for mask, why in failures:
            problems.add(mask, "bad_value", lambda i, name=name, raw=raw, why=why: f"column {name}: {_show(raw, i)} {why}")
    for name in spec.primary_key:
        problems.add(pc.is_null(typed[name]), "missing_key", lambda i, name=name: f"primary key {name} is empty")
        if spec.columns[name] == "string":  # "" or blanks identify nothing (README: missing_key)
            blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(typed[name])), 0)
            problems.add(blank, "missing_key", lambda i, name=name: f"primary key {name} is blank ({typed[name][i].as_py()!r})")

    op_names = pa.array(OPS).take(pc.fill_null(op_index, 0))
    changes = pa.Table.from_arrays(
        [op_names, commit_ts, pa.repeat(pa.scalar(source_key), n), pa.array(records.lines, pa.int64())]
        + [typed[c] for c in spec.columns],
        schema=trusted_schema(spec),
    )
    if problems.bad.any():  # a filter copies every column even when it keeps every row
        changes = changes.filter(pa.array(~problems.bad))
    return changes, _quarantine(records, source_key, problems)


def coerce_column(values: pa.Array, type_name: str, *, allow_nonfinite: bool = False) -> tuple[pa.Array, pa.Array]:
    """(typed values, mask of non-null values that are not valid for the type).

    Invalid values are null in the typed array. The rules are in the module docstring.
    """
    typed, failures = _coerce(values, type_name, allow_nonfinite=allow_nonfinite)
    bad = np.zeros(len(values), bool)
    for mask, _ in failures:
        bad |= _np(mask)
    return typed, pa.array(bad)


# ------------------------------------------------------------------ the rules

_Failures = list[tuple[pa.Array, str]]  # (mask, why) in the order checked; masks may overlap


def _coerce(values: pa.Array, type_name: str, *, allow_nonfinite: bool) -> tuple[pa.Array, _Failures]:
    target = COLUMN_TYPES[type_name]
    failures: _Failures = []
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type) or pa.types.is_binary_view(values.type):
        values, bad = _cast_each(values, pa.string())
        failures.append((bad, "is not UTF-8 text"))
    if pa.types.is_large_string(values.type) or pa.types.is_string_view(values.type):
        values = values.cast(pa.string())
    if pa.types.is_string(values.type):
        typed = _from_text(values, type_name, failures)
    else:
        typed = _from_typed(values, type_name, failures)
    # Domain checks on the typed values, whichever path produced them (the CSV
    # readers may already have converted text while parsing).
    if type_name == "date":
        typed = _reject(typed, pc.or_(pc.less(typed, _DATE_MIN), pc.greater(typed, _DATE_MAX)), _OUT_OF_RANGE, failures)
    elif type_name == "timestamp":
        typed = _reject(typed, pc.or_(pc.less(typed, _TS_MIN), pc.greater(typed, _TS_MAX)), _OUT_OF_RANGE, failures)
    elif type_name == "float64" and not allow_nonfinite:
        typed = _reject(typed, pc.invert(pc.is_finite(typed)), _NONFINITE, failures)
    return typed, failures


def _from_text(values: pa.Array, type_name: str, failures: _Failures) -> pa.Array:
    if type_name == "string":
        return values
    if type_name == "bool":
        low = pc.utf8_lower(pc.utf8_trim_whitespace(values))
        is_true, is_false = pc.is_in(low, pa.array(_BOOL_TRUE)), pc.is_in(low, pa.array(_BOOL_FALSE))
        typed = pc.if_else(is_true, True, pc.if_else(is_false, False, pa.scalar(None, pa.bool_())))
        failures.append((pc.and_(pc.is_valid(values), pc.invert(pc.or_(is_true, is_false))), f"is not {_EXPECTED['bool']}"))
        return typed
    if type_name == "timestamp":
        return _text_to_timestamp(values, failures)
    pattern = {"int64": _INT, "float64": _FLOAT, "date": _DATE}[type_name]
    return _cast_matching(values, pattern, COLUMN_TYPES[type_name], type_name, failures)


def _cast_matching(values: pa.Array, pattern: str, target: pa.DataType, type_name: str, failures: _Failures) -> pa.Array:
    """Cast the values that match ``pattern``; the others (non-null) are bad, and so
    are the matching ones that do not fit (int overflow, month 13, February 30)."""
    ok = pc.fill_null(pc.match_substring_regex(values, pattern), True)
    failures.append((pc.invert(ok), f"is not a valid {type_name} (expected {_EXPECTED[type_name]})"))
    trimmed = pc.utf8_trim_whitespace(pc.if_else(ok, values, pa.scalar(None, pa.string())))
    if pa.types.is_integer(target):
        trimmed = pc.replace_substring_regex(trimmed, r"^\+", "")
        try:
            return trimmed.cast(target)
        except pa.ArrowInvalid:  # some overflow: find them vectorised, not one by one
            huge = _beyond_int64(trimmed)
            failures.append((huge, _NO_FIT["int64"]))
            trimmed = pc.if_else(huge, pa.scalar(None, pa.string()), trimmed)
    if type_name == "date":
        return _cast_calendar(trimmed, target, _NO_FIT["date"], failures)
    typed, no_fit = _cast_each(trimmed, target)
    failures.append((no_fit, _NO_FIT.get(type_name, f"is not a valid {type_name}")))
    return typed


def _beyond_int64(text: pa.Array) -> pa.Array:
    """Decimal integer text (sign and digits, or null) outside int64, compared as
    digit strings: exact, and vectorised even when every value overflows."""
    negative = pc.fill_null(pc.starts_with(text, "-"), False)
    digits = pc.utf8_ltrim(pc.utf8_ltrim(text, characters="-"), characters="0")
    length = pc.utf8_length(digits)
    limit = pc.if_else(negative, pa.scalar(str(2**63)), pa.scalar(str(2**63 - 1)))
    over = pc.or_(pc.greater(length, 19), pc.and_(pc.equal(length, 19), pc.greater(digits, limit)))
    return pc.fill_null(over, False)


def _text_to_timestamp(values: pa.Array, failures: _Failures) -> pa.Array:
    """Text timestamps as UTC microseconds; text without a zone is taken as UTC."""
    none = pa.scalar(None, pa.string())
    text = pc.utf8_trim_whitespace(values)
    naive = pc.fill_null(pc.match_substring_regex(text, _NAIVE_TIMESTAMP), False)
    rest = pc.and_(pc.is_valid(text), pc.invert(naive))
    if not pc.any(rest).as_py():  # the usual file: every value well formed, none with a zone
        return _cast_calendar(text, pa.timestamp("us"), _NO_FIT["timestamp"], failures).cast(TS_TYPE)
    zoned = pc.fill_null(pc.match_substring_regex(pc.if_else(rest, text, none), _ZONED_TIMESTAMP), False)
    failures.append((pc.and_(rest, pc.invert(zoned)), f"is not a valid timestamp (expected {_EXPECTED['timestamp']})"))
    typed = _cast_calendar(pc.if_else(naive, text, none), pa.timestamp("us"), _NO_FIT["timestamp"], failures)
    aware = _cast_calendar(pc.if_else(zoned, text, none), TS_TYPE, _NO_FIT["timestamp"], failures)
    return pc.if_else(zoned, aware, typed.cast(TS_TYPE))


def _cast_calendar(text: pa.Array, target: pa.DataType, why: str, failures: _Failures) -> pa.Array:
    """Cast well-formed date / timestamp text (or null). Only when that fails are the
    days not in their month (February 30) found, vectorised, before the cast is tried again."""
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        pass
    no_day = _no_such_day(text)
    failures.append((no_day, why))
    typed, bad = _cast_each(pc.if_else(no_day, pa.scalar(None, pa.string()), text), target)
    failures.append((bad, why))
    return typed


_NO_SUCH_DAY = pa.array(["02-30", "02-31", "04-31", "06-31", "09-31", "11-31"])


def _no_such_day(text: pa.Array) -> pa.Array:
    """Text starting YYYY-MM-DD (grammar checked, or null) whose day is not in its
    month: a set lookup of MM-DD, then year arithmetic on the February 29ths only."""
    month_day = pc.utf8_slice_codeunits(text, 5, 10)
    bad = pc.fill_null(pc.is_in(month_day, value_set=_NO_SUCH_DAY), False)
    feb29 = pc.fill_null(pc.equal(month_day, "02-29"), False)
    if not pc.any(feb29).as_py():
        return bad
    where = np.flatnonzero(_np(feb29))
    year = pc.utf8_slice_codeunits(text.take(pa.array(where)), 0, 4).cast(pa.int32()).to_numpy()
    common = ~((year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0)))
    out = _np(bad).copy()
    out[where[common]] = True
    return pa.array(out)


def _from_typed(values: pa.Array, type_name: str, failures: _Failures) -> pa.Array:
    """Typed input (Parquet, Debezium ts_ms): Arrow's safe cast, value by value."""
    target = COLUMN_TYPES[type_name]
    if values.type == target:
        return values
    source = values.type
    if type_name == "timestamp" and pa.types.is_timestamp(source) and source.tz is None:
        values = values.cast(pa.timestamp(source.unit, tz="UTC"))  # naive means UTC
    for mask, why in _typed_unfit(values, type_name):
        failures.append((mask, why))
        values = pc.if_else(mask, pa.scalar(None, values.type), values)
    try:
        typed = values.cast(target)
        bad = pa.array(np.zeros(len(values), bool))
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
        # No cast between these types (a struct for an int column...): read the
        # values as text under the text rules, or reject them all.
        try:
            return _from_text(values.cast(pa.string()), type_name, failures)
        except pa.ArrowException:
            failures.append((pc.is_valid(values), f"is a {source}, which cannot become {type_name}"))
            return pa.nulls(len(values), target)
    except pa.ArrowInvalid:
        typed, bad = _cast_each(values, target)
    failures.append((bad, f"does not fit {type_name} (from {source}: overflow or lost precision)"))
    if _may_change(values.type, target):
        typed = _reject(typed, _changed(values, typed), f"would change when converted from {source} to {type_name}", failures)
    return typed


# Epoch bounds of years 0001-9999 per timestamp unit (ns cannot leave them).
_EPOCH_BOUNDS = {
    "s": (-62_135_596_800, 253_402_300_799),
    "ms": (-62_135_596_800_000, 253_402_300_799_999),
    "us": (-62_135_596_800_000_000, 253_402_300_799_999_999),
}


def _typed_unfit(values: pa.Array, type_name: str) -> list[tuple[pa.Array, str]]:
    """Vectorised checks for the typed values Arrow's safe cast would refuse (or, for
    timestamps into dates, overflow), so that the common cases never reach the
    value-by-value search in _cast_each. The masks are non-null, one per reason."""
    source = values.type
    found = []
    if type_name == "int64" and pa.types.is_floating(source):
        whole = pc.and_(pc.is_finite(values), pc.equal(pc.floor(values), values))
        fits = pc.and_(pc.greater_equal(values, -(2.0**63)), pc.less(values, 2.0**63))
        found.append((pc.invert(pc.fill_null(pc.and_(whole, fits), True)), "is not a whole number within int64"))
    elif type_name == "int64" and pa.types.is_unsigned_integer(source) and source.bit_width == 64:
        found.append((pc.fill_null(pc.greater(values, pa.scalar(2**63 - 1, source)), False), "does not fit int64"))
    elif type_name in ("timestamp", "date") and pa.types.is_timestamp(source):
        raw = values.cast(pa.int64())
        if source.unit in _EPOCH_BOUNDS:
            lo, hi = _EPOCH_BOUNDS[source.unit]
            found.append((pc.fill_null(pc.or_(pc.less(raw, lo), pc.greater(raw, hi)), False), _OUT_OF_RANGE))
        elif type_name == "timestamp":  # ns: microseconds cannot hold the last three digits
            sub = pa.array(pc.fill_null(raw, 0).to_numpy() % 1000 != 0)
            found.append((sub, "has sub-microsecond digits, finer than the stored microseconds"))
    return found


def _may_change(source: pa.DataType, target: pa.DataType) -> bool:
    """Whether Arrow's *safe* cast can still alter a value (checked by a round trip).

    Timestamp / date widening is exact (the safe cast rejects lost precision);
    float64 is approximate by nature (text is rounded to the nearest double too)."""
    if pa.types.is_floating(target):
        return False
    if pa.types.is_timestamp(target) and (pa.types.is_timestamp(source) or pa.types.is_date(source)):
        return False
    if pa.types.is_integer(target) and pa.types.is_integer(source):
        return False
    return True


def _changed(values: pa.Array, typed: pa.Array) -> pa.Array:
    try:
        back = typed.cast(values.type, safe=False)
        same = pc.equal(back, values)
    except pa.ArrowException:
        return pa.array(np.zeros(len(values), bool))
    if pa.types.is_floating(values.type):
        same = pc.or_(same, pc.and_(pc.is_nan(values), pc.is_nan(back)))
    return pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(same, False)))


def _cast_each(values: pa.Array, target: pa.DataType) -> tuple[pa.Array, pa.Array]:
    """Safe cast; when the whole array does not cast, find the values that do not
    by halving (O(k log n) casts for k bad values): those become null and bad.

    The good path is one vectorised cast; halving runs only on objects holding
    values that do not fit.
    """
    n = len(values)
    try:
        return values.cast(target), pa.array(np.zeros(n, bool))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    bad = np.zeros(n, bool)
    pieces: list[pa.Array] = []
    stack = [(0, n)]  # depth first, left half first: pieces come out in order
    while stack:
        lo, hi = stack.pop()
        part = values.slice(lo, hi - lo)
        try:
            pieces.append(part.cast(target))
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        if hi - lo == 1:
            bad[lo] = True
            pieces.append(pa.nulls(1, target))
        else:
            mid = (lo + hi) // 2
            stack.append((mid, hi))
            stack.append((lo, mid))
    typed = pa.concat_arrays(pieces) if pieces else pa.array([], target)
    return typed, pa.array(bad)


def _reject(typed: pa.Array, mask: pa.Array, why: str, failures: _Failures) -> pa.Array:
    mask = pc.fill_null(mask, False)
    failures.append((mask, why))
    if not pc.any(mask).as_py():
        return typed
    return pc.if_else(mask, pa.scalar(None, typed.type), typed)


def _np(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _show(values: pa.Array, i: int) -> str:
    """The value for a reason: text quoted as is; typed values through Arrow's own
    text form (Python cannot hold a date in year 0 or 20000)."""
    return repr(_text(values, i))


def _text(values: pa.Array, i: int) -> str | None:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values[i].as_py()
    try:
        return values.slice(i, 1).cast(pa.string())[0].as_py()
    except pa.ArrowException:
        return f"<{values.type} value>"


# ------------------------------------------------------------------ quarantine


class _Problems:
    """The first problem found for each record: code and a readable reason."""

    def __init__(self, n: int):
        self.bad = np.zeros(n, bool)
        self.found: dict[int, tuple[str, str]] = {}

    def add(self, mask: pa.Array, code: str, reason) -> None:
        m = _np(mask)
        new = m & ~self.bad
        for i in np.flatnonzero(new):
            self.found[int(i)] = (code, reason(int(i)))
        self.bad |= m


def _quarantine(records: RawRecords, source_key: str, problems: _Problems) -> pa.Table:
    idx = np.array(sorted(problems.found), dtype=np.int64)
    texts = _raw_texts(records, idx) if len(idx) else []
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


def _raw_texts(records: RawRecords, idx: np.ndarray) -> list[str]:
    """The records' raw text; when the reader cannot render one (a Parquet value
    Python cannot hold, say a date in year 0), Arrow's text form of its values."""
    try:
        return records.raw_text(idx)
    except (ValueError, OverflowError, pa.ArrowException):
        pass
    texts = []
    for i in idx:
        try:
            texts.append(records.raw_text(np.array([i]))[0])
        except (ValueError, OverflowError, pa.ArrowException):
            parts = {"Op": records.ops, "_commit_ts": records.commit_ts, **records.fields}
            texts.append(json.dumps({k: _text(v, int(i)) for k, v in parts.items() if v is not None}))
    return texts
