"""flagger_compatible: Flagger's names, labels and value encodings, so that alerts and
dashboards written for Flagger keep working; nothing flagger_* without the setting."""

from __future__ import annotations

import pytest

from canary.models.canary import Phase
from canary.observability import ControllerMetrics
from tests.unit.observability.helpers import (
    DURATION,
    SUCCESS_RATE,
    labels,
    make_canary,
    samples,
    series,
)

TARGET = {"name": "web-app", "namespace": "shop"}


@pytest.fixture
def flagger() -> ControllerMetrics:
    return ControllerMetrics(flagger_compatible=True, process_metrics=False,
                             version="1.2.3", mesh_provider="istio")


class TestSetting:
    def test_no_flagger_names_without_the_setting(self) -> None:
        metrics = ControllerMetrics(process_metrics=False)
        metrics.observe(make_canary(results=[SUCCESS_RATE]))
        metrics.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED, 60.0)
        metrics.record_reconcile(0.1, "shop", "web")
        assert not [name for name, _ in samples(metrics) if name.startswith("flagger_")]

    def test_the_canary_names_stay_when_flagger_names_are_added(
            self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary())
        found = samples(flagger)
        assert series(found, "canary_weight") == {labels(name="web", namespace="shop"): 20.0}
        assert series(found, "flagger_info") == {
            labels(version="1.2.3", mesh_provider="istio"): 1.0}


class TestGauges:
    @pytest.mark.parametrize(("phase", "value"), [
        (Phase.PROGRESSING, 0.0), (Phase.FAILED, 2.0), (Phase.SUCCEEDED, 1.0),
        (Phase.INITIALIZED, 1.0), (Phase.WAITING, 1.0), (Phase.PROMOTING, 1.0),
        (Phase.FINALISING, 1.0), (Phase.TERMINATED, 1.0)])
    def test_status_is_0_running_1_successful_2_failed(
            self, flagger: ControllerMetrics, phase: Phase, value: float) -> None:
        """As Flagger encodes it: only Progressing is 0, only Failed is 2."""
        flagger.observe(make_canary(phase))
        assert series(samples(flagger), "flagger_canary_status") == {labels(**TARGET): value}

    def test_the_name_label_is_the_targets_name(self, flagger: ControllerMetrics) -> None:
        """Flagger labels by spec.targetRef.name, not by the Canary's name."""
        flagger.observe(make_canary(name="web", target="web-app", results=[SUCCESS_RATE]))
        found = samples(flagger)
        assert list(series(found, "flagger_canary_status")) == [labels(**TARGET)]
        assert list(series(found, "flagger_canary_metric_analysis")) == [
            labels(**TARGET, metric="request-success-rate")]

    def test_weight_has_a_series_for_the_target_and_one_for_its_primary(
            self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary(weight=30))
        assert series(samples(flagger), "flagger_canary_weight") == {
            labels(workload="web-app", namespace="shop"): 30.0,
            labels(workload="web-app-primary", namespace="shop"): 70.0}

    def test_two_canaries_of_one_target_expose_the_last_written_value_once(
            self, flagger: ControllerMetrics) -> None:
        """Flagger's series are labelled by target: one series, the last status wins,
        and it stays while either Canary does."""
        flagger.observe(make_canary(name="web", weight=30))
        flagger.observe(make_canary(name="web-b", weight=10))
        weight = labels(workload="web-app", namespace="shop")
        assert series(samples(flagger), "flagger_canary_weight")[weight] == 10.0
        flagger.observe(make_canary(name="web", weight=40))
        assert series(samples(flagger), "flagger_canary_weight")[weight] == 40.0
        flagger.forget("shop", "web")
        assert series(samples(flagger), "flagger_canary_weight")[weight] == 10.0

    def test_metric_analysis_holds_the_measured_values(
            self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary(results=[SUCCESS_RATE, DURATION,
                                             {"name": "errors", "verdict": "NoValues"}]))
        assert series(samples(flagger), "flagger_canary_metric_analysis") == {
            labels(**TARGET, metric="request-success-rate"): 99.5,
            labels(**TARGET, metric="request-duration"): 612.0}

    def test_total_counts_canaries_per_namespace(self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary(name="web", target="web"))
        flagger.observe(make_canary(name="api", target="api"))
        flagger.observe(make_canary(name="pay", target="pay", namespace="bank"))
        flagger.observe(make_canary(name="web", target="web"))
        assert series(samples(flagger), "flagger_canary_total") == {
            labels(namespace="shop"): 2.0, labels(namespace="bank"): 1.0}
        flagger.forget("shop", "api")
        flagger.forget("bank", "pay")
        assert series(samples(flagger), "flagger_canary_total") == {labels(namespace="shop"): 1.0}


class TestOutcomes:
    def test_promotions_and_rollbacks_count_as_successes_and_failures(
            self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary())
        flagger.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED, 60.0)
        flagger.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 60.0)
        flagger.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 60.0)
        found = samples(flagger)
        outcome = labels(**TARGET, deployment_strategy="canary", analysis_status="completed")
        assert series(found, "flagger_canary_successes_total") == {outcome: 1.0}
        assert series(found, "flagger_canary_failures_total") == {outcome: 2.0}

    @pytest.mark.parametrize(("analysis", "strategy"), [
        ({"stepWeight": None, "maxWeight": None, "iterations": 3,
          "match": [{"headers": {"x-canary": {"exact": "1"}}}]}, "ab-testing"),
        ({"stepWeight": None, "maxWeight": None, "iterations": 3}, "blue-green"),
        ({"stepWeight": None, "maxWeight": None, "iterations": 3, "mirror": True},
         "blue-green")])
    def test_the_deployment_strategy_uses_flaggers_words(
            self, flagger: ControllerMetrics, analysis: dict[str, object],
            strategy: str) -> None:
        flagger.observe(make_canary(analysis=analysis))
        flagger.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED)
        found = series(samples(flagger), "flagger_canary_successes_total")
        assert [dict(k)["deployment_strategy"] for k in found] == [strategy]

    def test_a_skipped_analysis_is_labelled_skipped(self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary(skipAnalysis=True))
        flagger.record_transition("shop", "web", Phase.PROMOTING, Phase.SUCCEEDED)
        found = series(samples(flagger), "flagger_canary_successes_total")
        assert [dict(k)["analysis_status"] for k in found] == ["skipped"]

    def test_reconciles_feed_the_per_canary_duration(self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary())
        flagger.record_reconcile(0.2, "shop", "web")
        flagger.record_reconcile(0.3)
        found = samples(flagger)
        assert series(found, "flagger_canary_duration_seconds_count") == {labels(**TARGET): 1.0}
        assert {dict(k)["le"] for k in series(found, "flagger_canary_duration_seconds_bucket")
                } == {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5",
                      "5.0", "10.0", "+Inf"}

    def test_forget_removes_the_flagger_series_too(self, flagger: ControllerMetrics) -> None:
        flagger.observe(make_canary(results=[SUCCESS_RATE]))
        flagger.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 60.0)
        flagger.record_reconcile(0.2, "shop", "web")
        flagger.forget("shop", "web")
        left = [name for name, key in samples(flagger)
                if name.startswith("flagger_canary") and dict(key).get("namespace") == "shop"]
        assert left == []
