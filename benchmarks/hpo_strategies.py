"""Hyperparameter-search strategies compared on a real series: TPE, random, Hyperband.

    .venv/bin/python benchmarks/hpo_strategies.py                      # 20 trials x seeds 0,1,2
    .venv/bin/python benchmarks/hpo_strategies.py --trials 40 --seeds 0,1,2,3,4

The data is the weekly CO2 series of Mauna Loa 1958-2001 that statsmodels ships
(``statsmodels.datasets.co2``, public domain; offline). It is turned into next-week
forecast rows by ``ml.timeseries.next_period_frame`` (station MLO) and searched exactly
as training does (``train_model``): a ``Regression`` of next week's reading, anchored on
this week's (``co2_ppm``: the model learns the change), XGBoost only, a ``TimeSplit``
with the last 104 weeks as the test window and the 104 before them as the validation
window the search is scored on, the chosen model refitted on train + validation.

Strategies (``training.strategy_settings``), each with the same trial budget and seeds:

- ``tpe``: Optuna's TPE sampler (Bayesian optimisation), no pruning;
- ``random``: random sampling, no pruning;
- ``hyperband``: TPE with Optuna's Hyperband pruner. A time split has one fold, so the
  resource is the share of the training window a trial fits on, the latest 1/4, 1/2,
  then all of it (``training.recent_fit_steps``): a trial that scores low on the
  validation window after fitting the latest quarter is stopped there.

Per run it prints the best validation RMSE (the search's ``cv_score``), the test-window
RMSE of the refitted model and its ratio to persistence's (this week's reading as the
forecast), the trials pruned and the wall time of the whole ``train_model`` call; then a
markdown table of the means over seeds, with each strategy's wall time relative to TPE
measured in the same process (per seed, then averaged). The strategies run in a rotated
order per seed, after one warm-up fit, so neither start-up nor a busy machine favours one.
Wall times are for this machine and its load at the time (``load``: the 1-minute load
average, the higher of before and after the run; above the core count another process
competed for the cores, and XGBoost's threads can then slow down many-fold); the RMSEs
are deterministic for a seed.

With the same trial budget Hyperband is not cheaper here: a trial it lets finish fits
1/4 + 1/2 + all of the window (up to 1.75 full fits, no warm start), and a fit on a
quarter of ~2,000 rows costs more than a quarter of a full one, while TPE's and random's
trials fit once. TPE's first 10 trials are random start-up trials drawn like
``random``'s for the same seed, so with few trials the two can pick the same model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STRATEGIES = ("tpe", "random", "hyperband")
LABELS = {"tpe": "TPE (Bayesian)", "random": "random", "hyperband": "Hyperband (TPE + pruner)"}
NUMERIC = [
    "co2_ppm",  # the anchor: the model predicts the change from it
    *[f"d_lag_{k}" for k in (1, 2, 3, 4, 51, 52)],
    *[f"d_roll_mean_{w}" for w in (4, 12, 52)],
    *[f"roll_std_{w}" for w in (4, 12, 52)],
    "period_of_year",
    "step_last_year",
]


def mauna_loa_frame():
    """Next-week forecast rows of the weekly Mauna Loa series (its gaps stay gaps)."""
    import pandas as pd
    from statsmodels.datasets import co2

    from smartstream_assets.ml.timeseries import next_period_frame

    data = co2.load_pandas().data
    readings = pd.DataFrame({"station": "MLO", "measured_at": pd.to_datetime(data.index, utc=True), "co2_ppm": data["co2"].to_numpy()})
    readings = readings.dropna(subset=["co2_ppm"]).reset_index(drop=True)
    frame = next_period_frame(readings, series="station", time="measured_at", value="co2_ppm")
    frame["reading_id"] = frame["measured_at"].dt.strftime("%Y-%m-%d")
    return frame


def forecast_task():
    from smartstream_assets.ml.tasks import ColumnForecast, Regression, TimeSplit

    return Regression(
        target="target", objective="rmse", anchor="co2_ppm",
        split=TimeSplit("measured_at", holdout=104, validation=104, refit_on_validation=True),
        baselines=(ColumnForecast("persistence", ("co2_ppm",)), ColumnForecast("seasonal_naive", ("seasonal_naive",))),
    )  # fmt: skip


def run(frame, task, strategy: str, trials: int, seed: int, n_jobs: int) -> dict:
    from smartstream_assets.ml.training import strategy_settings, train_model

    settings = strategy_settings(strategy, trials=trials, estimators=("xgboost",), seed=seed, n_jobs=n_jobs)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    c = train_model(frame, task=task, id_column="reading_id", numeric=NUMERIC, categorical=[], settings=settings)
    seconds = time.perf_counter() - started
    persistence = c.baselines["persistence"]["rmse"]
    return {
        "strategy": strategy, "seed": seed, "val_rmse": c.cv_score, "test_rmse": c.metrics["rmse"],
        "ratio": c.metrics["rmse"] / persistence, "persistence": persistence,
        "seasonal_naive": c.baselines["seasonal_naive"]["rmse"],
        "pruned": sum(t.state == "PRUNED" for t in c.trials), "trials": len(c.trials), "seconds": seconds,
        "window": c.window, "load": max(load, os.getloadavg()[0]),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials per search (the same for every strategy)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (split is fixed; sampler and models vary)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated, of tpe, random, hyperband")
    parser.add_argument("--n-jobs", type=int, default=2, help="XGBoost threads (the project's default: 2)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    strategies = [s.strip().lower() for s in args.strategies.split(",") if s.strip()]
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown or not seeds:
        sys.exit(f"strategies must be some of {', '.join(STRATEGIES)} (got {unknown}); seeds must not be empty")

    frame, task = mauna_loa_frame(), forecast_task()
    run(frame, task, "random", 1, 0, args.n_jobs)  # warm-up: imports and XGBoost's first fit are not timed
    results = []
    for i, seed in enumerate(seeds):
        order = strategies[i % len(strategies):] + strategies[: i % len(strategies)]  # rotated per seed
        for strategy in order:
            r = run(frame, task, strategy, args.trials, seed, args.n_jobs)
            if not results:
                w = r["window"]
                print(f"Mauna Loa weekly CO2: {sum(w['rows'].values())} forecast rows; train {w['train'][0][:10]}..{w['train'][1][:10]} "
                      f"({w['rows']['train']}), validation ..{w['validation'][1][:10]} ({w['rows']['validation']}), "
                      f"test ..{w['holdout'][1][:10]} ({w['rows']['holdout']}); final fit on {w['final_fit']}")  # fmt: skip
                print(f"test-window RMSE of persistence {r['persistence']:.4f}, of seasonal naive {r['seasonal_naive']:.4f}")
                print(f"{args.trials} trials per search, XGBoost, n_jobs={args.n_jobs}\n")
                print(f"{'strategy':<26}{'seed':>5}{'val RMSE':>10}{'test RMSE':>11}{'x persist.':>11}{'pruned':>8}{'seconds':>9}{'load':>6}")
            results.append(r)
            print(f"{LABELS[strategy]:<26}{seed:>5}{r['val_rmse']:>10.4f}{r['test_rmse']:>11.4f}{r['ratio']:>11.3f}"
                  f"{r['pruned']:>5}/{r['trials']:<2}{r['seconds']:>9.1f}{r['load']:>6.1f}", flush=True)  # fmt: skip

    def mean(strategy, key):
        return statistics.fmean(r[key] for r in results if r["strategy"] == strategy)

    def wall_vs_tpe(strategy):
        if "tpe" not in strategies:
            return None
        by = {(r["strategy"], r["seed"]): r["seconds"] for r in results}
        return statistics.fmean(by[(strategy, s)] / by[("tpe", s)] for s in seeds)

    print(f"\nmean over seeds {','.join(map(str, seeds))} ({args.trials} trials each):\n")
    print("| strategy | best val RMSE | test RMSE | test RMSE / persistence | trials pruned | wall s | wall vs TPE |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for strategy in strategies:
        ratio = wall_vs_tpe(strategy)
        print(f"| {LABELS[strategy]} | {mean(strategy, 'val_rmse'):.4f} | {mean(strategy, 'test_rmse'):.4f} | "
              f"{mean(strategy, 'ratio'):.3f} | {mean(strategy, 'pruned'):.1f} / {args.trials} | "
              f"{mean(strategy, 'seconds'):.1f} | {'' if ratio is None else f'{ratio:.2f}x'} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
