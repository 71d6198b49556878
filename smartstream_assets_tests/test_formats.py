"""Each raw format, as real producers write it, parsed into the trusted change log."""

import gzip
import io
import json
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartstream_assets.cdc import UnreadableObject, parse_object
from smartstream_assets.tables import TableSpec

from .helpers import T0, people_spec, real_data, rows

CDC_KEY = "raw/src/people/2026/03/02/20260302-100000000.csv"
LOAD_KEY = "raw/src/people/2026/03/01/LOAD00000001.csv"


def test_dms_cdc_rows_carry_op_then_timestamp_then_declared_columns():
    spec = people_spec(timestamp_column="ts")
    data = (
        b"I,2026-03-02 10:00:00.123456,1,Ann,1.5,true,1990-01-02,2026-03-02 09:00:00\n"
        b"U,2026-03-02 10:00:01.000000,1,Ann B,2.5,false,1990-01-02,\n"
        b"D,2026-03-02 10:00:02.000000,1,Ann B,2.5,false,1990-01-02,\n"
    )
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert parsed.quarantine.num_rows == 0
    assert rows(parsed.changes, "_op", "_source_line", "id", "name", "score", "active") == [
        ("insert", 1, 1, "Ann", 1.5, True),
        ("update", 2, 1, "Ann B", 2.5, False),
        ("delete", 3, 1, "Ann B", 2.5, False),
    ]
    ts = parsed.changes.column("_commit_ts").to_pylist()
    assert ts[0] == datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=timezone.utc)
    assert parsed.changes.column("born").to_pylist()[0] == date(1990, 1, 2)
    assert parsed.changes.column("seen").to_pylist() == [datetime(2026, 3, 2, 9, tzinfo=timezone.utc), None, None]
    assert parsed.changes.column("_source_key").to_pylist() == [CDC_KEY] * 3


def test_full_load_has_no_op_and_every_row_is_an_insert():
    spec = people_spec(timestamp_column="ts")
    data = b"2026-03-01 00:00:00,1,Ann,1,t,,\n2026-03-01 00:00:00,2,Bob,2,f,,\n"
    parsed = parse_object(spec, LOAD_KEY, data, T0)
    assert rows(parsed.changes, "_op", "id") == [("insert", 1), ("insert", 2)]
    assert parsed.quarantine.num_rows == 0


def test_full_load_with_include_op_for_full_load_reads_the_op_column():
    spec = people_spec(timestamp_column="ts", include_op_for_full_load=True)
    parsed = parse_object(spec, LOAD_KEY, b"I,2026-03-01 00:00:00,1,Ann,1,t,,\n", T0)
    assert rows(parsed.changes, "_op", "id") == [("insert", 1)]


def test_without_timestamp_column_commit_time_is_the_object_last_modified():
    spec = people_spec()
    parsed = parse_object(spec, CDC_KEY, b"I,1,Ann,1,t,,\n", T0)
    assert parsed.changes.column("_commit_ts").to_pylist() == [T0]


def test_rfc4180_quoting_commas_quotes_newlines_and_empty_string_versus_null():
    spec = people_spec()
    data = b'I,1,"Smith, ""Jo""",1,t,,\nI,2,"two\nlines",2,t,,\nI,3,"",3,t,,\nI,4,,4,t,,\n'
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert parsed.quarantine.num_rows == 0
    assert rows(parsed.changes, "id", "name", "_source_line") == [
        (1, 'Smith, "Jo"', 1),
        (2, "two\nlines", 2),
        (3, "", 4),  # the quoted newline moved it to physical line 4
        (4, None, 5),  # DMS writes NULL as an empty unquoted field
    ]


def test_gzip_objects_are_decompressed_by_extension():
    spec = people_spec()
    data = gzip.compress(b"I,1,Ann,1,t,,\nU,1,Ann,2,t,,\n")
    parsed = parse_object(spec, CDC_KEY + ".gz", data, T0)
    assert rows(parsed.changes, "_op", "score") == [("insert", 1.0), ("update", 2.0)]


def test_an_object_that_is_not_gzip_fails_naming_its_key():
    with pytest.raises(UnreadableObject, match=r"raw/src/people/.*\.csv\.gz.*gzip"):
        parse_object(people_spec(), CDC_KEY + ".gz", b"I,1,Ann,1,t,,\n", T0)


def test_header_row_maps_columns_by_name_when_add_column_name_is_set():
    spec = people_spec(timestamp_column="ts", add_column_name=True)
    data = b"Op,ts,name,id,score,active,born,seen\r\nI,2026-03-02 10:00:00,Ann,7,1,true,,\r\n"
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert rows(parsed.changes, "_op", "id", "name", "_source_line") == [("insert", 7, "Ann", 2)]


def test_each_malformed_line_is_quarantined_with_its_reason_and_the_rest_survives():
    spec = people_spec(timestamp_column="ts")
    good = b"I,2026-03-02 10:00:00,1,Ann,1,t,,\n"
    data = (
        good
        + b"X,2026-03-02 10:00:00,2,Bob,1,t,,\n"  # unknown op
        + b"I,2026-03-02 10:00:00,3,Cy\n"  # wrong field count
        + b"I,2026-03-02 10:00:00,abc,Di,1,t,,\n"  # bad key type
        + b"I,2026-03-02 10:00:00,5,Ed,lots,t,,\n"  # bad float
        + b"I,2026-03-02 10:00:00,,Fi,1,t,,\n"  # missing key
        + b"I,yesterday,7,Gus,1,t,,\n"  # bad commit timestamp
        + b"I,2026-03-02 10:00:00,8,Hal,1,maybe,,\n"  # bad bool
        + b"I,2026-03-02 10:00:00,9,Ivy,1,t,2026-13-45,\n"  # impossible date
        + b"I,2026-03-02 10:00:00,99999999999999999999,Jo,1,t,,\n"  # int64 overflow
        + b"I,2026-03-02 10:00:00,11,\xff\xfe,1,t,,\n"  # not UTF-8
    )
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert rows(parsed.changes, "id") == [(1,)]
    q = parsed.quarantine
    assert rows(q, "_source_line", "_reason_code") == [
        (2, "unknown_op"),
        (3, "wrong_field_count"),
        (4, "bad_value"),
        (5, "bad_value"),
        (6, "missing_key"),
        (7, "bad_commit_ts"),
        (8, "bad_value"),
        (9, "bad_value"),
        (10, "bad_value"),
        (11, "bad_encoding"),
    ]
    reasons = q.column("_reason").to_pylist()
    assert "'X'" in reasons[0] and "expected 8 fields, found 4" in reasons[1]
    assert "column id" in reasons[2] and "column score" in reasons[3] and "column born" in reasons[7]
    assert q.column("_raw").to_pylist()[2] == "I,2026-03-02 10:00:00,abc,Di,1,t,,"
    assert set(q.column("_source_key").to_pylist()) == {CDC_KEY}
    assert parsed.rows_in == 11


def test_records_whose_extra_and_missing_fields_balance_out_are_each_still_quarantined():
    """A file without quotes whose commas add up to the right total is taken as good at
    first; a record with one field too many and one with one too few must still be found
    (pyarrow refuses them, and the file is read again with every record counted)."""
    spec = people_spec(timestamp_column="ts")
    data = (
        b"I,2026-03-02 10:00:00,1,Ann,1,t,,\n"
        + b"I,2026-03-02 10:00:00,2,Bob,1,t,,,\n"  # 9 fields
        + b"\n  \t\n"  # blank lines hold no comma
        + b"I,2026-03-02 10:00:00,3,Cy,1,t,\n"  # 7 fields
        + b"U,2026-03-02 11:00:00,1,Ann2,2,f,,\n"
    )
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert rows(parsed.changes, "id", "name", "_source_line") == [(1, "Ann", 1), (1, "Ann2", 6)]
    assert rows(parsed.quarantine, "_source_line", "_reason_code") == [(2, "wrong_field_count"), (5, "wrong_field_count")]
    reasons = parsed.quarantine.column("_reason").to_pylist()
    assert "expected 8 fields, found 9" in reasons[0] and "expected 8 fields, found 7" in reasons[1]
    good = parse_object(spec, CDC_KEY, b"I,2026-03-02 10:00:00,1,Ann,1,t,,\n\n  \nU,2026-03-02 11:00:00,1,B,2,f,,\n", T0)
    assert rows(good.changes, "name", "_source_line") == [("Ann", 1), ("B", 4)] and good.quarantine.num_rows == 0


def test_a_stray_quote_inside_an_unquoted_field_is_parsed_like_the_csv_module_does():
    spec = people_spec()
    data = b'I,1,O"Brien,1,t,,\nI,2,Bob,2,t,,\n'
    parsed = parse_object(spec, CDC_KEY, data, T0)
    assert rows(parsed.changes, "id", "name", "_source_line") == [(1, 'O"Brien', 1), (2, "Bob", 2)]


def test_plain_csv_with_header_is_append_only():
    spec = TableSpec("t", "raw/x/t/", "csv", ("id",), {"id": "int64", "v": "float64"})
    parsed = parse_object(spec, "raw/x/t/a.csv", b"v,id\n1.5,1\n2.5,2\n", T0)
    assert rows(parsed.changes, "_op", "id", "v", "_source_line") == [("insert", 1, 1.5, 2), ("insert", 2, 2.5, 3)]


def test_dms_parquet_reads_op_timestamp_and_columns_by_name():
    spec = people_spec("dms_parquet", timestamp_column="ts")
    table = pa.table(
        {
            "Op": ["I", "U", "Z"],
            "ts": pa.array([datetime(2026, 3, 2, 10), datetime(2026, 3, 2, 11), datetime(2026, 3, 2, 12)]),
            "name": ["Ann", "Ann B", "x"],
            "id": pa.array([1, 1, 2], pa.int32()),
            "score": [1.0, 2.0, 3.0],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    parsed = parse_object(spec, "raw/src/people/2026/03/02/20260302.parquet", sink.getvalue(), T0)
    assert rows(parsed.changes, "_op", "id", "name", "score", "_source_line") == [
        ("insert", 1, "Ann", 1.0, 1),
        ("update", 1, "Ann B", 2.0, 2),
    ]
    assert parsed.changes.column("_commit_ts").to_pylist()[1] == datetime(2026, 3, 2, 11, tzinfo=timezone.utc)
    assert rows(parsed.quarantine, "_source_line", "_reason_code") == [(3, "unknown_op")]
    assert json.loads(parsed.quarantine.column("_raw")[0].as_py())["Op"] == "Z"


def test_a_parquet_object_that_is_not_parquet_fails_naming_its_key():
    with pytest.raises(UnreadableObject, match="raw/src/people/bad.parquet"):
        parse_object(people_spec("dms_parquet"), "raw/src/people/bad.parquet", b"not parquet", T0)


def products_spec():
    return TableSpec(
        "products",
        "raw/pg/products/",
        "debezium_json",
        ("id",),
        {"id": "int64", "name": "string", "description": "string", "weight": "float64"},
    )


def test_real_debezium_postgres_events_snapshot_updates_creates_and_delete():
    data = real_data("debezium/postgres_products.jsonl").read_bytes()
    parsed = parse_object(products_spec(), "raw/pg/products/events.jsonl", data, T0)
    ops = parsed.changes.column("_op").to_pylist()
    assert parsed.quarantine.num_rows == 0
    assert (ops.count("insert"), ops.count("update"), ops.count("delete")) == (11, 4, 1)
    # commit time is source.ts_ms, in UTC
    first = json.loads(data.splitlines()[0])
    assert parsed.changes.column("_commit_ts")[0].as_py() == datetime.fromtimestamp(
        first["source"]["ts_ms"] / 1000, tz=timezone.utc
    )
    deleted = parsed.changes.filter(pa.compute.equal(parsed.changes.column("_op"), "delete"))
    assert deleted.column("id").to_pylist() == [json.loads(data.splitlines()[-1])["before"]["id"]]


def test_debezium_schema_payload_wrapper_tombstones_and_broken_lines():
    spec = TableSpec("t", "raw/pg/t/", "debezium_json", ("id",), {"id": "int64", "at": "timestamp", "d": "date"})
    schema = {
        "type": "struct",
        "fields": [
            {
                "field": "after",
                "fields": [
                    {"field": "id", "type": "int64"},
                    {"field": "at", "type": "int64", "name": "io.debezium.time.MicroTimestamp"},
                    {"field": "d", "type": "int32", "name": "io.debezium.time.Date"},
                ],
            }
        ],
    }
    event = {"op": "c", "before": None, "after": {"id": 1, "at": 1_000_000, "d": 1}, "source": {"ts_ms": 5000}}
    lines = [
        json.dumps({"schema": schema, "payload": event}),
        "null",  # tombstone after a delete: not a change
        json.dumps({"schema": schema, "payload": None}),  # wrapped tombstone
        '{"op": "u", "after": {"id": 1',  # broken JSON
        json.dumps({"op": "t", "source": {"ts_ms": 6000}}),  # truncate: not a row change
        json.dumps({"op": "u", "after": None, "ts_ms": 7000}),
        json.dumps({"op": "d", "before": {"id": 1}, "after": None, "ts_ms": 8000}),
    ]
    parsed = parse_object(spec, "raw/pg/t/x.jsonl", "\n".join(lines).encode(), T0)
    assert rows(parsed.changes, "_op", "id", "_source_line") == [("insert", 1, 1), ("delete", 1, 7)]
    assert parsed.changes.column("at")[0].as_py() == datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc)
    assert parsed.changes.column("d")[0].as_py() == date(1970, 1, 2)
    assert parsed.changes.column("_commit_ts").to_pylist() == [
        datetime(1970, 1, 1, 0, 0, 5, tzinfo=timezone.utc),
        datetime(1970, 1, 1, 0, 0, 8, tzinfo=timezone.utc),
    ]
    assert parsed.tombstones == 2
    assert rows(parsed.quarantine, "_source_line", "_reason_code") == [
        (4, "broken_json"),
        (5, "unknown_op"),
        (6, "bad_event"),
    ]


def test_jsonl_append_only_records_non_objects_and_records_with_other_keys():
    spec = TableSpec("t", "raw/x/t/", "jsonl", ("id",), {"id": "int64", "ok": "bool", "v": "float64"})
    data = (
        b'{"id": 1, "ok": true, "v": 2}\n[1, 2]\n{"id": "2", "ok": false, "v": null, "extra": 1}\n{"ok": true}\n'
        b'{"id": 5, "ok": null, "v": null}\n'  # explicit nulls are values, not missing keys
    )
    parsed = parse_object(spec, "raw/x/t/a.jsonl", data, T0)
    assert rows(parsed.changes, "_op", "id", "ok", "v") == [("insert", 1, True, 2.0), ("insert", 5, None, None)]
    assert rows(parsed.quarantine, "_source_line", "_reason_code") == [
        (2, "broken_json"), (3, "schema_mismatch"), (4, "schema_mismatch")
    ]  # fmt: skip
    assert parsed.changes.column("_commit_ts").to_pylist() == [T0, T0]


def test_a_stray_quote_in_a_file_with_a_header_still_maps_columns_by_name():
    spec = TableSpec("t", "raw/x/t/", "csv", ("id",), {"id": "int64", "name": "string"})
    parsed = parse_object(spec, "raw/x/t/a.csv", b'name,id\nO"Brien,1\n', T0)
    assert rows(parsed.changes, "id", "name", "_source_line") == [(1, 'O"Brien', 2)]
