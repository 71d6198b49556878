import dagster as dg

from .keys import MONITOR_ROLES, asset_keys, table_asset_keys
from .partitions import ingest_date_partitions


def ingest_job_name(table: str) -> str:
    return f"{table}_ingest"


def build_ingest_job(spec):
    """<table>/trusted for one ingest date, then <table>/current: what the raw sensor runs."""
    return dg.define_asset_job(
        ingest_job_name(spec.name),
        selection=dg.AssetSelection.assets(*table_asset_keys(spec.name)),
        partitions_def=ingest_date_partitions(spec.start_date),
        description=f"Ingest one day of raw {spec.name} objects and update the current state.",
    )


def retrain_job_name(domain) -> str:
    return f"{domain.name}_retrain"


def build_retrain_job(domain):
    """(the domain's source →) features → candidate → gate: what the retrain sensor launches."""
    keys = asset_keys(domain)
    source = [dg.AssetKey(domain.source.split("/"))] if domain.source else []
    return dg.define_asset_job(
        retrain_job_name(domain),
        selection=dg.AssetSelection.assets(*source, keys["features"], keys["model"], keys["deployment"]),
        description=f"Retrain {domain.model}: features, a new candidate, the promotion gate.",
    )


def build_scoring_job(domain, extra: list[dg.AssetKey] = ()):
    """features (+ anomalies) → predictions → drift report, and the domain's extras; one
    run per scoring partition (the domain's cadence): the unpartitioned features and extras
    are refreshed in the same run. A domain that scores its own partitioned source
    (``scoring_source``, among the extras) leaves the training features out."""
    keys = asset_keys(domain)
    roles = ("anomaly", "predictions", "drift", *MONITOR_ROLES) if domain.scoring_source else ("features", "anomaly", "predictions", "drift", *MONITOR_ROLES)
    wanted = [keys[k] for k in roles if k in keys] + list(extra)
    return dg.define_asset_job(
        f"{domain.name}_scoring",
        selection=dg.AssetSelection.assets(*wanted),
        partitions_def=domain.scoring_cadence.partitions_def(),
        description=(
            f"Batch-score one {domain.scoring_cadence.every} of {domain.name} with the champion and measure drift "
            "against the reference of the version that scored it."
        ),
    )
