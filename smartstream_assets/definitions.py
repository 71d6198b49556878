"""The smartstream code location: one Definitions object."""

import warnings

import dagster as dg

from .assets.employees import EMPLOYEES_ASSETS, HEADCOUNT_KEY, DASHBOARD_KEY
from .assets.ingestion import build_ingestion_assets
from .assets.ml import build_ml_assets
from .domains import all_domains
from .jobs import build_ingest_job, build_retrain_job, build_scoring_job
from .resources import AlertResource, LakeResource, MlflowResource, PredictionsDbResource
from .schedules import build_monthly_scoring_schedule
from .sensors import build_raw_sensor, build_retrain_sensor
from .tables import load_tables

# BackfillPolicy.single_run() is what makes `--partition-range` work from the CLI;
# its beta warning would print on every load of the code location.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

# What each domain adds to its monthly scoring run beyond the shared assets.
DOMAIN_EXTRAS = {"employees": (EMPLOYEES_ASSETS, [HEADCOUNT_KEY, DASHBOARD_KEY])}


def build_definitions() -> dg.Definitions:
    assets, jobs, sensors, schedules = [], [], [], []
    for spec in load_tables().values():
        assets += build_ingestion_assets(spec)
        job = build_ingest_job(spec)
        jobs.append(job)
        sensors.append(build_raw_sensor(spec, job))
    for domain in all_domains():
        extra_assets, extra_keys = DOMAIN_EXTRAS.get(domain.name, ([], []))
        assets += build_ml_assets(domain) + list(extra_assets)
        retrain, scoring = build_retrain_job(domain), build_scoring_job(domain, extra_keys)
        jobs += [retrain, scoring]
        sensors.append(build_retrain_sensor(domain, retrain))
        schedules.append(build_monthly_scoring_schedule(domain, scoring))
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources={
            "lake": LakeResource(),
            "mlflow": MlflowResource(),
            "alerts": AlertResource(),
            "predictions_db": PredictionsDbResource(),
        },
    )


defs = build_definitions()
