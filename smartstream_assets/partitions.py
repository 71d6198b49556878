import dagster as dg

# Ingest dates. end_offset=1 so today's partition exists: raw objects land all day.
DAILY = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_offset=1)
