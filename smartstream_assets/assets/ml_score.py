"""The scoring side of a domain's lineage, one factory per role: anomaly flags,
predictions partitioned by the domain's cadence, and the drift report of each
partition. Frames flow through the lake IO manager (``io.py``)."""

import dataclasses
import json
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from ..domains import Domain
from ..io import IO_MANAGER_KEY, LAKE_KEY
from ..keys import anomalies_key, asset_keys, drift_report_key, predictions_key, predictions_prefix, spelled
from ..lake import Lake
from ..metadata import drift_markdown, prediction_summary, preview
from ..resources import AlertResource, LakeResource, MlflowResource, PredictionsDbResource


def anomaly_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/anomalies``: IsolationForest flags of the feature rows (through the IO manager)."""

    @dg.asset(
        key=keys["anomaly"],
        ins={"features": dg.AssetIn(keys["features"])},
        io_manager_key=IO_MANAGER_KEY,
        metadata={LAKE_KEY: anomalies_key(domain)},
        group_name=domain.name,
        kinds={"sklearn", "parquet"},
        description="IsolationForest on the scaled features: a label (1 normal, -1 anomaly) and a score per row.",
    )
    def anomaly(context: dg.AssetExecutionContext, features: pd.DataFrame, lake: LakeResource) -> dg.Output[pd.DataFrame]:
        from ..ml.anomaly import score_anomalies

        store = lake.get()
        frame = features
        if frame.empty:  # nothing to flag: scoring then says there is nothing to score
            context.log.warning(f"{spelled(keys['features'])} has no rows: no anomaly flags")
            scores = pd.DataFrame({domain.id_column: frame[domain.id_column], "label": pd.Series(dtype="int64"), "score": pd.Series(dtype="float64")})
        else:
            scores = score_anomalies(
                frame, id_column=domain.id_column, numeric=list(domain.numeric), categorical=list(domain.categorical),
                contamination=domain.anomaly_share,
            )  # fmt: skip
        top = scores.sort_values("score", ascending=False).head(10).merge(frame, on=domain.id_column, how="left")
        return dg.Output(
            scores,
            metadata={
                "dagster/row_count": len(scores),
                "anomalies": int((scores["label"] == -1).sum()),
                "anomaly_rate": float((scores["label"] == -1).mean()) if len(scores) else 0.0,
                "top_10": dg.MetadataValue.md(top.to_markdown(index=False)),
                "path": dg.MetadataValue.path(store.describe(anomalies_key(domain))),
            }
        )

    return anomaly


def predictions_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/predictions``: one partition per cadence period, scored by the champion."""

    # the rows to score: the domain's own partitioned source (one frame per partition), or
    # the rows of <domain>/features in the partition's window
    scoring_key = dg.AssetKey(domain.scoring_source.split("/")) if domain.scoring_source else None
    ins = {"batches": dg.AssetIn(scoring_key)} if scoring_key else {"features": dg.AssetIn(keys["features"])}
    if "anomaly" in keys:
        ins["anomalies"] = dg.AssetIn(keys["anomaly"])
    cadence = domain.scoring_cadence
    partitions = cadence.partitions_def()

    @dg.asset(
        key=keys["predictions"],
        ins=ins,
        deps=[keys["deployment"]],
        io_manager_key=IO_MANAGER_KEY,
        metadata={LAKE_KEY: predictions_key(domain, "{partition}")},
        group_name=domain.name,
        kinds={"parquet"},
        partitions_def=partitions,
        # a range of partitions (a CLI backfill) is one run that scores each of them
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            f"Batch scores, one partition per {cadence.every}, of the current rows"
            f"{' not labelled positive' if domain.score_only_not_positive else ''}"
            f"{f' whose {domain.event_time} falls in the partition' if domain.event_time else ''}"
            f"{' that the domain selects (' + (domain.select_rows.__doc__ or '').strip().split(chr(10))[0].rstrip('.') + ')' if domain.select_rows is not None else ''} "
            f"with the champion of {domain.registered_model}: the scored feature rows, the "
            f"{', '.join(domain.task.prediction_columns)} and model_version → lake "
            f"`predictions/{domain.name}/run_date=<partition>/` (and a SQL table when SMARTSTREAM_PREDICTIONS_DB is set)."
        ),
    )
    def predictions(
        context: dg.AssetExecutionContext, lake: LakeResource, mlflow: MlflowResource, predictions_db: PredictionsDbResource,
        **inputs: pd.DataFrame,
    ) -> dg.Output[dict]:
        from ..jobs import ingest_job_name, retrain_job_name
        from ..ml import scoring
        from ..ml.registry import CHAMPION

        store = lake.get()
        registry = mlflow.registry()
        champion = registry.version(domain.registered_model, CHAMPION)
        if champion is None:
            raise dg.Failure(
                f"{domain.registered_model} has no champion yet: materialise {spelled(keys['model'])} and "
                f"{spelled(keys['deployment'])} first"
            )
        source = spelled(scoring_key or keys["features"])
        pipeline = registry.load_pipeline(domain.registered_model, champion.version)
        needs = scoring.model_input_columns(pipeline, domain.features)
        frames = inputs["batches"] if scoring_key else {p: inputs["features"] for p in context.partition_keys}
        batches = {}  # every partition is checked before anything is written
        for partition in context.partition_keys:
            features_frame = frames[partition]
            try:
                scoring.check_champion_columns(
                    needs, features_frame.columns, model=domain.registered_model, version=champion.version,
                    source=source, retrain_job=retrain_job_name(domain),
                )  # fmt: skip
            except scoring.ScoringError as exc:
                raise dg.Failure(str(exc)) from None
            window = partitions.time_window_for_partition_key(partition)
            batches[partition] = (window, domain.rows_in_window(domain.scoring_rows(features_frame), window.start, window.end))
            try:
                scoring.check_rows_to_score(
                    len(features_frame), len(batches[partition][1]), source=source,
                    filtered="; ".join(filter(None, [domain.scoring_filter, domain.window_filter(partition)])),
                    ingest_job=ingest_job_name(domain.table),
                )  # fmt: skip
            except scoring.ScoringError as exc:
                raise dg.Failure(str(exc)) from None
        flags = inputs.get("anomalies")
        written = {}  # the IO manager writes each partition's frame (atomically) after the checks
        for partition, (window, frame) in batches.items():
            quality = scoring.input_quality(frame, needs, scoring.fitted_categories(pipeline))
            for line in quality.warnings(source, domain.registered_model, champion.version):
                context.log.warning(line)
            scored = scoring.score_batch(pipeline, frame, id_column=domain.id_column, features=needs, task=domain.task)
            # the scored feature rows travel with their scores: drift reads exactly what was scored
            # (and the columns the drift report judges against recent partitions: Domain.drift_recent)
            carried = [c for c in (*(domain.drift_recent.columns if domain.drift_recent else ()), *domain.carry_columns) if c in frame.columns]
            scored = frame[[domain.id_column, *domain.features, *carried]].reset_index(drop=True).join(scored.drop(columns=[domain.id_column]))
            scored.insert(0, "run_date", window.start.date())
            scored["model_version"] = champion.version
            if flags is not None:
                scored = scored.merge(flags[[domain.id_column, "label"]], on=domain.id_column, how="left")
                scored["anomaly"] = scored.pop("label").eq(-1)
            key = predictions_key(domain, partition)
            written[partition] = scored
            metadata = {
                "dagster/row_count": len(scored),
                "run_date": partition,
                "model_version": champion.version,
                **prediction_summary(domain, scored),
                # scored (the pipeline's encoders and the model handle them) but counted, never silent
                "rows_with_nulls": quality.rows_with_nulls,
                "nulls_by_column": dg.MetadataValue.json(quality.nulls_by_column),
                "rows_with_unseen_categories": quality.rows_with_unseen_categories,
                "unseen_categories_by_column": dg.MetadataValue.json(quality.unseen_by_column),
                "path": dg.MetadataValue.path(store.describe(key)),
                "preview": preview(pa.Table.from_pandas(scored.head(10), preserve_index=False)),
            }
            if flags is not None:
                metadata["anomalies_flagged"] = int(scored["anomaly"].sum())
            labels = [t for t in domain.targets if t in frame.columns]  # a scoring source has none
            waiting = frame[labels].isna().any(axis=1).to_numpy() if labels else np.zeros(len(frame), dtype=bool)
            if labels and waiting.any():  # rows whose label has not arrived: forecasts (co2: next week's reading)
                shown = scored.loc[waiting, [domain.id_column, *domain.task.prediction_columns]].head(20)
                metadata["forecasts"] = dg.MetadataValue.md(shown.to_markdown(index=False, floatfmt=".3f"))
            if predictions_db.enabled() and domain.predictions_table:
                table = scored[["run_date", domain.id_column, *domain.task.prediction_columns, "model_version", *(["anomaly"] if flags is not None else [])]]
                metadata["sql_rows_upserted"] = predictions_db.upsert(domain.predictions_table, table, key=["run_date", domain.id_column])
                metadata["sql_table"] = domain.predictions_table
            context.add_asset_metadata(metadata, partition_key=partition)
        return dg.Output(written)

    return predictions


def drift_asset(domain: Domain, keys: dict) -> dg.AssetsDefinition:
    """``<domain>/drift_report``: Evidently per scoring partition, against the scoring version's reference."""

    @dg.asset(
        key=keys["drift"],
        ins={"predictions": dg.AssetIn(keys["predictions"])},
        group_name=domain.name,
        kinds={"evidently"},
        partitions_def=domain.scoring_cadence.partitions_def(),
        backfill_policy=dg.BackfillPolicy.single_run(),
        description=(
            "Evidently, per scoring partition: feature drift of the rows that partition scored against the "
            "reference data of the model version that scored them"
            f"{'' if domain.drift_features is None else ' (' + ', '.join(domain.drift_numeric + domain.drift_categorical + [f'the {g} ({len(c)} dimensions as one signal)' for g, c in domain.drift_embeddings.items()]) + ')'}, "
            f"and drift of its predictions ({', '.join(domain.drift_predictions)}"
            f"{', as the change from ' + domain.task.anchor if getattr(domain.task, 'anchor', None) else ''}) "
            "against that version's reference predictions"
            + (f"; {', '.join(domain.drift_recent.columns)} (not in the training set) against the previous "
               f"{domain.drift_recent.partitions} scored partitions" if domain.drift_recent else "")
            + (f"; at most {domain.drift_false_alarm_rate:g} of ordinary partitions flagged (each test at that / the number of tests)"
               if domain.drift_false_alarm_rate else "")
            + ". HTML + JSON in the lake's reports/."
        ),
    )
    def drift(
        context: dg.AssetExecutionContext, predictions: dict, lake: LakeResource, mlflow: MlflowResource, alerts: AlertResource
    ) -> dg.MaterializeResult:
        from ..ml.alerts import Alert
        from ..ml.drift import drift_report

        store = lake.get()
        registry = mlflow.registry()
        predicted = list(domain.drift_predictions)
        partitions = domain.scoring_cadence.partitions_def()
        for partition in context.partition_keys:
            scored = predictions[partition]  # the rows that partition scored, with their versions
            versions = sorted(scored["model_version"].astype(str).unique())
            if len(versions) != 1:
                raise dg.Failure(
                    f"{spelled(keys['predictions'])} partition {partition} holds rows of versions {', '.join(versions) or 'none'}; "
                    "re-materialise the partition so one version scores it"
                )
            try:
                version, reference, reference_predictions = registry.reference(domain.registered_model, version=versions[0])
            except LookupError as exc:
                raise dg.Failure(str(exc)) from None
            baseline = reference[domain.features].assign(**{c: reference_predictions[c].to_numpy() for c in predicted})
            current, baseline, compared = drift_frames(domain, scored, baseline)
            recent = recent_reference(store, domain, partitions, partition, scored) if domain.drift_recent else None
            signals = len(domain.drift_numeric) + len(domain.drift_categorical) + len(domain.drift_embeddings) + len(compared)
            summary, html = drift_report(
                baseline, current, numerical=domain.drift_numeric, categorical=domain.drift_categorical,
                prediction_columns=compared, drift_share=domain.drift_share_threshold,
                false_alarm_rate=domain.drift_false_alarm_rate, other_signals=len(recent.columns) if recent and recent.frame is not None else 0,
                **({"embeddings": domain.drift_embeddings} if domain.drift_embeddings else {}),
            )  # fmt: skip
            html_key, json_key = drift_report_key(domain, partition, "html"), drift_report_key(domain, partition, "json")
            recent_meta = {}
            if recent is not None and recent.frame is not None:
                mix, mix_html = drift_report(
                    recent.frame, scored[list(recent.columns)], numerical=[], categorical=list(recent.columns),
                    drift_share=1.0, false_alarm_rate=domain.drift_false_alarm_rate, other_signals=signals,
                )  # fmt: skip
                summary = summary.with_columns([dataclasses.replace(c, reference=recent.label) for c in mix.columns])
                mix_key = drift_report_key(domain, partition, "recent.html")
                store.write_bytes(mix_key, mix_html.encode("utf-8"))
                recent_meta = {"recent_report_html": dg.MetadataValue.url(store.browser_url(mix_key))}
            if recent is not None:
                recent_meta |= {"recent_reference": recent.label}
            store.write_bytes(html_key, html.encode("utf-8"))
            store.write_bytes(json_key, json.dumps(summary.to_json(), indent=2, default=str).encode())
            drifted = summary.drifted_columns()
            if summary.dataset_drift or summary.prediction_drift:
                moved = [p.column for p in summary.predictions if p.drifted]
                alerts.alerter(context.log).send(
                    Alert(
                        kind="drift_detected",
                        title=f"{domain.name}: drift detected in {partition} (share {summary.drift_share:.2f})",
                        text="drifted: " + (", ".join(c.column for c in drifted) or "none")
                        + (f"; prediction drift in {', '.join(moved)}" if moved else ""),
                        fields={"domain": domain.name, "partition": partition, "drift_share": round(summary.drift_share, 3),
                                "prediction_drift": bool(summary.prediction_drift), "model_version": version.version},  # fmt: skip
                        url=store.browser_url(html_key),
                    )
                )
            context.add_asset_metadata(
                {
                    "drift_share": dg.MetadataValue.float(summary.drift_share),
                    "dataset_drift": bool(summary.dataset_drift),
                    "drifted_columns": dg.MetadataValue.md(drift_markdown(summary)),
                    # the same as a list, for apps reading the GraphQL API (results_api.py)
                    "drifted": dg.MetadataValue.json(sorted(c.column for c in summary.columns if c.drifted)),
                    "prediction_drift": bool(summary.prediction_drift),
                    "prediction_drift_statistic": dg.MetadataValue.float(summary.prediction.statistic) if summary.prediction else 0.0,
                    "drift_share_threshold": domain.drift_share_threshold,
                    # each signal's test level, when the domain bounds the false-alarm rate
                    **({"false_alarm_rate": summary.false_alarm_rate, "test_level": summary.test_level} if summary.test_level is not None else {}),
                    "run_date": partition,
                    # the version that scored the partition, whose reference it was compared with
                    "model_version": version.version,
                    "champion_version": version.version,
                    "rows_current": summary.n_current,
                    "rows_reference": summary.n_reference,
                    "report_html": dg.MetadataValue.url(store.browser_url(html_key)),
                    "report_html_path": dg.MetadataValue.path(store.describe(html_key)),
                    "report_json": dg.MetadataValue.path(store.describe(json_key)),
                    **recent_meta,
                },
                partition_key=partition,
            )
        return dg.MaterializeResult()

    return drift


@dataclass(frozen=True)
class RecentReference:
    """The rows of the partitions scored before one (``Domain.drift_recent``): ``frame``
    None when they hold fewer than ``min_rows`` (the columns are then not judged yet)."""

    columns: tuple[str, ...]
    frame: pd.DataFrame | None
    label: str


def recent_reference(store: Lake, domain: Domain, partitions, partition: str, scored: pd.DataFrame) -> RecentReference:
    """The ``drift_recent`` columns of the previous ``partitions`` scored partitions before
    ``partition`` (those in the lake), at most 1,000 rows drawn at random (seed 0)."""
    spec = domain.drift_recent
    columns = tuple(c for c in spec.columns if c in scored.columns)
    missing = [c for c in spec.columns if c not in scored.columns]
    if missing:
        raise dg.Failure(f"{domain.name}: the scored rows of {partition} lack {', '.join(missing)}, which the drift report compares with recent partitions")
    keys = partitions.get_partition_keys()
    before = keys[max(0, keys.index(partition) - spec.partitions) : keys.index(partition)] if partition in keys else []
    frames = []
    for key in before:
        path = predictions_key(domain, key)
        if store.exists(path):
            table = store.read_parquet(path)
            if all(c in table.column_names for c in columns):
                frames.append(table.select(list(columns)).to_pandas())
    rows = sum(len(f) for f in frames)
    label = f"previous {len(frames)} scored partition(s), {rows} rows"
    if rows < spec.min_rows:
        return RecentReference(columns, None, f"{label}: fewer than {spec.min_rows}, not compared yet")
    frame = pd.concat(frames, ignore_index=True)
    if len(frame) > 1000:
        frame = frame.sample(1000, random_state=0).reset_index(drop=True)
    return RecentReference(columns, frame, label)


def drift_frames(domain: Domain, scored: pd.DataFrame, baseline: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """What the drift report compares: the domain's drift features and its predictions; for
    an anchored regression the predicted change from the anchor (``<column>_change``), since
    the level of a trending series moves by design."""
    predicted = list(domain.drift_predictions)
    columns = [*domain.drift_numeric, *domain.drift_categorical, *(c for group in domain.drift_embeddings.values() for c in group)]
    anchor = getattr(domain.task, "anchor", None)
    if not anchor:
        return scored[[*columns, *predicted]], baseline[[*columns, *predicted]], predicted
    changed = [f"{c}_change" for c in predicted]

    def relative(frame: pd.DataFrame) -> pd.DataFrame:
        deltas = {f"{c}_change": frame[c].to_numpy(dtype=float) - frame[anchor].to_numpy(dtype=float) for c in predicted}
        return frame[columns].assign(**deltas)

    return relative(scored), relative(baseline), changed


def latest_run_date(lake: Lake, domain: Domain) -> str:
    dates = sorted({obj.key.split("run_date=")[1].split("/")[0] for obj in lake.list(predictions_prefix(domain))})
    if not dates:
        key = spelled(asset_keys(domain)["predictions"])
        raise dg.Failure(f"no {key} yet: materialise {key} first")
    return dates[-1]

