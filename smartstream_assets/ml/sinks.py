"""Prediction sinks: the same rows as the lake's Parquet, upserted into a SQL table for
the applications and dashboards that query a database rather than files.

    upsert_rows("postgresql+psycopg://user:pw@host/db", "employee_predictions", frame,
                key=["run_date", "EmployeeID"])

Set ``SMARTSTREAM_PREDICTIONS_DB`` (a SQLAlchemy URL) to turn it on. PostgreSQL
(psycopg 3, SQLAlchemy's default PostgreSQL driver) and SQLite are supported: both
have ``INSERT ... ON CONFLICT DO UPDATE``. Error messages show the URL with its
password hidden, and never a row's values.

SQLAlchemy is imported inside the functions, not when the code location loads.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from urllib.parse import quote, quote_plus

import pandas as pd

PREDICTIONS_DB_ENV = "SMARTSTREAM_PREDICTIONS_DB"
SUPPORTED_BACKENDS = ("postgresql", "sqlite")
# Rows turned into Python values at a time. Each batch is sent as multi-row INSERTs of
# up to 1000 rows (SQLAlchemy's "insertmanyvalues"), all in the one transaction.
BATCH_ROWS = 10_000


class SinkError(RuntimeError):
    """Rows could not be written; the message names the table and never the password."""


def upsert_rows(url: str, table: str, frame: pd.DataFrame, key: Sequence[str], *, batch_size: int = BATCH_ROWS) -> int:
    """Insert or update every row of ``frame`` into ``table`` at ``url``; return how many
    rows were written (inserted, or updated because a value changed).

    - The table is created if missing: one column per frame column, typed from its dtype
      (integers BIGINT, floats DOUBLE PRECISION, bools BOOLEAN, strings TEXT, tz-aware
      datetimes TIMESTAMP WITH TIME ZONE, ``datetime.date`` objects DATE), primary key ``key``.
    - An existing table must have exactly the frame's columns and ``key`` as primary key.
    - All or nothing: the whole frame (and the table's creation) is one transaction.
    - Idempotent: a row whose values are all unchanged is not rewritten, so re-running
      the same frame writes 0 rows and leaves the table as it was.
    - A frame with a missing or repeated key is refused before anything is written.
    """
    import sqlalchemy as sa

    key = list(key)
    shown = safe_url(url)
    where = f"table {table!r} at {shown}"
    backend = _backend(url, shown)
    _check_frame(frame, key, where)
    if frame.empty:
        return 0

    engine = _engine(url, backend)
    try:
        with engine.begin() as conn:
            target = _table(conn, table, frame, key, where)
            statement = _upsert_statement(backend, target, key)
            written = 0
            for rows in _batches(frame, batch_size):
                written += len(conn.execute(statement, rows).all())
        return written
    except SinkError:
        raise
    except (sa.exc.SQLAlchemyError, OverflowError) as exc:  # OverflowError: sqlite3 binding a huge int
        # Not chained (`from None`): a driver message may quote connection settings,
        # and a chained exception would be printed in full next to ours.
        raise SinkError(f"upsert into {where} failed: {_reason(exc, url)}") from None
    finally:
        engine.dispose()


def read_rows(url: str, table: str, columns: Sequence[str]) -> pd.DataFrame:
    """Every row of ``table`` at ``url`` (PostgreSQL or SQLite), the given columns in that
    order. A missing table or column raises ``SinkError`` naming it (password hidden)."""
    import sqlalchemy as sa

    shown = safe_url(url)
    where = f"table {table!r} at {shown}"
    backend = _backend(url, shown)
    engine = _engine(url, backend)
    try:
        with engine.connect() as conn:
            found = sa.inspect(conn)
            if not found.has_table(table):
                raise SinkError(f"{where} does not exist")
            present = [c["name"] for c in found.get_columns(table)]
            missing = [c for c in columns if c not in present]
            if missing:
                raise SinkError(f"{where} lacks columns {', '.join(missing)} (it has {', '.join(present)})")
            target = sa.Table(table, sa.MetaData(), autoload_with=conn)
            result = conn.execute(sa.select(*(target.c[c] for c in columns)))
            return pd.DataFrame(result.fetchall(), columns=list(columns))
    except SinkError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise SinkError(f"reading {where} failed: {_reason(exc, url)}") from None
    finally:
        engine.dispose()


def safe_url(url: str) -> str:
    """``url`` as it may be shown: the password replaced by ``***``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<a database URL that SQLAlchemy cannot parse>"


def predictions_db_url(env=None) -> str:
    """The predictions database URL from ``SMARTSTREAM_PREDICTIONS_DB``, or "" when unset."""
    env = os.environ if env is None else env
    return env.get(PREDICTIONS_DB_ENV, "").strip()


# ------------------------------------------------------------------------ helpers


def _backend(url: str, shown: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError):
        raise SinkError(f"not a SQLAlchemy database URL: {shown}") from None
    if backend not in SUPPORTED_BACKENDS:
        raise SinkError(f"{shown}: upserts need PostgreSQL or SQLite, not {backend}")
    return backend


def _check_frame(frame: pd.DataFrame, key: list[str], where: str) -> None:
    """Refuse, before connecting, what would fail halfway or silently keep one of two rows."""
    if not key:
        raise SinkError(f"{where}: a primary key (at least one column) is needed for upserts")
    if frame.columns.duplicated().any():
        raise SinkError(f"{where}: the frame repeats columns {sorted(set(frame.columns[frame.columns.duplicated()]))}")
    missing = [k for k in key if k not in frame.columns]
    if missing:
        raise SinkError(f"{where}: key columns {missing} are not in the frame (columns: {list(frame.columns)})")
    null_keys = frame[key].isna().any(axis=1)
    if null_keys.any():
        raise SinkError(f"{where}: {int(null_keys.sum())} row(s) have an empty key {key}")
    repeated = frame.duplicated(subset=key, keep=False)
    if repeated.any():
        examples = frame.loc[repeated, key].drop_duplicates().head(3).to_dict("records")
        raise SinkError(f"{where}: {int(repeated.sum())} rows share a key {key}, e.g. {examples}")


def _engine(url: str, backend: str):
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    options: dict = {"hide_parameters": True, "poolclass": NullPool}  # one call, one connection
    if backend == "postgresql":
        options["connect_args"] = {"connect_timeout": 10}  # else an unreachable host hangs for minutes
    engine = sa.create_engine(url, **options)
    if backend == "sqlite":
        # Python's sqlite3 commits DDL on its own and begins transactions late; let
        # SQLAlchemy emit BEGIN so CREATE TABLE and the rows share one transaction
        # (the recipe of SQLAlchemy's SQLite dialect documentation).
        @sa.event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

    return engine


def _table(conn, name: str, frame: pd.DataFrame, key: list[str], where: str):
    """The existing table, checked against the frame, or a new one made from the frame."""
    import sqlalchemy as sa

    if sa.inspect(conn).has_table(name):
        table = sa.Table(name, sa.MetaData(), autoload_with=conn)
        have = [c.name for c in table.columns]
        missing, extra = [c for c in have if c not in frame.columns], [c for c in frame.columns if c not in have]
        if missing or extra:
            raise SinkError(
                f"{where} has columns {have}; the frame has {list(frame.columns)}"
                f" (not in the frame: {missing}; not in the table: {extra})"
            )
        primary = [c.name for c in table.primary_key.columns]
        if sorted(primary) != sorted(key):
            raise SinkError(f"{where} has primary key {primary}, not {key}")
        return table
    columns = [
        sa.Column(column, _sql_type(frame[column], where), primary_key=column in key, nullable=column not in key)
        for column in frame.columns
    ]
    table = sa.Table(name, sa.MetaData(), *columns)
    table.create(conn)
    return table


def _sql_type(series: pd.Series, where: str):
    """The column type for ``series``: from its dtype, or from its values for object columns."""
    import sqlalchemy as sa
    from pandas.api import types

    dtype = series.dtype
    if types.is_bool_dtype(dtype):
        return sa.Boolean()
    if types.is_integer_dtype(dtype):
        return sa.BigInteger()
    if types.is_float_dtype(dtype):
        return sa.Double()
    if isinstance(dtype, pd.DatetimeTZDtype):
        return sa.DateTime(timezone=True)
    if types.is_datetime64_dtype(dtype):
        return sa.DateTime(timezone=False)
    if types.is_object_dtype(dtype) or types.is_string_dtype(dtype):
        inferred = types.infer_dtype(series, skipna=True)
        by_values = {
            "string": sa.Text(),
            "date": sa.Date(),
            "boolean": sa.Boolean(),
            "integer": sa.BigInteger(),
            "floating": sa.Double(),
            "mixed-integer-float": sa.Double(),
        }
        if inferred in by_values:
            return by_values[inferred]
        if inferred == "datetime":
            aware = series.dropna().map(lambda v: v.tzinfo is not None)
            return sa.DateTime(timezone=bool(aware.any()))
        raise SinkError(f"{where}: cannot choose a column type for {series.name!r} (its values are {inferred})")
    raise SinkError(f"{where}: no column type for {series.name!r} of dtype {dtype}")


def _upsert_statement(backend: str, table, key: list[str]):
    """INSERT ... ON CONFLICT (key) DO UPDATE, only where a value differs, RETURNING the
    key: what comes back is exactly the rows written."""
    import sqlalchemy as sa

    if backend == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert

    statement = insert(table)
    values = [c.name for c in table.columns if c.name not in key]
    if values:
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={name: statement.excluded[name] for name in values},
            # An unchanged row is left alone: no new row version, no rewrite on re-runs.
            where=sa.or_(*(table.c[name].is_distinct_from(statement.excluded[name]) for name in values)),
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key)
    return statement.returning(*(table.c[k] for k in key))


def _batches(frame: pd.DataFrame, size: int) -> Iterator[list[dict]]:
    """The frame as lists of row dicts of plain Python values (None for missing)."""
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(frame), size):
        chunk = frame.iloc[start : start + size]
        # astype(object) gives Python ints, floats and bools; NaN / NaT / NA become None.
        # Timestamps stay pandas Timestamps: a datetime subclass both drivers accept.
        yield chunk.astype(object).where(chunk.notna(), None).to_dict("records")


def _reason(exc: Exception, url: str) -> str:
    """The driver's own message (not SQLAlchemy's, which adds the SQL), password removed."""
    from sqlalchemy.engine import make_url

    orig = getattr(exc, "orig", None)
    message = " ".join(str(orig if orig is not None else exc).split())
    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - an unparseable URL was refused earlier
        password = None
    if password:
        for form in {str(password), quote(str(password), safe=""), quote_plus(str(password))}:
            message = message.replace(form, "***")
    return f"{type(orig or exc).__name__}: {message[:500]}"
