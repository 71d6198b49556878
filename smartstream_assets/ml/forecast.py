"""Monthly counts of active entities from a trusted change log, and a Prophet
forecast of such a monthly series (the employees domain's headcount forecast).

Prophet is imported inside ``forecast_monthly`` (it loads Stan).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

ORDER_COLUMNS = ["_commit_ts", "_source_key", "_source_line"]  # commit order, as the CDC apply uses
OPS = ("insert", "update", "delete")
_INSERT, _UPDATE, _DELETE = range(3)  # codes of OPS
# Fourier order of the yearly season. Prophet's default (10) is made for daily data:
# twelve points a year cannot pin down ten harmonics, and with two to three years of
# months the fit measured 7-11 s per series and missed a known trend + season by 35-47
# (noise 10) where order 3 took 0.1 s and missed by 3-4.
YEARLY_FOURIER_ORDER = 3


def monthly_active_count(
    changes: pd.DataFrame,
    key: list[str],
    *,
    exit_when: Callable[[pd.DataFrame], pd.Series] | None = None,
) -> pd.DataFrame:
    """Hires, exits and headcount per calendar month (UTC) of a trusted change log.

    Changes are taken in commit order (``_commit_ts``, then ``_source_key``, then
    ``_source_line``). Per entity (``key``):

    - an ``insert`` of an entity that is not active is an entry (a hire, or a re-hire
      after an exit); an insert of an active entity is only an upsert;
    - a ``delete`` of an active entity is an exit;
    - with ``exit_when`` (a vectorised predicate on the change rows, e.g.
      ``lambda rows: rows["LeaveOrNot"] == 1``), an ``update`` of an active entity
      whose predicate turns true (false, or absent, on its previous row image) is an
      exit: the entity stays in the table but no longer counts;
    - nothing else changes who is active: an update never hires, a delete of an
      inactive entity is no second exit.

    Returns one row per month from the month of the first change to that of the last
    (months without changes included): ``month`` (month start, tz-naive UTC
    datetime64), ``hires``, ``exits`` (int64) and ``headcount`` (active at month end).
    """
    _check(changes, key)
    n = len(changes)
    if n == 0:
        return pd.DataFrame(
            {
                "month": pd.Series(dtype="datetime64[ns]"),
                "hires": pd.Series(dtype="int64"),
                "exits": pd.Series(dtype="int64"),
                "headcount": pd.Series(dtype="int64"),
            }
        )

    op = pd.Categorical(changes["_op"], categories=OPS).codes  # -1: not one of OPS
    if (op < 0).any():
        unknown = sorted(map(str, pd.unique(changes["_op"][op < 0])))
        raise ValueError(f"unknown _op values {unknown} (expected {', '.join(OPS)})")
    ts = _utc_naive(changes["_commit_ts"])
    if ts.isna().any():
        raise ValueError("_commit_ts has missing values")
    flagged = np.zeros(n, bool)
    if exit_when is not None:
        flagged = np.asarray(pd.Series(exit_when(changes)).fillna(False).astype(bool).to_numpy())
        if flagged.shape != (n,):
            raise ValueError("exit_when must return one boolean per change row")
    flagged &= op != _DELETE  # a deleted row has no image to flag

    order, first = _entity_commit_order(changes, key, ts)
    op, flagged = op[order], flagged[order]
    was_flagged = np.roll(flagged, 1)
    was_flagged[first] = False

    # Each change either sets the entity active (1), inactive (0) or leaves it as it was
    # (-1); the state after a change is the last setting so far within the entity
    # (forward fill, with "inactive" before its first change).
    setting = np.full(n, -1, np.int8)
    setting[op == _INSERT] = 1
    setting[op == _DELETE] = 0
    setting[(op == _UPDATE) & flagged & ~was_flagged] = 0
    anchored = (setting >= 0) | first
    last = np.maximum.accumulate(np.where(anchored, np.arange(n), 0))
    active = setting[last] == 1
    was_active = np.roll(active, 1)
    was_active[first] = False
    hire = (setting == 1) & ~was_active
    exit_ = (setting == 0) & was_active

    month = ts.to_numpy()[order].astype("datetime64[M]")
    months = np.arange(month.min(), month.max() + 1)
    slot = (month - months[0]).astype(np.int64)
    hires = np.bincount(slot[hire], minlength=len(months)).astype(np.int64)
    exits = np.bincount(slot[exit_], minlength=len(months)).astype(np.int64)
    return pd.DataFrame(
        {
            "month": months.astype("datetime64[ns]"),
            "hires": hires,
            "exits": exits,
            "headcount": np.cumsum(hires - exits),
        }
    )


def forecast_monthly(
    history: pd.DataFrame,
    column: str,
    periods: int = 6,
    interval_width: float = 0.8,
    *,
    seed: int = 0,
) -> pd.DataFrame:
    """Prophet forecast of ``history[column]`` (one row per month, ``month`` = month
    start) for the ``periods`` months after the last one.

    Yearly seasonality (Fourier order ``YEARLY_FOURIER_ORDER``) only with at least
    24 months of history (a season needs two years to be told from trend), never
    weekly or daily. Returns ``month``, ``yhat``, ``yhat_lower``, ``yhat_upper``
    (the ``interval_width`` interval).
    The same input and ``seed`` give the same output: the fit is a deterministic
    optimisation and the interval sampling draws from a seeded global NumPy state
    that is restored afterwards. Raises ``ValueError`` (from Prophet) with fewer
    than two months.
    """
    if periods < 1:
        raise ValueError("periods must be at least 1")
    frame = pd.DataFrame(
        {"ds": pd.to_datetime(history["month"]).dt.tz_localize(None), "y": history[column].astype(float)}
    ).sort_values("ds")
    months = frame["ds"].dt.to_period("M").nunique()

    with _quiet_stan():
        from prophet import Prophet

        model = Prophet(
            yearly_seasonality=YEARLY_FOURIER_ORDER if months >= 24 else False,
            weekly_seasonality=False,
            daily_seasonality=False,
            interval_width=interval_width,
        )
        model.fit(frame)
        future = model.make_future_dataframe(periods=periods, freq="MS", include_history=False)
        # Prophet samples its intervals from NumPy's global generator.
        state = np.random.get_state()
        np.random.seed(seed)
        try:
            predicted = model.predict(future)
        finally:
            np.random.set_state(state)

    result = predicted[["ds", "yhat", "yhat_lower", "yhat_upper"]].rename(columns={"ds": "month"})
    return result.reset_index(drop=True)


# ------------------------------------------------------------------ helpers


def _check(changes: pd.DataFrame, key: list[str]) -> None:
    if not key:
        raise ValueError("key must name at least one column")
    missing = [c for c in ["_op", *ORDER_COLUMNS, *key] if c not in changes.columns]
    if missing:
        raise ValueError(f"change log lacks columns {missing}")


def _entity_commit_order(changes: pd.DataFrame, key: list[str], ts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Row positions grouped by entity, each entity's changes in commit order, and a
    mask of each entity's first change (in that order)."""
    source_rank = pd.factorize(changes["_source_key"].astype(str), sort=True)[0]
    lines = changes["_source_line"].fillna(-1).to_numpy(np.int64)
    commit_order = np.lexsort((lines, source_rank, ts.to_numpy().view(np.int64)))
    entity = changes[key].iloc[commit_order].groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    by_entity = np.argsort(entity, kind="stable")  # stable: keeps commit order within an entity
    entity = entity[by_entity]
    first = np.ones(len(entity), bool)
    first[1:] = entity[1:] != entity[:-1]
    return commit_order[by_entity], first


def _utc_naive(values: pd.Series) -> pd.Series:
    """Timestamps as tz-naive UTC (naive input is taken to be UTC already)."""
    ts = pd.to_datetime(values)
    if ts.dt.tz is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    return ts.astype("datetime64[ns]")


@contextlib.contextmanager
def _quiet_stan():
    """cmdstanpy logs every optimisation at INFO and Prophet its defaults; keep
    warnings and errors only, and put the levels back afterwards."""
    import prophet  # noqa: F401  (sets its logger to INFO when first imported)
    from cmdstanpy.utils import get_logger

    # Both libraries set their loggers' levels on first use (cmdstanpy to DEBUG when
    # first asked for it): let that happen before lowering them, not mid-fit.
    get_logger()
    loggers = [logging.getLogger(name) for name in ("cmdstanpy", "prophet")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
