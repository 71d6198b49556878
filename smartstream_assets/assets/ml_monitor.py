"""Model Monitor's hourly checks of a domain's scoring partitions, one asset each, for a
domain that declares ``Domain.monitoring`` (a regression):

    <name>/predictions → <name>/data_quality_monitor   the scored rows vs constraints.json
                       → <name>/model_quality_monitor  rows whose label arrived: error vs evaluation.json
                       → <name>/bias_drift_monitor     per-facet error ratio vs bias.json

(the fourth, data drift, is ``<name>/drift_report``.) Each compares the partition with
the baselines stored with the version that scored it at promotion (``deployment.
store_baselines``), writes JSON + HTML under ``reports/<name>/monitors/<kind>/``, alerts
on a violation, and says in its metadata whether it requests retraining
(``retrain_requested``, read by the retrain sensor). The logic is ``ml.monitoring``.
"""


import json

import dagster as dg
import pandas as pd

from ..domains import Domain
from ..keys import monitor_report_key, spelled
from ..resources import AlertResource, LakeResource, MlflowResource

def monitor_assets(domain: Domain, keys: dict) -> list[dg.AssetsDefinition]:
    if domain.monitoring is None:
        return []
    return [data_quality_asset(domain, keys), model_quality_asset(domain, keys), bias_drift_asset(domain, keys)]


def _scoring_version(domain: Domain, keys: dict, scored: pd.DataFrame, partition: str) -> str:
    versions = sorted(scored["model_version"].astype(str).unique())
    if len(versions) != 1:
        raise dg.Failure(
            f"{spelled(keys['predictions'])} partition {partition} holds rows of versions {', '.join(versions) or 'none'}; "
            "re-materialise the partition so one version scores it"
        )
    return versions[0]


def _baseline(registry, domain: Domain, version: str, artifact: str) -> dict:
    """A document stored with ``version`` at promotion; a clear failure when it is not there."""
    from mlflow.exceptions import MlflowException

    info = registry.get_version(domain.registered_model, version)
    try:
        return registry.load_dict(info.run_id, artifact)
    except (MlflowException, OSError, ValueError):
        raise dg.Failure(
            f"{domain.registered_model} v{version} has no {artifact} (promoted before monitors stored baselines, "
            "or its artifacts were removed): retrain and promote a version, then monitor again"
        ) from None


def _write(store, domain: Domain, kind: str, partition: str, document: dict, html: str) -> dict:
    json_key, html_key = monitor_report_key(domain, kind, partition, "json"), monitor_report_key(domain, kind, partition, "html")
    store.write_bytes(json_key, json.dumps(document, indent=2, default=str).encode())
    store.write_bytes(html_key, html.encode("utf-8"))
    return {
        "report_html": dg.MetadataValue.url(store.browser_url(html_key)),
        "report_json": dg.MetadataValue.path(store.describe(json_key)),
    }


def _monitor(domain: Domain, keys: dict, role: str, description: str, extra_ins: dict | None = None):
    """The shared shape: hourly (the scoring cadence) partitions over the predictions."""
    return dg.asset(
        key=keys[role],
        ins={"predictions": dg.AssetIn(keys["predictions"]), **(extra_ins or {})},
        group_name=domain.name,
        kinds={"python"},
        partitions_def=domain.scoring_cadence.partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=description,
    )


def data_quality_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    @_monitor(
        domain, keys, "data_quality_monitor",
        "Model Monitor's data-quality check: the partition's scored feature rows against constraints.json of the "
        "version that scored them (type, completeness, range, known categories). Violations alert; JSON + HTML in "
        f"reports/{domain.name}/monitors/data_quality/.",
    )  # fmt: skip
    def data_quality(context: dg.AssetExecutionContext, predictions: dict, lake: LakeResource, mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:
        from ..ml.alerts import Alert
        from ..ml.deployment import BASELINE_ARTIFACTS
        from ..ml.monitoring import check_data_quality, monitor_html, violations_report

        store, registry = lake.get(), mlflow.registry()
        for partition in context.partition_keys:
            scored = predictions[partition]
            version = _scoring_version(domain, keys, scored, partition)
            constraints = _baseline(registry, domain, version, BASELINE_ARTIFACTS["constraints"])
            violations = check_data_quality(scored[domain.features], constraints, check_extra_columns=False)
            report = {**violations_report(violations, rows=len(scored)), "run_date": partition, "model_version": version}
            html = monitor_html(
                f"{domain.name}: data quality, {partition}",
                {"rows checked": len(scored), "violations": len(violations), "model version": version},
                {"violations": [v.to_json() for v in violations]},
            )
            links = _write(store, domain, "data_quality", partition, report, html)
            if violations:
                alerts.alerter(context.log).send(
                    Alert(
                        kind="data_quality",
                        title=f"{domain.name}: {len(violations)} data-quality violations in {partition}",
                        text="\n".join(v.description for v in violations[:10]),
                        fields={"domain": domain.name, "partition": partition, "model_version": version},
                        url=store.browser_url(monitor_report_key(domain, "data_quality", partition, "html")),
                    )
                )
            context.add_asset_metadata(
                {
                    "violations": len(violations),
                    "rows_checked": len(scored),
                    "violated_checks": dg.MetadataValue.json(sorted({v.constraint_check_type for v in violations})),
                    "violation_details": dg.MetadataValue.md(
                        "\n".join(f"- `{v.feature_name}` {v.constraint_check_type}: {v.description}" for v in violations) or "none"
                    ),
                    "model_version": version,
                    "run_date": partition,
                    # bad input alerts; retraining on it would learn the bad input
                    "retrain_requested": False,
                    **links,
                },
                partition_key=partition,
            )
        return dg.MaterializeResult()

    return data_quality


def _labelled(domain: Domain, scored: pd.DataFrame, features: pd.DataFrame):
    """The partition's predictions joined with the labels that have arrived since."""
    from ..ml.monitoring import join_actuals

    predicted = domain.task.prediction_columns[0]
    columns = [domain.id_column, predicted, *dict.fromkeys(domain.facets)]
    return join_actuals(scored[columns], features[[domain.id_column, domain.target]], keys=[domain.id_column], prediction=predicted, actual=domain.target)


def model_quality_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    monitoring = domain.monitoring

    @_monitor(
        domain, keys, "model_quality_monitor",
        "Model Monitor's model-quality check: the partition's predictions joined with the labels that have "
        f"arrived since ({domain.target} from {spelled(keys['features'])}); R², MSE, RMSE, MAE of that window and "
        f"its {domain.task.objective} against the scoring version's evaluation.json. Degraded above "
        f"{monitoring.max_error_ratio:g}x (with at least {monitoring.min_rows} labelled rows): alerts and requests retraining.",
        extra_ins={"features": dg.AssetIn(keys["features"])},
    )  # fmt: skip
    def model_quality(context: dg.AssetExecutionContext, predictions: dict, features: pd.DataFrame, lake: LakeResource,
                      mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:  # fmt: skip
        from ..ml.alerts import Alert
        from ..ml.monitoring import model_quality as measure
        from ..ml.monitoring import monitor_html

        store, registry = lake.get(), mlflow.registry()
        metric = domain.task.objective
        for partition in context.partition_keys:
            scored = predictions[partition]
            version = _scoring_version(domain, keys, scored, partition)
            evaluation = registry.evaluation(registry.get_version(domain.registered_model, version).run_id)
            joined = _labelled(domain, scored, features)
            predicted = domain.task.prediction_columns[0]
            quality = measure(
                joined.frame[domain.target], joined.frame[predicted], baseline=evaluation["metrics"], metric=metric,
                max_ratio=monitoring.max_error_ratio, min_rows=monitoring.min_rows,
            )  # fmt: skip
            report = {**quality.to_json(), "join": joined.to_json(), "run_date": partition, "model_version": version,
                      "evaluation_window": evaluation.get("holdout", {}).get("window")}  # fmt: skip
            html = monitor_html(
                f"{domain.name}: model quality, {partition}",
                {"verdict": quality.reason, "labelled rows": quality.rows, "pending": joined.pending, "model version": version},
                {"metrics (window vs evaluation)": [
                    {"metric": m, "window": quality.metrics.get(m), "evaluation": evaluation["metrics"].get(m)} for m in quality.metrics
                ], "rows": joined.frame},
            )  # fmt: skip
            links = _write(store, domain, "model_quality", partition, report, html)
            if quality.degraded:
                alerts.alerter(context.log).send(
                    Alert(
                        kind="model_degraded",
                        title=f"{domain.name}: model quality degraded in {partition} ({metric} {quality.ratio:.2f}x the evaluation)",
                        text=quality.reason,
                        fields={"domain": domain.name, "partition": partition, "model_version": version},
                        url=store.browser_url(monitor_report_key(domain, "model_quality", partition, "html")),
                    )
                )
            context.add_asset_metadata(
                {
                    **{f"window_{m}": dg.MetadataValue.float(v) for m, v in quality.metrics.items() if v is not None},
                    f"evaluation_{metric}": dg.MetadataValue.float(float(evaluation["metrics"][metric])),
                    "ratio": dg.MetadataValue.float(quality.ratio) if quality.ratio is not None else "n/a",
                    "degraded": bool(quality.degraded),
                    "labelled_rows": quality.rows,
                    "pending_rows": joined.pending,
                    "verdict": quality.reason,
                    "model_version": version,
                    "run_date": partition,
                    "retrain_requested": bool(quality.degraded),
                    "retrain_reason": quality.reason if quality.degraded else "",
                    **links,
                },
                partition_key=partition,
            )
        return dg.MaterializeResult()

    return model_quality


def bias_drift_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    monitoring = domain.monitoring

    @_monitor(
        domain, keys, "bias_drift_monitor",
        f"Clarify's bias drift: per group of {', '.join(domain.facets) or 'no facet'}, the MAE ratio of the partition's "
        "predictions whose label arrived, against bias.json stored with the scoring version (its holdout's). A "
        f"group whose ratio moved by more than {monitoring.max_bias_change:g} (with at least {monitoring.min_rows} "
        "rows) drifted: alerts and requests retraining.",
        extra_ins={"features": dg.AssetIn(keys["features"])},
    )  # fmt: skip
    def bias(context: dg.AssetExecutionContext, predictions: dict, features: pd.DataFrame, lake: LakeResource,
             mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:  # fmt: skip
        from ..ml.alerts import Alert
        from ..ml.deployment import BASELINE_ARTIFACTS
        from ..ml.monitoring import bias_drift, facet_errors, monitor_html

        store, registry = lake.get(), mlflow.registry()
        predicted = domain.task.prediction_columns[0]
        for partition in context.partition_keys:
            scored = predictions[partition]
            version = _scoring_version(domain, keys, scored, partition)
            baseline_doc = _baseline(registry, domain, version, BASELINE_ARTIFACTS["bias"])
            if "missing" in baseline_doc:  # promoted without a fairness report: nothing to compare with
                raise dg.Failure(
                    f"{domain.registered_model} v{version} has no bias baseline ({baseline_doc['missing']}): "
                    "retrain and promote a version, then monitor again"
                )
            baseline = {facet: doc.get("by_group", {}) for facet, doc in baseline_doc.items() if isinstance(doc, dict)}
            joined = _labelled(domain, scored, features).frame
            recent = {facet: facet_errors(joined[domain.target], joined[predicted], joined[facet]) for facet in domain.facets}
            drift = bias_drift(recent, baseline, max_ratio_change=monitoring.max_bias_change, min_rows=monitoring.min_rows)
            report = {**drift.to_json(), "run_date": partition, "model_version": version, "labelled_rows": len(joined)}
            html = monitor_html(
                f"{domain.name}: bias drift, {partition}",
                {"verdict": drift.summary(), "labelled rows": len(joined), "model version": version},
                {"groups": drift.rows},
            )
            links = _write(store, domain, "bias_drift", partition, report, html)
            if drift.drifted:
                alerts.alerter(context.log).send(
                    Alert(
                        kind="bias_drift",
                        title=f"{domain.name}: bias drift in {partition}",
                        text=drift.summary(),
                        fields={"domain": domain.name, "partition": partition, "model_version": version},
                        url=store.browser_url(monitor_report_key(domain, "bias_drift", partition, "html")),
                    )
                )
            context.add_asset_metadata(
                {
                    "drifted": bool(drift.drifted),
                    "max_ratio_change": dg.MetadataValue.float(drift.max_abs_change) if drift.max_abs_change is not None else "n/a",
                    "groups": dg.MetadataValue.md(_groups_markdown(drift.rows)),
                    "labelled_rows": len(joined),
                    "verdict": drift.summary(),
                    "model_version": version,
                    "run_date": partition,
                    "retrain_requested": bool(drift.drifted),
                    "retrain_reason": drift.summary() if drift.drifted else "",
                    **links,
                },
                partition_key=partition,
            )
        return dg.MaterializeResult()

    return bias


def _groups_markdown(rows: list[dict]) -> str:
    lines = ["| facet | group | status | rows | MAE ratio | at baseline | change |", "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        cells = [r.get("mae_ratio"), r.get("baseline_mae_ratio"), r.get("change")]
        shown = " | ".join("" if v is None else f"{v:.3f}" for v in cells)
        lines.append(f"| {r['facet']} | {r['group']} | {r['status']} | {r.get('rows') or 0} | {shown} |")
    return "\n".join(lines)
