"""The IO manager of the ML zones: features, anomaly flags and predictions flow between
assets as pandas frames stored as Parquet in the lake (local or S3), so an asset takes
a typed input instead of re-reading the lake by hand. CDC (trusted, current) keeps its
own I/O: it writes partitions with compare-and-swap and tombstones, which is not a
value handed from one asset to the next.

Where a value lives is declared by the asset, not guessed from its key: each asset that
uses this IO manager carries ``metadata={LAKE_KEY: "<lake key>"}`` (from ``keys.py``),
with ``{partition}`` in it for partitioned assets. A partitioned output is a dict
partition key -> frame (a single-run backfill produces several partitions at once);
a partitioned input is loaded the same way, for the partitions of the run.
Writes go through ``Lake.write_parquet``: atomic, so no reader sees half a frame.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pyarrow as pa

from .resources import LakeResource

LAKE_KEY = "smartstream/lake_key"
IO_MANAGER_KEY = "ml_io"


class LakeParquetIOManager(dg.ConfigurableIOManager):
    """pandas frames <-> Parquet objects of the lake, at the key the asset declares."""

    lake: LakeResource  # nested: the same lake the assets read

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        if obj is None:
            return
        template = _template(context.definition_metadata, context.asset_key)
        store = self.lake.get()
        if context.has_asset_partitions:
            if not isinstance(obj, dict):
                raise TypeError(f"{context.asset_key.to_user_string()} is partitioned: return {{partition key: frame}}")
            unexpected = set(obj) - set(context.asset_partition_keys)
            if unexpected:
                raise ValueError(
                    f"{context.asset_key.to_user_string()} returned partitions {sorted(unexpected)} this run does not materialise"
                )
            for partition, frame in obj.items():
                store.write_parquet(template.format(partition=partition), _table(frame))
            return
        store.write_parquet(template, _table(obj))

    def load_input(self, context: dg.InputContext):
        upstream = context.upstream_output
        template = _template(upstream.definition_metadata if upstream else None, context.asset_key)
        store = self.lake.get()
        if context.has_asset_partitions:
            return {p: _read(store, template.format(partition=p), context) for p in context.asset_partition_keys}
        return _read(store, template, context)


def _template(metadata, asset_key) -> str:
    value = (metadata or {}).get(LAKE_KEY)
    value = getattr(value, "value", value)  # a MetadataValue or the raw string
    if not value:
        raise dg.DagsterInvariantViolationError(
            f"{asset_key.to_user_string()} uses the lake IO manager but declares no {LAKE_KEY} metadata"
        )
    return str(value)


def _table(frame) -> pa.Table:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"the lake IO manager stores pandas DataFrames (got {type(frame).__name__})")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _read(store, key: str, context: dg.InputContext) -> pd.DataFrame:
    if not store.exists(key):
        raise dg.Failure(
            f"{context.asset_key.to_user_string()} has nothing at {store.describe(key)}: materialise it first"
        )
    return store.read_parquet(key).to_pandas()
