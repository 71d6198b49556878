"""The training side of a domain's lineage, one factory per role: features, candidate
(search, MLflow, evaluation.json, the fairness check), champion (the promotion gate)
and approval. ``build_ml_assets`` (``assets/ml.py``) puts them together."""

import json

import dagster as dg
import pandas as pd
import pyarrow as pa

from .. import ingestion
from ..domains import Domain
from ..io import IO_MANAGER_KEY, LAKE_KEY
from ..keys import asset_keys, evaluation_key, features_key, features_split_key, spelled
from ..metadata import baselines_markdown, comparison_markdown, fairness_markdown, label_summary, preview
from ..resources import AlertResource, LakeResource, MlflowResource
from .ml_config import ApprovalConfig, CandidateConfig, GateConfig


def features_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/features``: the model's input frame from the table's current state,
    handed on through the lake IO manager."""
    from ..keys import current_asset_key

    table_key = current_asset_key(domain.table)
    # a domain source (e.g. reviews/labelled) arrives through the IO manager; else the table's current state
    source_key = dg.AssetKey(domain.source.split("/")) if domain.source else None

    @dg.asset(
        key=keys["features"],
        deps=[] if source_key else [table_key],
        ins={"source": dg.AssetIn(source_key)} if source_key else {},
        group_name=domain.name,
        kinds={"parquet"},
        io_manager_key=IO_MANAGER_KEY,
        metadata={LAKE_KEY: features_key(domain)},
        description=(
            f"The model's input frame from {spelled(source_key or table_key)}: {domain.id_column}, features, "
            f"{', '.join(domain.targets)} ({domain.task.kind})."
        ),
    )
    def features(context: dg.AssetExecutionContext, lake: LakeResource, **inputs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        store = lake.get()
        current = inputs["source"] if source_key else _current_frame(store, domain.table)
        try:
            frame = domain.feature_frame(current)
        except ValueError as exc:
            raise dg.Failure(str(exc)) from None
        labelled = frame[list(domain.targets)].notna().all(axis=1)
        skipped = frame.attrs.get("series_skipped") or {}
        for reason in skipped.values():
            context.log.warning(f"{spelled(keys['features'])}: {reason}: left out until it has enough history")
        extra = {"series_skipped": dg.MetadataValue.json(skipped)} if "series_skipped" in frame.attrs else {}
        extra.update(write_time_splits(store, domain, frame))
        return dg.Output(
            frame,
            metadata={
                "dagster/row_count": len(frame),
                "labelled_rows": int(labelled.sum()),
                **extra,
                **label_summary(domain, frame.loc[labelled]),
                "features": dg.MetadataValue.json(domain.features),
                "path": dg.MetadataValue.path(store.describe(features_key(domain))),
                "preview": preview(pa.Table.from_pandas(frame.head(10), preserve_index=False)),
            },
        )

    return features


def write_time_splits(store, domain: Domain, frame: pd.DataFrame) -> dict:
    """For a time split: the labelled rows of each window (train, validation, test) as
    Parquet under ``features/<domain>/split=<window>/``, and their spans as metadata. The
    candidate splits the same frame the same way (``training.time_split``)."""
    from ..ml.tasks import TimeSplit
    from ..ml.training import time_split

    if not isinstance(domain.task.split, TimeSplit):
        return {}
    data = domain.task.labelled(frame)
    try:
        plan = time_split(data, domain.task.split)
    except ValueError as exc:
        raise dg.Failure(f"{spelled(asset_keys(domain)['features'])}: {exc}") from None
    windows = {"train": plan.search[: len(plan.folds[0][0])], "validation": plan.search[len(plan.folds[0][0]):], "test": plan.holdout}
    for name, rows in windows.items():
        store.write_parquet(features_split_key(domain, name), pa.Table.from_pandas(data.iloc[rows], preserve_index=False))
    spans = {"train": plan.window["train"], "validation": plan.window["validation"], "test": plan.window["holdout"]}
    return {
        "split_windows": dg.MetadataValue.json({name: {"from": span[0], "to": span[1], "rows": len(windows[name])} for name, span in spans.items()}),
        "split_paths": dg.MetadataValue.json({name: store.describe(features_split_key(domain, name)) for name in windows}),
    }


def candidate_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/<model>_candidate``: search, refit, evaluate, log and register; the
    fairness check with it."""

    @dg.asset(
        key=keys["model"],
        ins={"features": dg.AssetIn(keys["features"])},
        group_name=domain.name,
        kinds={"mlflow", "sklearn"},
        description=(
            f"A candidate for {domain.registered_model} ({domain.task.kind}, objective {domain.task.objective}): "
            f"Optuna search (TPE, random or Hyperband) over {' and '.join(domain.estimators)}, evaluated on its holdout beside the declared baselines "
            "(evaluation.json), logged to MLflow and registered with alias challenger."
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "fairness",
                asset=keys["model"],
                description=(
                    (
                        "demographic-parity and equalized-odds differences"
                        if domain.task.kind == "binary"
                        else "MAE-ratio gap (|group MAE / overall MAE - 1|)"
                    )
                    + f" by {', '.join(domain.facets) or 'no facet'}: "
                    f"WARN above {domain.fairness.warn}, ERROR above {domain.fairness.error} "
                    f"for {', '.join(domain.gated_facets)} (blocking: the gate does not run), "
                    "and ERROR when a protected facet was not measured"
                ),
                # a protected facet above the bar (or unmeasured) stops the run before the gate
                blocking=bool(domain.gated_facets),
            )
        ],
    )
    def candidate(context: dg.AssetExecutionContext, config: CandidateConfig, features: pd.DataFrame, lake: LakeResource, mlflow: MlflowResource):
        from ..ml import plots
        from ..ml.fairness import fairness_report
        from ..ml.training import SearchSettings, train_model

        from ..ml.training import STRATEGIES

        sampler, pruner = STRATEGIES[config.strategy] if config.strategy else (config.sampler, config.pruner)
        settings = SearchSettings(
            trials=config.trials or domain.search_trials,
            estimators=tuple(config.estimators) or domain.estimators,
            sampler=sampler,
            pruner=pruner,
            folds=config.folds,
            test_size=config.test_size,
            seed=config.seed,
        )
        frame = features
        try:
            task = domain.task.with_fine_tune(
                epochs=config.fine_tune_epochs if config.fine_tune_epochs >= 0 else None, max_rows=config.fine_tune_rows or None
            )
            result = train_model(
                frame, task=task, id_column=domain.id_column,
                numeric=list(domain.numeric), categorical=list(domain.categorical), settings=settings,
                keep_columns=(domain.text_input.text_column,) if domain.text_input else (),
            )  # fmt: skip
        except ValueError as exc:
            raise dg.Failure(f"{spelled(keys['model'])}: {exc}") from None
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
        store = lake.get()
        evaluation_at = evaluation_key(domain, logged.version)
        store.write_bytes(evaluation_at, json.dumps(logged.evaluation, indent=2).encode())
        pruned = sum(t.state == "PRUNED" for t in result.trials)
        yield dg.MaterializeResult(
            metadata={
                "mlflow_run": dg.MetadataValue.url(logged.run_url),
                "model_version": logged.version,
                "model_uri": logged.model_uri,
                "estimator": result.estimator,
                "params": dg.MetadataValue.json(result.params),
                "task": domain.task.kind,
                **{name: dg.MetadataValue.float(value) for name, value in result.metrics.items()},
                f"cv_{domain.task.objective}": dg.MetadataValue.float(result.cv_score),
                "baselines": dg.MetadataValue.md(baselines_markdown(result)),
                "holdout_window": dg.MetadataValue.json(result.window),
                "evaluation": dg.MetadataValue.path(store.describe(evaluation_at)),
                "trials": len(result.trials),
                "search": f"{settings.sampler} sampler, {settings.pruner} pruner",
                "trials_pruned": pruned,
                "rows_train": len(result.train),
                "rows_holdout": len(result.holdout),
                **({"fine_tuned_encoder": dg.MetadataValue.json(result.representation)} if result.representation else {}),
                "fairness": dg.MetadataValue.md(fairness_markdown(fairness)),
                "feature_importance": dg.MetadataValue.md(plots.markdown_image(importance_png, "feature importance")),
            }
        )
        yield fairness_check(keys["model"], domain, fairness)

    return candidate


def champion_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/<model>_champion``: the promotion gate, on the version its candidate registered."""

    @dg.asset(
        key=keys["deployment"],
        deps=[keys["model"]],
        group_name=domain.name,
        kinds={"mlflow"},
        description=(
            f"The promotion gate: the challenger becomes champion if it meets the quality bar AND is not "
            f"worse than the champion on its holdout; replacing a champion waits for {spelled(keys['approval'])}."
        ),
    )
    def deployment(context: dg.AssetExecutionContext, config: GateConfig, mlflow: MlflowResource, alerts: AlertResource) -> dg.MaterializeResult:
        from ..ml.alerts import Alert
        from ..ml.deployment import DeploymentError, run_gate

        try:
            bar = domain.quality_bar.with_overrides(config.thresholds, config.max_fairness)
        except ValueError as exc:
            raise dg.Failure(f"{spelled(keys['deployment'])} config: {exc}") from None
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
                f"this gate decided on v{outcome.candidate.version}, the version {spelled(keys['model'])} registered"
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
                    f"v{outcome.candidate.version}, registered by the latest {spelled(keys['model'])}; the challenger "
                    f"alias has since moved to v{outcome.challenger_now}"
                    if outcome.alias_moved
                    else f"v{outcome.candidate.version}, registered by the latest {spelled(keys['model'])}"
                ),
                "champion_before": outcome.champion_before.version if outcome.champion_before else "none",
                "champion_after": outcome.champion_after.version if outcome.champion_after else "none",
                "comparison": dg.MetadataValue.md(comparison_markdown(outcome, domain.task)),
                "requires_approval": requires_approval,
                "quality_bar": dg.MetadataValue.json(bar.to_json()),
            }
        )

    return deployment


def approval_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/<model>_approval``: a person promotes the candidate the gate held."""

    @dg.asset(
        key=keys["approval"],
        deps=[keys["deployment"]],
        group_name=domain.name,
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

    return approval


def fairness_check(key: dg.AssetKey, domain: Domain, fairness: dict) -> dg.AssetCheckResult:
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
                f"{facet}_{measure}": dg.MetadataValue.float(value)
                for facet, r in fairness.items()
                for measure, value in r.measures.items()
                if measure != "demographic_parity_ratio"
            },
        },
    )


GATE_STATUS = {"promote": "promoted", "hold": "held_for_approval", "reject": "rejected"}



def candidate_version(instance: dg.DagsterInstance, candidate_key: dg.AssetKey, domain: Domain) -> str:
    """The model version the latest materialisation of the candidate asset registered: the
    one the gate decides on, whatever the challenger alias points at now."""
    records = instance.fetch_materializations(candidate_key, limit=1).records
    materialization = records[0].asset_materialization if records else None
    entry = materialization.metadata.get("model_version") if materialization else None
    if entry is None:
        raise dg.Failure(
            f"{spelled(candidate_key)} has no materialisation that registered a model version: "
            f"materialise {spelled(candidate_key)} first, then {spelled(asset_keys(domain)['deployment'])}"
        )
    return str(entry.value)


def _current_frame(store, table: str) -> pd.DataFrame:
    """The table's live rows in primary-key order: a Delta table's row order follows its
    MERGE history (files rewritten, compacted), and the seeded split must not."""
    from ..tables import load_tables

    found = ingestion.read_current(store, table)
    if found is None:
        raise dg.Failure(f"no current table at {store.describe(ingestion.current_key(table))}: ingest {table} first")
    spec = load_tables().get(table)
    if spec is not None:
        found = found.sort_by([(k, "ascending") for k in spec.primary_key])
    return found.to_pandas()
