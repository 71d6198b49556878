"""The ML lineage of a domain, built from its ``Domain`` by shared code, whatever its
task kind (binary classification, regression, multi-output regression):

    <table>/current → <name>/features → <name>/<model>_candidate → <name>/<model>_champion
                                                                  (→ <name>/<model>_approval)
                                      → <name>/anomalies
    <name>/features + champion (+ anomalies) → <name>/predictions → <name>/drift_report

One small factory per role (``ml_train``: features, candidate, champion, approval;
``ml_score``: anomalies, predictions, drift report); the logic lives in
``smartstream_assets.ml``, the metadata presentation in ``smartstream_assets.metadata``,
and frames flow between the assets through the lake IO manager (``io.py``).
"""

import dagster as dg
import pandas as pd
import pyarrow as pa

from ..domains import Domain
from ..keys import anomalies_key, asset_keys, drift_report_key, evaluation_key, features_key, predictions_key  # noqa: F401 (re-exported)
from ..lake import Lake
from ..metadata import drift_markdown  # noqa: F401 (re-exported)
from .ml_config import ApprovalConfig, CandidateConfig, GateConfig  # noqa: F401 (re-exported)
from .ml_monitor import monitor_assets
from .ml_score import anomaly_asset, drift_asset, latest_run_date, predictions_asset  # noqa: F401 (re-exported)
from .ml_train import approval_asset, candidate_asset, candidate_version, champion_asset, fairness_check, features_asset  # noqa: F401


def build_ml_assets(domain: Domain) -> list[dg.AssetsDefinition]:
    """The shared lineage of one domain; a protected facet the domain does not measure is
    a definition error."""
    from ..ml.fairness import FairnessDefinitionError, validate_protected_facets

    try:
        validate_protected_facets(domain.name, domain.facets, domain.protected_facets)
    except FairnessDefinitionError as exc:
        raise dg.DagsterInvalidDefinitionError(str(exc)) from None
    keys = asset_keys(domain)
    assets = [features_asset(domain, keys), candidate_asset(domain, keys), champion_asset(domain, keys), approval_asset(domain, keys)]
    if domain.anomaly_model:
        assets.append(anomaly_asset(domain, keys))
    return assets + [predictions_asset(domain, keys), drift_asset(domain, keys), *monitor_assets(domain, keys)]


def write_frame(lake: Lake, key: str, frame: pd.DataFrame) -> None:
    lake.write_parquet(key, pa.Table.from_pandas(frame, preserve_index=False))

