"""Raw objects as hostile producers write them: every record ends up typed or in
quarantine with a reason code, and nothing else is dropped, merged or altered."""

import base64
import gzip
import io
import json
from datetime import date, datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartstream_assets.cdc import UnreadableObject, parse_object
from smartstream_assets.cdc import formats
from smartstream_assets.cdc.formats import read_records
from smartstream_assets.tables import TableSpec

from .helpers import T0, people_spec, rows

CDC_KEY = "raw/src/people/2026/05/06/20260506-100000000.csv"
LOAD_KEY = "raw/src/people/2026/05/06/LOAD00000001.csv"
UTC = timezone.utc


def parse(spec, data, key=CDC_KEY):
    return parse_object(spec, key, data, T0)


def quarantined(parsed):
    return rows(parsed.quarantine, "_source_line", "_reason_code")


def b64_decimal(unscaled: int) -> str:
    """Kafka Connect's Decimal: the unscaled value as big-endian two's complement, base64."""
    return base64.b64encode(unscaled.to_bytes((unscaled.bit_length() + 8) // 8, "big", signed=True)).decode()


def debezium_line(after, fields, *, op="c", ts_ms=1_000):
    """One Debezium event with the schema/payload wrapper; ``fields`` describe the row."""
    row = {"type": "struct", "optional": True, "fields": fields}
    schema = {
        "type": "struct",
        "fields": [dict(row, field="before"), dict(row, field="after"), {"type": "string", "field": "op"}],
    }
    payload = {"op": op, "before": None, "after": after, "source": {"ts_ms": ts_ms}}
    return json.dumps({"schema": schema, "payload": payload})


def decimal_field(name, scale):
    return {
        "type": "bytes",
        "optional": True,
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": str(scale), "connect.decimal.precision": "40"},
        "field": name,
    }


# ------------------------------------------------------------ 1. unterminated quotes


def test_an_unterminated_quote_is_quarantined_and_the_records_after_it_are_read_as_themselves():
    spec = people_spec(timestamp_column="ts")
    data = (
        b"I,2026-05-06 10:00:00,10,Ann,1,t,,\n"
        b'I,2026-05-06 10:00:00,11,"12 inch screen\n'
        b"I,2026-05-06 10:00:01,12,Bob,2,t,,\n"
        b"U,2026-05-06 10:00:02,10,Ann B,3,f,,\n"
        b"D,2026-05-06 10:00:03,12,Bob,2,t,,\n"
    )
    parsed = parse(spec, data)
    assert rows(parsed.changes, "_op", "id", "name", "_source_line") == [
        ("insert", 10, "Ann", 1),
        ("insert", 12, "Bob", 3),
        ("update", 10, "Ann B", 4),
        ("delete", 12, "Bob", 5),
    ]
    assert quarantined(parsed) == [(2, "unterminated_quote")]
    assert parsed.quarantine.column("_raw").to_pylist() == ['I,2026-05-06 10:00:00,11,"12 inch screen']
    reason = parsed.quarantine.column("_reason")[0].as_py()
    assert "line 2" in reason and "never closed" in reason


def test_an_unterminated_quote_that_pairs_with_a_later_inch_mark_is_still_found():
    # 2 quotes: the parity rule pairs the open quote of line 2 with the inch mark of
    # line 4 and would make lines 2-4 one record of 7 fields (8 declared).
    spec = people_spec(timestamp_column="ts")
    data = (
        b"I,2026-05-06 10:00:00,1,Ann,1,t,,\n"
        b'I,2026-05-06 10:00:00,2,"12 inch screen\n'
        b"I,2026-05-06 10:00:01,3,Bob,2,t,,\n"
        b'I,2026-05-06 10:00:02,4,Dee 5",4,t,,\n'
    )
    parsed = parse(spec, data)
    assert rows(parsed.changes, "id", "name", "_source_line") == [(1, "Ann", 1), (3, "Bob", 3), (4, 'Dee 5"', 4)]
    assert quarantined(parsed) == [(2, "unterminated_quote")]


def test_a_quoted_field_spanning_lines_still_works_in_the_same_file_as_an_unterminated_one():
    spec = people_spec()
    data = (
        b'I,1,"line one\nline two",1,t,,\n'  # lines 1-2: RFC 4180 quoted newline
        b'I,2,"12 inch screen\n'  # line 3: never closed
        b"I,3,Cy,3,t,,\n"  # line 4
        b'U,1,"a\r\nb",4,t,,\r\n'  # lines 5-6, CRLF inside the quotes is kept
        b"I,5,Ed,5,t,,\n"  # line 7
    )
    parsed = parse(spec, data)
    assert rows(parsed.changes, "_op", "id", "name", "_source_line") == [
        ("insert", 1, "line one\nline two", 1),
        ("insert", 3, "Cy", 4),
        ("update", 1, "a\r\nb", 5),
        ("insert", 5, "Ed", 7),
    ]
    assert quarantined(parsed) == [(3, "unterminated_quote")]


def test_a_quote_still_open_at_the_end_of_the_object_quarantines_only_its_line():
    spec = people_spec()
    parsed = parse(spec, b'I,1,Ann,1,t,,\nI,2,"Bob,2,t,,')
    assert rows(parsed.changes, "id", "name") == [(1, "Ann")]
    assert quarantined(parsed) == [(2, "unterminated_quote")]
    assert parsed.quarantine.column("_raw").to_pylist() == ['I,2,"Bob,2,t,,']


def test_an_unterminated_quote_in_a_csv_with_header_resynchronises():
    spec = TableSpec("t", "raw/x/t/", "csv", ("id",), {"id": "int64", "name": "string"})
    data = b'id,name\n1,"12 inch screen\n2,Bob\n3,"two\nlines"\n4,Dee\n'
    parsed = parse(spec, data, "raw/x/t/a.csv")
    assert rows(parsed.changes, "id", "name", "_source_line") == [(2, "Bob", 3), (3, "two\nlines", 4), (4, "Dee", 6)]
    assert quarantined(parsed) == [(2, "unterminated_quote")]


def test_an_unterminated_quote_in_dms_csv_with_header_resynchronises():
    spec = people_spec(timestamp_column="ts", add_column_name=True)
    data = (
        b"Op,ts,id,name,score,active,born,seen\n"
        b'I,2026-05-06 10:00:00,1,"Ann,1,t,,\n'
        b"I,2026-05-06 10:00:01,2,Bob,2,t,,\n"
        b"D,2026-05-06 10:00:02,2,Bob,2,t,,\n"
    )
    parsed = parse(spec, data)
    assert rows(parsed.changes, "_op", "id", "_source_line") == [("insert", 2, 3), ("delete", 2, 4)]
    assert quarantined(parsed) == [(2, "unterminated_quote")]


def test_an_unterminated_quote_on_the_slow_path_resynchronises():
    spec = people_spec()  # O"Brien (a quote inside an unquoted field) forces the slow path
    data = b'I,1,O"Brien,1,t,,\nI,2,"12 inch screen\nI,3,Cy,3,t,,\nD,1,O"Brien,1,t,,\n'
    parsed = parse(spec, data)
    assert rows(parsed.changes, "_op", "id", "name", "_source_line") == [
        ("insert", 1, 'O"Brien', 1),
        ("insert", 3, "Cy", 3),
        ("delete", 1, 'O"Brien', 4),
    ]
    assert quarantined(parsed) == [(2, "unterminated_quote")]


# ------------------------------------------------------- 2. Debezium decimals and time


def prices_spec():
    return TableSpec(
        "prices",
        "raw/pg/prices/",
        "debezium_json",
        ("id",),
        {"id": "int64", "price": "float64", "exact": "string", "qty": "int64"},
    )


def test_debezium_precise_decimals_are_decoded_exactly_with_the_schema_scale():
    fields = [{"type": "int64", "field": "id"}, decimal_field("price", 2), decimal_field("exact", 2), decimal_field("qty", 2)]
    big = b64_decimal(12345678901234567890123456789012345678)  # 38 digits: beyond a double and Decimal's default precision
    big_fields = [{"type": "int64", "field": "id"}, decimal_field("exact", 10)]
    lines = [
        debezium_line({"id": 1, "price": "AMg=", "exact": "AMg=", "qty": "AMg="}, fields),  # 0x00c8 = 200 -> 2.00
        debezium_line({"id": 2, "price": "+999", "exact": "+999", "qty": "/zg="}, fields),  # 0xfbdf7d = -270467; 0xff38 = -200
        debezium_line({"id": 3, "price": "AMg=", "exact": "AMg=", "qty": "AMk="}, fields),  # qty 2.01: not an int64
        debezium_line({"id": 4, "exact": big}, big_fields),
    ]
    parsed = parse(prices_spec(), "\n".join(lines).encode(), "raw/pg/prices/a.jsonl")
    assert rows(parsed.changes, "id", "price", "exact", "qty") == [
        (1, 2.0, "2.00", 2),
        (2, -2704.67, "-2704.67", -2),
        (4, None, "1234567890123456789012345678.9012345678", None),
    ]
    assert quarantined(parsed) == [(3, "bad_value")]
    assert "2.01" in parsed.quarantine.column("_reason")[0].as_py()


def test_debezium_variable_scale_decimals_are_decoded():
    spec = TableSpec("t", "raw/pg/t/", "debezium_json", ("id",), {"id": "int64", "amount": "string", "f": "float64"})
    variable = {
        "type": "struct",
        "name": "io.debezium.data.VariableScaleDecimal",
        "fields": [{"type": "int32", "field": "scale"}, {"type": "bytes", "field": "value"}],
    }
    fields = [{"type": "int64", "field": "id"}, dict(variable, field="amount"), dict(variable, field="f")]
    line = debezium_line({"id": 1, "amount": {"scale": 3, "value": "AMg="}, "f": {"scale": 1, "value": "+999"}}, fields)
    parsed = parse(spec, line.encode(), "raw/pg/t/a.jsonl")
    assert rows(parsed.changes, "id", "amount", "f") == [(1, "0.200", -27046.7)]
    assert parsed.quarantine.num_rows == 0


def test_without_a_schema_a_base64_looking_string_in_a_numeric_column_is_quarantined():
    events = [
        {"op": "c", "after": {"id": 1, "price": "+999", "exact": "x", "qty": 1}, "ts_ms": 1},  # base64 of -270467
        {"op": "c", "after": {"id": 2, "price": "12.5", "exact": "+999", "qty": "7"}, "ts_ms": 2},  # plain numbers
        {"op": "c", "after": {"id": 3, "price": 1.5, "exact": "y", "qty": "AMg="}, "ts_ms": 3},
    ]
    data = "\n".join(json.dumps(e) for e in events).encode()
    parsed = parse(prices_spec(), data, "raw/pg/prices/a.jsonl")
    assert rows(parsed.changes, "id", "price", "exact", "qty") == [(2, 12.5, "+999", 7)]
    assert quarantined(parsed) == [(1, "bad_value"), (3, "bad_value")]
    for reason in parsed.quarantine.column("_reason").to_pylist():
        assert "schema" in reason and "decimal" in reason


TEMPORAL = {
    "id": "int64",
    "micro": "timestamp",
    "nano": "timestamp",
    "milli": "timestamp",
    "kafka_milli": "timestamp",
    "day": "date",
    "kafka_day": "date",
    "day_as_ts": "timestamp",
    "zoned": "timestamp",
}
TEMPORAL_FIELDS = [
    {"type": "int64", "field": "id"},
    {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "field": "micro"},
    {"type": "int64", "name": "io.debezium.time.NanoTimestamp", "field": "nano"},
    {"type": "int64", "name": "io.debezium.time.Timestamp", "field": "milli"},
    {"type": "int64", "name": "org.apache.kafka.connect.data.Timestamp", "field": "kafka_milli"},
    {"type": "int32", "name": "io.debezium.time.Date", "field": "day"},
    {"type": "int32", "name": "org.apache.kafka.connect.data.Date", "field": "kafka_day"},
    {"type": "int32", "name": "io.debezium.time.Date", "field": "day_as_ts"},
    {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "field": "zoned"},
]


def test_debezium_temporal_types_are_decoded_by_schema_name():
    spec = TableSpec("t", "raw/pg/t/", "debezium_json", ("id",), TEMPORAL)
    after = {
        "id": 1,
        "micro": 1_500_000,  # 1.5 s
        "nano": 2_000_001_000,  # 2.000001 s
        "milli": 3_000,
        "kafka_milli": 86_400_000,  # one day
        "day": 1,
        "kafka_day": 365,
        "day_as_ts": 2,  # a DATE column declared timestamp: midnight of that day, not 2 ms
        "zoned": "2026-05-06T10:00:00.123456+02:00",
    }
    parsed = parse(spec, debezium_line(after, TEMPORAL_FIELDS).encode(), "raw/pg/t/a.jsonl")
    assert parsed.quarantine.num_rows == 0
    assert rows(parsed.changes, *TEMPORAL) == [
        (
            1,
            datetime(1970, 1, 1, 0, 0, 1, 500_000, tzinfo=UTC),
            datetime(1970, 1, 1, 0, 0, 2, 1, tzinfo=UTC),
            datetime(1970, 1, 1, 0, 0, 3, tzinfo=UTC),
            datetime(1970, 1, 2, tzinfo=UTC),
            date(1970, 1, 2),
            date(1971, 1, 1),
            datetime(1970, 1, 3, tzinfo=UTC),
            datetime(2026, 5, 6, 8, 0, 0, 123456, tzinfo=UTC),
        )
    ]


def test_out_of_range_debezium_temporal_values_are_quarantined_per_record():
    spec = TableSpec("t", "raw/pg/t/", "debezium_json", ("id",), TEMPORAL)
    fields = TEMPORAL_FIELDS
    lines = [
        debezium_line({"id": 1, "milli": 10**20}, fields),
        debezium_line({"id": 2, "day": 10**9}, fields),
        debezium_line({"id": 3, "micro": -(10**19)}, fields),
        json.dumps({"op": "c", "after": {"id": 4, "milli": 10**20}, "ts_ms": 1}),  # no schema: ms
        json.dumps({"op": "c", "after": {"id": 5, "day": -(10**9)}, "ts_ms": 1}),  # no schema: days
        debezium_line({"id": 6, "milli": 1_000}, fields),
    ]
    parsed = parse(spec, "\n".join(lines).encode(), "raw/pg/t/a.jsonl")
    assert rows(parsed.changes, "id", "milli") == [(6, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))]
    assert quarantined(parsed) == [(1, "bad_value"), (2, "bad_value"), (3, "bad_value"), (4, "bad_value"), (5, "bad_value")]
    reasons = parsed.quarantine.column("_reason").to_pylist()
    assert "column milli" in reasons[0] and "out of range" in reasons[0]
    assert "column day" in reasons[1]


# ------------------------------------------------------------------ 3. empty objects

HEADER_CSV = TableSpec("t", "raw/x/t/", "csv", ("id",), {"id": "int64", "name": "string"})
JSONL = TableSpec("t", "raw/x/t/", "jsonl", ("id",), {"id": "int64", "name": "string"})
DEBEZIUM = TableSpec("t", "raw/x/t/", "debezium_json", ("id",), {"id": "int64", "name": "string"})
BLANKS = {
    "zero bytes": b"",
    "a BOM only": b"\xef\xbb\xbf",
    "newlines and whitespace only": b"\n\r\n  \n\t\n",
}
EMPTY_CASES = [
    ("dms_csv cdc", people_spec(), CDC_KEY, BLANKS),
    ("dms_csv full load", people_spec(), LOAD_KEY, BLANKS),
    (
        "dms_csv with header",
        people_spec(timestamp_column="ts", add_column_name=True),
        CDC_KEY,
        dict(BLANKS, **{"a header only": b"Op,ts,id,name,score,active,born,seen\r\n"}),
    ),
    (
        "dms_csv full load with header",
        people_spec(add_column_name=True),
        LOAD_KEY,
        dict(BLANKS, **{"a BOM, a header and blank lines": b"\xef\xbb\xbfid,name,score,active,born,seen\n\n  \n"}),
    ),
    ("csv", HEADER_CSV, "raw/x/t/a.csv", dict(BLANKS, **{"a header only": b"id,name"})),
    ("jsonl", JSONL, "raw/x/t/a.jsonl", BLANKS),
    ("debezium_json", DEBEZIUM, "raw/x/t/a.jsonl", BLANKS),
]


@pytest.mark.parametrize(
    "spec,key,data",
    [
        pytest.param(spec, key, data, id=f"{name}: {label}")
        for name, spec, key, cases in EMPTY_CASES
        for label, data in cases.items()
    ],
)
def test_an_empty_object_gives_no_records_no_rejections_and_says_it_was_empty(spec, key, data):
    for k, d in ((key, data), (key + ".gz", gzip.compress(data))):
        parsed = parse_object(spec, k, d, T0)
        assert (parsed.changes.num_rows, parsed.quarantine.num_rows, parsed.tombstones) == (0, 0, 0)
        assert read_records(spec, k, d).empty


def test_an_empty_parquet_object_is_empty_but_a_non_parquet_one_is_still_unreadable():
    spec = people_spec("dms_parquet")
    for key, data in (("raw/src/people/a.parquet", b""), ("raw/src/people/a.parquet.gz", gzip.compress(b""))):
        parsed = parse_object(spec, key, data, T0)
        assert (parsed.changes.num_rows, parsed.quarantine.num_rows) == (0, 0)
        assert read_records(spec, key, data).empty
    with pytest.raises(UnreadableObject, match="raw/src/people/b.parquet"):
        parse_object(spec, "raw/src/people/b.parquet", b"\n", T0)


def test_an_object_with_records_or_only_rejections_is_not_empty():
    assert not read_records(people_spec(), CDC_KEY, b"I,1,Ann,1,t,,\n").empty
    assert not read_records(people_spec(), CDC_KEY, b"I,1\n").empty  # one wrong_field_count rejection


# ------------------------------------------------------ 4. fast path == slow path

SAME_RECORDS = (
    b'I,1,"",1,t,,\n'  # line 1: a quoted empty field is an empty string
    b"I,2,,2,t,,\n"  # line 2: an empty unquoted field is NULL
    b'I,3,"Smith, ""Jo""",3,t,,\n'  # line 3
    b'I,4,"two\nlines",4,t,,\n'  # lines 4-5
    b"I,5,caf\xe9,5,t,,\n"  # line 6: latin-1, not UTF-8
    b'I,6,Zo\xc3\xab,6,"",,\n'  # line 7: "" is not a bool (NULL would be)
    b'I,7,Eve,7,t,"",\n'  # line 8: "" is not a date
    b"I,8,Flo,8,t,,\r\n"  # line 9: CRLF
)


def test_the_slow_path_types_every_record_exactly_like_the_fast_path(monkeypatch):
    slow_calls = []
    slowly = formats._read_csv_slowly
    monkeypatch.setattr(formats, "_read_csv_slowly", lambda *a, **kw: slow_calls.append(1) or slowly(*a, **kw))
    spec = people_spec()
    fast = parse(spec, SAME_RECORDS)
    assert not slow_calls
    slow = parse(spec, SAME_RECORDS + b'I,9,O"Brien,9,t,,\n')  # the stray quote sends the whole file down the slow path
    assert slow_calls
    expected = [(1, "", 1), (2, None, 2), (3, 'Smith, "Jo"', 3), (4, "two\nlines", 4), (8, "Flo", 9)]
    assert rows(fast.changes, "id", "name", "_source_line") == expected
    assert rows(slow.changes, "id", "name", "_source_line") == expected + [(9, 'O"Brien', 10)]
    assert slow.changes.slice(0, len(expected)).equals(fast.changes)
    assert quarantined(fast) == [(6, "bad_encoding"), (7, "bad_value"), (8, "bad_value")]
    assert slow.quarantine.equals(fast.quarantine)


# ----------------------------------------------------------- 5. op case and BOMs


def test_dms_parquet_reads_a_lowercase_op_column_like_op():
    spec = people_spec("dms_parquet")
    sink = io.BytesIO()
    pq.write_table(pa.table({"op": ["I", "U", "D"], "id": [1, 1, 1], "name": ["Ann", "Ann B", "Ann B"]}), sink)
    parsed = parse(spec, sink.getvalue(), "raw/src/people/2026/05/06/a.parquet")
    assert rows(parsed.changes, "_op", "id", "name") == [("insert", 1, "Ann"), ("update", 1, "Ann B"), ("delete", 1, "Ann B")]


def test_json_lines_and_debezium_files_starting_with_a_utf8_bom_are_read_from_the_first_line():
    bom = b"\xef\xbb\xbf"
    parsed = parse(JSONL, bom + b'{"id": 1, "name": "Ann"}\n{"id": 2, "name": "Bob"}\n', "raw/x/t/a.jsonl")
    assert rows(parsed.changes, "id", "name", "_source_line") == [(1, "Ann", 1), (2, "Bob", 2)]
    assert parsed.quarantine.num_rows == 0
    event = {"op": "c", "before": None, "after": {"id": 1, "name": "Ann"}, "ts_ms": 1}
    parsed = parse(DEBEZIUM, bom + json.dumps(event).encode(), "raw/x/t/a.jsonl")
    assert rows(parsed.changes, "_op", "id", "name", "_source_line") == [("insert", 1, "Ann", 1)]
    assert parsed.quarantine.num_rows == 0


# ------------------------------------------------ 6. headers that do not match

AMOUNTS = TableSpec("t", "raw/x/t/", "csv", ("id",), {"id": "int64", "name": "string", "amount": "float64"})


@pytest.mark.parametrize(
    "header,problem",
    [
        ("id,nme,amount", "missing name; unexpected nme"),
        ("id,amount", "missing name"),
        ("id,name,amount,extra", "unexpected extra"),
        ("id,Name,amount", "missing name; unexpected Name"),
    ],
)
def test_a_csv_header_that_does_not_match_the_declared_columns_quarantines_every_record(header, problem):
    data = f'{header}\n1,Ann,1.5\n2,"Bob",2.5\n3,Cy\n'.encode()
    parsed = parse(AMOUNTS, data, "raw/x/t/a.csv")
    assert parsed.changes.num_rows == 0
    assert quarantined(parsed) == [(2, "schema_mismatch"), (3, "schema_mismatch"), (4, "schema_mismatch")]
    reasons = parsed.quarantine.column("_reason").to_pylist()
    assert reasons[0] == f"header {header} does not match the declared columns id,name,amount: {problem}"
    assert parsed.quarantine.column("_raw").to_pylist()[:2] == ["1,Ann,1.5", '2,"Bob",2.5']


def test_a_csv_header_naming_the_declared_columns_in_another_order_is_fine():
    parsed = parse(AMOUNTS, b"amount,id,name\n1.5,1,Ann\n", "raw/x/t/a.csv")
    assert rows(parsed.changes, "id", "name", "amount") == [(1, "Ann", 1.5)]


def test_dms_csv_header_allows_op_and_timestamp_but_requires_op_in_cdc_files():
    spec = people_spec(timestamp_column="ts", add_column_name=True)
    without_op = b"ts,id,name,score,active,born,seen\n2026-05-06 10:00:00,1,Ann,1,t,,\n"
    parsed = parse(spec, without_op)
    assert quarantined(parsed) == [(2, "schema_mismatch")]
    assert parsed.quarantine.column("_reason")[0].as_py().endswith(": missing Op")
    # a full load may leave Op (and the timestamp) out
    parsed = parse(spec, b"id,name,score,active,born,seen\n1,Ann,1,t,,\n", LOAD_KEY)
    assert rows(parsed.changes, "_op", "id", "name", "_commit_ts") == [("insert", 1, "Ann", T0)]
    # a case mismatch in a declared column is a mismatch, Op and ts are fine
    parsed = parse(spec, b"Op,ts,ID,name,score,active,born,seen\nI,2026-05-06 10:00:00,1,Ann,1,t,,\n")
    assert quarantined(parsed) == [(2, "schema_mismatch")]
    assert parsed.quarantine.column("_reason")[0].as_py().endswith(": missing id; unexpected ID")


def test_jsonl_records_whose_keys_do_not_match_are_quarantined_but_explicit_nulls_are_allowed():
    spec = TableSpec("t", "raw/x/t/", "jsonl", ("id",), {"id": "int64", "name": "string", "amount": "float64"})
    data = (
        b'{"id": 1, "name": "Ann", "amount": null}\n'  # explicit null: allowed
        b'{"id": 2, "name": "Bob"}\n'  # amount missing
        b'{"id": 3, "name": "Cy", "amount": 1, "extra": 2}\n'
        b'{"ID": 4, "name": "Di", "amount": 1}\n'
    )
    parsed = parse(spec, data, "raw/x/t/a.jsonl")
    assert rows(parsed.changes, "id", "name", "amount") == [(1, "Ann", None)]
    assert quarantined(parsed) == [(2, "schema_mismatch"), (3, "schema_mismatch"), (4, "schema_mismatch")]
    assert parsed.quarantine.column("_reason").to_pylist() == [
        "keys id,name do not match the declared columns id,name,amount: missing amount",
        "keys id,name,amount,extra do not match the declared columns id,name,amount: unexpected extra",
        "keys ID,name,amount do not match the declared columns id,name,amount: missing id; unexpected ID",
    ]


def test_debezium_row_images_may_carry_extra_columns_and_leave_declared_ones_out():
    # Row images carry every column of the source table (the registry may declare a
    # subset), and delete before-images often carry only the key: both are fine.
    lines = [
        json.dumps({"op": "c", "after": {"id": 1, "name": "Ann", "internal": 5}, "ts_ms": 1}),
        json.dumps({"op": "d", "before": {"id": 1}, "after": None, "ts_ms": 2}),
    ]
    parsed = parse(DEBEZIUM, "\n".join(lines).encode(), "raw/x/t/a.jsonl")
    assert rows(parsed.changes, "_op", "id", "name") == [("insert", 1, "Ann"), ("delete", 1, None)]
    assert parsed.quarantine.num_rows == 0


# ------------------------------------- 6. one rule on every path, per-record failures

HEX_IDS = (
    b"I,1,Alex,1,t,,\n"  # line 1: an x in a text column is fine
    b"I,0x10,Ann,2,t,,\n"  # line 2: pyarrow's int parser reads 16
    b"I,0X1F,Bob,3,t,,\n"  # line 3: 31
    b"I,0xFFFFFFFFFFFFFFFF,Cy,4,t,,\n"  # line 4: -1 (wraps)
    b"I,2,0x10,5,t,,\n"  # line 5: hex text in a string column stays text
)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(b"", id="every value converts (typed fast path)"),
        pytest.param(b"I,3,Dee,many,t,,\n", id="a bad float sends the file to text"),
        pytest.param(b'I,3,O"Brien,6,t,,\n', id="a stray quote sends the file down the slow path"),
    ],
)
def test_hex_in_an_int64_column_is_a_bad_value_whichever_path_reads_the_file(extra):
    parsed = parse(people_spec(), HEX_IDS + extra)
    assert rows(parsed.changes, "id", "name", "_source_line")[:2] == [(1, "Alex", 1), (2, "0x10", 5)]
    assert quarantined(parsed)[:3] == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")]
    assert "'0x10' is not a valid int64" in parsed.quarantine.column("_reason")[0].as_py()


def test_an_x_in_a_text_column_keeps_int64_columns_converted_while_parsing():
    # The hex check must not send ordinary files (an x in a name) down the text path.
    spec = people_spec()
    names = ["Op", *spec.columns]
    types = formats._fast_types(spec, None)
    table = formats.read_csv_records(CDC_KEY, b"I,1,Alex,1,t,,\nI,2,Xena,2,t,,\n", names=names, header=False, types=types)
    assert table.columns[1].type == pa.int64() and table.columns[1].to_pylist() == [1, 2]
    table = formats.read_csv_records(CDC_KEY, HEX_IDS, names=names, header=False, types=types)
    assert table.columns[1].type == pa.string()  # hex found: the coercer decides on the text


def test_a_debezium_ts_ms_beyond_int64_quarantines_only_its_record():
    stamps = [1_000, 2**63, 2_000, -(2**63) - 1, 10**30, 2**63 - 1]
    lines = [json.dumps({"op": "c", "after": {"id": i, "name": "n"}, "ts_ms": ts}) for i, ts in enumerate(stamps, 1)]
    parsed = parse(DEBEZIUM, "\n".join(lines).encode(), "raw/x/t/a.jsonl")
    assert rows(parsed.changes, "id", "_commit_ts") == [
        (1, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)),
        (3, datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC)),
    ]
    assert quarantined(parsed) == [(2, "bad_commit_ts"), (4, "bad_commit_ts"), (5, "bad_commit_ts"), (6, "bad_commit_ts")]
    why = parsed.quarantine.column("_reason").to_pylist()
    assert all("out of range" in w for w in why[:3]) and str(2**63) in why[0]


def test_parquet_raw_text_renders_values_python_cannot_hold_row_by_row():
    table = pa.table(
        {
            "Op": ["I"] * 4,
            "id": [1, 2, 3, 4],
            "born": pa.array([0, -719_528, 0, 0], pa.date32()),  # -719528: 0000-01-01
            "seen": pa.array([0, 0, 10**18, 0], pa.timestamp("ms")),  # beyond Python's datetime
            "tags": pa.array([[0], [0], [0], [10**18]], pa.list_(pa.timestamp("ms"))),  # no text cast either
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    records = read_records(people_spec("dms_parquet"), "raw/src/people/a.parquet", sink.getvalue())
    texts = [json.loads(t) for t in records.raw_text(np.arange(4))]
    assert texts[0] == {"Op": "I", "id": 1, "born": "1970-01-01", "seen": "1970-01-01 00:00:00", "tags": ["1970-01-01 00:00:00"]}
    assert texts[1]["born"] == "0000-01-01" and texts[1]["id"] == 2 and texts[1]["seen"] == "1970-01-01 00:00:00"
    assert "1000000000000000000" in texts[2]["seen"] and texts[2]["born"] == "1970-01-01"
    assert texts[3]["tags"] == "<list<element: timestamp[ms]> value>" and texts[3]["id"] == 4
