from datetime import date

import dagster as dg


def ingest_date_partitions(start: date) -> dg.DailyPartitionsDefinition:
    """Ingest dates from the table's declared start; end_offset=1 so today's partition
    exists: raw objects land all day."""
    return dg.DailyPartitionsDefinition(start_date=start.isoformat(), end_offset=1)


# Ingest dates of a table that declares no start_date (the registry's default).
DAILY = ingest_date_partitions(date(2020, 1, 1))
