"""Schedules: when batch scoring and drift reports run, at each domain's own cadence."""

import dagster as dg


def build_scoring_schedule(domain, job) -> dg.ScheduleDefinition:
    """``<domain>_<cadence label>_scoring`` at the domain's ``scoring_cadence``; the run's
    date is the tick's (e.g. run_date=YYYY-MM-01 for a monthly cadence)."""
    cadence = domain.scoring_cadence
    return dg.ScheduleDefinition(
        name=scoring_schedule_name(domain),
        cron_schedule=cadence.cron,
        execution_timezone=cadence.timezone,
        job=job,
        description=f"Batch predictions and drift report for {domain.name}, {cadence.description or cadence.cron}.",
    )


def scoring_schedule_name(domain) -> str:
    return f"{domain.name}_{domain.scoring_cadence.label}_scoring"
