"""The co2 domain: next week's CO2 reading per station, a time-series regression.

The SageMaker CO2 pipeline (prepare → tune → train best → bias check → evaluate →
conditional deploy → monitor → alert → retrain, endpoint test, cleanup) as one domain
of the graph, on the shared layer: ``co2/features`` (``ml.timeseries``: each station's
weekly grid, lags and rolling windows over past weeks only, the next week's reading as
measured as the target), an XGBoost candidate anchored on the latest reading (trees
cannot extrapolate a rising level; they learn the change), time-ordered windows
(test = the last 104 weeks, validation the 104 before, the final model refitted on
train + validation), the gate (R² bar, RMSE below persistence and seasonal naive, not
worse than the champion), hourly predictions of the next week from each station's
latest reading, and the hourly monitors of ``assets.co2``.
"""

from __future__ import annotations

import pandas as pd

from ..ml.monitoring import season_of
from . import AT_LEAST, Cadence, ColumnForecast, Domain, DomainExtras, DomainPlugin, FairnessThresholds, Monitoring, QualityBar, Regression, TimeSplit

LAGS = (1, 2, 3, 4, 52)
WINDOWS = (4, 12, 52)
# origins per station a scoring run scores: the newest one is next week's forecast; the
# others, whose next reading has arrived, are what the monitors compare with actuals. A
# whole year, so the seasonal features are compared over a whole cycle
MONITOR_WEEKS = 52
# the drift reference: the newest two years the model was fitted on (its validation window)
REFERENCE_WEEKS = 104


def co2_features(current: pd.DataFrame) -> pd.DataFrame:
    """``co2/current`` → one row per station and origin week (``ml.timeseries.next_period_frame``),
    with ``reading_id`` (station@date), ``season`` (of ``measured_at``) and
    ``persistence_seasonal_step``: this week's reading plus the mean change into the
    target's week of the year over the station's earlier years (a stronger plain
    baseline than persistence on a seasonal series; only past years are averaged).

    A station with too little history is left out (named in ``attrs["series_skipped"]``)
    unless every station is too short (``SeriesTooShort``, a clear error)."""
    from ..ml.timeseries import next_period_frame

    frame = next_period_frame(current, series="station", time="measured_at", value="co2_ppm", lags=LAGS, windows=WINDOWS, skip_short=True)
    skipped = dict(frame.attrs.get("series_skipped", {}))
    frame["reading_id"] = frame["station"].astype(str) + "@" + frame["measured_at"].dt.strftime("%Y-%m-%d")
    frame["season"] = season_of(frame["measured_at"]).to_numpy()
    step = frame["target"] - frame["co2_ppm"]
    # earlier years' steps into the same week of the year; the step of an origin is known
    # one week later, and the previous same-week origin is a year back: no leak
    past_mean = step.groupby([frame["station"], frame["period_of_year"]]).transform(lambda s: s.shift(1).expanding().mean())
    frame["persistence_seasonal_step"] = frame["co2_ppm"] + past_mean
    frame.attrs["series_skipped"] = skipped
    return frame


def latest_weeks(frame: pd.DataFrame, weeks: int = MONITOR_WEEKS) -> pd.DataFrame:
    """each station's newest 52 weekly origins, the newest one being next week's forecast
    (``weeks`` sets how many)."""
    if frame.empty:
        return frame
    order = frame.sort_values(["station", "measured_at"])
    return order.groupby("station", sort=True).tail(weeks).reset_index(drop=True)


def reference_weeks(train: pd.DataFrame) -> pd.DataFrame:
    return latest_weeks(train, REFERENCE_WEEKS)


NUMERIC = (
    "co2_ppm",  # the anchor: the model predicts the change from it
    *(f"d_lag_{k}" for k in (*LAGS[:-1], 51, 52)),
    *(f"d_roll_mean_{w}" for w in WINDOWS),
    *(f"roll_std_{w}" for w in WINDOWS),
    "period_of_year",
    "step_last_year",
)

CO2 = Domain(
    name="co2",
    table="co2",
    model="regressor",
    registered_model="smartstream-co2-regressor",
    id_column="reading_id",
    task=Regression(
        target="target",
        objective="rmse",
        anchor="co2_ppm",
        split=TimeSplit("measured_at", holdout=104, validation=104, refit_on_validation=True),
        baselines=(
            ColumnForecast("persistence", ("co2_ppm",)),
            ColumnForecast("seasonal_naive", ("seasonal_naive",)),
            # reported, not gated: persistence plus the week of the year's mean change
            ColumnForecast("persistence_seasonal_step", ("persistence_seasonal_step",)),
        ),
    ),
    numeric=NUMERIC,
    # the facets are features too (one-hot): the fairness report reads them off the holdout
    categorical=("station", "season"),
    make_features=co2_features,
    facets=("station", "season"),
    protected_facets=("station", "season"),
    # R² of levels over two years is near 1 for any sane forecast; the baselines are the
    # real bar: RMSE at or below persistence's and seasonal naive's on the test window
    quality_bar=QualityBar(
        metrics={"r2": (AT_LEAST, 0.9)},
        beat_baselines={"persistence": 1.0, "seasonal_naive": 1.0},
        max_fairness=1.0,
    ),
    # worst |group MAE / overall MAE - 1| over stations and seasons
    fairness=FairnessThresholds(warn=0.5, error=1.0),
    requires_approval=False,
    drift_share_threshold=0.5,
    retrain_cooldown_hours=6.0,
    reference_rows=5000,
    positive_label="",
    scoring_cadence=Cadence(every="hour", start="2026-11-01-00:00", minute_offset=5, label="hourly",
                            description="each hour scored 5 minutes after it ends"),  # fmt: skip
    select_rows=latest_weeks,
    prediction_label="CO2 (ppm) the week after",
    estimators=("xgboost",),
    reference_window=reference_weeks,
    # level-free features only: the level (co2_ppm) trends and the calendar moves by design
    drift_features=tuple(c for c in NUMERIC if c.startswith(("d_", "roll_std")) or c == "step_last_year"),
    monitoring=Monitoring(max_error_ratio=1.5, max_bias_change=0.5, min_rows=8),
    summary_metrics=(("r2", "R²"), ("rmse", "RMSE")),
)


def _extras() -> DomainExtras:
    return DomainExtras()


PLUGIN = DomainPlugin(domain=CO2, extras=_extras)
