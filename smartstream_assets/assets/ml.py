"""The ML lineage of a domain, built from its ``ClassifierDomain`` by shared code:

    current/<table> → features/<name> → models/<model> → deployments/<model> (→ approvals/<model>)
                                      → models/<anomaly_model>
    features/<name> + champion (+ anomalies) → predictions/<name> → reports/<name>_drift

Thin wrappers: the logic lives in ``smartstream_assets.ml`` (training, fairness,
promotion, registry, scoring, drift, alerts); these functions read and write the
lake and MLflow and turn results into metadata, checks and alerts.
"""


import json
from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from .. import ingestion
from ..domains import ClassifierDomain
from ..lake import Lake
from ..metadata import preview
from ..resources import AlertResource, LakeResource, MlflowResource, PredictionsDbResource


# ------------------------------------------------------------------------ keys


def features_key(domain: ClassifierDomain) -> str:
    return f"features/{domain.name}/data.parquet"


def anomalies_key(model: str) -> str:
    return f"predictions/{model}/data.parquet"


def predictions_key(domain: ClassifierDomain, run_date: str) -> str:
    return f"predictions/{domain.name}/run_date={run_date}/data.parquet"


def drift_report_key(domain: ClassifierDomain, run_date: str, ext: str) -> str:
    return f"reports/{domain.name}/drift/run_date={run_date}/report.{ext}"


def asset_keys(domain: ClassifierDomain) -> dict[str, dg.AssetKey]:
    keys = {
        "features": dg.AssetKey(["features", domain.name]),
        "model": dg.AssetKey(["models", domain.model]),
        "deployment": dg.AssetKey(["deployments", domain.model]),
        "approval": dg.AssetKey(["approvals", domain.model]),
        "predictions": dg.AssetKey(["predictions", domain.name]),
        "drift": dg.AssetKey(["reports", f"{domain.name}_drift"]),
    }
    if domain.anomaly_model:
        keys["anomaly"] = dg.AssetKey(["models", domain.anomaly_model])
    return keys


# ---------------------------------------------------------------------- config


class CandidateConfig(dg.Config):
    """The hyperparameter search; the default budget keeps `make demo` quick."""

    trials: int = Field(default=10, description="Optuna trials")
    estimators: list[str] = Field(default=["random_forest", "xgboost"], description="random_forest, xgboost")
    sampler: str = Field(default="tpe", description="tpe or random")
    pruner: str = Field(default="none", description="none or hyperband (prunes on cross-validation folds)")
    folds: int = Field(default=3, description="stratified folds of the training split")
    test_size: float = Field(default=0.2, description="holdout share (stratified)")
    seed: int = Field(default=42, description="split, folds, sampler and models")


class GateConfig(dg.Config):
    """Overrides of the domain's quality bar; unset fields keep the domain's."""

    min_roc_auc: float | None = None
    min_f1: float | None = None
    max_demographic_parity_difference: float | None = None
    requires_approval: bool | None = None


class ApprovalConfig(dg.Config):
    # no default: a plain "Materialize" in the UI opens the config form to say who approves
    approved_by: str = Field(description="who approves (required): recorded on the model version")
    version: str = Field(default="", description="the version to approve; empty: the challenger")
    note: str = Field(default="", description="why, for the record")


class ScoringConfig(dg.Config):
    run_date: str = Field(default="", description="YYYY-MM-DD; empty: the schedule's date, else today (UTC)")


# ---------------------------------------------------------------------- assets


def build_ml_assets(domain: ClassifierDomain) -> list:
    from ..ml.fairness import FairnessDefinitionError, validate_protected_facets

    try:
        validate_protected_facets(domain.name, domain.facets, domain.protected_facets)
    except FairnessDefinitionError as exc:
        raise dg.DagsterInvalidDefinitionError(str(exc)) from None
    keys = asset_keys(domain)
    table_key = dg.AssetKey(["current", domain.table])
    group = domain.name

    @dg.asset(
        key=keys["features"],
        deps=[table_key],
        group_name=group,
        kinds={"parquet"},
        description=f"The model's input frame from current/{domain.table}: {domain.id_column}, features, {domain.target}.",
    )
    def features(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        store = lake.get()
        current = store.read_parquet(ingestion.current_key(domain.table)).to_pandas()
        try:
            frame = domain.feature_frame(current)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        write_frame(store, features_key(domain), frame)
        labelled = frame[domain.target].notna()
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(frame),
                "labelled_rows": int(labelled.sum()),
                "positive_rate": float(frame.loc[labelled, domain.target].mean()) if labelled.any() else 0.0,
                "features": dg.MetadataValue.json(domain.features),
                "path": dg.MetadataValue.path(store.describe(features_key(domain))),
                "preview": preview(pa.Table.from_pandas(frame.head(10), preserve_index=False)),
            }
        )

    @dg.asset(
        key=keys["model"],
        deps=[keys["features"]],
        group_name=group,
        kinds={"mlflow", "sklearn"},
        description=(
            f"A candidate for {domain.registered_model}: Optuna search over RandomForest and XGBoost, "
            "logged to MLflow and registered with alias challenger."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "fairness",
                asset=keys["model"],
                description=(
                    f"demographic-parity and equalized-odds differences by {', '.join(domain.facets)}: "
                    f"WARN above {domain.fairness.warn}, ERROR above {domain.fairness.error} "
                    f"for {', '.join(domain.gated_facets)} (blocking: the gate does not run), "
                    "and ERROR when a protected facet was not measured"
                ),
                # a protected facet above the bar (or unmeasured) stops the run before the gate
                blocking=bool(domain.gated_facets),
            )
        ],
    )
    def candidate(context: dg.AssetExecutionContext, config: CandidateConfig, lake: LakeResource, mlflow: MlflowResource):
        from ..ml import plots
        from ..ml.fairness import fairness_report
        from ..ml.training import SearchSettings, train_classifier

        settings = SearchSettings(
            trials=config.trials,
            estimators=tuple(config.estimators),
            sampler=config.sampler,
            pruner=config.pruner,
            folds=config.folds,
            test_size=config.test_size,
            seed=config.seed,
        )
        frame = lake.get().read_parquet(features_key(domain)).to_pandas()
        result = train_classifier(
            frame, id_column=domain.id_column, target=domain.target,
            numeric=list(domain.numeric), categorical=list(domain.categorical), settings=settings,
        )  # fmt: skip
        fairness = fairness_report(result, list(domain.facets))
        fig, ax = plots.new_figure()
        plots.feature_importance(ax, result.feature_importance)
        importance_png = plots.png_bytes(fig)
        registry = mlflow.registry()
        logged = registry.log_candidate(
            domain, result, fairness, settings, plots={"feature_importance": importance_png},
            tags={"dagster.run_id": context.run_id},
        )  # fmt: skip
        context.log.info(f"registered {domain.registered_model} v{logged.version} as challenger: {logged.run_url}")
        pruned = sum(t.state == "PRUNED" for t in result.trials)
        yield dg.MaterializeResult(
            metadata={
                "mlflow_run": dg.MetadataValue.url(logged.run_url),
                "model_version": logged.version,
                "model_uri": logged.model_uri,
                "estimator": result.estimator,
                "params": dg.MetadataValue.json(result.params),
                **{name: dg.MetadataValue.float(value) for name, value in result.metrics.items()},
                "cv_roc_auc": dg.MetadataValue.float(result.cv_roc_auc),
                "trials": len(result.trials),
                "trials_pruned": pruned,
                "rows_train": len(result.train),
                "rows_holdout": len(result.holdout),
                "fairness": dg.MetadataValue.md(fairness_markdown(fairness)),
                "feature_importance": dg.MetadataValue.md(plots.markdown_image(importance_png, "feature importance")),
            }
        )
        yield fairness_check(keys["model"], domain, fairness)

    @dg.asset(
        key=keys["deployment"],
        deps=[keys["model"]],
        group_name=group,
        kinds={"mlflow"},
        description=(
            f"The promotion gate: the challenger becomes champion if it meets the quality bar AND is not "
            f"worse than the champion on its holdout; replacing a champion waits for approvals/{domain.model}."
        ),
    )
    def deployment(context: dg.AssetExecutionContext, config: GateConfig, mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:
        from dataclasses import replace

        from ..ml.alerts import Alert
        from ..ml.deployment import DeploymentError, run_gate

        bar = replace(
            domain.quality_bar,
            **{k: v for k, v in config.model_dump().items() if k != "requires_approval" and v is not None},
        )
        requires_approval = domain.requires_approval if config.requires_approval is None else config.requires_approval
        registry = mlflow.registry()
        version = candidate_version(context.instance, keys["model"], domain)
        try:
            outcome = run_gate(registry, domain, bar, requires_approval=requires_approval, version=version)
        except DeploymentError as exc:
            raise dg.Failure(str(exc)) from None
        decision = outcome.decision
        status = "already champion" if outcome.already_champion else decision.status
        context.log.info(f"{domain.registered_model} v{outcome.candidate.version}: {status}: " + "; ".join(decision.reasons))
        if outcome.alias_moved:
            context.log.warning(
                f"{domain.registered_model}: the challenger alias now points at v{outcome.challenger_now}; "
                f"this gate decided on v{outcome.candidate.version}, the version models/{domain.model} registered"
            )
        if not outcome.already_champion:
            kind = GATE_STATUS[decision.action]
            alerts.alerter(context.log).send(
                Alert(
                    kind=kind,
                    title=f"{domain.model}: v{outcome.candidate.version} {decision.status}",
                    text="\n".join(decision.reasons),
                    fields={"model": domain.registered_model, "version": outcome.candidate.version,
                            "champion_before": outcome.champion_before.version if outcome.champion_before else "none"},  # fmt: skip
                )
            )
        return dg.MaterializeResult(
            metadata={
                "status": status,
                "deployment_status": "already_champion" if outcome.already_champion else GATE_STATUS[decision.action],
                "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in decision.reasons)),
                "candidate_version": outcome.candidate.version,
                "challenger_now": outcome.challenger_now or "none",
                "evaluated": (
                    f"v{outcome.candidate.version}, registered by the latest models/{domain.model}; the challenger "
                    f"alias has since moved to v{outcome.challenger_now}"
                    if outcome.alias_moved
                    else f"v{outcome.candidate.version}, registered by the latest models/{domain.model}"
                ),
                "champion_before": outcome.champion_before.version if outcome.champion_before else "none",
                "champion_after": outcome.champion_after.version if outcome.champion_after else "none",
                "comparison": dg.MetadataValue.md(comparison_markdown(outcome)),
                "requires_approval": requires_approval,
                "quality_bar": dg.MetadataValue.json(bar.__dict__),
            }
        )

    @dg.asset(
        key=keys["approval"],
        deps=[keys["deployment"]],
        group_name=group,
        kinds={"mlflow"},
        description=(
            "A person approves the challenger the gate held: materialise with config approved_by "
            "(and optionally version, note); the version becomes champion."
        ),
    )
    def approval(context: dg.AssetExecutionContext, config: ApprovalConfig, mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:
        from ..ml.alerts import Alert
        from ..ml.deployment import DeploymentError, approve

        try:
            info = approve(mlflow.registry(), domain, config.version, config.approved_by, config.note)
        except DeploymentError as exc:
            raise dg.Failure(str(exc)) from None
        context.log.info(f"{domain.registered_model} v{info.version} approved by {config.approved_by}: champion")
        alerts.alerter(context.log).send(
            Alert(
                kind="promoted",
                title=f"{domain.model}: v{info.version} promoted (approved by {config.approved_by.strip()})",
                text=config.note or "approved in smartstream",
                fields={"model": domain.registered_model, "version": info.version, "approved_by": config.approved_by.strip()},
            )
        )
        outcome = {
            "deployment_status": "approved",
            "promoted_version": info.version,
            "approved_by": config.approved_by.strip(),
            "note": config.note,
            "status": f"v{info.version} approved by {config.approved_by.strip()}: champion",
        }
        # the gate's page shows its latest status: no longer "held for approval"
        context.log_event(dg.AssetObservation(asset_key=keys["deployment"], metadata={**outcome, "champion_after": info.version}))
        return dg.MaterializeResult(metadata={**outcome, "approved_version": info.version})

    assets = [features, candidate, deployment, approval]
    if domain.anomaly_model:
        assets.append(_anomaly_asset(domain, keys))
    assets += [_predictions_asset(domain, keys), _drift_asset(domain, keys)]
    return assets


def _anomaly_asset(domain: ClassifierDomain, keys):
    @dg.asset(
        key=keys["anomaly"],
        deps=[keys["features"]],
        group_name=domain.name,
        kinds={"sklearn", "parquet"},
        description="IsolationForest on the scaled features: a label (1 normal, -1 anomaly) and a score per row.",
    )
    def anomaly(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        from ..ml.anomaly import score_anomalies

        store = lake.get()
        frame = store.read_parquet(features_key(domain)).to_pandas()
        scores = score_anomalies(
            frame, id_column=domain.id_column, numeric=list(domain.numeric), categorical=list(domain.categorical),
            contamination=domain.anomaly_share,
        )  # fmt: skip
        write_frame(store, anomalies_key(domain.anomaly_model), scores)
        top = scores.sort_values("score", ascending=False).head(10).merge(frame, on=domain.id_column, how="left")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(scores),
                "anomalies": int((scores["label"] == -1).sum()),
                "anomaly_rate": float((scores["label"] == -1).mean()) if len(scores) else 0.0,
                "top_10": dg.MetadataValue.md(top.to_markdown(index=False)),
                "path": dg.MetadataValue.path(store.describe(anomalies_key(domain.anomaly_model))),
            }
        )

    return anomaly


def _predictions_asset(domain: ClassifierDomain, keys):
    deps = [keys["features"], keys["deployment"]] + ([keys["anomaly"]] if "anomaly" in keys else [])

    @dg.asset(
        key=keys["predictions"],
        deps=deps,
        group_name=domain.name,
        kinds={"parquet"},
        description=(
            f"Batch scores of the current rows{' not labelled positive' if domain.score_only_not_positive else ''} "
            f"with the champion of {domain.registered_model} "
            f"→ predictions/{domain.name}/run_date=…/ (and a SQL table when SMARTSTREAM_PREDICTIONS_DB is set)."
        ),
    )
    def predictions(
        context: dg.AssetExecutionContext, config: ScoringConfig, lake: LakeResource, mlflow: MlflowResource, predictions_db: PredictionsDbResource
    ) -> dg.MaterializeResult:
        from ..jobs import ingest_job_name, retrain_job_name
        from ..ml import scoring
        from ..ml.registry import CHAMPION

        store = lake.get()
        registry = mlflow.registry()
        champion = registry.version(domain.registered_model, CHAMPION)
        if champion is None:
            raise dg.Failure(
                f"{domain.registered_model} has no champion yet: materialise models/{domain.model} and "
                f"deployments/{domain.model} first"
            )
        run_date = resolve_run_date(config.run_date, context)
        source = f"features/{domain.name}"
        features_frame = store.read_parquet(features_key(domain)).to_pandas()
        pipeline = registry.load_pipeline(domain.registered_model, champion.version)
        needs = scoring.model_input_columns(pipeline, domain.features)
        frame = domain.scoring_rows(features_frame)
        try:
            scoring.check_champion_columns(
                needs, features_frame.columns, model=domain.registered_model, version=champion.version,
                source=source, retrain_job=retrain_job_name(domain),
            )  # fmt: skip
            scoring.check_rows_to_score(
                len(features_frame), len(frame), source=source, filtered=domain.scoring_filter,
                ingest_job=ingest_job_name(domain.table),
            )  # fmt: skip
        except scoring.ScoringError as exc:
            raise dg.Failure(str(exc)) from None
        quality = scoring.input_quality(frame, needs, scoring.fitted_categories(pipeline))
        for line in quality.warnings(source, domain.registered_model, champion.version):
            context.log.warning(line)
        scored = scoring.score_batch(pipeline, frame, id_column=domain.id_column, features=needs)
        scored.insert(0, "run_date", date.fromisoformat(run_date))
        scored["model_version"] = champion.version
        if domain.anomaly_model:
            if not store.exists(anomalies_key(domain.anomaly_model)):
                raise dg.Failure(
                    f"no anomaly flags for {source} yet: materialise models/{domain.anomaly_model} first "
                    f"(the {domain.name}_scoring job does)"
                )
            flags = store.read_parquet(anomalies_key(domain.anomaly_model)).to_pandas()
            scored = scored.merge(flags[[domain.id_column, "label"]], on=domain.id_column, how="left")
            scored["anomaly"] = scored.pop("label").eq(-1)
        key = predictions_key(domain, run_date)
        write_frame(store, key, scored)
        metadata = {
            "dagster/row_count": len(scored),
            "run_date": run_date,
            "model_version": champion.version,
            "predicted_positive_rate": float(scored["predicted_class"].mean()) if len(scored) else 0.0,
            "mean_probability": float(scored["probability"].mean()) if len(scored) else 0.0,
            # scored (the pipeline's encoders and the model handle them) but counted, never silent
            "rows_with_nulls": quality.rows_with_nulls,
            "nulls_by_column": dg.MetadataValue.json(quality.nulls_by_column),
            "rows_with_unseen_categories": quality.rows_with_unseen_categories,
            "unseen_categories_by_column": dg.MetadataValue.json(quality.unseen_by_column),
            "path": dg.MetadataValue.path(store.describe(key)),
            "preview": preview(pa.Table.from_pandas(scored.head(10), preserve_index=False)),
        }
        if domain.anomaly_model:
            metadata["anomalies_flagged"] = int(scored["anomaly"].sum())
        if predictions_db.enabled() and domain.predictions_table:
            written = predictions_db.upsert(domain.predictions_table, scored, key=["run_date", domain.id_column])
            metadata["sql_rows_upserted"] = written
            metadata["sql_table"] = domain.predictions_table
        return dg.MaterializeResult(metadata=metadata)

    return predictions


def _drift_asset(domain: ClassifierDomain, keys):
    @dg.asset(
        key=keys["drift"],
        deps=[keys["predictions"]],
        group_name=domain.name,
        kinds={"evidently"},
        description=(
            "Evidently: feature drift of the scored batch against the champion's reference data, and "
            "prediction drift against its reference predictions. HTML + JSON in reports/."
        ),
    )
    def drift(context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:
        from ..ml.alerts import Alert
        from ..ml.drift import drift_report

        store = lake.get()
        run_date = scored_run_date(context, keys["predictions"]) or latest_run_date(store, domain)
        scored = store.read_parquet(predictions_key(domain, run_date)).to_pandas()
        batch = store.read_parquet(features_key(domain)).to_pandas()
        batch = batch[batch[domain.id_column].isin(scored[domain.id_column])]
        version, reference, reference_predictions = mlflow.registry().reference(domain.registered_model)
        current = batch[domain.features].assign(probability=batch[domain.id_column].map(scored.set_index(domain.id_column)["probability"]).to_numpy())
        baseline = reference[domain.features].assign(probability=reference_predictions["probability"].to_numpy())
        summary, html = drift_report(
            baseline, current, numerical=list(domain.numeric), categorical=list(domain.categorical),
            prediction_column="probability", drift_share=domain.drift_share_threshold,
        )  # fmt: skip
        html_key, json_key = drift_report_key(domain, run_date, "html"), drift_report_key(domain, run_date, "json")
        store.write_bytes(html_key, html.encode("utf-8"))
        store.write_bytes(json_key, json.dumps(summary.to_json(), indent=2, default=str).encode())
        drifted = summary.drifted_columns()
        if summary.dataset_drift or summary.prediction_drift:
            alerts.alerter(context.log).send(
                Alert(
                    kind="drift_detected",
                    title=f"{domain.name}: drift detected (share {summary.drift_share:.2f})",
                    text="drifted: " + (", ".join(c.column for c in drifted) or "none")
                    + (f"; prediction drift ({summary.prediction.statistic_method})" if summary.prediction_drift else ""),
                    fields={"domain": domain.name, "drift_share": round(summary.drift_share, 3),
                            "prediction_drift": bool(summary.prediction_drift), "champion": version.version},  # fmt: skip
                    url=store.describe(html_key),
                )
            )
        return dg.MaterializeResult(
            metadata={
                "drift_share": dg.MetadataValue.float(summary.drift_share),
                "dataset_drift": bool(summary.dataset_drift),
                "drifted_columns": dg.MetadataValue.md(drift_markdown(summary)),
                "prediction_drift": bool(summary.prediction_drift),
                "prediction_drift_statistic": dg.MetadataValue.float(summary.prediction.statistic) if summary.prediction else 0.0,
                "drift_share_threshold": domain.drift_share_threshold,
                "run_date": run_date,
                "champion_version": version.version,
                "rows_current": summary.n_current,
                "rows_reference": summary.n_reference,
                "report_html": dg.MetadataValue.path(store.describe(html_key)),
                "report_json": dg.MetadataValue.path(store.describe(json_key)),
            }
        )

    return drift


# --------------------------------------------------------------------- helpers


def write_frame(lake: Lake, key: str, frame: pd.DataFrame) -> None:
    lake.write_parquet(key, pa.Table.from_pandas(frame, preserve_index=False))


def resolve_run_date(configured: str, context) -> str:
    """Config, else the schedule's tick date, else today (UTC)."""
    if configured:
        return date.fromisoformat(configured).isoformat()  # validates
    scheduled = context.run.tags.get("dagster/scheduled_execution_time") if context.run else None
    if scheduled:
        return datetime.fromisoformat(scheduled).date().isoformat()
    return datetime.now(timezone.utc).date().isoformat()


def scored_run_date(context, predictions_key: dg.AssetKey) -> str | None:
    """The run date of the latest predictions materialisation (the batch this run scored,
    even when it re-scored an older date)."""
    records = context.instance.fetch_materializations(predictions_key, limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get("run_date")
    return str(value.value) if value is not None else None


def latest_run_date(lake: Lake, domain: ClassifierDomain) -> str:
    dates = sorted({obj.key.split("run_date=")[1].split("/")[0] for obj in lake.list(f"predictions/{domain.name}/run_date=")})
    if not dates:
        raise dg.Failure(f"no predictions/{domain.name} yet: materialise predictions/{domain.name} first")
    return dates[-1]


def fairness_check(key: dg.AssetKey, domain: ClassifierDomain, fairness: dict) -> dg.AssetCheckResult:
    """Fails above ``warn`` on any facet; its severity is ERROR when a protected facet is
    above ``error`` or was not measured (the rule the gate applies: fails closed), WARN otherwise."""
    from ..ml.fairness import protected_fairness

    worst_facet = max(fairness, key=lambda f: fairness[f].worst_difference) if fairness else None
    worst = fairness[worst_facet].worst_difference if worst_facet else 0.0
    protected = protected_fairness({f: r.worst_difference for f, r in fairness.items()}, domain.gated_facets)
    failed_protected = bool(protected.missing) or protected.worst > domain.fairness.error
    severity = dg.AssetCheckSeverity.ERROR if failed_protected else dg.AssetCheckSeverity.WARN
    return dg.AssetCheckResult(
        asset_key=key,
        check_name="fairness",
        passed=not protected.missing and worst <= domain.fairness.warn,
        severity=severity,
        description=protected.missing_reason(),
        metadata={
            "unmeasured_protected_facets": dg.MetadataValue.json(list(protected.missing)),
            "worst_facet": worst_facet or "none",
            "worst_difference": dg.MetadataValue.float(worst),
            "warn_above": domain.fairness.warn,
            "error_above": domain.fairness.error,
            "protected_facets": dg.MetadataValue.json(domain.gated_facets),
            **{
                f"{facet}_demographic_parity_difference": dg.MetadataValue.float(r.demographic_parity_difference)
                for facet, r in fairness.items()
            },
            **{
                f"{facet}_equalized_odds_difference": dg.MetadataValue.float(r.equalized_odds_difference)
                for facet, r in fairness.items()
            },
        },
    )


GATE_STATUS = {"promote": "promoted", "hold": "held_for_approval", "reject": "rejected"}


def candidate_version(instance: dg.DagsterInstance, candidate_key: dg.AssetKey, domain: ClassifierDomain) -> str:
    """The model version the latest materialisation of the candidate asset registered: the
    one the gate decides on, whatever the challenger alias points at now."""
    records = instance.fetch_materializations(candidate_key, limit=1).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get("model_version") if materialization else None
    if entry is None:
        raise dg.Failure(
            f"models/{domain.model} has no materialisation that registered a model version: "
            f"materialise models/{domain.model} first, then deployments/{domain.model}"
        )
    return str(entry.value)


def fairness_markdown(fairness: dict) -> str:
    parts = []
    for facet, result in fairness.items():
        parts.append(
            f"**{facet}**: demographic-parity difference {result.demographic_parity_difference:.3f}, "
            f"ratio (disparate impact) {result.demographic_parity_ratio:.3f}, "
            f"equalized-odds difference {result.equalized_odds_difference:.3f}\n\n"
            + result.by_group.round(3).to_markdown()
        )
    return "\n\n".join(parts) or "_no facets_"


def comparison_markdown(outcome) -> str:
    gate = outcome.gate
    rows = ["| metric | candidate | champion (same holdout) |", "|---|---:|---:|"]
    for metric, value in gate.candidate.items():
        theirs = gate.champion.get(metric) if gate.champion else None
        rows.append(f"| {metric} | {value:.3f} | {'' if theirs is None else f'{theirs:.3f}'} |")
    rows.append(f"| worst demographic-parity difference | {gate.fairness_difference:.3f} | |")
    return "\n".join(rows)


def drift_markdown(summary) -> str:
    """Per column: Evidently's drift method, its value (distance or p-value, said per
    row), threshold and decision; the project's chi2_two_sample p only for categories."""
    rows = [
        "| column | drifted | method (Evidently, decides drift) | value | value is | threshold | chi2_two_sample p (categorical only) |",
        "|---|---|---|---:|---|---:|---:|",
    ]
    items = sorted(summary.columns, key=lambda c: (not c.drifted, c.column))
    if summary.prediction is not None:
        items.append(summary.prediction)

    def number(x: float | None, p_value: bool) -> str:
        if x is None:
            return ""
        if p_value and x == 0:  # below the smallest double: scipy gives 0
            return "<1e-300"
        return f"{x:.3g}" if x < 0.001 else f"{x:.3f}"

    for c in items:
        name = f"{c.column} (prediction)" if c is summary.prediction else c.column
        kind = "p-value (drift when below)" if c.value_kind == "p_value" else "distance (drift when at or above)"
        value = number(c.statistic, c.value_kind == "p_value")
        chi2 = number(c.chi2_two_sample_p, True) if c.kind == "categorical" else ""
        rows.append(f"| {name} | {'yes' if c.drifted else 'no'} | {c.statistic_method} | {value} | {kind} | {c.threshold:g} | {chi2} |")
    return "\n".join(rows)
