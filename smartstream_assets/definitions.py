"""The smartstream code location: one Definitions object."""

import warnings

import dagster as dg

from .assets.ingestion import build_ingestion_assets
from .jobs import build_ingest_job
from .resources import LakeResource
from .sensors import build_raw_sensor
from .tables import load_tables

# BackfillPolicy.single_run() is what makes `--partition-range` work from the CLI;
# its beta warning would print on every load of the code location.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


def build_definitions() -> dg.Definitions:
    assets, jobs, sensors = [], [], []
    for spec in load_tables().values():
        assets += build_ingestion_assets(spec)
        job = build_ingest_job(spec.name)
        jobs.append(job)
        sensors.append(build_raw_sensor(spec, job))
    return dg.Definitions(assets=assets, jobs=jobs, sensors=sensors, resources={"lake": LakeResource()})


defs = build_definitions()
