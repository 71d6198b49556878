"""Vital-sign features (``ml.vitals``): past readings only, one function for training and
scoring, and the same values however the stream is cut into batches."""

import numpy as np
import pandas as pd
import pytest

from smartstream_assets.ml.vitals import VITALS, feature_columns, rolled_columns, rolling_features


def _readings(patients=5, hours=12, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2026-11-20T00:00:00Z")
    for p in range(patients):
        for h in range(hours):
            row = {"patient_id": f"p{p}", "ts": (start + pd.Timedelta(hours=h + p)).isoformat(), "ICULOS": h + 1,
                   "Age": 50.0 + p, "Gender": p % 2}  # fmt: skip
            row.update({v: float(rng.normal(80, 10)) if rng.random() > 0.2 else np.nan for v in VITALS})
            rows.append(row)
    frame = pd.DataFrame(rows)
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # arrival order is not time order


def test_windows_look_back_only_and_keep_the_input_order():
    frame = _readings()
    out = rolling_features(frame, window=3)
    assert list(out.index) == list(frame.index) and set(feature_columns(3)) <= set(out.columns)
    one = out.loc[out["patient_id"] == "p1"].assign(t=lambda d: pd.to_datetime(d["ts"])).sort_values("t")
    hr = one["HR"].to_numpy()
    for i in range(len(one)):
        past = hr[max(0, i - 2) : i + 1]
        past = past[~np.isnan(past)]
        expected = past.mean() if past.size else np.nan
        np.testing.assert_allclose(one["HR_mean_3"].iloc[i], expected, equal_nan=True)
        np.testing.assert_allclose(one["HR_max_3"].iloc[i], past.max() if past.size else np.nan, equal_nan=True)
    assert (out["hours_since_admission"] == out["ICULOS"]).all()


def test_the_hr_resp_ratio_is_never_infinite():
    frame = _readings(patients=1, hours=3)
    frame.loc[0, ["HR", "Resp"]] = [90.0, 0.0]
    frame.loc[1, ["HR", "Resp"]] = [90.0, np.nan]
    frame.loc[2, ["HR", "Resp"]] = [90.0, 18.0]
    ratio = rolling_features(frame, window=2)["hr_resp_ratio"].to_numpy()
    assert np.isnan(ratio[0]) and np.isnan(ratio[1]) and ratio[2] == pytest.approx(5.0)


def test_batch_boundaries_do_not_change_the_features():
    frame = _readings(patients=6, hours=20, seed=3)
    whole = rolling_features(frame, window=4).sort_values(["patient_id", "ts"]).reset_index(drop=True)
    ordered = frame.assign(t=pd.to_datetime(frame["ts"])).sort_values("t").drop(columns="t").reset_index(drop=True)
    parts, seen = [], ordered.iloc[:0]
    for batch in np.array_split(np.arange(len(ordered)), 50):
        rows = ordered.iloc[batch]
        parts.append(rolling_features(rows, window=4, history=seen))
        seen = pd.concat([seen, rows])
    cut = pd.concat(parts).sort_values(["patient_id", "ts"]).reset_index(drop=True)
    columns = [*rolled_columns(4), "hr_resp_ratio"]
    np.testing.assert_allclose(cut[columns].to_numpy(), whole[columns].to_numpy(), equal_nan=True)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="HR"):
        rolling_features(_readings().drop(columns=["HR"]))
    with pytest.raises(ValueError, match=">= 1"):
        rolling_features(_readings(), window=0)
    with pytest.raises(ValueError, match="history"):
        rolling_features(_readings(), history=_readings().drop(columns=["Temp"]))


def test_the_vectorised_windows_equal_pandas_rolling():
    frame = _readings(patients=7, hours=30, seed=5)
    out = rolling_features(frame, window=5)
    ordered = frame.assign(t=pd.to_datetime(frame["ts"])).sort_values(["patient_id", "t"])
    for stat in ("min", "mean", "max"):
        expected = getattr(ordered.groupby("patient_id")["O2Sat"].rolling(5, min_periods=1), stat)().reset_index(level=0, drop=True)
        np.testing.assert_allclose(out.loc[expected.index, f"O2Sat_{stat}_5"], expected, rtol=1e-12, equal_nan=True)
