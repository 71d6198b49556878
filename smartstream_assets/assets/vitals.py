"""What only the vitals domain has: each hour's live readings with their features. The
model, gate, predictions and drift come from ``assets.ml`` (``Domain.scoring_source``
points the predictions here)."""

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..domains.vitals import VITALS_DOMAIN, WINDOW, reading_ids
from ..delta import read_current
from ..io import IO_MANAGER_KEY, LAKE_KEY
from ..keys import current_asset_key, current_key, domain_asset_key, spelled
from ..metadata import preview
from ..resources import LakeResource

HOURLY_KEY = domain_asset_key(VITALS_DOMAIN.name, "hourly")  # vitals/hourly
LIVE_TABLE = "vitals"
HOURLY_LAKE = f"features/{VITALS_DOMAIN.name}/hourly/run_date={{partition}}/data.parquet"

assert HOURLY_KEY.to_user_string() == VITALS_DOMAIN.scoring_source


@dg.asset(
    key=HOURLY_KEY,
    deps=[current_asset_key(LIVE_TABLE)],
    group_name=VITALS_DOMAIN.name,
    io_manager_key=IO_MANAGER_KEY,
    metadata={LAKE_KEY: HOURLY_LAKE},
    kinds={"pandas", "parquet"},
    partitions_def=VITALS_DOMAIN.scoring_cadence.partitions_def(),
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        f"Each hour's live readings from {spelled(current_asset_key(LIVE_TABLE))} (ts in the hour) with their "
        f"rolling features over the patient's last {WINDOW} readings, earlier hours included "
        "(ml.vitals.rolling_features, the function the model was trained with): what vitals/predictions scores."
    ),
)
def hourly(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.Output[dict]:
    from ..ml.vitals import PATIENT, TIME, rolling_features

    store = lake.get()
    key = current_key(LIVE_TABLE)
    found = read_current(store, LIVE_TABLE)
    if found is None:
        raise dg.Failure(f"no {spelled(current_asset_key(LIVE_TABLE))} at {store.describe(key)}: ingest the live readings first")
    current = found.to_pandas()
    times = pd.to_datetime(current[TIME], utc=True)
    partitions = VITALS_DOMAIN.scoring_cadence.partitions_def()
    out = {}
    for partition in context.partition_keys:
        window = partitions.time_window_for_partition_key(partition)
        inside = (times >= pd.Timestamp(window.start)) & (times < pd.Timestamp(window.end))
        rows = current.loc[inside]
        if rows.empty:
            raise dg.Failure(
                f"{spelled(HOURLY_KEY)} {partition}: no reading in {store.describe(key)} falls in this hour "
                f"({len(current)} rows in the table); ingest the hour's readings first"
            )
        history = current.loc[(times < pd.Timestamp(window.start)) & current[PATIENT].isin(rows[PATIENT])]
        frame = rolling_features(rows, window=WINDOW, history=history)
        frame.insert(0, "reading_id", reading_ids(frame).to_numpy())
        frame = frame.sort_values("reading_id", kind="stable").reset_index(drop=True)
        out[partition] = frame
        context.add_asset_metadata(
            {
                "dagster/row_count": len(frame),
                "run_date": partition,
                "patients": int(frame[PATIENT].nunique()),
                "history_rows": len(history),
                "readings_missing": dg.MetadataValue.json({c: int(frame[c].isna().sum()) for c in ("HR", "O2Sat", "Temp", "SBP", "MAP", "DBP", "Resp")}),
                "path": dg.MetadataValue.path(store.describe(HOURLY_LAKE.format(partition=partition))),
                "preview": preview(pa.Table.from_pandas(frame.head(10), preserve_index=False)),
            },
            partition_key=partition,
        )
    return dg.Output(out)


VITALS_ASSETS = [hourly]
VITALS_SCORING_KEYS = [HOURLY_KEY]
