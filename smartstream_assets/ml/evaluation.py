"""``evaluation.json``: the document the gate decides on, as SageMaker's evaluation step
writes it. One per candidate, logged to its MLflow run and written to the lake
(``reports/<domain>/evaluation/version=<v>/evaluation.json``). Pure.
"""

from __future__ import annotations

from datetime import datetime, timezone

from .drift import json_safe

EVALUATION_ARTIFACT = "evaluation.json"
SCHEMA = "smartstream.evaluation/1"


def evaluation_document(domain, candidate, fairness: dict, *, version: str, run_id: str, model_uri: str) -> dict:
    """Metrics and baseline metrics on the holdout, where the holdout sits, fairness by
    facet, the task and the version: everything the gate reads."""
    task = candidate.task
    return json_safe(
        {
            "schema": SCHEMA,
            "domain": domain.name,
            "registered_model": domain.registered_model,
            "model_version": str(version),
            "model_uri": model_uri,
            "run_id": run_id,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "task": task.describe(),
            "primary_metric": {"name": task.primary_metric, "direction": task.direction(task.primary_metric)},
            "estimator": candidate.estimator,
            "params": candidate.params,
            "cv": {"metric": task.objective, "value": candidate.cv_score, "trials": len(candidate.trials)},
            "metrics": candidate.metrics,
            "baselines": candidate.baselines,
            "holdout": {
                "rows": len(candidate.holdout),
                "duplicates_dropped": candidate.holdout_duplicates_dropped,
                "window": candidate.window,
            },
            "train_rows": len(candidate.train),
            "fairness": {
                facet: {"gated": result.gated, "gated_name": result.gated_name, **result.measures}
                for facet, result in fairness.items()
            },
            "quality_bar": domain.quality_bar.to_json(),
        }
    )
