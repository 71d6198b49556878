"""Schedules: when batch scoring and drift reports run, at each domain's own cadence."""

import dagster as dg


def build_scoring_schedule(domain, job):
    """``<domain>_<cadence label>_scoring``, built from the partitioned scoring job: each
    tick scores the partition that has just ended (``build_schedule_from_partitioned_job``),
    at the cadence's offsets (monthly at 06:00: the 1st at 06:00 scores the month before)."""
    cadence = domain.scoring_cadence
    return dg.build_schedule_from_partitioned_job(
        job,
        name=scoring_schedule_name(domain),
        **({"minute_of_hour": cadence.schedule_minute} if cadence.schedule_minute is not None else {}),
        description=f"Batch predictions and drift report for {domain.name}, {cadence.description or cadence.name}.",
    )


def scoring_schedule_name(domain) -> str:
    return f"{domain.name}_{domain.scoring_cadence.name}_scoring"
