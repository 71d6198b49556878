"""Small builders shared by the tests."""

from datetime import datetime, timezone

from smartstream_assets.tables import DmsSettings, TableSpec

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def people_spec(fmt="dms_csv", **dms) -> TableSpec:
    """A small table with one column of every type."""
    return TableSpec(
        name="people",
        raw_prefix="raw/src/people/",
        format=fmt,
        primary_key=("id",),
        columns={
            "id": "int64",
            "name": "string",
            "score": "float64",
            "active": "bool",
            "born": "date",
            "seen": "timestamp",
        },
        dms=DmsSettings(**dms) if fmt.startswith("dms") else DmsSettings(),
    )


def rows(table, *columns):
    """The table as a list of tuples of the given columns, in order."""
    cols = [table.column(c).to_pylist() for c in columns]
    return list(zip(*cols))
