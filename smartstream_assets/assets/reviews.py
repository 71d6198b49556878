"""What only the reviews domain has: its training set with targets and embeddings, and
the hourly embeddings of the reviews that arrive. The model, gate, predictions and drift
come from ``assets.ml`` (``Domain.source`` / ``Domain.scoring_source`` point them here).

Both assets embed through the lake's cache (``ml.embeddings``): a text is encoded once,
whatever the number of reruns or the asset that meets it first; the metadata counts the
cache hits and the texts encoded.
"""

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..domains.reviews import REVIEWS
from ..delta import read_current
from ..io import IO_MANAGER_KEY, LAKE_KEY
from ..keys import current_asset_key, current_key, domain_asset_key, spelled
from ..metadata import preview
from ..resources import LakeResource, SourceDbResource

LABELLED_KEY = domain_asset_key(REVIEWS.name, "labelled")  # reviews/labelled
EMBEDDINGS_KEY = domain_asset_key(REVIEWS.name, "embeddings")  # reviews/embeddings
LABELLED_TABLE = "labelled_reviews"  # in $SMARTSTREAM_REVIEWS_DB
LABELLED_COLUMNS = ["review_id", "created_at", "text", "aspect_terms", "aspect_categories"]
HOURLY_TABLE = "reviews"
HOURLY_COLUMNS = ["review_id", "created_at", "product", "text"]
# lake keys
LABELLED_LAKE = f"features/{REVIEWS.name}/labelled/data.parquet"
EMBEDDINGS_LAKE = f"features/{REVIEWS.name}/embeddings/run_date={{partition}}/data.parquet"
# beside the table's quarantine Delta table (its vacuum deletes files its log does not name)
REFUSED_LAKE = f"quarantine/_annotations/{REVIEWS.table}/data.parquet"

assert LABELLED_KEY.to_user_string() == REVIEWS.source and EMBEDDINGS_KEY.to_user_string() == REVIEWS.scoring_source


def _embed(store, texts: pd.Series) -> tuple[pd.DataFrame, dict]:
    from ..ml.absa import model_inputs
    from ..ml.embeddings import ENCODER, EmbeddingCache, EmbeddingError, embed_texts

    try:
        vectors, stats = embed_texts(texts.tolist(), cache=EmbeddingCache(store))
    except EmbeddingError as exc:
        raise dg.Failure(str(exc)) from None
    return model_inputs(texts.tolist(), vectors), {
        "encoder": ENCODER,
        "texts": stats.texts,
        "unique_texts": stats.unique,
        "cache_hits": stats.cache_hits,
        "texts_encoded": stats.encoded,
        "cache_shards_read": stats.shards_read,
        "cache_shards_written": stats.shards_written,
    }


@dg.asset(
    key=LABELLED_KEY,
    deps=[current_asset_key(REVIEWS.table)],
    group_name=REVIEWS.name,
    io_manager_key=IO_MANAGER_KEY,
    metadata={LAKE_KEY: LABELLED_LAKE},
    kinds={"sentencetransformers", "parquet"},
    description=(
        f"The training set: {spelled(current_asset_key(REVIEWS.table))} (or the PostgreSQL table {LABELLED_TABLE} "
        "when SMARTSTREAM_REVIEWS_DB is set), its three targets from the aspect annotations (sentiment_score, "
        "engagement_score, implicitness_degree), the all-MiniLM-L6-v2 embedding of each text (cached in the lake "
        "by text hash) and text counts. Rows whose annotations are malformed go to quarantine with the reason; "
        "rows without any aspect are not trained on."
    ),
)
def labelled(context: dg.AssetExecutionContext, lake: LakeResource, reviews_db: SourceDbResource) -> dg.Output[pd.DataFrame]:
    from ..ml.absa import OUTPUTS, targets_frame
    from ..ml.sinks import SinkError

    store = lake.get()
    if reviews_db.enabled():
        source = reviews_db.describe(LABELLED_TABLE)
        try:
            raw = reviews_db.read(LABELLED_TABLE, LABELLED_COLUMNS)
        except SinkError as exc:
            raise dg.Failure(f"{spelled(LABELLED_KEY)}: {exc}") from None
    else:
        source = store.describe(current_key(REVIEWS.table))
        found = read_current(store, REVIEWS.table)
        if found is None:
            raise dg.Failure(f"no {spelled(current_asset_key(REVIEWS.table))} at {source}: ingest the labelled reviews first")
        raw = found.to_pandas()
        missing = [c for c in LABELLED_COLUMNS if c not in raw.columns]
        if missing:
            raise dg.Failure(f"{source} lacks columns {', '.join(missing)} that {spelled(LABELLED_KEY)} needs")
    raw = raw[LABELLED_COLUMNS].sort_values("review_id", kind="stable").reset_index(drop=True)
    frame, refused = targets_frame(raw)
    # the refused rows of this run replace the previous run's: a rerun is idempotent
    store.write_parquet(REFUSED_LAKE, pa.Table.from_pandas(refused, preserve_index=False))
    for reason in refused["reason"].head(5):
        context.log.warning(f"{spelled(LABELLED_KEY)}: refused a row: {reason}")
    has_aspect = frame[list(OUTPUTS)].notna().all(axis=1)
    frame = frame.loc[has_aspect].reset_index(drop=True)
    if frame.empty:
        raise dg.Failure(f"{source}: no row with an aspect to train on ({len(raw)} rows, {len(refused)} refused)")
    inputs, stats = _embed(store, frame["text"])
    out = frame[["review_id", "created_at", "text"]].join(inputs).join(frame[list(OUTPUTS)])
    summary = out[list(OUTPUTS)].describe().T[["mean", "std", "min", "max"]]
    return dg.Output(
        out,
        metadata={
            "dagster/row_count": len(out),
            "source": source,
            "rows_read": len(raw),
            "rows_refused": len(refused),
            "refused_reasons": dg.MetadataValue.md(
                refused[["review_id", "reason"]].head(20).to_markdown(index=False) if len(refused) else "none"
            ),
            "refused_path": dg.MetadataValue.path(store.describe(REFUSED_LAKE)),
            "rows_without_aspects": int((~has_aspect).sum()),
            **stats,
            "targets": dg.MetadataValue.md(summary.round(3).to_markdown()),
            "path": dg.MetadataValue.path(store.describe(LABELLED_LAKE)),
        },
    )


@dg.asset(
    key=EMBEDDINGS_KEY,
    deps=[current_asset_key(HOURLY_TABLE)],
    group_name=REVIEWS.name,
    io_manager_key=IO_MANAGER_KEY,
    metadata={LAKE_KEY: EMBEDDINGS_LAKE},
    kinds={"sentencetransformers", "parquet"},
    partitions_def=REVIEWS.scoring_cadence.partitions_def(),
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        f"Each hour's reviews from {spelled(current_asset_key(HOURLY_TABLE))} (created_at in the hour) with the "
        "all-MiniLM-L6-v2 embedding of each text, batched and cached in the lake by text hash (a text is "
        "encoded once whatever the number of reruns), and text counts: what reviews/predictions scores."
    ),
)
def embeddings(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.Output[dict]:
    store = lake.get()
    key = current_key(HOURLY_TABLE)
    found = read_current(store, HOURLY_TABLE)
    if found is None:
        raise dg.Failure(f"no {spelled(current_asset_key(HOURLY_TABLE))} at {store.describe(key)}: ingest the hourly reviews first")
    current = found.to_pandas()
    missing = [c for c in HOURLY_COLUMNS if c not in current.columns]
    if missing:
        raise dg.Failure(f"{store.describe(key)} lacks columns {', '.join(missing)} that {spelled(EMBEDDINGS_KEY)} needs")
    times = pd.to_datetime(current["created_at"], utc=True)
    partitions = REVIEWS.scoring_cadence.partitions_def()
    out = {}
    for partition in context.partition_keys:
        window = partitions.time_window_for_partition_key(partition)
        rows = current.loc[(times >= pd.Timestamp(window.start)) & (times < pd.Timestamp(window.end)), HOURLY_COLUMNS]
        rows = rows.sort_values("review_id", kind="stable").reset_index(drop=True)
        if rows.empty:
            raise dg.Failure(
                f"{spelled(EMBEDDINGS_KEY)} {partition}: no review in {store.describe(key)} was created in this hour "
                f"({len(current)} rows in the table); ingest the hour's reviews first"
            )
        inputs, stats = _embed(store, rows["text"])
        out[partition] = rows.join(inputs)
        mix = rows["product"].value_counts().to_dict()
        context.add_asset_metadata(
            {
                "dagster/row_count": len(rows),
                "run_date": partition,
                **stats,
                "product_mix": dg.MetadataValue.json({str(k): int(v) for k, v in mix.items()}),
                "mean_words": float(inputs["n_words"].mean()),
                "path": dg.MetadataValue.path(store.describe(EMBEDDINGS_LAKE.format(partition=partition))),
                "preview": preview(pa.Table.from_pandas(rows.head(10), preserve_index=False)),
            },
            partition_key=partition,
        )
    return dg.Output(out)


REVIEWS_ASSETS = [labelled, embeddings]
REVIEWS_SCORING_KEYS = [EMBEDDINGS_KEY]
