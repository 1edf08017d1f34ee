"""`canary describe`: the spec in short, the status, and the decisions with their
evidence, oldest first; never a credential."""

from __future__ import annotations

from typing import Any

from canary.console.describe import render, safe_url
from canary.console.view import CanaryView, events_in_order
from tests.unit.cli import objects
from tests.unit.cli.objects import NOW
from tests.unit.core.scenario import Service, first_metric, judged, present


def describe(obj: dict[str, Any], events: list[dict[str, Any]] | None = None) -> str:
    return render(CanaryView(obj), events_in_order(events or []), NOW)


def squashed(lines: str | list[str]) -> list[str]:
    """Each line with its runs of spaces made one (alignment aside)."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [" ".join(line.split()) for line in lines]


def section(text: str, title: str) -> list[str]:
    """The lines of a section, up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


class TestSpec:
    def test_target_service_and_strategy(self) -> None:
        lines = squashed(describe(objects.canary(autoscalerRef={
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "name": "podinfo"})))
        assert lines[3:7] == [
            "Target: Deployment podinfo",
            "Autoscaler: HorizontalPodAutoscaler podinfo (the primary gets podinfo-primary)",
            "Service: podinfo port 9898 -> 9898 (http); also podinfo-primary and "
            "podinfo-canary",
            "Strategy: Canary: weights 20, 40, 60 every 30s; rollback after 2 failed checks"]

    def test_iterative_strategies_are_spelled_out(self) -> None:
        ab = describe(objects.canary(analysis={
            "interval": "1m", "threshold": 2, "iterations": 10,
            "match": [{"headers": {"x-canary": {"exact": "insider"}}},
                      {"headers": {"cookie": {"regex": "canary"}}}]}))
        mirrored = describe(objects.canary(analysis={
            "interval": "1m", "threshold": 2, "iterations": 5, "mirror": True,
            "mirrorWeight": 40}))
        assert "ABTesting: 10 iterations every 1m for requests matching 2 rules" in ab
        assert "BlueGreenMirroring: 5 iterations every 1m, 40% of requests mirrored" in mirrored

    def test_metrics_with_their_bounds_windows_and_queries(self) -> None:
        obj = objects.canary(analysis={
            "interval": "1m", "threshold": 5, "stepWeight": 10, "metrics": [
                {"name": "request-success-rate", "thresholdRange": {"min": 99}},
                {"name": "latency", "interval": "2m", "thresholdRange": {"min": 10, "max": 900},
                 "templateRef": {"name": "p95", "namespace": "istio-system"},
                 "templateVariables": {"direction": "inbound"}},
                {"name": "errors", "threshold": 5, "templateRef": {"name": "errors"}}]})
        rows = section(describe(obj), "Metrics:")
        assert rows[1].split() == ["NAME", "BOUND", "WINDOW", "QUERY"]
        assert rows[2].split() == ["request-success-rate", ">=", "99", "1m*", "built-in"]
        assert rows[3].split() == ["latency", "10..900", "2m", "MetricTemplate",
                                   "istio-system/p95", "(direction=inbound)"]
        assert rows[4].split() == ["errors", "<=", "5", "1m*", "MetricTemplate", "test/errors"]
        # A window left to the analysis interval may be raised by the controller.
        assert squashed(rows[5]) == ["* the analysis interval, or the controller's "
                                     "--min-interval if longer"]

    def test_no_footnote_when_every_metric_sets_its_window(self) -> None:
        obj = objects.canary(analysis={
            "interval": "1m", "threshold": 5, "stepWeight": 10, "metrics": [
                {"name": "request-success-rate", "interval": "2m",
                 "thresholdRange": {"min": 99}}]})
        rows = section(describe(obj), "Metrics:")
        assert rows[2].split()[3] == "2m" and len(rows) == 3

    def test_webhooks_without_secrets(self) -> None:
        obj = objects.canary(analysis={
            "interval": "1m", "threshold": 5, "stepWeight": 10, "webhooks": [
                {"name": "gate", "type": "confirm-rollout",
                 "url": "https://ops:s3cret@gate.example.com/approve?token=abc123"},
                {"name": "load", "url": "http://loadtester.test/", "timeout": "5s",
                 "retries": 2, "metadata": {"cmd": "hey -H 'Authorization: Bearer xyz' "
                                            "http://podinfo-canary.test/"},
                 "secretRef": {"name": "hook-auth"}}]})
        text = describe(obj)
        rows = section(text, "Webhooks:")
        assert rows[2].split()[:4] == ["confirm-rollout", "gate",
                                       "https://ops:***@gate.example.com/approve?***", "10s"]
        assert rows[3].split()[:4] == ["rollout", "load", "http://loadtester.test/", "5s"]
        assert "2 retries; metadata cmd; headers from Secret hook-auth" in rows[3]
        for secret in ("s3cret", "abc123", "Bearer", "xyz"):
            assert secret not in text

    def test_alerts_name_their_provider(self) -> None:
        obj = objects.canary(analysis={
            "interval": "1m", "threshold": 5, "stepWeight": 10, "alerts": [
                {"name": "on-call", "severity": "error",
                 "providerRef": {"name": "slack", "namespace": "flagger"}},
                {"name": "team", "providerRef": {"name": "teams"}}]})
        rows = section(describe(obj), "Alerts:")
        assert rows[2].split() == ["on-call", "error", "AlertProvider", "flagger/slack"]
        assert rows[3].split() == ["team", "info", "AlertProvider", "test/teams"]


class TestStatusAndHistory:
    def test_a_rollback_with_its_evidence(self) -> None:
        events = [
            objects.event("RolledBack", "Rolling back podinfo: request-success-rate 80.21 "
                          "(must be >= 99) (failed checks 2/2)", 20, "Warning"),
            objects.event("NewRevision", "New revision rev2 of podinfo detected", 80),
            objects.event("AnalysisFailed", "Halt advancement of podinfo: "
                          "request-success-rate 85 (must be >= 99) (failed checks 1/2)", 50,
                          "Warning"),
        ]
        text = describe(objects.failed(), events)
        status = squashed(section(text, "Status:"))
        assert status == [
            "Status:", "Phase: Failed (since 20s ago)", "Strategy: Canary", "Weight: 0",
            "Failed checks: 2/2", "Revision: rev2 (promoted: rev1)",
            "Last decision: AnalysisFailed: Rolling back podinfo: request-success-rate 80.21 "
            "(must be >= 99) (failed checks 2/2)"]
        analysis = section(text, "Last analysis:")
        assert analysis[0].startswith("Last analysis: revision rev2, weight 20, at ")
        assert analysis[2].split()[:5] == ["request-success-rate", "80.21", ">=", "99",
                                           "Failed"]
        assert analysis[3].split() == ["request-duration", "132.4", "<=", "500", "Passed"]
        history = section(text, "History")
        assert [line.split()[3] for line in history[2:]] == [
            "NewRevision", "AnalysisFailed", "RolledBack"]
        assert history[4].split()[1:3] == ["20s", "Warning"]
        conditions = section(text, "Conditions:")
        assert conditions[2].split()[:4] == ["Promoted", "False", "AnalysisFailed", "20s"]

    def test_a_canary_never_analysed(self) -> None:
        text = describe(objects.canary())
        assert "Phase: Pending" in squashed(text)
        assert "Last analysis: none yet" in text
        assert section(text, "History")[1] == "  none"


def test_safe_url_keeps_what_locates_the_hook() -> None:
    assert safe_url("http://flagger-loadtester.test/gate/check") == \
        "http://flagger-loadtester.test/gate/check"
    assert safe_url("https://user@hooks.example.com/x?sig=1&a=2") == \
        "https://user@hooks.example.com/x?***"


class TestJudge:
    def test_the_judges_evidence_is_shown_against_its_bounds(self) -> None:
        world = judged(Service(ratio=5.0))
        world.target_revision = "rev-2"
        world.run_until_quiet(60)
        obj = world.canary.to_api()
        obj["metadata"] = {"name": "web", "namespace": "shop"}
        evidence = present(first_metric(world).evidence)
        text = describe(obj)
        judge = squashed(section(text.split("Last analysis")[1], "Judge"))
        assert judge[1].split()[:2] == ["JUDGED", "OUTCOME"]
        row = judge[2]
        assert row.startswith("error-rate regression ")
        assert (f"{evidence.canary_events}/{evidence.canary_requests} vs "
                f"{evidence.primary_events}/{evidence.primary_requests}") in row
        assert f"{evidence.log_regression:.2f} / {evidence.log_regression_bound:.2f}" in row

    def test_a_metric_proven_earlier_says_so_not_the_last_steps_continue(self) -> None:
        world = judged(Service(), metrics=[
            {"name": "error-rate", "type": "errorRate"},
            {"name": "latency", "type": "latency", "bound": 500, "minimumEffect": "1.01x"}])
        world.target_revision = "rev-2"
        world.run_until_quiet(60)
        judge = world.canary.status.judge
        assert judge is not None
        errors = judge.metrics[0]
        assert errors.proven_at_step is not None and errors.evidence is not None
        assert errors.proven_at_step < errors.evidence.steps
        obj = world.canary.to_api()
        obj["metadata"] = {"name": "web", "namespace": "shop"}
        obj["status"]["phase"] = "Progressing"  # still being delivered
        rows = squashed(section(describe(obj).split("Last analysis")[1], "Judge"))
        assert rows[2].startswith(f"error-rate no regression proven (step "
                                  f"{errors.proven_at_step}) ")
        assert rows[3].startswith("latency continue ")  # never proven: as it stands

    def test_the_bakes_own_evidence_is_shown_beside_the_whole_analysiss(self) -> None:
        world = judged(Service(), promoteEarly=True, bakeTime="30s")
        world.target_revision = "rev-2"
        world.run_until_quiet(60)
        baked = present(first_metric(world).bake_log_no_regression)
        obj = world.canary.to_api()
        obj["metadata"] = {"name": "web", "namespace": "shop"}
        rows = squashed(section(describe(obj).split("Last analysis")[1], "Judge"))
        assert rows[2].endswith(f"(bake {baked:.2f})")

    def test_no_judge_section_without_a_judge(self) -> None:
        assert "Judge" not in describe(objects.progressing())


class TestRepeatedEvents:
    def test_a_repeated_event_sorts_by_its_last_occurrence(self) -> None:
        waiting = objects.event("WaitingForApproval", "waits for approval", 50)
        waiting["series"] = {"count": 3, "lastObservedTime": objects.at(5)}
        ordered = events_in_order([waiting, objects.event("WeightIncreased", "weight 20", 20)])
        assert [e.reason for e in ordered] == ["WeightIncreased", "WaitingForApproval"]
