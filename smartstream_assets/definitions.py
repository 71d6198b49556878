"""The smartstream code location: one Definitions object."""

import warnings

import dagster as dg

from .assets.cleanup import build_cleanup_job
from .assets.ingestion import build_ingestion_assets
from .assets.maintenance import build_maintenance_job, build_maintenance_schedule
from .assets.ml import build_ml_assets
from .executor import executor_from_env
from .domains import DomainPlugin, all_plugins
from .jobs import build_ingest_job, build_retrain_job, build_scoring_job
from .keys import table_group
from .io import IO_MANAGER_KEY, LakeParquetIOManager
from .resources import AlertResource, LakeResource, MlflowResource, PredictionsDbResource, SourceDbResource
from .schedules import build_scoring_schedule
from .sensors import build_raw_sensor, build_retrain_sensor, build_scoring_sensor, daily_raw_sensor_name, raw_sensor_name
from .tables import load_tables

# BackfillPolicy.single_run() is what makes `--partition-range` work from the CLI;
# its beta warning would print on every load of the code location.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


def build_table_pieces(tables, plugins: list[DomainPlugin] = ()) -> tuple[list, list, list, list]:
    """Each table's ingestion assets, ingest and maintenance jobs, raw sensor and weekly
    maintenance schedule: (assets, jobs, sensors, schedules).
    A table's assets join the group of the domain built on it (``plugins``), else a group
    of the table's own name. A domain sensor that claims a table's raw sensor name (vitals
    scores each micro-batch) leaves the table's per-date sensor ``<table>_daily_raw_sensor``."""
    domains = [plugin.domain for plugin in plugins]
    claimed = {sensor.name for plugin in plugins for sensor in plugin.load_extras().sensors}
    assets, jobs, sensors, schedules = [], [], [], []
    for spec in tables:
        assets += build_ingestion_assets(spec, group=table_group(spec.name, domains))
        job, maintenance = build_ingest_job(spec), build_maintenance_job(spec)
        jobs += [job, maintenance]
        schedules.append(build_maintenance_schedule(spec, maintenance))
        name = raw_sensor_name(spec.name)
        sensors.append(build_raw_sensor(spec, job, name=daily_raw_sensor_name(spec.name) if name in claimed else name))
    return assets, jobs, sensors, schedules


def build_domain_pieces(plugins: list[DomainPlugin]) -> tuple[list, list, list, list]:
    """Each domain's shared ML assets plus the extras it declares, its retrain, scoring and
    cleanup jobs (the declared extras join scoring), retrain and scoring sensors and scoring schedule:
    (assets, jobs, sensors, schedules)."""
    assets, jobs, sensors, schedules = [], [], [], []
    for plugin in plugins:
        domain, extras = plugin.domain, plugin.load_extras()
        assets += build_ml_assets(domain) + list(extras.assets)
        retrain, scoring = build_retrain_job(domain), build_scoring_job(domain, list(extras.scoring_keys))
        jobs += [retrain, scoring, build_cleanup_job(domain), *extras.jobs]
        sensors += [build_retrain_sensor(domain, retrain), build_scoring_sensor(domain, scoring), *extras.sensors]
        schedules.append(build_scoring_schedule(domain, scoring))
    return assets, jobs, sensors, schedules


def build_definitions(plugins: list[DomainPlugin] | None = None, tables=None) -> dg.Definitions:
    """The code location: every table of the registry (``tables.yaml``) and every domain
    of the domain registry, unless given."""
    table_specs = load_tables().values() if tables is None else tables
    plugins = all_plugins() if plugins is None else plugins
    assets, jobs, sensors, table_schedules = build_table_pieces(table_specs, plugins)
    domain_assets, domain_jobs, domain_sensors, schedules = build_domain_pieces(plugins)
    assets, jobs, sensors = assets + domain_assets, jobs + domain_jobs, sensors + domain_sensors
    schedules = table_schedules + schedules
    lake = LakeResource()
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources={
            "lake": lake,
            # features, anomaly flags and predictions flow through the lake as Parquet
            IO_MANAGER_KEY: LakeParquetIOManager(lake=lake),
            "mlflow": MlflowResource(),
            "alerts": AlertResource(),
            "predictions_db": PredictionsDbResource(),
            "reviews_db": SourceDbResource(env="SMARTSTREAM_REVIEWS_DB"),
        },
        executor=executor_from_env(),  # $SMARTSTREAM_EXECUTOR=celery: steps on Celery workers
    )


defs = build_definitions()
