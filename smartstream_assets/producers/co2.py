"""Weekly CO2 readings per station: the sample history and a producer that continues it.

The sample is the weekly Mauna Loa series ``statsmodels.datasets.co2`` ships (public
domain; Scripps/NOAA, 1958-03-29 .. 2001-12-29, 2,284 weeks of which 59 have no
reading), as station ``MLO``. Its readings keep their real dates; a week without a
reading is no row (a gap), as a station that missed a week would deliver it. The
history lands in ``SAMPLE_FILES`` objects of consecutive measurement years, one per
day from ``SAMPLE_LANDING`` (``YYYY/MM/DD/`` folders are landing dates, not
measurement dates: an archive delivered over a few days).

``continue_series`` is what ``smartstream produce co2 --weeks N`` writes: for each
station, the next N weekly readings after its latest one, from a model fitted on its
last ``FIT_YEARS`` years (quadratic trend + two yearly harmonics by least squares; the
residuals an AR(1) process, continued from the latest one: the real series' weekly
anomalies persist, phi ~ 0.73, innovations ~ 0.40 ppm). ``Co2Drift`` shifts the level
and scales the noise: what the monitors and the retrain sensor must notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from .base import RawObject

STATION = "MLO"
SAMPLE_FILES = 11  # 1958-1961, 1962-1965, ..., 1998-2001
SAMPLE_LANDING = date(2026, 11, 1)
FIT_YEARS = 10
WEEK = pd.Timedelta(days=7)
_COLUMNS = ["station", "measured_at", "co2_ppm"]


@dataclass(frozen=True)
class Co2Drift:
    """``level``: ppm added to every new reading; ``noise``: factor on the noise's std."""

    level: float = 0.0
    noise: float = 1.0

    def __post_init__(self):
        if not np.isfinite(self.level) or not (np.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"--drift: level must be finite and noise a factor >= 0 (got level={self.level}, noise={self.noise})")

    @property
    def active(self) -> bool:
        return self.level != 0.0 or self.noise != 1.0

    @classmethod
    def parse(cls, text: str) -> "Co2Drift | None":
        """``level=+3,noise=x2`` (``noise=2`` also reads as a factor) -> Co2Drift; empty -> None."""
        if not text.strip():
            return None
        values = {}
        for part in text.split(","):
            name, _, value = (s.strip() for s in part.partition("="))
            if name not in ("level", "noise") or not value:
                raise ValueError(f"--drift: cannot read {part!r}; use level=+N (ppm) and/or noise=xF (a factor)")
            match = re.fullmatch(r"x?([+-]?[0-9]*\.?[0-9]+)", value) if name == "noise" else re.fullmatch(r"[+-]?[0-9]*\.?[0-9]+", value)
            if not match:
                raise ValueError(f"--drift: {name}={value!r} is not a number" + (" (e.g. noise=x2)" if name == "noise" else " (e.g. level=+3)"))
            values[name] = float(match.group(1) if name == "noise" else value)
        return cls(**values)


def mauna_loa() -> pd.DataFrame:
    """The statsmodels series as readings (station, measured_at UTC, co2_ppm), gaps dropped."""
    from statsmodels.datasets import co2

    data = co2.load_pandas().data
    frame = pd.DataFrame({"station": STATION, "measured_at": pd.to_datetime(data.index, utc=True), "co2_ppm": data["co2"].to_numpy()})
    return frame.dropna(subset=["co2_ppm"]).reset_index(drop=True)


def to_csv(frame: pd.DataFrame) -> bytes:
    """The raw file: header ``station,measured_at,co2_ppm``, times as UTC ``YYYY-MM-DD HH:MM:SS``."""
    out = frame[_COLUMNS].copy()
    out["measured_at"] = pd.to_datetime(out["measured_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    out["co2_ppm"] = out["co2_ppm"].map(lambda v: f"{v:.3f}")
    return out.to_csv(index=False, lineterminator="\n").encode()


class Co2Producer:
    """The sample history of table ``co2`` (``producers.write_samples``)."""

    def __init__(self, spec, seed: int = 42):
        self.spec = spec

    def history(self) -> list[RawObject]:
        readings = mauna_loa()
        years = readings["measured_at"].dt.year
        first, last = int(years.min()), int(years.max())
        span = -(-(last - first + 1) // SAMPLE_FILES)  # years per file
        objects = []
        for i, start in enumerate(range(first, last + 1, span)):
            part = readings[(years >= start) & (years < start + span)]
            landed = SAMPLE_LANDING + timedelta(days=i)
            end = min(start + span - 1, last)
            objects.append(RawObject(f"{landed:%Y/%m/%d}/mlo-weekly-{start}-{end}.csv", to_csv(part)))
        return objects


def continue_series(current: pd.DataFrame, weeks: int, *, seed: int, drift: Co2Drift | None = None) -> pd.DataFrame:
    """The next ``weeks`` weekly readings of every station of ``current`` (its readings),
    after each station's latest one; see the module docstring for the model."""
    if weeks < 1:
        raise ValueError("--weeks must be >= 1")
    drift = drift or Co2Drift()
    rng = np.random.default_rng(seed)
    frames = []
    for station, group in current.groupby("station", sort=True):
        times = pd.to_datetime(group["measured_at"], utc=True)
        values = group["co2_ppm"].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        times, values = times[keep], values[keep]
        if len(values) < 104:
            raise ValueError(f"station {station!r} has {len(values)} readings; continuing it needs at least 104 (two years)")
        last = times.max()
        recent = times >= last - pd.Timedelta(days=365.25 * FIT_YEARS)
        t = ((times[recent] - last) / pd.Timedelta(days=365.25)).to_numpy()
        coef, phi, innovation, anomaly = _fit(t, values[recent.to_numpy()])
        future = pd.date_range(last + WEEK, periods=weeks, freq="7D")
        tf = ((future - last) / pd.Timedelta(days=365.25)).to_numpy()
        anomalies = np.empty(weeks)
        for i, shock in enumerate(rng.normal(0.0, innovation * drift.noise, weeks)):
            anomaly = phi * anomaly + shock
            anomalies[i] = anomaly
        level = _design(tf) @ coef + drift.level + anomalies
        frames.append(pd.DataFrame({"station": station, "measured_at": future, "co2_ppm": np.round(level, 3)}))
    if not frames:
        raise ValueError("no readings to continue: ingest table co2 first (make demo)")
    return pd.concat(frames, ignore_index=True)


def next_object(current: pd.DataFrame, weeks: int, *, seed: int, drift: Co2Drift | None, now: datetime) -> RawObject:
    """One raw object, landed ``now``, with the next ``weeks`` readings of every station."""
    frame = continue_series(current, weeks, seed=seed, drift=drift)
    now = now.astimezone(timezone.utc)
    return RawObject(f"{now:%Y/%m/%d}/readings-{now:%Y%m%dT%H%M%S%f}.csv", to_csv(frame))


def _design(t: np.ndarray) -> np.ndarray:
    w = 2 * np.pi * t
    return np.column_stack([np.ones_like(t), t, t**2, np.sin(w), np.cos(w), np.sin(2 * w), np.cos(2 * w)])


def _fit(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Least-squares curve, then AR(1) on its residuals: (coefficients, phi, innovation
    std, the latest residual)."""
    design = _design(t)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    phi = float(np.clip(np.corrcoef(residuals[:-1], residuals[1:])[0, 1], -0.99, 0.99))
    innovation = float(np.std(residuals[1:] - phi * residuals[:-1]))
    return coef, phi, innovation, float(residuals[-1])
