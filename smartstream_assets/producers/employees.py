"""A simulated HR table: a workforce that hires, transfers, promotes and loses people.

It stands in for the source database behind AWS DMS. Seeded and vectorised, so the
same seed always gives the same history and 100,000 employees take well under a
second. Distributions follow the Kaggle "Employee" attrition data (Education,
City, PaymentTier, Age, Gender, EverBenched, ExperienceInCurrentDomain), and
LeaveOrNot depends on them through a logistic model whose effects were read off
that data's group rates (Pune, PaymentTier 2, women, Masters, recent joiners and
the young leave more), so a model has something real to learn.

``Drift`` shifts who is hired and how people change (older, one city, lower pay
tier): what the drift reports and retraining of later stages must notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd

from . import dms
from .base import RawObject

EDUCATION = (["Bachelors", "Masters", "PHD"], [0.77, 0.19, 0.04])
GENDER = (["Male", "Female"], [0.6, 0.4])
CITIES = ["Bangalore", "Pune", "New Delhi"]
CITY_BY_GENDER = {"Male": [0.56, 0.24, 0.20], "Female": [0.35, 0.32, 0.33]}
PAYMENT_TIER = ([1, 2, 3], [0.05, 0.20, 0.75])
AGES = np.arange(22, 42)
AGE_WEIGHTS = np.array(
    [11, 10, 83, 90, 139, 134, 135, 49, 47, 27, 28, 27, 29, 26, 30, 30, 29, 28, 29, 18], float
)
# log-odds of leaving, relative to a Bachelors man in Bangalore, tier 3, never benched
_INTERCEPT = -2.1
_EFFECTS = {
    "Education": {"Masters": 0.75, "PHD": -0.3},
    "City": {"Pune": 1.05, "New Delhi": 0.25},
    "PaymentTier": {2: 1.3, 1: 0.4},
    "Gender": {"Female": 0.95},
    "EverBenched": {"Yes": 0.55},
}
_RECENT_JOINER = 1.4  # joined this year or last
_PER_YEAR_OF_AGE = -0.035


@dataclass(frozen=True)
class Drift:
    """How new hires and changes differ from the past (applied to ``share`` of them)."""

    age_shift: int = 0  # years added to ages
    city: str | None = None  # everyone affected works here
    payment_tier_shift: int = 0  # e.g. -1: tier 3 -> 2, 2 -> 1
    share: float = 0.8

    @property
    def active(self) -> bool:
        return bool(self.age_shift or self.city or self.payment_tier_shift)


def leave_probability(frame: pd.DataFrame, year: int) -> np.ndarray:
    """P(LeaveOrNot = 1) for each row, as of ``year``."""
    logit = np.full(len(frame), _INTERCEPT)
    for column, effects in _EFFECTS.items():
        logit += frame[column].map(effects).fillna(0.0).to_numpy(float)
    logit += np.where(frame["JoiningYear"].to_numpy() >= year - 1, _RECENT_JOINER, 0.0)
    logit += _PER_YEAR_OF_AGE * (frame["Age"].to_numpy() - 30)
    return 1.0 / (1.0 + np.exp(-logit))


class EmployeeSimulator:
    """The state of the HR table and the changes made to it, one batch at a time."""

    def __init__(self, seed: int = 42, drift: Drift | None = None):
        self.rng = np.random.default_rng(seed)
        self.drift = drift or Drift()
        self.staff = pd.DataFrame(columns=_COLUMNS).set_index("EmployeeID", drop=False)
        self.next_id = 1

    @classmethod
    def resume(cls, current: pd.DataFrame, seed: int, drift: Drift | None = None) -> "EmployeeSimulator":
        """Continue from a table's current state (e.g. the lake's current/employees)."""
        sim = cls(seed, drift)
        sim.staff = current[_COLUMNS].set_index("EmployeeID", drop=False)
        sim.next_id = int(current["EmployeeID"].max()) + 1 if len(current) else 1
        return sim

    def hire(self, n: int, when: datetime, *, history: bool = False) -> pd.DataFrame:
        """``n`` new employees. ``history``: a workforce hired over past years (full load)."""
        rng = self.rng
        gender = rng.choice(GENDER[0], n, p=GENDER[1])
        city = np.array([rng.choice(CITIES, p=CITY_BY_GENDER[g]) for g in gender]) if n else np.array([], str)
        age = rng.choice(AGES, n, p=AGE_WEIGHTS / AGE_WEIGHTS.sum())
        if history:
            joined = when.year - rng.choice(np.arange(0, 8), n, p=[0.05, 0.10, 0.22, 0.15, 0.15, 0.13, 0.11, 0.09])
        else:
            joined = np.full(n, when.year)
        tenure = when.year - joined
        experience = np.minimum(rng.integers(0, 4, n) + tenure, np.minimum(age - 21, 7))
        frame = pd.DataFrame(
            {
                "EmployeeID": np.arange(self.next_id, self.next_id + n, dtype=np.int64),
                "Education": rng.choice(EDUCATION[0], n, p=EDUCATION[1]),
                "JoiningYear": joined.astype(np.int64),
                "City": city,
                "PaymentTier": rng.choice(PAYMENT_TIER[0], n, p=PAYMENT_TIER[1]).astype(np.int64),
                "Age": age.astype(np.int64),
                "Gender": gender,
                "EverBenched": rng.choice(["No", "Yes"], n, p=[0.9, 0.1]),
                "ExperienceInCurrentDomain": np.maximum(experience, 0).astype(np.int64),
            }
        )
        self.next_id += n
        frame = self._drifted(frame)
        frame["LeaveOrNot"] = (rng.random(n) < leave_probability(frame, when.year)).astype(np.int64)
        return frame[_COLUMNS]

    def full_load(self, n: int, when: datetime) -> pd.DataFrame:
        """The table as DMS's full load sees it: ``n`` employees hired over past years."""
        frame = self.hire(n, when, history=True)
        self._apply(frame, deleted=[])
        return frame

    def changes(self, when: datetime, size: int) -> tuple[list[str], list[datetime], pd.DataFrame]:
        """``size`` change events (Op, commit time, row image) committed from ``when`` on.

        Hiring peaks in July, exits in April (appraisals): headcount has a season
        and a gentle upward trend.
        """
        rng = self.rng
        month = when.month
        p_hire = 0.34 * (1 + 0.45 * np.cos(2 * np.pi * (month - 7) / 12))
        p_exit = 0.26 * (1 + 0.45 * np.cos(2 * np.pi * (month - 4) / 12))
        n_hire, n_exit, n_update = rng.multinomial(size, [p_hire, p_exit, 1 - p_hire - p_exit])
        n_exit = min(n_exit, len(self.staff))
        # Those flagged as leaving are nine times as likely to be the ones who go.
        weights = np.where(self.staff["LeaveOrNot"].to_numpy() == 1, 9.0, 1.0)
        exits = rng.choice(self.staff.index.to_numpy(), n_exit, replace=False, p=weights / weights.sum()) if n_exit else []
        remaining = self.staff.index.difference(pd.Index(exits)).to_numpy()
        n_update = min(n_update, len(remaining))
        updated_ids = rng.choice(remaining, n_update, replace=False) if n_update else []
        updates = self._update(self.staff.loc[updated_ids].copy(), when)
        hires = self.hire(n_hire, when)
        gone = self.staff.loc[exits].copy()
        self._apply(pd.concat([updates, hires]), deleted=list(exits))

        frame = pd.concat([hires, updates, gone], ignore_index=True)
        ops = np.array(["I"] * len(hires) + ["U"] * len(updates) + ["D"] * len(gone))
        order = rng.permutation(len(frame))
        gaps = rng.exponential(45.0, len(frame)).cumsum()  # seconds between commits
        stamps = [when + timedelta(seconds=float(s)) for s in gaps]
        return list(ops[order]), stamps, frame.iloc[order].reset_index(drop=True)

    def _update(self, rows: pd.DataFrame, when: datetime) -> pd.DataFrame:
        """One change per employee: transfer, promotion, a year older and wiser, benched, or resolving to leave."""
        rng = self.rng
        kind = rng.choice(5, len(rows), p=[0.2, 0.2, 0.35, 0.05, 0.2])
        rows = rows.reset_index(drop=True)
        transfer, promote, older, benched, leaving = (kind == k for k in range(5))
        rows.loc[transfer, "City"] = rng.choice(CITIES, int(transfer.sum()))
        rows.loc[promote, "PaymentTier"] = np.maximum(rows.loc[promote, "PaymentTier"] - 1, 1)
        rows.loc[older, "Age"] = rows.loc[older, "Age"] + 1
        rows.loc[older, "ExperienceInCurrentDomain"] = np.minimum(rows.loc[older, "ExperienceInCurrentDomain"] + 1, 7)
        rows.loc[benched, "EverBenched"] = "Yes"
        rows = self._drifted(rows)
        p = leave_probability(rows, when.year)
        rows.loc[leaving, "LeaveOrNot"] = (rng.random(int(leaving.sum())) < p[leaving] * 1.5).astype(np.int64)
        return rows[_COLUMNS].astype(_DTYPES)

    def _drifted(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.drift.active or frame.empty:
            return frame
        hit = self.rng.random(len(frame)) < self.drift.share
        if self.drift.age_shift:
            frame.loc[hit, "Age"] = frame.loc[hit, "Age"] + self.drift.age_shift
        if self.drift.city:
            frame.loc[hit, "City"] = self.drift.city
        if self.drift.payment_tier_shift:
            frame.loc[hit, "PaymentTier"] = np.clip(frame.loc[hit, "PaymentTier"] + self.drift.payment_tier_shift, 1, 3)
        return frame

    def _apply(self, upserts: pd.DataFrame, deleted: list) -> None:
        staff = self.staff.drop(index=deleted)
        kept = staff[~staff.index.isin(upserts["EmployeeID"])]
        upserts = upserts.set_index("EmployeeID", drop=False)
        staff = pd.concat([kept, upserts]) if len(kept) else upserts
        self.staff = staff.astype(_DTYPES)


_DTYPES = {
    "EmployeeID": np.int64,
    "Education": object,
    "JoiningYear": np.int64,
    "City": object,
    "PaymentTier": np.int64,
    "Age": np.int64,
    "Gender": object,
    "EverBenched": object,
    "ExperienceInCurrentDomain": np.int64,
    "LeaveOrNot": np.int64,
}
_COLUMNS = list(_DTYPES)


# ------------------------------------------------------------------ the producer


SAMPLE_EMPLOYEES = 1500
HISTORY_START = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
HISTORY_END = datetime(2026, 11, 18, 23, 59, tzinfo=timezone.utc)


class EmployeesProducer:
    """DMS writing the HR table's CDC to S3: a full load, then timestamped CDC files."""

    table = "employees"

    def __init__(self, spec, seed: int = 42, drift: Drift | None = None):
        self.spec = spec
        self.seed = seed
        self.drift = drift

    def history(self, employees: int = SAMPLE_EMPLOYEES):
        """The sample raw objects (keys relative to the raw prefix, bytes): a full load,
        then CDC files on the 1st and 16th of every month and on the last three days,
        a handful of them carrying a malformed record of every kind. No drift."""
        return self._history(EmployeeSimulator(self.seed), employees)

    def simulator(self, current: pd.DataFrame | None, seed: int) -> EmployeeSimulator:
        """A simulator that continues from ``current`` (the lake's current state) if
        there is one, else from the end of the sample history."""
        if current is not None and len(current):
            return EmployeeSimulator.resume(current, seed, self.drift)
        sim = EmployeeSimulator(self.seed)
        for _ in self._history(sim, SAMPLE_EMPLOYEES):
            pass
        sim.rng, sim.drift = np.random.default_rng(seed), self.drift or Drift()
        return sim

    def _history(self, sim: EmployeeSimulator, employees: int):
        start = HISTORY_START
        yield RawObject(
            dms.dated_folder(start) + dms.full_load_file_name(1),
            dms.dms_csv(self.spec, sim.full_load(employees, start), commit_ts=[start] * employees),
        )
        for i, when in enumerate(_cdc_schedule(start, HISTORY_END)):
            ops, stamps, frame = sim.changes(when, int(sim.rng.integers(40, 70)))
            extra = _malformed_lines(self.spec, i, when, frame) if i % 13 == 5 else ()
            yield RawObject(
                dms.dated_folder(when) + dms.cdc_file_name(when),
                dms.dms_csv(self.spec, frame, ops=ops, commit_ts=stamps, extra_lines=extra),
            )

    def next_object(self, sim: EmployeeSimulator, when: datetime, events: int, *, compress: bool = False) -> RawObject:
        ops, stamps, frame = sim.changes(when, events)
        name = dms.cdc_file_name(when) + (".gz" if compress else "")
        return RawObject(
            dms.dated_folder(when) + name,
            dms.dms_csv(self.spec, frame, ops=ops, commit_ts=stamps, compress=compress),
        )



def _cdc_schedule(start: datetime, end: datetime):
    """Twice a month, then daily for the last three days: history for monthly
    headcount, and several consecutive ingest dates like a live feed."""
    daily_from = (end - timedelta(days=2)).replace(hour=0, minute=0)
    day = start.replace(day=1, hour=10, minute=0) + timedelta(days=31)
    day = day.replace(day=1)
    while day < daily_from:
        for dom in (1, 16):
            when = day.replace(day=dom)
            if start < when < daily_from:
                yield when
        day = (day + timedelta(days=32)).replace(day=1)
    when = daily_from.replace(hour=10)
    while when <= end:
        yield when
        when += timedelta(days=1)


def _malformed_lines(spec, i: int, when: datetime, frame: pd.DataFrame) -> list[tuple[int, str]]:
    """One record of each kind the trusted zone must quarantine, at fixed positions."""
    ts = dms.format_timestamp(when)
    row = frame.iloc[0]
    values = [str(row[c]) for c in spec.columns]
    good = ",".join(values[1:])
    kinds = [
        f"X,{ts},{values[0]},{good}",  # unknown Op
        f"U,{ts},{values[0]},{values[1]}",  # truncated: wrong field count
        f"U,{ts},{','.join(values[:5])},thirty-one,{','.join(values[6:])}",  # Age not an int64
        f"I,{ts},,{good}",  # no primary key
        f"U,yesterday noon,{values[0]},{good}",  # commit time not a timestamp
    ]
    return [(3, kinds[i % len(kinds)]), (len(frame) // 2, kinds[(i + 2) % len(kinds)])]
