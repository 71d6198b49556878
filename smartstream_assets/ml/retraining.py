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
    """A report the retrain sensor reads: a drift report (drift share, prediction drift) or
    a monitor that says itself whether it requests retraining (``requested``, ``reason``)."""

    report_id: int  # the materialisation's storage id: unique per report, increasing
    drift_share: float = 0.0
    prediction_drift: bool = False
    run_date: str = ""
    requested: bool | None = None  # a monitor's verdict; None: decide on drift share
    reason: str = ""
    source: str = ""  # the asset that reported

    def crossed(self, threshold: float) -> bool:
        if self.requested is not None:
            return self.requested
        return self.drift_share >= threshold or self.prediction_drift

    def measured(self, threshold: float) -> str:
        if self.requested is not None:
            return f"{self.source or 'monitor'}: {self.reason or ('retraining requested' if self.requested else 'within limits')}"
        return (
            f"drift share {self.drift_share:.2f} (threshold {threshold:.2f}), "
            f"prediction drift {'yes' if self.prediction_drift else 'no'}"
        )


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
    """Request retraining when the report crosses (its feature drift share reaches
    ``threshold`` or it flags prediction drift; a monitor: it requests it), once per report
    (reports at or below the cursor's are decided), and not within ``cooldown_seconds`` of
    the last request."""
    if report is None:
        return RetrainDecision(False, "no drift report yet", cursor)
    measured = report.measured(threshold)
    if cursor.last_report_id is not None and report.report_id <= cursor.last_report_id:
        return RetrainDecision(False, f"already decided on report {report.report_id}: {measured}", cursor)
    seen = RetrainCursor(report.report_id, cursor.last_requested_at)
    if not report.crossed(threshold):
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


def decide_on_reports(reports: list[DriftReport], cursor: RetrainCursor, *, now: float, threshold: float, cooldown_seconds: float) -> tuple[RetrainDecision, DriftReport | None]:
    """The latest report of each signal (drift report, monitors): decide on the newest new
    one that crosses, else on the newest new one; the cursor then passes every report seen."""
    new = [r for r in reports if cursor.last_report_id is None or r.report_id > cursor.last_report_id]
    if not reports:
        return decide_retraining(None, cursor, now=now, threshold=threshold, cooldown_seconds=cooldown_seconds), None
    if not new:
        newest = max(reports, key=lambda r: r.report_id)
        return decide_retraining(newest, cursor, now=now, threshold=threshold, cooldown_seconds=cooldown_seconds), None
    crossing = [r for r in new if r.crossed(threshold)]
    report = max(crossing or new, key=lambda r: r.report_id)
    decision = decide_retraining(report, cursor, now=now, threshold=threshold, cooldown_seconds=cooldown_seconds)
    high = max(r.report_id for r in new)
    passed = RetrainCursor(max(high, decision.cursor.last_report_id or high), decision.cursor.last_requested_at)
    others = [r for r in new if r is not report]
    reason = decision.reason + ("" if not others else "; also seen: " + "; ".join(r.measured(threshold) for r in others))
    return RetrainDecision(decision.request, reason, passed), report
