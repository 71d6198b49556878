import dagster as dg

from .assets.ingestion import current_asset_key, trusted_asset_key
from .partitions import DAILY


def ingest_job_name(table: str) -> str:
    return f"{table}_ingest"


def build_ingest_job(table: str):
    """trusted/<table> for one ingest date, then current/<table>: what the raw sensor runs."""
    return dg.define_asset_job(
        ingest_job_name(table),
        selection=dg.AssetSelection.assets(trusted_asset_key(table), current_asset_key(table)),
        partitions_def=DAILY,
        description=f"Ingest one day of raw {table} objects and update the current state.",
    )
