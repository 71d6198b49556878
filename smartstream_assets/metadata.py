"""Asset metadata helpers: what the Dagster UI shows for a table."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa

from .tables import TableSpec


def column_schema(spec: TableSpec, with_meta: bool = True) -> dg.TableSchema:
    cols = []
    if with_meta:
        cols += [
            dg.TableColumn("_op", "string", description="insert / update / delete"),
            dg.TableColumn("_commit_ts", "timestamp", description="commit time, UTC"),
            dg.TableColumn("_source_key", "string", description="raw object the change came from"),
            dg.TableColumn("_source_line", "int64", description="line (or row) in that object"),
        ]
    cols += [
        dg.TableColumn(
            name,
            type_name,
            constraints=dg.TableColumnConstraints(nullable=name not in spec.primary_key, unique=False),
        )
        for name, type_name in spec.columns.items()
    ]
    return dg.TableSchema(columns=cols)


def preview(table: pa.Table | None, rows: int = 10) -> dg.MetadataValue:
    if table is None or table.num_rows == 0:
        return dg.MetadataValue.md("_no rows_")
    return dg.MetadataValue.md(table.slice(0, rows).to_pandas().to_markdown(index=False))


def counts_table(counts: dict, key: str = "reason", value: str = "rows") -> dg.MetadataValue:
    if not counts:
        return dg.MetadataValue.md("_none_")
    lines = [f"| {key} | {value} |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in sorted(counts.items())]
    return dg.MetadataValue.md("\n".join(lines))
