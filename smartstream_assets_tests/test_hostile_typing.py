"""Hostile values: every record ends up typed or quarantined with a reason, never a
crash for the whole object, and the same value gets the same outcome whatever
else its file holds (the CSV readers' fast path and the text path agree)."""

import dataclasses
import io
import json
import math
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smartstream_assets.cdc import parse_object
from smartstream_assets.cdc.coerce import coerce_column
from smartstream_assets.tables import TableSpec

from .helpers import T0, people_spec, rows

CDC_KEY = "raw/src/people/2026/03/02/20260302-100000000.csv"
PARQUET_KEY = "raw/src/people/2026/03/02/20260302-100000000.parquet"
UTC = timezone.utc
GOOD_TS = "2026-03-02 10:00:00"


def line(ident, *, op="I", ts=GOOD_TS, name="n", score="1", active="t", born="", seen=""):
    """One headerless DMS CSV CDC row of people_spec(timestamp_column="ts")."""
    return f"{op},{ts},{ident},{name},{score},{active},{born},{seen}\n"


def dms_csv(*lines):
    return parse_object(people_spec(timestamp_column="ts"), CDC_KEY, "".join(lines).encode(), T0)


def dms_parquet(table, spec=None):
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return parse_object(spec or people_spec("dms_parquet"), PARQUET_KEY, sink.getvalue(), T0)


def quarantined(parsed):
    return rows(parsed.quarantine, "_source_line", "_reason_code")


def reasons(parsed):
    return parsed.quarantine.column("_reason").to_pylist()


def ts(*args):
    return datetime(*args, tzinfo=UTC)


# An always-bad row: the file no longer converts on pyarrow's fast path, so every
# column of it is typed by the coercer's text rules.
SPOILER = line(99, score="lots")

# ------------------------------------------------------------- A. out of range


def test_impossible_and_out_of_range_dates_are_quarantined_per_record_beside_good_ones():
    parsed = dms_csv(
        line(1, born="1990-01-02"),
        line(2, born="0000-01-01"),  # year 0: no such year in Python's calendar
        line(3, born="10000-01-01"),  # year 10000
        line(4, born="2026-02-30"),  # no such day
        line(5, born="0001-01-01"),  # first representable day
        line(6, born="9999-12-31"),  # last representable day
    )
    assert rows(parsed.changes, "id", "born") == [(1, date(1990, 1, 2)), (5, date(1, 1, 1)), (6, date(9999, 12, 31))]
    assert quarantined(parsed) == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")]
    assert all("column born" in r for r in reasons(parsed))
    assert "0001-9999" in reasons(parsed)[0]


def test_a_year_zero_date_is_quarantined_even_when_every_value_of_the_file_converts():
    # pyarrow's CSV parser converts 0000-01-01 to a date32 Python cannot hold
    parsed = dms_csv(line(1, born="1990-01-02"), line(2, born="0000-01-01"))
    assert rows(parsed.changes, "id", "born") == [(1, date(1990, 1, 2))]
    assert quarantined(parsed) == [(2, "bad_value")]
    assert "'0000-01-01'" in reasons(parsed)[0] and "0001-9999" in reasons(parsed)[0]


@pytest.mark.parametrize("spoiled", [False, True], ids=["clean_file", "file_with_a_bad_row"])
def test_out_of_range_and_impossible_timestamps_are_quarantined_per_record(spoiled):
    parsed = dms_csv(
        line(1, seen="2026-03-02 09:00:00"),
        line(2, seen="0000-01-01 00:00:00"),
        line(3, seen="9999-12-31 23:59:59-01:00"),  # 10000-01-01 00:59:59 in UTC
        line(4, seen="9999-12-31 23:59:59.999999"),
        line(5, seen="0001-01-01 00:00:00"),
        *([SPOILER] if spoiled else []),
    )
    assert rows(parsed.changes, "id", "seen") == [
        (1, ts(2026, 3, 2, 9)),
        (4, ts(9999, 12, 31, 23, 59, 59, 999999)),
        (5, ts(1, 1, 1)),
    ]
    assert quarantined(parsed)[:2] == [(2, "bad_value"), (3, "bad_value")]
    assert all("column seen" in r and "0001-9999" in r for r in reasons(parsed)[:2])


def test_unparseable_and_huge_timestamps_are_quarantined_per_record():
    parsed = dms_csv(
        line(1, seen="2026-03-02 09:00:00"),
        line(2, seen="10000-01-01 00:00:00"),
        line(3, seen="2026-02-30 10:00:00"),
        line(4, seen="2026-03-02 24:00:00"),
        line(5, seen="99999999999999999999"),
        line(6, seen="2026-03-02 10:00:00"),
    )
    assert rows(parsed.changes, "id", "seen") == [(1, ts(2026, 3, 2, 9)), (6, ts(2026, 3, 2, 10))]
    assert quarantined(parsed) == [(n, "bad_value") for n in (2, 3, 4, 5)]
    assert all("column seen" in r for r in reasons(parsed))


@pytest.mark.parametrize("spoiled", [False, True], ids=["clean_file", "file_with_a_bad_row"])
def test_out_of_range_commit_timestamps_are_bad_commit_ts_per_record(spoiled):
    parsed = dms_csv(
        line(1, ts="2026-03-02 10:00:00"),
        line(2, ts="0000-01-01 00:00:00"),
        line(3, ts="2026-03-02 10:00:01"),
        *([SPOILER, line(4, ts="10000-01-01 00:00:00"), line(5, ts="2026-02-30 10:00:00")] if spoiled else []),
    )
    assert rows(parsed.changes, "id", "_commit_ts") == [(1, ts(2026, 3, 2, 10)), (3, ts(2026, 3, 2, 10, 0, 1))]
    expected = [(2, "bad_commit_ts")] + ([(4, "bad_value"), (5, "bad_commit_ts"), (6, "bad_commit_ts")] if spoiled else [])
    assert quarantined(parsed) == expected
    assert reasons(parsed)[0].startswith("commit timestamp '0000-01-01 00:00:00") and "0001-9999" in reasons(parsed)[0]


def test_a_debezium_commit_time_beyond_the_microsecond_range_is_bad_commit_ts():
    spec = TableSpec("t", "raw/pg/t/", "debezium_json", ("id",), {"id": "int64"})
    events = [
        {"op": "c", "after": {"id": 1}, "source": {"ts_ms": 5000}},
        {"op": "c", "after": {"id": 2}, "source": {"ts_ms": 10**17}},  # ms fits int64, us does not
        {"op": "c", "after": {"id": 3}, "source": {"ts_ms": 6000}},
    ]
    parsed = parse_object(spec, "raw/pg/t/x.jsonl", "\n".join(map(json.dumps, events)).encode(), T0)
    assert rows(parsed.changes, "id", "_commit_ts") == [(1, ts(1970, 1, 1, 0, 0, 5)), (3, ts(1970, 1, 1, 0, 0, 6))]
    assert quarantined(parsed) == [(2, "bad_commit_ts")]


def test_parquet_values_whose_cast_overflows_are_quarantined_per_record():
    table = pa.table(
        {
            "Op": ["I"] * 5,
            "id": pa.array([1, 2**63, 3, 4, 5], pa.uint64()),  # 2**63 does not fit int64
            "seen": pa.array([0, 0, 10**18, 0, 1000], pa.timestamp("ms")),  # 10**18 ms overflows us
            "born": pa.array([0, 0, 0, -719_528, 1], pa.date32()),  # -719528: 0000-01-01
        }
    )
    parsed = dms_parquet(table)
    assert rows(parsed.changes, "id", "seen", "born") == [
        (1, ts(1970, 1, 1), date(1970, 1, 1)),
        (5, ts(1970, 1, 1, 0, 0, 1), date(1970, 1, 2)),
    ]
    assert quarantined(parsed) == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")]
    why = reasons(parsed)
    assert "column id" in why[0] and "column seen" in why[1] and "column born" in why[2]
    raw = parsed.quarantine.column("_raw").to_pylist()
    assert "seen" in raw[1] and "born" in raw[2]  # rendered although Python cannot hold the values


def test_parquet_nanoseconds_that_microseconds_cannot_hold_are_quarantined_not_truncated():
    table = pa.table({"id": pa.array([1, 2]), "seen": pa.array([1_000, 1_001], pa.timestamp("ns"))})
    parsed = dms_parquet(table)
    assert rows(parsed.changes, "id", "seen") == [(1, ts(1970, 1, 1, 0, 0, 0, 1))]
    assert quarantined(parsed) == [(2, "bad_value")]


def test_coerce_column_text_dates_out_of_range_or_impossible_are_bad_and_null():
    typed, bad = coerce_column(pa.array(["2026-01-01", "0000-01-01", "10000-01-01", "2026-02-30", " 2024-02-29 ", None]), "date")
    assert typed.to_pylist() == [date(2026, 1, 1), None, None, None, date(2024, 2, 29), None]
    assert bad.to_pylist() == [False, True, True, True, False, False]


def test_coerce_column_typed_dates_and_timestamps_out_of_range_are_bad_and_null():
    typed, bad = coerce_column(pa.array([0, -719_528, 2_932_897, None], pa.date32()), "date")  # 1970, year 0, 10000-01-01
    assert typed.to_pylist() == [date(1970, 1, 1), None, None, None]
    assert bad.to_pylist() == [False, True, True, False]
    typed, bad = coerce_column(pa.array([0, 10**15, -(10**14), None], pa.timestamp("s")), "timestamp")
    assert typed.to_pylist() == [ts(1970, 1, 1), None, None, None]
    assert bad.to_pylist() == [False, True, True, False]


def test_coerce_column_typed_casts_that_overflow_or_change_a_value_are_bad_per_value():
    typed, bad = coerce_column(pa.array([1, 2**63, 2**64 - 1, None], pa.uint64()), "int64")
    assert (typed.to_pylist(), bad.to_pylist()) == ([1, None, None, None], [False, True, True, False])
    typed, bad = coerce_column(pa.array([1.0, 1.5, 1e30, float("nan")]), "int64")
    assert (typed.to_pylist(), bad.to_pylist()) == ([1, None, None, None], [False, True, True, True])
    typed, bad = coerce_column(pa.array([0, 1, 5]), "bool")  # 5 is no bool
    assert (typed.to_pylist(), bad.to_pylist()) == ([False, True, None], [False, False, True])
    midnight, noon = 86_400_000, 86_400_000 + 43_200_000
    typed, bad = coerce_column(pa.array([midnight, noon], pa.timestamp("ms")), "date")  # a time of day is no date
    assert (typed.to_pylist(), bad.to_pylist()) == ([date(1970, 1, 2), None], [False, True])
    typed, bad = coerce_column(pa.array([1_000, 1_001], pa.timestamp("ns")), "timestamp")
    assert (typed.to_pylist(), bad.to_pylist()) == ([ts(1970, 1, 1, 0, 0, 0, 1), None], [False, True])


def test_coerce_column_finds_few_bad_values_in_a_large_typed_column():
    values = pa.array([1] * 100_000 + [2**63] + [2] * 100_000, pa.uint64())
    typed, bad = coerce_column(values, "int64")
    assert bad.to_pylist().index(True) == 100_000 and sum(bad.to_pylist()) == 1
    assert typed[99_999].as_py() == 1 and typed[100_001].as_py() == 2 and typed.null_count == 1


# ------------------------------------------------- B. one rule for timestamp precision

# (text, the UTC instant it means, or None: rejected)
TIMESTAMP_RULE = [
    ("2026-01-01", ts(2026, 1, 1)),  # date only: midnight UTC
    ("2026-01-01 10", ts(2026, 1, 1, 10)),  # hour only: HH:00
    ("2026-01-01T10", ts(2026, 1, 1, 10)),
    ("2026-01-01 10:30", ts(2026, 1, 1, 10, 30)),
    ("2026-01-01T10:30:15", ts(2026, 1, 1, 10, 30, 15)),
    ("2026-01-01 10:30:15.5", ts(2026, 1, 1, 10, 30, 15, 500000)),
    ("2026-01-01 10:30:15.123456", ts(2026, 1, 1, 10, 30, 15, 123456)),
    (" 2026-01-01 10:30 ", ts(2026, 1, 1, 10, 30)),  # blanks around are ignored
    ("2026-01-01 10Z", ts(2026, 1, 1, 10)),
    ("2026-01-01 10:30+02:00", ts(2026, 1, 1, 8, 30)),
    ("2026-01-01 10:30:00-0130", ts(2026, 1, 1, 12, 0)),
    ("2026-01-01 10:30:00+02", ts(2026, 1, 1, 8, 30)),
    ("2026-01-01 10:30:15.1234567", None),  # finer than microseconds: not rounded
    ("2026-01-01 10:30:15.123456000", None),
    ("2026-01-01Z", None),  # a zone needs a time
    ("2026-01-01 1", None),
    ("2026-01-01 10:3", None),
    ("2026-01-01 10:30:00 Z", None),
    ("2026-01-01  10:30", None),
    ("2026-01-01 24:00", None),
    ("2026-01-01 10:30:60", None),
    ("2026-1-1", None),
    ("20260101T103000", None),
    ("yesterday", None),
]


@pytest.mark.parametrize("text, expected", TIMESTAMP_RULE, ids=[t for t, _ in TIMESTAMP_RULE])
def test_a_timestamp_gets_the_same_outcome_whatever_else_its_file_holds(text, expected):
    outcomes = []
    for spoiled in (False, True):
        parsed = dms_csv(line(1, seen=f'"{text}"' if text != text.strip() else text), *([SPOILER] if spoiled else []))
        if expected is None:
            assert quarantined(parsed)[:1] == [(1, "bad_value")], spoiled
            assert "column seen" in reasons(parsed)[0]
        else:
            assert rows(parsed.changes, "id", "seen") == [(1, expected)], spoiled
        outcomes.append(rows(parsed.changes, "id", "seen"))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("text, expected", TIMESTAMP_RULE, ids=[t for t, _ in TIMESTAMP_RULE])
def test_a_commit_timestamp_gets_the_same_outcome_whatever_else_its_file_holds(text, expected):
    for spoiled in (False, True):
        parsed = dms_csv(line(1, ts=f'"{text}"' if text != text.strip() else text), *([SPOILER] if spoiled else []))
        if expected is None:
            assert quarantined(parsed)[:1] == [(1, "bad_commit_ts")], spoiled
        else:
            assert rows(parsed.changes, "id", "_commit_ts") == [(1, expected)], spoiled


def test_coerce_column_implements_the_timestamp_rule_on_text():
    typed, bad = coerce_column(pa.array([t for t, _ in TIMESTAMP_RULE] + [None]), "timestamp")
    assert typed.to_pylist() == [e for _, e in TIMESTAMP_RULE] + [None]
    assert bad.to_pylist() == [e is None for _, e in TIMESTAMP_RULE] + [False]


# ---------------------------------------------------------- C. blank string keys


def test_an_empty_or_blank_string_primary_key_is_missing_key():
    spec = TableSpec("codes", "raw/src/codes/", "dms_csv", ("code",), {"code": "string", "n": "int64"})
    data = b'I,"",1\nI,"   ",2\nI,,3\nI,A,4\nI," B ",5\n'
    parsed = parse_object(spec, "raw/src/codes/2026/03/02/20260302-1.csv", data, T0)
    assert rows(parsed.changes, "code", "n") == [("A", 4), (" B ", 5)]  # kept as written
    assert rows(parsed.quarantine, "_source_line", "_reason_code") == [(1, "missing_key"), (2, "missing_key"), (3, "missing_key")]
    assert all("primary key code" in r for r in parsed.quarantine.column("_reason").to_pylist())


# ------------------------------------------------------------- D. non-finite floats

NONFINITE = ["inf", "-inf", "nan", "infinity", "-Infinity", "NaN", "1e400", "-1e400"]


@pytest.mark.parametrize("spoiled", [False, True], ids=["clean_file", "file_with_a_bad_row"])
def test_nonfinite_floats_are_quarantined_by_default(spoiled):
    lines = [line(1, score="1.5")] + [line(i + 2, score=v) for i, v in enumerate(NONFINITE)]
    parsed = dms_csv(*lines, *([line(99, born="never")] if spoiled else []))
    assert rows(parsed.changes, "id", "score") == [(1, 1.5)]
    assert quarantined(parsed)[: len(NONFINITE)] == [(i + 2, "bad_value") for i in range(len(NONFINITE))]
    assert all("column score" in r and "non-finite" in r for r in reasons(parsed)[: len(NONFINITE)])


@pytest.mark.parametrize("spoiled", [False, True], ids=["clean_file", "file_with_a_bad_row"])
def test_nonfinite_floats_are_kept_when_the_table_allows_them(spoiled):
    spec = dataclasses.replace(people_spec(timestamp_column="ts"), allow_nonfinite=True)
    lines = [line(1, score="1.5")] + [line(i + 2, score=v) for i, v in enumerate(NONFINITE)]
    data = "".join(lines + ([line(99, born="never")] if spoiled else [])).encode()
    parsed = parse_object(spec, CDC_KEY, data, T0)
    scores = parsed.changes.column("score").to_pylist()
    inf = math.inf
    # inf, -inf, nan, infinity, -Infinity, NaN, 1e400, -1e400
    assert [s for i, s in enumerate(scores) if i not in (3, 6)] == [1.5, inf, -inf, inf, -inf, inf, -inf]
    assert math.isnan(scores[3]) and math.isnan(scores[6])
    assert quarantined(parsed) == ([(len(lines) + 1, "bad_value")] if spoiled else [])


def test_parquet_nonfinite_floats_are_quarantined_unless_allowed():
    table = pa.table({"id": [1, 2, 3, 4], "score": [1.5, math.inf, -math.inf, math.nan]})
    parsed = dms_parquet(table)
    assert rows(parsed.changes, "id", "score") == [(1, 1.5)]
    assert quarantined(parsed) == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value")]
    assert "non-finite" in reasons(parsed)[0]
    allowed = dms_parquet(table, dataclasses.replace(people_spec("dms_parquet"), allow_nonfinite=True))
    assert allowed.changes.column("id").to_pylist() == [1, 2, 3, 4] and allowed.quarantine.num_rows == 0


def test_coerce_column_rejects_nonfinite_floats_unless_allowed():
    text = pa.array(["1.5", "inf", "nan", "1e400", "-Infinity", None])
    typed, bad = coerce_column(text, "float64")
    assert typed.to_pylist() == [1.5, None, None, None, None, None]
    assert bad.to_pylist() == [False, True, True, True, True, False]
    typed, bad = coerce_column(text, "float64", allow_nonfinite=True)
    assert typed.to_pylist()[:2] == [1.5, math.inf] and typed.to_pylist()[3:] == [math.inf, -math.inf, None]
    assert not any(bad.to_pylist())
    typed, bad = coerce_column(pa.array([1.5, math.inf, math.nan, None]), "float64")
    assert (typed.to_pylist(), bad.to_pylist()) == ([1.5, None, None, None], [False, True, True, False])


def test_good_rows_are_typed_right_beside_every_kind_of_hostile_value():
    parsed = dms_csv(
        line(1, score="2.25", born="2000-02-29", seen="2026-03-02 09:15"),
        line(2, score="inf"),
        line(3, born="0000-01-01"),
        line(4, seen="2026-02-30 00:00"),
        line(5, ts="0000-01-01 00:00:00"),
        line(6, op="U", score="-0.5", born="1999-12-31", seen="2026-03-02 23"),
    )
    assert rows(parsed.changes, "_op", "id", "score", "born", "seen") == [
        ("insert", 1, 2.25, date(2000, 2, 29), ts(2026, 3, 2, 9, 15)),
        ("update", 6, -0.5, date(1999, 12, 31), ts(2026, 3, 2, 23)),
    ]
    assert quarantined(parsed) == [(2, "bad_value"), (3, "bad_value"), (4, "bad_value"), (5, "bad_commit_ts")]
    assert parsed.changes.column("_commit_ts").to_pylist() == [ts(2026, 3, 2, 10)] * 2


def test_coerce_column_text_integers_beyond_int64_are_bad_exactly_at_the_bound():
    text = ["9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809"]
    text += ["+0009223372036854775807", "99999999999999999999", " 42 ", None]
    typed, bad = coerce_column(pa.array(text), "int64")
    assert typed.to_pylist() == [2**63 - 1, None, -(2**63), None, 2**63 - 1, None, 42, None]
    assert bad.to_pylist() == [False, True, False, True, False, True, False, False]


def test_coerce_column_knows_the_days_of_each_month_and_leap_years():
    text = ["2024-02-29", "2023-02-29", "1900-02-29", "2000-02-29", "2026-04-31", "2026-12-31", "2026-11-31", "2026-02-28"]
    typed, bad = coerce_column(pa.array(text), "date")
    assert bad.to_pylist() == [False, True, True, False, True, False, True, False]
    assert typed.to_pylist()[0] == date(2024, 2, 29) and typed.to_pylist()[3] == date(2000, 2, 29)
    typed, bad = coerce_column(pa.array([t + " 12:00" for t in text]), "timestamp")
    assert bad.to_pylist() == [False, True, True, False, True, False, True, False]
