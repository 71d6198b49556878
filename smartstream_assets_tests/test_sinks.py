"""Predictions upserted into SQL: a real PostgreSQL 15 (started by the session fixture
in ``postgres.py``) and a SQLite file, through the same ``upsert_rows``."""

import datetime as dt
import sqlite3
import uuid

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from dagster import serialize_value
# Private on purpose: RepositorySnap is exactly what the webserver/UI receives; no public API exposes it.
from dagster._core.remote_representation.external_data import RepositorySnap

from smartstream_assets.ml.sinks import PREDICTIONS_DB_ENV, SinkError, upsert_rows
from smartstream_assets.resources import PredictionsDbResource

from . import postgres

# The session's PostgreSQL server (postgres.py), a fixture found by this module name.
postgres_server = postgres.postgres_server

TABLE_KEY = ["run_date", "EmployeeID"]
RUN_DATE = dt.date(2026, 3, 1)


def predictions(n: int, run_date: dt.date = RUN_DATE, seed: int = 0, first_id: int = 1) -> pd.DataFrame:
    """An ``employee_predictions`` frame with the dtypes the scoring asset produces."""
    rng = np.random.default_rng(seed)
    probability = rng.random(n)
    return pd.DataFrame(
        {
            "run_date": [run_date] * n,  # datetime.date objects
            "EmployeeID": np.arange(first_id, first_id + n, dtype="int64"),
            "probability": probability,
            "predicted_class": (probability > 0.5).astype("int64"),
            "model_version": pd.Series(["7"] * n, dtype="string"),
            "anomaly": rng.random(n) > 0.9,
        }
    )


@pytest.fixture
def table() -> str:
    return f"employee_predictions_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pg(postgres_server):
    """A psycopg connection (autocommit) to the session's server."""
    with postgres_server.connect() as conn:
        yield conn


def pg_rows(pg, table: str) -> pd.DataFrame:
    """The table's rows with each row version's xmin (changes when a row is rewritten)."""
    cur = pg.execute(f'SELECT xmin::text AS xmin, * FROM "{table}" ORDER BY run_date, "EmployeeID"')
    return pd.DataFrame(cur.fetchall(), columns=[c.name for c in cur.description])


def as_stored(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with plain Python/NumPy dtypes, comparable to what the database returns."""
    out = frame.sort_values(TABLE_KEY).reset_index(drop=True).copy()
    out["model_version"] = out["model_version"].astype(object)
    return out


# ------------------------------------------------------------------ PostgreSQL


def test_upsert_creates_the_table_with_types_and_primary_key(postgres_server, pg, table):
    frame = predictions(50)
    frame["scored_at"] = pd.Timestamp("2026-03-01 06:30:00", tz="UTC")

    assert upsert_rows(postgres_server.url, table, frame, TABLE_KEY) == 50

    columns = pg.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_name = %s ORDER BY ordinal_position",
        [table],
    ).fetchall()
    assert columns == [
        ("run_date", "date", "NO"),
        ("EmployeeID", "bigint", "NO"),
        ("probability", "double precision", "YES"),
        ("predicted_class", "bigint", "YES"),
        ("model_version", "text", "YES"),
        ("anomaly", "boolean", "YES"),
        ("scored_at", "timestamp with time zone", "YES"),
    ]
    primary_key = pg.execute(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
        [f'"{table}"'],
    ).fetchall()
    assert [name for (name,) in primary_key] == TABLE_KEY

    stored = pg_rows(pg, table).drop(columns="xmin")
    expected = as_stored(frame)
    pd.testing.assert_frame_equal(stored.drop(columns="scored_at"), expected.drop(columns="scored_at"))
    assert set(stored["scored_at"]) == {dt.datetime(2026, 3, 1, 6, 30, tzinfo=dt.timezone.utc)}


def test_rerunning_the_same_frame_writes_nothing(postgres_server, pg, table):
    frame = predictions(200)
    assert upsert_rows(postgres_server.url, table, frame, TABLE_KEY) == 200
    before = pg_rows(pg, table)

    assert upsert_rows(postgres_server.url, table, frame, TABLE_KEY) == 0

    after = pg_rows(pg, table)
    # Same values AND same row versions (xmin): the unchanged rows were not even rewritten.
    pd.testing.assert_frame_equal(after, before)
    assert len(after) == 200


def test_changed_values_update_their_rows_and_new_keys_are_added(postgres_server, pg, table):
    frame = predictions(100)
    upsert_rows(postgres_server.url, table, frame, TABLE_KEY)
    before = pg_rows(pg, table).set_index("EmployeeID")

    changed = frame.copy()
    changed.loc[changed["EmployeeID"] == 3, "probability"] = 0.999
    changed.loc[changed["EmployeeID"] == 4, "model_version"] = "8"
    changed.loc[changed["EmployeeID"] == 5, "anomaly"] = not bool(frame.loc[4, "anomaly"])
    changed = pd.concat([changed, predictions(3, first_id=1000, seed=1)], ignore_index=True)

    assert upsert_rows(postgres_server.url, table, changed, TABLE_KEY) == 3 + 3

    after = pg_rows(pg, table).set_index("EmployeeID")
    assert len(after) == 103
    assert after.loc[3, "probability"] == 0.999
    assert after.loc[4, "model_version"] == "8"
    assert after.loc[5, "anomaly"] == (not bool(frame.loc[4, "anomaly"]))
    assert sorted(after.index[after.index >= 1000]) == [1000, 1001, 1002]
    untouched = [i for i in before.index if i not in (3, 4, 5)]
    assert (after.loc[untouched, "xmin"] == before.loc[untouched, "xmin"]).all()
    pd.testing.assert_frame_equal(pg_rows(pg, table).drop(columns="xmin"), as_stored(changed))


def test_a_hundred_thousand_rows_in_one_call(postgres_server, pg, table):
    frame = predictions(100_000, seed=7)
    written = upsert_rows(postgres_server.url, table, frame, TABLE_KEY)
    rewritten = upsert_rows(postgres_server.url, table, frame, TABLE_KEY)

    assert (written, rewritten) == (100_000, 0)
    count, total = pg.execute(f'SELECT count(*), sum(probability) FROM "{table}"').fetchone()
    assert count == 100_000
    assert total == pytest.approx(frame["probability"].sum())


def test_a_bad_value_in_a_late_batch_leaves_the_table_as_it_was(postgres_server, pg, table):
    frame = predictions(1000)
    upsert_rows(postgres_server.url, table, frame, TABLE_KEY)
    before = pg_rows(pg, table)

    bad = frame.copy()
    bad["probability"] = 0.5  # changes every row ...
    bad.loc[999, "model_version"] = "v\x00"  # ... and the last one cannot be stored (NUL in TEXT)
    with pytest.raises(SinkError, match=table):
        upsert_rows(postgres_server.url, table, bad, TABLE_KEY, batch_size=100)  # 9 good batches first

    pd.testing.assert_frame_equal(pg_rows(pg, table), before)


def test_a_failed_first_upsert_leaves_no_table(postgres_server, pg, table):
    bad = predictions(300)
    bad.loc[299, "model_version"] = "v\x00"
    with pytest.raises(SinkError):
        upsert_rows(postgres_server.url, table, bad, TABLE_KEY, batch_size=50)
    assert pg.execute("SELECT to_regclass(%s)", [f'"{table}"']).fetchone() == (None,)


def test_a_repeated_key_is_refused_before_anything_is_written(postgres_server, pg, table):
    frame = predictions(10)
    upsert_rows(postgres_server.url, table, frame, TABLE_KEY)
    before = pg_rows(pg, table)

    repeated = pd.concat([frame.assign(probability=0.1), frame.iloc[[2]]], ignore_index=True)
    with pytest.raises(SinkError) as failure:
        upsert_rows(postgres_server.url, table, repeated, TABLE_KEY)

    assert (
        table in str(failure.value) and "share a key" in str(failure.value) and "'EmployeeID': 3" in str(failure.value)
    )
    pd.testing.assert_frame_equal(pg_rows(pg, table), before)


def test_columns_that_do_not_match_the_table_are_named(postgres_server, pg, table):
    upsert_rows(postgres_server.url, table, predictions(5), TABLE_KEY)

    with pytest.raises(SinkError) as failure:
        upsert_rows(postgres_server.url, table, predictions(5).drop(columns="anomaly").assign(score=1.0), TABLE_KEY)

    message = str(failure.value)
    assert f"table {table!r}" in message
    assert "not in the frame: ['anomaly']" in message and "not in the table: ['score']" in message
    assert postgres_server.password not in message


def test_a_wrong_password_fails_without_showing_any_password(postgres_server, table):
    wrong = "Wr0ng:p@ss/w%rd-" + uuid.uuid4().hex[:6]
    with pytest.raises(SinkError) as failure:
        upsert_rows(postgres_server.url_with_password(wrong), table, predictions(3), TABLE_KEY)

    message = str(failure.value)
    assert "password authentication failed" in message
    assert f"postgresql+psycopg://{postgres_server.user}:***@" in message
    for secret in (wrong, "Wr0ng", postgres_server.password):
        assert secret not in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__  # no chained driver error


# ---------------------------------------------------------------------- SQLite


def test_sqlite_url_works_the_same_way(tmp_path, table):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    frame = predictions(500)

    assert upsert_rows(url, table, frame, TABLE_KEY) == 500
    assert upsert_rows(url, table, frame, TABLE_KEY) == 0
    changed = frame.assign(probability=np.where(frame["EmployeeID"] <= 10, 0.25, frame["probability"]))
    assert upsert_rows(url, table, changed, TABLE_KEY) == 10

    with sqlite3.connect(tmp_path / "predictions.db") as conn:
        ddl = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", [table]).fetchone()[0]
        stored = pd.read_sql(f'SELECT * FROM "{table}" ORDER BY "EmployeeID"', conn)
    assert 'PRIMARY KEY (run_date, "EmployeeID")' in ddl
    assert "run_date DATE NOT NULL" in ddl and '"EmployeeID" BIGINT NOT NULL' in ddl
    assert len(stored) == 500
    assert (stored.loc[:9, "probability"] == 0.25).all()
    assert stored.loc[10:, "probability"].tolist() == frame.loc[10:, "probability"].tolist()
    assert stored["run_date"].unique().tolist() == ["2026-03-01"]


def test_sqlite_upsert_is_all_or_nothing_including_the_new_table(tmp_path, table):
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    # A value sqlite3 cannot bind (beyond 64 bits), in the last of several batches.
    bad = predictions(300).assign(predicted_class=pd.Series([0] * 299 + [2**70], dtype=object))
    with pytest.raises(SinkError, match="too large"):
        upsert_rows(url, table, bad, TABLE_KEY, batch_size=50)
    with sqlite3.connect(tmp_path / "predictions.db") as conn:
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = ?", [table]).fetchone() == (0,)

    good = predictions(300)
    upsert_rows(url, table, good, TABLE_KEY)
    with pytest.raises(SinkError):
        upsert_rows(
            url, table, good.assign(probability=0.5, predicted_class=bad["predicted_class"]), TABLE_KEY, batch_size=50
        )
    with sqlite3.connect(tmp_path / "predictions.db") as conn:
        stored = pd.read_sql(f'SELECT probability FROM "{table}" ORDER BY "EmployeeID"', conn)
    assert stored["probability"].tolist() == good["probability"].tolist()


# -------------------------------------------------------------- Dagster resource


def test_predictions_db_resource_reads_the_url_at_run_time_and_never_shows_it(postgres_server, pg, table, monkeypatch):
    monkeypatch.delenv(PREDICTIONS_DB_ENV, raising=False)
    assert PredictionsDbResource().enabled() is False
    with pytest.raises(SinkError, match=PREDICTIONS_DB_ENV):
        PredictionsDbResource().upsert(table, predictions(1), TABLE_KEY)

    monkeypatch.setenv(PREDICTIONS_DB_ENV, postgres_server.url)

    @dg.asset
    def employee_predictions(predictions_db: PredictionsDbResource) -> dg.MaterializeResult:
        written = predictions_db.upsert(table, predictions(20), TABLE_KEY) if predictions_db.enabled() else None
        return dg.MaterializeResult(metadata={"rows_written": written})

    resource = PredictionsDbResource()
    defs = dg.Definitions(assets=[employee_predictions], resources={"predictions_db": resource})
    snapshot = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert postgres_server.password not in snapshot

    result = dg.materialize([employee_predictions], resources={"predictions_db": resource})
    assert result.success
    [materialization] = result.asset_materializations_for_node("employee_predictions")
    assert materialization.metadata["rows_written"].value == 20
    assert pg.execute(f'SELECT count(*) FROM "{table}"').fetchone() == (20,)


def test_missing_server_binaries_fail_the_fixture_with_a_clear_message(monkeypatch, tmp_path):
    from smartstream_assets import pg_server

    monkeypatch.setattr(pg_server, "SEARCH_GLOB", str(tmp_path / "nowhere" / "*" / "bin"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(postgres.PostgresError, match=r"initdb, postgres\) not found"):
        postgres.start_postgres()
