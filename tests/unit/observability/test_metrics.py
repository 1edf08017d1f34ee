"""canary_* metrics: per-Canary gauges follow the status exactly (no stale series),
transitions are counted once, controller counters add up, and the exposition parses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from canary.models.canary import CanaryStatus, Phase
from canary.observability import ControllerMetrics, rollout_seconds
from canary.observability.metrics import VERDICTS
from tests.unit.observability.helpers import (
    DURATION,
    SUCCESS_RATE,
    labels,
    make_canary,
    samples,
    series,
)

WEB = {"name": "web", "namespace": "shop"}


@pytest.fixture
def metrics() -> ControllerMetrics:
    return ControllerMetrics(process_metrics=False)


class TestObserve:
    @pytest.mark.parametrize("phase", list(Phase))
    def test_the_phase_is_a_state_set_with_one_series_per_phase(
            self, metrics: ControllerMetrics, phase: Phase) -> None:
        """Every phase has a series; only the current one is 1, so
        ``canary_phase{phase="Failed"} == 1`` selects failed Canaries."""
        metrics.observe(make_canary(phase))
        found = series(samples(metrics), "canary_phase")
        assert found == {labels(**WEB, phase=str(p)): float(p is phase) for p in Phase}

    def test_a_canary_without_a_phase_yet_has_every_phase_at_zero(
            self, metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary(None, weight=None, failed_checks=None, revision=None))
        found = samples(metrics)
        assert set(series(found, "canary_phase").values()) == {0.0}
        assert series(found, "canary_weight") == {labels(**WEB): 0.0}
        assert series(found, "canary_info") == {
            labels(**WEB, target="web-app", strategy="Canary", revision=""): 1.0}

    def test_weight_failed_checks_and_info_come_from_the_status(
            self, metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary(weight=30, failed_checks=2))
        found = samples(metrics)
        assert series(found, "canary_weight") == {labels(**WEB): 30.0}
        assert series(found, "canary_failed_checks") == {labels(**WEB): 2.0}
        assert series(found, "canary_info") == {
            labels(**WEB, target="web-app", strategy="Canary", revision="rev-2"): 1.0}

    def test_the_strategy_is_inferred_when_the_status_does_not_say(
            self, metrics: ControllerMetrics) -> None:
        canary = make_canary(analysis={"stepWeight": None, "maxWeight": None,
                                       "iterations": 5, "mirror": True})
        metrics.observe(canary)
        info = series(samples(metrics), "canary_info")
        assert [dict(key)["strategy"] for key in info] == ["BlueGreenMirroring"]

    def test_each_metric_is_exported_with_its_bounds_and_verdict(
            self, metrics: ControllerMetrics) -> None:
        """Dashboards plot the value against its bounds; an absent bound has no series."""
        metrics.observe(make_canary(results=[SUCCESS_RATE, DURATION]))
        found = samples(metrics)
        rate = labels(**WEB, metric="request-success-rate")
        duration = labels(**WEB, metric="request-duration")
        assert series(found, "canary_analysis_value") == {rate: 99.5, duration: 612.0}
        assert series(found, "canary_analysis_min_bound") == {rate: 99.0}
        assert series(found, "canary_analysis_max_bound") == {duration: 500.0}
        verdicts = series(found, "canary_analysis_verdict")
        assert {dict(k)["verdict"] for k, v in verdicts.items()
                if dict(k)["metric"] == "request-duration" and v == 1} == {"Failed"}
        assert len(verdicts) == 2 * len(VERDICTS)
        assert series(found, "canary_analysis_timestamp_seconds") == {
            labels(**WEB): datetime(2026, 1, 1, tzinfo=UTC).timestamp()}

    def test_a_metric_without_value_keeps_its_verdict_and_loses_its_value(
            self, metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary(results=[SUCCESS_RATE]))
        metrics.observe(make_canary(results=[{**SUCCESS_RATE, "value": None,
                                              "verdict": "NoValues"}]))
        found = samples(metrics)
        assert series(found, "canary_analysis_value") == {}
        assert series(found, "canary_analysis_verdict")[
            labels(**WEB, metric="request-success-rate", verdict="NoValues")] == 1.0

    def test_series_the_new_status_no_longer_has_disappear(
            self, metrics: ControllerMetrics) -> None:
        """A metric removed from the analysis, or a new revision, leaves nothing behind."""
        metrics.observe(make_canary(revision="rev-1", results=[SUCCESS_RATE, DURATION]))
        metrics.observe(make_canary(revision="rev-2", results=[SUCCESS_RATE]))
        found = samples(metrics)
        assert [dict(k)["revision"] for k in series(found, "canary_info")] == ["rev-2"]
        for name in ("canary_analysis_value", "canary_analysis_max_bound",
                     "canary_analysis_verdict"):
            assert all(dict(k)["metric"] == "request-success-rate"
                       for k in series(found, name)), name

    def test_canaries_are_kept_apart(self, metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary(name="web", weight=10))
        metrics.observe(make_canary(name="api", weight=40))
        assert series(samples(metrics), "canary_weight") == {
            labels(**WEB): 10.0, labels(name="api", namespace="shop"): 40.0}


class TestForget:
    def test_a_deleted_canary_leaves_no_series(self, metrics: ControllerMetrics) -> None:
        """Gauges, counters and histograms of the Canary all go; other Canaries stay."""
        metrics.observe(make_canary(results=[SUCCESS_RATE, DURATION]))
        metrics.observe(make_canary(name="api"))
        metrics.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 90.0)
        metrics.forget("shop", "web")
        left = [(name, dict(key)) for (name, key) in samples(metrics)
                if dict(key).get("name") == "web"]
        assert left == []
        assert series(samples(metrics), "canary_weight") == {
            labels(name="api", namespace="shop"): 20.0}

    def test_forgetting_an_unknown_canary_is_harmless(self, metrics: ControllerMetrics) -> None:
        metrics.forget("shop", "never-seen")

    def test_a_canary_observed_again_after_deletion_starts_afresh(
            self, metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary())
        metrics.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED)
        metrics.forget("shop", "web")
        metrics.observe(make_canary())
        assert series(samples(metrics), "canary_promotions_total") == {}


class TestTransitions:
    def test_promotions_and_rollbacks_are_counted_per_canary(
            self, metrics: ControllerMetrics) -> None:
        metrics.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED, 600.0)
        metrics.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 90.0)
        metrics.record_transition("shop", "web", Phase.FINALISING, Phase.SUCCEEDED, 1500.0)
        found = samples(metrics)
        assert series(found, "canary_promotions_total") == {labels(**WEB): 2.0}
        assert series(found, "canary_rollbacks_total") == {labels(**WEB): 1.0}
        assert series(found, "canary_rollout_duration_seconds_count") == {
            labels(outcome="promoted"): 2.0, labels(outcome="rolled_back"): 1.0}
        assert series(found, "canary_rollout_duration_seconds_sum")[
            labels(outcome="promoted")] == 2100.0

    @pytest.mark.parametrize(("old", "new"), [
        (Phase.PROGRESSING, Phase.PROMOTING), (Phase.SUCCEEDED, Phase.SUCCEEDED),
        (Phase.FAILED, Phase.FAILED), (Phase.INITIALIZED, Phase.PROGRESSING),
        (Phase.PROGRESSING, None)])
    def test_other_transitions_count_nothing(self, metrics: ControllerMetrics,
                                             old: Phase, new: Phase | None) -> None:
        metrics.record_transition("shop", "web", old, new, 60.0)
        found = samples(metrics)
        assert series(found, "canary_promotions_total") == {}
        assert series(found, "canary_rollbacks_total") == {}
        assert series(found, "canary_rollout_duration_seconds_count") == {}

    def test_an_unknown_duration_counts_the_outcome_only(
            self, metrics: ControllerMetrics) -> None:
        metrics.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, None)
        found = samples(metrics)
        assert series(found, "canary_rollbacks_total") == {labels(**WEB): 1.0}
        assert series(found, "canary_rollout_duration_seconds_count") == {}

    def test_buckets_reach_from_one_minute_to_two_hours(
            self, metrics: ControllerMetrics) -> None:
        metrics.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED, 30.0)
        bounds = {dict(k)["le"] for k in series(samples(metrics),
                                                "canary_rollout_duration_seconds_bucket")}
        assert {"60.0", "3600.0", "7200.0", "+Inf"} <= bounds

    def test_rollout_seconds_counts_from_the_first_traffic(self) -> None:
        status = CanaryStatus(phase=Phase.SUCCEEDED,
                              analysis_started_at="2026-01-01T00:00:00.000Z")
        assert rollout_seconds(status, datetime(2026, 1, 1, 0, 12, tzinfo=UTC)) == 720.0
        assert rollout_seconds(CanaryStatus(phase=Phase.FAILED),
                               datetime(2026, 1, 1, tzinfo=UTC)) is None


class TestControllerCounters:
    def test_reconcile_durations_form_a_histogram(self, metrics: ControllerMetrics) -> None:
        metrics.record_reconcile(0.004)
        metrics.record_reconcile(2.0, "shop", "web")
        found = samples(metrics)
        assert found[("canary_reconcile_duration_seconds_count", ())] == 2.0
        assert found[("canary_reconcile_duration_seconds_bucket", labels(le="0.005"))] == 1.0

    def test_watch_restarts_kube_requests_alerts_and_queue_depth(
            self, metrics: ControllerMetrics) -> None:
        metrics.record_watch_restart("deployments")
        metrics.record_watch_restart("deployments", 2)
        metrics.record_watch_relist("canaries", 2)
        metrics.record_kube_request("GET", 200)
        metrics.record_kube_request("GET", "200")
        metrics.record_kube_request("PATCH", 409)
        metrics.record_alert("shop/slack", "delivered")
        metrics.record_alert("shop/slack", "dropped", 3)
        metrics.record_events("written", 5)
        metrics.record_events("dropped")
        metrics.set_queue_depth(4)
        found = samples(metrics)
        assert series(found, "canary_watch_restarts_total") == {
            labels(resource="deployments"): 3.0}
        assert series(found, "canary_watch_relists_total") == {
            labels(resource="canaries"): 2.0}
        assert series(found, "canary_kube_requests_total") == {
            labels(verb="GET", code="200"): 2.0, labels(verb="PATCH", code="409"): 1.0}
        assert series(found, "canary_alerts_total") == {
            labels(provider="shop/slack", outcome="delivered"): 1.0,
            labels(provider="shop/slack", outcome="dropped"): 3.0}
        assert series(found, "canary_events_total") == {
            labels(outcome="written"): 5.0, labels(outcome="dropped"): 1.0}
        assert found[("canary_queue_depth", ())] == 4.0

    def test_an_unknown_alert_outcome_is_refused(self, metrics: ControllerMetrics) -> None:
        with pytest.raises(ValueError, match="delivered"):
            metrics.record_alert("shop/slack", "lost")

    def test_an_unknown_event_outcome_is_refused(self, metrics: ControllerMetrics) -> None:
        with pytest.raises(ValueError, match="resent"):
            metrics.record_events("lost")


class TestRegistry:
    def test_instances_have_registries_of_their_own(self) -> None:
        """Two instances (two tests, two controllers) neither clash nor share values."""
        first, second = ControllerMetrics(), ControllerMetrics()
        first.set_queue_depth(3)
        assert samples(second)[("canary_queue_depth", ())] == 0.0

    def test_process_metrics_are_included_by_default(self) -> None:
        names = {name for name, _ in samples(ControllerMetrics())}
        assert "python_info" in names

    def test_every_canary_family_follows_the_naming_conventions(
            self, metrics: ControllerMetrics) -> None:
        """Prefix canary_, help text, _total counters, _seconds histograms."""
        metrics.observe(make_canary(results=[SUCCESS_RATE]))
        metrics.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED, 60.0)
        body, _ = metrics.exposition()
        families = list(text_string_to_metric_families(body.decode()))
        assert families
        for family in families:
            if family.name.endswith("_created"):
                continue
            assert family.name.startswith("canary_"), family.name
            assert family.documentation, family.name
            if family.type == "counter":
                assert all(s.name.endswith("_total") for s in family.samples), family.name
            if family.type == "histogram":
                assert family.name.endswith("_seconds"), family.name

    def test_openmetrics_is_served_on_request(self, metrics: ControllerMetrics) -> None:
        body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
        assert content_type.startswith("application/openmetrics-text")
        assert body.rstrip().endswith(b"# EOF")
