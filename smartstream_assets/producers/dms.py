"""Files as AWS DMS writes them to an S3 target (CSV, headerless by default).

Used by the simulated producers; the readers in ``cdc/formats.py`` are the other
side of this contract and are tested against it.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence
from datetime import datetime, timezone

import pandas as pd

from ..tables import TableSpec


def cdc_file_name(when: datetime) -> str:
    """DMS names CDC files by their write time: ``YYYYMMDD-HHMMSSffff.csv``."""
    when = when.astimezone(timezone.utc)
    return f"{when:%Y%m%d-%H%M%S}{when.microsecond // 100:04d}.csv"


def full_load_file_name(number: int = 1) -> str:
    return f"LOAD{number:08d}.csv"


def dated_folder(when: datetime) -> str:
    """DMS's ``DatePartitionEnabled`` folders: ``YYYY/MM/DD/``."""
    return f"{when.astimezone(timezone.utc):%Y/%m/%d}/"


def format_timestamp(when: datetime) -> str:
    """DMS writes commit timestamps in UTC without a zone, to the microsecond."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def dms_csv(
    spec: TableSpec,
    frame: pd.DataFrame,
    *,
    ops: Sequence[str] | None = None,
    commit_ts: Sequence[datetime] | None = None,
    extra_lines: Sequence[tuple[int, str]] = (),
    compress: bool = False,
) -> bytes:
    """CSV bytes of ``frame``'s rows in the table's declared column order.

    ``ops`` (I/U/D per row) is None for a full-load file, which then carries no Op
    column unless the table sets ``include_op_for_full_load``. ``commit_ts`` fills
    the table's DMS timestamp column. ``extra_lines`` are raw lines inserted before
    a row position (how sample data carries a few malformed records).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")  # QUOTE_MINIMAL: RFC 4180, like DMS
    with_op = ops is not None or spec.dms.include_op_for_full_load
    ts_column = spec.dms.timestamp_column
    if spec.dms.add_column_name:
        writer.writerow((["Op"] if with_op else []) + ([ts_column] if ts_column else []) + list(spec.columns))
    n = len(frame)
    prefix_columns = []
    if with_op:
        prefix_columns.append(list(ops) if ops is not None else ["I"] * n)
    if ts_column:
        if commit_ts is None:
            raise ValueError(f"table {spec.name} has a DMS timestamp column: pass commit_ts")
        prefix_columns.append([format_timestamp(t) for t in commit_ts])
    columns = prefix_columns + [[_field(v) for v in frame[name].tolist()] for name in spec.columns]
    extra = dict(extra_lines)
    for i, fields in enumerate(zip(*columns)):
        if i in extra:
            out.write(extra.pop(i) + "\n")
        writer.writerow(fields)
    for line in extra.values():  # positions past the end
        out.write(line + "\n")
    data = out.getvalue().encode("utf-8")
    # mtime=0: the same rows give the same bytes (deterministic sample data)
    return gzip.compress(data, mtime=0) if compress else data


def _field(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""  # DMS writes NULL as an empty unquoted field
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_timestamp(value)
    return str(value)
