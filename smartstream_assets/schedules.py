"""Schedules: when batch scoring and drift reports run."""

import dagster as dg


def build_monthly_scoring_schedule(domain, job) -> dg.ScheduleDefinition:
    """The 1st of every month, 06:00 UTC; the run's date is the tick's (run_date=YYYY-MM-01)."""
    return dg.ScheduleDefinition(
        name=f"{domain.name}_monthly_scoring",
        cron_schedule="0 6 1 * *",
        execution_timezone="UTC",
        job=job,
        description=f"Monthly batch predictions and drift report for {domain.name}.",
    )
