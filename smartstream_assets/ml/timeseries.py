"""Features of a regular time series, for a next-period forecast: pure pandas.

``next_period_frame`` turns readings ``(series, time, value)`` into one row per series
and origin period t on the series' regular grid (weekly by default):

- the target is the reading of period t+1 as measured; a period with no reading is
  never a target (the row is dropped), so a gap is never invented as a label;
- features look at periods <= t only. A missing reading is filled for features only,
  causally: linearly between the readings around it when the later one is at or
  before t, else carried forward from the last reading (a plain linear interpolation
  would read the very target of an origin inside a gap);
- ``value`` (the reading at t, filled as above) is the anchor a change model adds its
  prediction to; ``lag_k`` are the readings k periods back and ``d_lag_k = lag_k - value``
  their level-free difference; ``d_roll_mean_w`` and ``roll_std_w`` summarise the last w
  periods up to t; ``period_of_year`` is the target period's week of the year; and
  ``seasonal_naive`` is the reading one year before the target (``lag_{season-1}``),
  ``step_last_year`` last year's change into the target's period.

Level-free features matter for trees on a trending series: an absolute level the
model never saw falls in its last leaf (see ``estimators.AnchoredRegressor``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LAGS = (1, 2, 3, 4, 52)
WINDOWS = (4, 12, 52)


class SeriesTooShort(ValueError):
    """A series has too few periods to build its lags; the message names it."""


def next_period_frame(
    readings: pd.DataFrame,
    *,
    series: str,
    time: str,
    value: str,
    freq: str = "7D",
    lags: tuple[int, ...] = LAGS,
    windows: tuple[int, ...] = WINDOWS,
    season: int = 52,
    min_periods: int | None = None,
    skip_short: bool = False,
) -> pd.DataFrame:
    """One row per series and origin period; see the module docstring for the columns.

    Rows whose target period has no reading keep ``target = NaN`` only for the latest
    origin of each series (what a forecast scores); other unlabelled origins are dropped.
    A series with fewer than ``min_periods`` periods (default: the longest lag + 2)
    raises ``SeriesTooShort`` naming it and its count; with ``skip_short`` it is left out
    instead and named in ``frame.attrs["series_skipped"]`` (series -> the reason), unless
    every series is short.
    """
    needed = min_periods if min_periods is not None else max(*lags, season) + 2
    frames, skipped = [], {}
    for name, group in readings.groupby(series, sort=True):
        try:
            frames.append(_one_series(name, group, series=series, time=time, value=value, freq=freq,
                                      lags=lags, windows=windows, season=season, needed=needed))  # fmt: skip
        except SeriesTooShort as exc:
            if not skip_short:
                raise
            skipped[str(name)] = str(exc)
    if skipped and not frames:
        raise SeriesTooShort("; ".join(skipped.values()))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs["series_skipped"] = skipped
    return out


def _one_series(name, group, *, series, time, value, freq, lags, windows, season, needed) -> pd.DataFrame:
    times = pd.to_datetime(group[time], utc=True)
    observed = pd.Series(group[value].to_numpy(dtype=np.float64), index=times).groupby(level=0).last().sort_index()
    observed = observed[observed.notna()]
    if observed.empty:
        raise SeriesTooShort(f"series {name!r} has no readings")
    grid = pd.date_range(observed.index[0], observed.index[-1], freq=freq)
    raw = observed.reindex(grid)  # NaN where the grid has no reading (a gap, or off the grid)
    if len(grid) < needed:
        raise SeriesTooShort(
            f"series {name!r} has {len(grid)} periods from {grid[0].date()} to {grid[-1].date()}; "
            f"its lags need at least {needed}"
        )
    filled = causal_fill(raw)
    out = pd.DataFrame({series: name, time: grid, value: filled.to_numpy(), "observed": raw.notna().to_numpy()})
    for lag in sorted(set(lags) | {season - 1, season}):
        lagged = _lagged(raw, filled, lag)
        out[f"lag_{lag}"] = lagged
        out[f"d_lag_{lag}"] = lagged - out[value]
    for window in windows:
        rolling = filled.rolling(window, min_periods=window)
        out[f"d_roll_mean_{window}"] = rolling.mean().to_numpy() - out[value]
        out[f"roll_std_{window}"] = rolling.std().to_numpy()
    target_times = grid + pd.tseries.frequencies.to_offset(freq)
    out["period_of_year"] = target_times.isocalendar().week.to_numpy().astype("int64")
    out["seasonal_naive"] = out[f"lag_{season - 1}"]
    out["step_last_year"] = out[f"lag_{season - 1}"] - out[f"lag_{season}"]
    out["target"] = raw.shift(-1).to_numpy()  # as measured: NaN when next period has no reading
    out = out.dropna(subset=[f"lag_{max(*lags, season)}"]).reset_index(drop=True)
    latest = out.index == len(out) - 1
    return out[out["target"].notna() | latest].reset_index(drop=True)


def causal_fill(raw: pd.Series) -> pd.Series:
    """Each period's reading, or for a missing one what was known by then: carried forward."""
    return raw.ffill()


def _lagged(raw: pd.Series, filled: pd.Series, lag: int) -> np.ndarray:
    """The reading ``lag`` periods before each origin t, known at t: observed, else linear
    between the readings around it when the later one is at or before t, else carried
    forward."""
    positions = np.arange(len(raw))
    observed = raw.notna().to_numpy()
    # the position of the next reading at or after each period (len(raw) when none)
    next_obs = np.where(observed, positions, len(raw))
    next_obs = np.minimum.accumulate(next_obs[::-1])[::-1]
    linear = raw.interpolate(method="linear", limit_area="inside").to_numpy()
    source = positions - lag
    out = np.full(len(raw), np.nan)
    valid = source >= 0
    src = source[valid]
    known_by_origin = next_obs[src] <= positions[valid]  # the reading after the gap is not in the future
    out[valid] = np.where(observed[src], raw.to_numpy()[src], np.where(known_by_origin, linear[src], filled.to_numpy()[src]))
    return out
