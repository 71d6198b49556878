"""Search strategies (TPE, random, Hyperband) and Hyperband's resource on a time split:
the latest share of the training window, since a time split has one fold (pure, small
synthetic weekly series)."""

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.ml import training
from smartstream_assets.ml.tasks import ColumnForecast, Regression, TimeSplit
from smartstream_assets.ml.timeseries import next_period_frame
from smartstream_assets.ml.training import (
    MIN_STEP_ROWS,
    TIME_RESOURCES,
    SearchSettings,
    recent_fit_steps,
    strategy_settings,
    train_model,
)

NUMERIC = ["level", "d_lag_1", "d_lag_2", "d_lag_52", "d_roll_mean_4", "roll_std_4", "period_of_year", "step_last_year"]


@pytest.fixture(scope="module")
def weekly() -> pd.DataFrame:
    """500 weeks of a trending seasonal series with noise: 447 labelled origins."""
    rng = np.random.default_rng(7)
    t = np.arange(500)
    value = 300 + 0.03 * t + 3 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 0.5, len(t))
    readings = pd.DataFrame({"station": "S", "measured_at": pd.date_range("2010-01-02", periods=500, freq="7D", tz="UTC"), "level": value})
    frame = next_period_frame(readings, series="station", time="measured_at", value="level", lags=(1, 2, 52), windows=(4,))
    frame = frame[frame["target"].notna()].reset_index(drop=True)
    frame["reading_id"] = np.arange(len(frame))
    return frame


def forecast_task() -> Regression:
    return Regression(
        target="target", anchor="level", split=TimeSplit("measured_at", holdout=52, validation=52),
        baselines=(ColumnForecast("persistence", ("level",)),),
    )  # fmt: skip


def search(frame, task, settings):
    return train_model(frame, task=task, id_column="reading_id", numeric=NUMERIC, categorical=[], settings=settings)


@pytest.fixture
def fits(monkeypatch):
    """The index labels (positions in the labelled frame) of the rows of every pipeline fit, in order."""
    seen, real = [], training.make_pipeline

    def spy(*args, **kwargs):
        pipeline = real(*args, **kwargs)
        fit = pipeline.fit

        def recording_fit(X, y):
            seen.append(np.asarray(X.index))
            return fit(X, y)

        pipeline.fit = recording_fit
        return pipeline

    monkeypatch.setattr(training, "make_pipeline", spy)
    return seen


# ------------------------------------------------------------------ strategy names


def test_a_strategy_is_named_in_one_word():
    assert strategy_settings("tpe", trials=5) == SearchSettings(trials=5, sampler="tpe", pruner="none")
    assert strategy_settings("Bayesian", trials=5) == strategy_settings("tpe", trials=5)
    assert strategy_settings("random", seed=1) == SearchSettings(seed=1, sampler="random", pruner="none")
    # Optuna's Hyperband is a pruner: it runs with the TPE sampler
    assert strategy_settings("hyperband") == SearchSettings(sampler="tpe", pruner="hyperband")
    # "bayesian" is stored as "tpe": the same settings, the same run and the same logged sampler
    assert SearchSettings(sampler="bayesian") == SearchSettings(sampler="tpe") and SearchSettings(sampler="bayesian").sampler == "tpe"


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: strategy_settings("grid"), "search strategy must be one of tpe, bayesian, random, hyperband .got 'grid'"),
        (lambda: strategy_settings("hyperband", pruner="none"), "do not pass pruner"),
        (lambda: SearchSettings(sampler="cmaes"), r"sampler must be one of tpe \(alias bayesian\), random"),
        (lambda: SearchSettings(pruner="median"), "pruner must be one of none, hyperband"),
    ],
)
def test_an_unknown_strategy_names_the_allowed_ones(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_run_config_takes_the_alias_and_names_the_allowed_values():
    from pydantic import ValidationError

    from smartstream_assets.assets.ml_config import CandidateConfig

    assert CandidateConfig(sampler="bayesian", pruner="Hyperband").sampler == "tpe"
    with pytest.raises(ValidationError, match="sampler must be one of tpe"):
        CandidateConfig(sampler="grid")


def test_bayesian_is_tpe(weekly):
    task = forecast_task()
    a = search(weekly, task, strategy_settings("bayesian", trials=3, estimators=("xgboost",), seed=3))
    b = search(weekly, task, SearchSettings(trials=3, estimators=("xgboost",), seed=3, sampler="tpe"))
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert a.cv_score == b.cv_score and a.metrics == b.metrics
    assert all(t.seconds is not None and t.seconds >= 0 for t in a.trials)


# ---------------------------------------------- Hyperband's resource on a time split


def test_each_step_fits_on_a_growing_share_of_the_latest_rows():
    # two series on one weekly grid, rows shuffled: 2 x 300 rows at 300 distinct times
    weeks = pd.date_range("2015-01-03", periods=300, freq="7D", tz="UTC")
    times = np.concatenate([weeks, weeks])
    order = np.random.default_rng(0).permutation(len(times))
    times = times[order]
    fit_idx = np.flatnonzero(times < weeks[250])  # the training window: 500 rows, in frame order
    steps = recent_fit_steps(times, fit_idx)
    assert len(steps) == len(TIME_RESOURCES) == 3
    assert [len(s) for s in steps] == [126, 250, 500]  # 1/4 (125 rounded up to whole times), 1/2, all
    assert steps[-1].tolist() == fit_idx.tolist()  # the last step is the whole window, in its order
    for smaller, larger in zip(steps, steps[1:]):
        assert set(smaller) < set(larger)
    for step in steps:
        assert step.tolist() == sorted(step.tolist())  # the frame's order is kept
        taken = pd.DatetimeIndex(times[step])
        left = pd.DatetimeIndex(times[np.setdiff1d(fit_idx, step)])
        # the latest rows: nothing left out is later than what is taken, and a time is never cut
        assert left.empty or left.max() < taken.min()
        assert set(taken) == set(weeks[weeks >= taken.min()][: len(set(taken))])


def test_a_share_keeps_a_floor_of_rows():
    times = pd.date_range("2020-01-04", periods=200, freq="7D", tz="UTC").to_numpy()
    fit_idx = np.arange(200)
    steps = recent_fit_steps(times, fit_idx)
    assert MIN_STEP_ROWS == 104
    assert [len(s) for s in steps] == [104, 104, 200]  # 50 and 100 rows lifted to the floor
    assert steps[0].tolist() == list(range(96, 200))
    # a window smaller than the floor is fitted whole at every step
    assert [len(s) for s in recent_fit_steps(times[:60], np.arange(60))] == [60, 60, 60]
    assert [len(s) for s in recent_fit_steps(times, fit_idx, min_rows=10)] == [50, 100, 200]


def test_hyperband_on_a_time_split_prunes_on_the_latest_share_of_the_training_window(weekly, fits):
    task = forecast_task()
    c = search(weekly, task, strategy_settings("hyperband", trials=16, estimators=("xgboost",), seed=0))
    assert c.window["rows"] == {"train": 343, "validation": 52, "holdout": 52}
    train_rows = np.arange(343)  # the labelled frame is in time order: the window's positions
    steps = recent_fit_steps(weekly["measured_at"].to_numpy(), train_rows)
    assert [len(s) for s in steps] == [104, 172, 343]  # 1/4 (86) lifted to the floor, 1/2, all
    assert steps[0].tolist() == list(range(343 - 104, 343))  # the latest rows

    # every trial fits the latest 1/4 first, then 1/2, then all, stopping where Hyperband prunes it
    *search_fits, final = fits
    assert final.tolist() == list(range(343 + 52))  # the refit on train + validation
    runs, sizes = [], [len(s) for s in steps]
    for rows in search_fits:
        if len(rows) == sizes[0]:
            runs.append([])
        runs[-1].append(rows)
    assert len(runs) == len(c.trials) == 16
    for trial, run in zip(c.trials, runs):
        assert [r.tolist() for r in run] == [s.tolist() for s in steps[: len(run)]]
        assert (len(run) == 3) == (trial.state == "COMPLETE")
    pruned = [t for t in c.trials if t.state == "PRUNED"]
    assert 0 < len(pruned) < 16
    assert {len(run) for run in runs} >= {1, 3}  # trials stopped at the first step, and full ones


def test_a_trial_hyperband_lets_finish_scores_what_it_scores_without_it(weekly):
    # TPE's first 10 trials are its random start-up: the same parameters with and without pruning
    task = forecast_task()
    kw = dict(trials=10, estimators=("xgboost",), seed=0)
    pruned = search(weekly, task, strategy_settings("hyperband", **kw))
    plain = search(weekly, task, strategy_settings("tpe", **kw))
    assert [t.params for t in pruned.trials] == [t.params for t in plain.trials]
    complete = [t for t in pruned.trials if t.state == "COMPLETE"]
    assert complete and len(complete) < 10
    for t in complete:
        assert t.cv_score == plain.trials[t.number].cv_score


# ------------------------------------------------- a random split keeps its folds


def test_hyperband_on_a_random_split_still_prunes_on_the_folds(weekly, fits, monkeypatch):
    def no_time_steps(*args, **kwargs):
        raise AssertionError("a random split prunes on its folds, not on shares of a window")

    monkeypatch.setattr(training, "recent_fit_steps", no_time_steps)
    pruners, real = [], training._pruner
    monkeypatch.setattr(training, "_pruner", lambda settings, folds: pruners.append(folds) or real(settings, folds))
    task = Regression(target="target", anchor="level")  # the default: a random split
    c = search(weekly, task, strategy_settings("hyperband", trials=8, estimators=("xgboost",), folds=3, seed=0))
    assert pruners == [3]
    *search_fits, final = fits
    assert len(final) == len(c.train)
    # each fit of the search is two of three folds of the training split
    assert all(abs(len(rows) - 2 * len(c.train) / 3) <= 1 for rows in search_fits)
    assert any(t.state == "PRUNED" for t in c.trials)
