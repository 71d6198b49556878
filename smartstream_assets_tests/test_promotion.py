"""The promotion rule and the retraining rule, without MLflow or Dagster."""

import pytest

from smartstream_assets.domains import QualityBar
from smartstream_assets.ml.promotion import GateInput, decide_promotion
from smartstream_assets.ml.retraining import (
    DriftReport,
    RetrainCursor,
    decide_on_reports,
    decide_retraining,
)

BAR = QualityBar(metrics={"roc_auc": (">=", 0.7), "f1": (">=", 0.5)}, max_fairness=0.3)
GOOD = {"roc_auc": 0.8, "f1": 0.6, "accuracy": 0.8}


def decide(candidate=GOOD, fairness=0.1, champion=None, approval=True):
    return decide_promotion(GateInput(candidate, fairness, champion, "3" if champion else None), BAR, requires_approval=approval)


def test_the_first_champion_is_promoted_without_approval():
    d = decide()
    assert d.action == "promote" and d.status == "promoted"
    assert any("first one is promoted without approval" in r for r in d.reasons)


@pytest.mark.parametrize(
    "candidate, fairness, reason",
    [
        ({"roc_auc": 0.65, "f1": 0.6}, 0.1, "ROC AUC 0.650 is below the bar 0.700"),
        ({"roc_auc": 0.8, "f1": 0.4}, 0.1, "F1 0.400 is below the bar 0.500"),
        (GOOD, 0.45, "demographic-parity difference 0.450 is above the bar 0.300"),
        ({"roc_auc": float("nan"), "f1": 0.6}, 0.1, "ROC AUC nan is below the bar"),
    ],
)
def test_a_candidate_below_the_bar_is_rejected_with_the_reason(candidate, fairness, reason):
    d = decide(candidate, fairness)
    assert d.action == "reject" and any(reason in r for r in d.reasons)


def test_every_failed_rule_is_reported_not_just_the_first():
    d = decide({"roc_auc": 0.6, "f1": 0.3}, 0.5, champion={"roc_auc": 0.9})
    assert d.action == "reject" and len(d.reasons) == 4


def test_a_candidate_worse_than_the_champion_on_its_holdout_is_rejected():
    d = decide(champion={"roc_auc": 0.85, "f1": 0.7})
    assert d.action == "reject"
    assert d.reasons == ["worse than champion v3 on the candidate's holdout: roc_auc 0.800 < 0.850"]


def test_replacing_a_champion_waits_for_approval_when_required():
    held = decide(champion={"roc_auc": 0.75})
    assert held.action == "hold" and held.status == "held for approval"
    assert any("not worse than champion v3" in r for r in held.reasons)
    assert decide(champion={"roc_auc": 0.75}, approval=False).action == "promote"


def test_a_tie_with_the_champion_is_not_worse():
    assert decide(champion={"roc_auc": 0.8}, approval=False).action == "promote"


# ------------------------------------------------------------------- retraining

HOUR = 3600.0


def retrain(report, cursor=RetrainCursor(), now=100 * HOUR):
    return decide_retraining(report, cursor, now=now, threshold=0.3, cooldown_seconds=24 * HOUR)


def test_no_report_no_retraining():
    assert retrain(None).request is False and retrain(None).reason == "no drift report yet"


def test_drift_below_the_threshold_skips_and_says_what_it_measured():
    d = retrain(DriftReport(7, 0.1, False))
    assert not d.request and d.reason == "no retraining: drift share 0.10 (threshold 0.30), prediction drift no"
    assert d.cursor.last_report_id == 7 and d.cursor.last_requested_at is None


def test_crossing_the_threshold_requests_once_per_report():
    first = retrain(DriftReport(8, 0.5, False))
    assert first.request and first.cursor == RetrainCursor(8, 100 * HOUR)
    again = retrain(DriftReport(8, 0.5, False), first.cursor, now=200 * HOUR)
    assert not again.request and "already decided on report 8" in again.reason


def test_prediction_drift_alone_requests_retraining():
    assert retrain(DriftReport(9, 0.0, True)).request


def test_the_cooldown_holds_a_second_crossing_report_then_lets_one_through():
    first = retrain(DriftReport(10, 0.6, False))
    soon = retrain(DriftReport(11, 0.7, True), first.cursor, now=100 * HOUR + 5 * HOUR)
    assert not soon.request and "cooldown holds" in soon.reason and "5.0 h ago" in soon.reason
    later = retrain(DriftReport(12, 0.7, False), soon.cursor, now=100 * HOUR + 25 * HOUR)
    assert later.request and later.cursor.last_report_id == 12


def test_the_cursor_round_trips_and_an_unreadable_one_starts_over():
    cursor = RetrainCursor(5, 123.5)
    assert RetrainCursor.from_json(cursor.to_json()) == cursor
    assert RetrainCursor.from_json("{broken") == RetrainCursor()


# ------------------------------------------------- fairness: one rule, fails closed


def test_a_candidate_with_an_unmeasured_protected_facet_is_rejected_even_if_all_else_passes():
    d = decide_promotion(GateInput(GOOD, 0.0, fairness_missing=("Gender",)), BAR, requires_approval=False)
    assert d.action == "reject"
    assert d.reasons == ["fairness of protected facet Gender was not measured: a candidate is not deployed without it"]


def test_the_fairness_rule_takes_the_worst_protected_facet_and_lists_the_unmeasured_ones():
    from smartstream_assets.ml.fairness import protected_fairness

    rule = protected_fairness({"Gender": 0.2, "Age": 0.4, "City": 0.9}, ["Gender", "Age"])
    assert (rule.worst_facet, rule.worst, rule.missing) == ("Age", 0.4, ())  # City is not protected
    closed = protected_fairness({"Gender": float("nan"), "City": 0.1}, ["Gender", "Race"])
    assert closed.missing == ("Gender", "Race") and not closed.measured
    assert closed.missing_reason() == "fairness of protected facets Gender, Race was not measured: a candidate is not deployed without it"
    assert protected_fairness({}, []).measured  # nothing protected: nothing missing


def test_protecting_a_facet_the_domain_does_not_measure_is_a_definition_error():
    from smartstream_assets.ml.fairness import FairnessDefinitionError, validate_protected_facets

    validate_protected_facets("employees", ("Gender", "City"), ("Gender",))
    with pytest.raises(FairnessDefinitionError, match="domain employees: protected_facets Race are not among its facets \\(Gender, City\\)"):
        validate_protected_facets("employees", ("Gender", "City"), ("Gender", "Race"))


# ------------------------------------------------- regression: lower is better, baselines


def test_a_regressor_is_compared_with_the_champion_and_the_baselines_lower_being_better():
    bar = QualityBar(metrics={"rmse": ("<=", 2.0), "r2": (">=", 0.5)}, beat_baselines={"persistence": 0.9})

    def gate(rmse, champion=None, persistence=2.0):
        return decide_promotion(
            GateInput({"rmse": rmse, "r2": 0.8}, 0.0, champion, "4" if champion else None, primary_metric="rmse",
                      primary_direction="min", baselines={"persistence": {"rmse": persistence}}),
            bar, requires_approval=False,
        )  # fmt: skip

    assert gate(1.5).action == "promote"
    assert "RMSE 1.500 beats baseline persistence (2.000; at most 0.9 x)" in gate(1.5).reasons[0]
    worse = gate(1.9)  # 1.9 > 0.9 x 2.0
    assert worse.action == "reject"
    assert worse.reasons == ["RMSE 1.900 does not beat baseline persistence: needs at most 1.800 (0.9 x 2.000)"]
    assert gate(2.5).reasons[0] == "RMSE 2.500 is above the bar 2.000"
    assert gate(1.5, champion={"rmse": 1.4}).reasons == ["worse than champion v4 on the candidate's holdout: rmse 1.500 > 1.400"]
    assert gate(1.4, champion={"rmse": 1.5}).action == "promote"
    unmeasured = decide_promotion(GateInput({"rmse": 1.0, "r2": 0.9}, 0.0, primary_metric="rmse", primary_direction="min"), bar, requires_approval=False)
    assert unmeasured.reasons == ["baseline persistence was not measured: the bar requires beating it"]


def reports(*items, cursor=RetrainCursor(), now=100 * HOUR):
    return decide_on_reports(list(items), cursor, now=now, threshold=0.3, cooldown_seconds=24 * HOUR)


def test_a_monitor_that_requests_retraining_wins_over_a_newer_quiet_drift_report():
    quality = DriftReport(20, requested=True, reason="RMSE 3.6x the evaluation", source="co2/model_quality_monitor")
    drift = DriftReport(21, 0.1, False, source="co2/drift_report")
    decision, report = reports(quality, drift)
    assert decision.request and report is quality
    assert decision.reason.startswith("retraining: co2/model_quality_monitor: RMSE 3.6x") and "also seen: drift share 0.10" in decision.reason
    # every report seen is passed: the same reports again request nothing
    assert decision.cursor.last_report_id == 21
    again, _ = reports(quality, drift, cursor=decision.cursor, now=200 * HOUR)
    assert not again.request and "already decided on report 21" in again.reason


def test_monitors_within_limits_and_a_quiet_drift_report_request_nothing():
    quiet = DriftReport(30, requested=False, reason="", source="co2/bias_drift_monitor")
    decision, report = reports(quiet, DriftReport(31, 0.2, False))
    assert not decision.request and report.report_id == 31 and decision.cursor.last_report_id == 31
    assert "co2/bias_drift_monitor: within limits" in decision.reason
    none, _ = reports()
    assert not none.request and none.reason == "no drift report yet"
