"""monthly_active_count on hand-built and simulated change logs; forecast_monthly
(Prophet) on series whose future is known."""

import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from smartstream_assets.cdc.apply import current_rows, last_change_per_key
from smartstream_assets.ml import forecast
from smartstream_assets.ml.forecast import forecast_monthly, monthly_active_count
from smartstream_assets.producers.employees import EmployeeSimulator

LEAVING = lambda rows: rows["LeaveOrNot"] == 1  # noqa: E731  (the employees domain's exit flag)


def change(op, ts, source, line, employee, leave=0):
    return {
        "_op": op,
        "_commit_ts": pd.Timestamp(ts, tz="UTC"),
        "_source_key": source,
        "_source_line": line,
        "EmployeeID": employee,
        "LeaveOrNot": leave,
    }


# Jan: 1, 2, 3 hired. Feb: 2 deleted, 3 flagged as leaving, 1 transferred, 4 hired.
# Mar: nothing. Apr: 2 re-hired, 3 (already gone by its flag) updated then deleted.
# May, equal commit times: 5 inserted (a.csv) before its delete (b.csv); 6 inserted
# (line 2) before its delete (line 3); 3 re-hired.
CHANGES = [
    change("insert", "2024-01-05 09:00", "LOAD0001.csv", 1, 1),
    change("insert", "2024-01-05 09:00", "LOAD0001.csv", 2, 2),
    change("insert", "2024-01-05 09:00", "LOAD0001.csv", 3, 3),
    change("delete", "2024-02-03 10:00", "cdc/0002.csv", 1, 2),
    change("update", "2024-02-03 10:05", "cdc/0002.csv", 2, 3, leave=1),
    change("update", "2024-02-16 10:00", "cdc/0003.csv", 1, 1),
    change("insert", "2024-02-29 23:59:59", "cdc/0003.csv", 2, 4),
    change("insert", "2024-04-01 00:00", "cdc/0004.csv", 1, 2),
    change("update", "2024-04-10 12:00", "cdc/0004.csv", 2, 3, leave=1),
    change("delete", "2024-04-30 23:59:59", "cdc/0004.csv", 3, 3, leave=1),
    change("delete", "2024-05-02 08:00", "cdc/b.csv", 1, 5),
    change("insert", "2024-05-02 08:00", "cdc/a.csv", 7, 5),
    change("delete", "2024-05-02 08:00", "cdc/c.csv", 3, 6),
    change("insert", "2024-05-02 08:00", "cdc/c.csv", 2, 6),
    change("insert", "2024-05-20 08:00", "cdc/d.csv", 1, 3),
]
MONTHS = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2024-04-01", "2024-05-01"])


def shuffled(rows, seed=0) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    return frame.iloc[np.random.default_rng(seed).permutation(len(frame))].reset_index(drop=True)


def test_monthly_counts_with_exit_flag_are_exact():
    result = monthly_active_count(shuffled(CHANGES), ["EmployeeID"], exit_when=LEAVING)
    expected = pd.DataFrame(
        {"month": MONTHS, "hires": [3, 1, 0, 1, 3], "exits": [0, 2, 0, 0, 2], "headcount": [3, 2, 2, 3, 4]}
    )
    pd.testing.assert_frame_equal(result, expected)


def test_monthly_counts_without_exit_flag_count_deletes_only():
    result = monthly_active_count(shuffled(CHANGES, seed=1), ["EmployeeID"])
    assert result["hires"].tolist() == [3, 1, 0, 1, 3]
    assert result["exits"].tolist() == [0, 1, 0, 1, 2]  # 3 leaves when deleted in April
    assert result["headcount"].tolist() == [3, 3, 3, 3, 4]


def test_equal_commit_times_are_ordered_by_source_key_then_line():
    rows = [c for c in CHANGES if c["EmployeeID"] in (5, 6)]
    result = monthly_active_count(pd.DataFrame(rows), ["EmployeeID"])
    assert (result["hires"].item(), result["exits"].item(), result["headcount"].item()) == (2, 2, 0)
    # The same changes with source keys swapped: each delete now comes first (of an
    # entity not yet there: no exit), so both stay hired.
    swapped = pd.DataFrame(rows).assign(
        _source_key=lambda f: f["_source_key"].map({"cdc/a.csv": "cdc/b.csv", "cdc/b.csv": "cdc/a.csv", "cdc/c.csv": "cdc/c.csv"}),
        _source_line=lambda f: np.where(f["EmployeeID"] == 6, 5 - f["_source_line"], f["_source_line"]),
    )
    result = monthly_active_count(swapped, ["EmployeeID"])
    assert (result["hires"].item(), result["exits"].item(), result["headcount"].item()) == (2, 0, 2)


def test_composite_keys_are_separate_entities():
    rows = [
        change("insert", "2024-01-01", "s", 1, 1) | {"Company": "a"},
        change("insert", "2024-01-02", "s", 2, 1) | {"Company": "b"},
        change("delete", "2024-02-01", "s", 3, 1) | {"Company": "a"},
    ]
    result = monthly_active_count(pd.DataFrame(rows), ["Company", "EmployeeID"])
    assert result["hires"].tolist() == [2, 0] and result["headcount"].tolist() == [2, 1]


def test_unknown_op_and_missing_columns_are_errors():
    with pytest.raises(ValueError, match="unknown _op"):
        monthly_active_count(pd.DataFrame([change("upsert", "2024-01-01", "s", 1, 1)]), ["EmployeeID"])
    with pytest.raises(ValueError, match="lacks columns"):
        monthly_active_count(pd.DataFrame(CHANGES).drop(columns=["_source_line"]), ["EmployeeID"])


def test_empty_change_log_gives_an_empty_table():
    result = monthly_active_count(pd.DataFrame(CHANGES).head(0), ["EmployeeID"])
    assert list(result.columns) == ["month", "hires", "exits", "headcount"] and result.empty


def simulated_log(employees: int, batches: int, size: int, seed: int = 7) -> pd.DataFrame:
    """A full load and CDC batches of the simulated HR table as a trusted change log."""
    sim = EmployeeSimulator(seed)
    start = datetime(2024, 1, 3, tzinfo=timezone.utc)
    load = sim.full_load(employees, start)
    parts = [load.assign(_op="insert", _commit_ts=pd.Timestamp(start), _source_key="LOAD0001.csv", _source_line=np.arange(len(load)))]
    for i in range(batches):
        when = start + timedelta(days=15 * (i + 1))
        ops, stamps, frame = sim.changes(when, size)
        parts.append(
            frame.assign(
                _op=pd.Series(ops).map({"I": "insert", "U": "update", "D": "delete"}).to_numpy(),
                _commit_ts=pd.to_datetime(stamps, utc=True),
                _source_key=f"cdc/{i:04d}.csv",
                _source_line=np.arange(len(frame)),
            )
        )
    return pd.concat(parts, ignore_index=True)


def test_final_headcount_matches_the_current_state_of_the_cdc_apply():
    log = simulated_log(2000, 30, 300)
    result = monthly_active_count(log, ["EmployeeID"])
    current = current_rows(last_change_per_key(pa.Table.from_pandas(log, preserve_index=False), ["EmployeeID"]))
    assert result["headcount"].iloc[-1] == current.num_rows
    assert (result["hires"] - result["exits"]).cumsum().tolist() == result["headcount"].tolist()
    # One row per month, consecutive, from the first change to the last.
    assert result["month"].tolist() == list(pd.date_range("2024-01-01", log["_commit_ts"].max().strftime("%Y-%m-01"), freq="MS"))


def test_exit_flag_lowers_headcount_below_rows_present():
    log = simulated_log(2000, 30, 300)
    flagged = monthly_active_count(log, ["EmployeeID"], exit_when=LEAVING)
    plain = monthly_active_count(log, ["EmployeeID"])
    assert flagged["hires"].sum() == plain["hires"].sum()
    assert (flagged["headcount"] <= plain["headcount"]).all()
    assert flagged["headcount"].iloc[-1] < plain["headcount"].iloc[-1]


def test_a_million_changes_take_seconds():
    rng = np.random.default_rng(0)
    n, employees = 1_000_000, 100_000
    log = pd.DataFrame(
        {
            "_op": rng.choice(["insert", "update", "delete"], n, p=[0.3, 0.5, 0.2]),
            "_commit_ts": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 5 * 365 * 86400, n), unit="s"),
            "_source_key": rng.choice([f"cdc/{i:04d}.csv" for i in range(500)], n),
            "_source_line": rng.integers(0, 5000, n),
            "EmployeeID": rng.integers(0, employees, n),
            "LeaveOrNot": rng.integers(0, 2, n),
        }
    )
    result = monthly_active_count(log, ["EmployeeID"], exit_when=LEAVING)
    assert len(result) == 60 and 0 <= result["headcount"].iloc[-1] <= employees


# ------------------------------------------------------------------ Prophet


def monthly_series(months: int, *, slope=10.0, season=0.0, noise=8.0, seed=0, start="2021-01-01") -> pd.DataFrame:
    t = np.arange(months)
    y = 1000 + slope * t + season * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, noise, months)
    return pd.DataFrame({"month": pd.date_range(start, periods=months, freq="MS"), "headcount": y})


def test_forecast_continues_a_trend_within_its_interval():
    history = monthly_series(30)
    result = forecast_monthly(history, "headcount", periods=6, interval_width=0.95)
    assert list(result.columns) == ["month", "yhat", "yhat_lower", "yhat_upper"]
    assert result["month"].tolist() == list(pd.date_range("2023-07-01", periods=6, freq="MS"))
    truth = 1000 + 10.0 * np.arange(30, 36)
    assert ((result["yhat_lower"] <= truth) & (truth <= result["yhat_upper"])).all()
    assert np.abs(result["yhat"] - truth).max() < 30
    assert (np.diff(result["yhat"]) > 0).all()
    assert (result["yhat_lower"] < result["yhat"]).all() and (result["yhat"] < result["yhat_upper"]).all()


def test_forecast_is_deterministic_and_leaves_numpy_random_state_alone():
    history = monthly_series(30, season=40)
    np.random.seed(123)
    first = forecast_monthly(history, "headcount")
    after_first = np.random.random()
    np.random.seed(123)
    second = forecast_monthly(history, "headcount")
    pd.testing.assert_frame_equal(first, second)
    assert np.random.random() == after_first


def test_wider_interval_width_gives_wider_intervals():
    history = monthly_series(30)
    narrow = forecast_monthly(history, "headcount", interval_width=0.5)
    wide = forecast_monthly(history, "headcount", interval_width=0.95)
    assert ((wide["yhat_upper"] - wide["yhat_lower"]) > (narrow["yhat_upper"] - narrow["yhat_lower"])).all()


def test_two_years_or_more_follow_the_yearly_season():
    history = monthly_series(36, slope=5, season=60, noise=5)
    result = forecast_monthly(history, "headcount", periods=12)
    t = np.arange(36, 48)
    truth = 1000 + 5 * t + 60 * np.sin(2 * np.pi * t / 12)
    # A trend-only line would miss by up to the season's amplitude (60).
    assert np.abs(result["yhat"] - truth).max() < 15


def test_under_two_years_forecast_has_no_season_and_works_with_eight_months():
    for months in (8, 20):
        history = monthly_series(months, slope=5, season=60, noise=5)
        result = forecast_monthly(history, "headcount", periods=6)
        assert len(result) == 6 and result["yhat"].notna().all()
        # Trend only: a straight line in time, i.e. the same change per day every month.
        per_day = np.diff(result["yhat"]) / np.diff(result["month"]).astype("timedelta64[D]").astype(float)
        assert np.ptp(per_day) < 1e-6 * max(1.0, np.abs(per_day).max())


def test_yearly_seasonality_switches_on_at_24_months(monkeypatch):
    import prophet

    seen = []

    class Recording(prophet.Prophet):
        def __init__(self, **kwargs):
            seen.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(prophet, "Prophet", Recording)
    for months in (23, 24):
        forecast_monthly(monthly_series(months), "headcount", periods=2)
    assert [k["yearly_seasonality"] for k in seen] == [False, forecast.YEARLY_FOURIER_ORDER]
    assert all(k["weekly_seasonality"] is False and k["daily_seasonality"] is False for k in seen)


def test_forecast_logs_no_progress(capfd, caplog):
    caplog.set_level(logging.DEBUG)
    forecast_monthly(monthly_series(12), "headcount")
    forecast_monthly(monthly_series(12, seed=1), "headcount")
    captured = capfd.readouterr()
    assert "cmdstanpy" not in captured.err + captured.out
    assert "Chain" not in captured.err + captured.out
    assert [r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("cmdstanpy", "prophet") and r.levelno < logging.WARNING] == []
