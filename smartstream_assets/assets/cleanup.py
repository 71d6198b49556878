"""``<domain>_cleanup``: remove what costs money, dry run by default (the SageMaker
pipeline's cleanup step): model versions other than the champion / challenger beyond
the newest ``keep_newest`` (their MLflow runs' artifacts and logged models too), and
prediction, drift and monitor partitions older than ``retention_days``. One plan
(``ml.cleanup.plan_cleanup``) drives both the dry run and the real one, so the dry run
lists exactly what the real run deletes; the champion is never touched.

    dagster job execute -m smartstream_assets.definitions -j co2_cleanup                       # dry run
    dagster job execute -m smartstream_assets.definitions -j co2_cleanup -c delete.yaml        # dry_run: false
"""

from datetime import datetime, timezone

import dagster as dg
from pydantic import Field

from ..domains import Domain
from ..resources import LakeResource, MlflowResource


class CleanupConfig(dg.Config):
    dry_run: bool = Field(default=True, description="true: list what would be deleted; false: delete it")
    keep_newest: int = Field(default=3, description="versions kept besides champion and challenger (the newest)")
    retention_days: float = Field(default=30.0, description="prediction / report partitions older than this go")


def cleanup_job_name(domain: Domain) -> str:
    return f"{domain.name}_cleanup"


def cleanup_prefixes(domain: Domain) -> list[str]:
    """Where a domain's partitioned outputs live in the lake (``run_date=`` folders)."""
    return [f"predictions/{domain.name}/", f"reports/{domain.name}/drift/", f"reports/{domain.name}/monitors/"]


def build_cleanup_job(domain: Domain) -> dg.JobDefinition:
    @dg.op(
        name=f"{domain.name}__cleanup",
        description=(
            f"Plan, then (dry_run: false) delete: {domain.registered_model} versions beyond the newest keep_newest "
            f"(never champion / challenger) and lake partitions under {', '.join(cleanup_prefixes(domain))} older "
            "than retention_days."
        ),
    )
    def cleanup(context: dg.OpExecutionContext, config: CleanupConfig, lake: LakeResource, mlflow: MlflowResource) -> dict:
        from ..ml.cleanup import execute_cleanup, plan_cleanup

        store, registry = lake.get(), mlflow.registry()
        try:
            plan = plan_cleanup(
                registry, domain.registered_model, keep_newest=config.keep_newest, lake=store,
                prefixes=cleanup_prefixes(domain), retention_days=config.retention_days, now=datetime.now(timezone.utc),
            )  # fmt: skip
        except ValueError as exc:
            raise dg.Failure(f"{cleanup_job_name(domain)} config: {exc}") from None
        lines = plan.lines()
        for line in lines:
            context.log.info(("would delete: " if config.dry_run else "") + line)
        metadata = {
            "dry_run": config.dry_run,
            "versions": dg.MetadataValue.json([v.version for v in plan.versions]),
            "objects": len(plan.objects),
            "bytes": plan.bytes,
            "kept_versions": dg.MetadataValue.json([list(k) for k in plan.kept_versions]),
            "plan": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or "nothing to delete"),
        }
        if config.dry_run:
            context.add_output_metadata(metadata)
            return plan.to_json()
        result = execute_cleanup(plan, registry, store)
        for error in result.errors:
            context.log.warning(f"not deleted: {error}")
        context.add_output_metadata(
            {**metadata, "deleted_versions": dg.MetadataValue.json(list(result.deleted_versions)),
             "deleted_objects": len(result.deleted_objects), "errors": dg.MetadataValue.json(list(result.errors))}  # fmt: skip
        )
        return result.to_json()

    @dg.job(name=cleanup_job_name(domain), description=f"Clean up {domain.name}: dry run unless dry_run is false.")
    def cleanup_job():
        cleanup()

    return cleanup_job
