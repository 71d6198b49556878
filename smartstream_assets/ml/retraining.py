"""When a drift report should retrain the model: the rule of every retrain sensor.

Pure: the sensor passes the latest drift report's figures and its cursor. A report
triggers at most one retraining (the run key is the report's id), and once one was
requested no other starts within the cooldown, so a noisy signal cannot storm.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DriftReport:
    report_id: int  # the materialisation's storage id: unique per report
    drift_share: float
    prediction_drift: bool
    run_date: str = ""


@dataclass(frozen=True)
class RetrainCursor:
    last_report_id: int | None = None  # the last report decided on
    last_requested_at: float | None = None  # epoch seconds of the last retraining requested

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "RetrainCursor":
        if not text:
            return cls()
        try:
            doc = json.loads(text)
            return cls(doc.get("last_report_id"), doc.get("last_requested_at"))
        except (ValueError, AttributeError, TypeError):
            return cls()  # an unreadable cursor: run keys still prevent a second run per report


@dataclass(frozen=True)
class RetrainDecision:
    request: bool
    reason: str
    cursor: RetrainCursor


def decide_retraining(report: DriftReport | None, cursor: RetrainCursor, *, now: float, threshold: float, cooldown_seconds: float) -> RetrainDecision:
    """Request retraining when the report's feature drift share reaches ``threshold`` or it
    flags prediction drift, once per report, and not within ``cooldown_seconds`` of the last."""
    if report is None:
        return RetrainDecision(False, "no drift report yet", cursor)
    measured = f"drift share {report.drift_share:.2f} (threshold {threshold:.2f}), prediction drift {'yes' if report.prediction_drift else 'no'}"
    if report.report_id == cursor.last_report_id:
        return RetrainDecision(False, f"already decided on report {report.report_id}: {measured}", cursor)
    seen = RetrainCursor(report.report_id, cursor.last_requested_at)
    if report.drift_share < threshold and not report.prediction_drift:
        return RetrainDecision(False, f"no retraining: {measured}", seen)
    if cursor.last_requested_at is not None and now - cursor.last_requested_at < cooldown_seconds:
        waited = (now - cursor.last_requested_at) / 3600
        return RetrainDecision(
            False,
            f"drift crossed ({measured}) but the cooldown holds: last retraining requested "
            f"{waited:.1f} h ago, cooldown {cooldown_seconds / 3600:.1f} h",
            seen,
        )
    return RetrainDecision(True, f"retraining: {measured}", RetrainCursor(report.report_id, now))
