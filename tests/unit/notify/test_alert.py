"""What an alert says: severity filtering, evidence, which events alert, dashboard links."""

from __future__ import annotations

from typing import Any

import pytest

from canary.models.canary import Canary, Phase
from canary.notify import (
    EVENT_ALERTS,
    Evidence,
    accepts,
    alert_for_event,
    dashboard_url,
    from_canary,
)
from canary.notify.alert import default_subscriptions, words
from tests.unit.core.scenario import initialized


def canary_with(status: dict[str, Any]) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo-app"},
                 "service": {"port": 9898},
                 "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10}},
        "status": status})


ROLLED_BACK = {
    "phase": "Failed", "canaryWeight": 0, "lastAppliedSpec": "rev-2",
    "lastAnalysis": {"time": "2026-01-01T00:00:00.000Z", "revision": "rev-2", "weight": 30,
                     "results": [
                         {"name": "request-success-rate", "value": 95.2, "min": 99,
                          "verdict": "Failed"},
                         {"name": "request-duration", "value": 120, "max": 500,
                          "verdict": "Passed"}]}}


class TestSeverityFilter:
    @pytest.mark.parametrize(("subscribed", "heard"), [
        ("info", {"info", "warn", "error"}),
        ("warn", {"warn", "error"}),
        ("error", {"error"}),
    ])
    def test_a_subscription_hears_its_severity_and_above(self, subscribed: Any,
                                                         heard: set[str]) -> None:
        """info gets everything, warn gets warn and error, error only error."""
        assert {s for s in ("info", "warn", "error") if accepts(subscribed, s)} == heard


class TestEvidence:
    def test_bounds_read_as_people_write_them(self) -> None:
        assert Evidence("m", 1, 99, None, "Failed").bound() == ">= 99"
        assert Evidence("m", 1, None, 500, "Failed").bound() == "<= 500"
        assert Evidence("m", 1, 90, 100.5, "Failed").bound() == "90 to 100.5"

    def test_a_summary_names_metric_value_bound_and_verdict(self) -> None:
        summary = Evidence("request-success-rate", 95.2, 99, None, "Failed").summary()
        assert summary == "request-success-rate 95.2 (bound >= 99): Failed"

    def test_a_check_without_a_value_says_why(self) -> None:
        assert Evidence("m", None, 99, None, "NoValues").shown_value() == "no values"
        hook = Evidence("webhook/gate", None, None, None, "Failed", "HTTP 500")
        assert hook.summary() == "webhook/gate: HTTP 500 (Failed)"


class TestFromCanary:
    def test_carries_target_phase_change_weight_and_the_current_revisions_evidence(
            self) -> None:
        alert = from_canary(canary_with(ROLLED_BACK), reason="RolledBack", message="m",
                            severity="error", previous_phase="Progressing",
                            dashboard="https://grafana.example/d/canary")
        assert (alert.canary, alert.namespace) == ("podinfo", "test")
        assert str(alert.target) == "Deployment/podinfo-app"
        assert alert.phase_change() == "Progressing → Failed"
        assert alert.weight == 0 and alert.revision == "rev-2"
        assert [e.metric for e in alert.failing] == ["request-success-rate"]
        assert alert.failing[0].value == 95.2 and alert.failing[0].min == 99
        assert alert.dashboard_url is not None and "var-canary=podinfo" in alert.dashboard_url

    def test_a_previous_revisions_analysis_is_not_shown_as_evidence(self) -> None:
        """A new revision's alert must not show the numbers of the one before it."""
        status = ROLLED_BACK | {"phase": "Progressing", "lastAppliedSpec": "rev-3"}
        alert = from_canary(canary_with(status), reason="Progressing", message="m",
                            severity="info")
        assert alert.evidence == ()

    def test_the_decisions_own_rollback_becomes_an_error_alert_with_its_evidence(
            self) -> None:
        """Driven through the real decision core: the RolledBack event and the status it
        writes give an alert naming the metric, its value and its bound."""
        world = initialized()
        world.target_revision, world.success_rate = "rev-2", 80.0
        world.run_until_quiet()
        event = next(e for d in world.decisions for e in d.events if e.reason == "RolledBack")
        alert = alert_for_event(world.canary, event.reason, event.message,
                                previous_phase=str(Phase.PROGRESSING))
        assert alert is not None
        assert (alert.severity, alert.reason, alert.phase) == ("error", "RolledBack", "Failed")
        assert [(e.metric, e.value, e.bound()) for e in alert.failing] == [
            ("request-success-rate", 80.0, ">= 99")]


class TestRollbackWeight:
    """A rollback resets the weight to 0 before its alert is built: the alert also says
    the weight the canary was rolled back at."""

    def test_the_weight_before_the_decision_is_the_weight_rolled_back_at(self) -> None:
        alert = from_canary(canary_with(ROLLED_BACK), reason="RolledBack", message="m",
                            severity="error", previous_weight=40)
        assert (alert.weight, alert.rolled_back_at) == (0, 40)
        assert alert.shown_weight() == "0% (rolled back at 40%)"

    def test_without_it_the_weight_of_the_failed_analysis(self) -> None:
        alert = from_canary(canary_with(ROLLED_BACK), reason="RolledBack", message="m",
                            severity="error")
        assert alert.rolled_back_at == 30

    def test_a_previous_revisions_analysis_gives_no_weight(self) -> None:
        status = ROLLED_BACK | {"lastAppliedSpec": "rev-3"}
        alert = from_canary(canary_with(status), reason="RolledBack", message="m",
                            severity="error")
        assert alert.rolled_back_at is None and alert.shown_weight() == "0%"

    def test_a_rollback_before_any_traffic_says_no_more_than_0(self) -> None:
        alert = from_canary(canary_with(ROLLED_BACK), reason="RolledBack", message="m",
                            severity="error", previous_weight=0)
        assert alert.rolled_back_at is None and alert.shown_weight() == "0%"

    def test_only_rollbacks_carry_it(self) -> None:
        status = ROLLED_BACK | {"phase": "Progressing", "canaryWeight": 30}
        alert = from_canary(canary_with(status), reason="CheckFailed", message="m",
                            severity="warn", previous_weight=30)
        assert alert.rolled_back_at is None and alert.shown_weight() == "30%"

    def test_the_decisions_own_rollback_names_the_weight_it_failed_at(self) -> None:
        """Through the real decision core: the status after the rollback says weight 0,
        the alert the weight at which the analysis failed."""
        world = initialized()
        world.target_revision, world.success_rate = "rev-2", 80.0
        world.run_until_quiet()
        decisions = [d for d in world.decisions
                     if any(e.reason == "RolledBack" for e in d.events)]
        assert decisions and decisions[-1].status.canary_weight == 0
        assert world.canary.status.last_analysis is not None
        failed_at = world.canary.status.last_analysis.weight
        assert failed_at > 0
        alert = alert_for_event(world.canary, "RolledBack", "m",
                                previous_phase=str(Phase.PROGRESSING))
        assert alert is not None and alert.weight == 0
        assert alert.shown_weight() == f"0% (rolled back at {failed_at}%)"


class TestWhichEventsAlert:
    @pytest.mark.parametrize(("event", "reason", "severity"), [
        ("NewRevision", "Progressing", "info"),
        ("Promoted", "Promoted", "info"),
        ("WaitingForApproval", "Waiting", "info"),
        ("AnalysisFailed", "CheckFailed", "warn"),
        ("RolledBack", "RolledBack", "error"),
        ("UnsupportedProvider", "UnsupportedProvider", "error"),
    ])
    def test_outcomes_alert_with_their_severity(self, event: str, reason: str,
                                                severity: str) -> None:
        alert = alert_for_event(canary_with(ROLLED_BACK), event, "m")
        assert alert is not None and (alert.reason, alert.severity) == (reason, severity)

    def test_traffic_steps_stay_events(self) -> None:
        """A channel that hears every weight change stops being read."""
        assert "WeightIncreased" not in EVENT_ALERTS
        assert alert_for_event(canary_with(ROLLED_BACK), "WeightIncreased", "m") is None


class TestDashboardUrl:
    def test_sets_the_namespace_and_canary_variables_keeping_other_parameters(self) -> None:
        url = dashboard_url("https://grafana.example/d/abc/rollouts?orgId=2&var-canary=old",
                            "test", "podinfo")
        assert url == ("https://grafana.example/d/abc/rollouts?orgId=2&var-namespace=test"
                       "&var-canary=podinfo")

    def test_variable_names_can_follow_the_dashboard(self) -> None:
        url = dashboard_url("https://g/d/x", "a b", "c", namespace_variable="ns",
                            canary_variable="name")
        assert url == "https://g/d/x?var-ns=a+b&var-name=c"


def test_reasons_read_as_words() -> None:
    assert words("RolledBack") == "Rolled back"
    assert words("CheckFailed") == "Check failed"
    assert words("Promoted") == "Promoted"


def test_a_canary_without_alerts_of_its_own_subscribes_to_the_default_provider() -> None:
    assert default_subscriptions(None) == ()
    (subscription,) = default_subscriptions(("ops", "slack"), "warn")
    assert subscription.severity == "warn"
    assert (subscription.provider_ref.namespace, subscription.provider_ref.name) == (
        "ops", "slack")
