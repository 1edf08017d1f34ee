"""The judge's counters: the PromQL that reads them and the samples that become counts."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.controller.analysis import Analyst
from canary.core.observation import Counters
from canary.errors import ConfigError
from canary.metrics import counters
from canary.metrics.prometheus import QueryFailed
from canary.metrics.queries import judge_queries
from canary.models.canary import Canary
from canary.settings import AnalysisSettings

WORKLOADS = counters.Workloads("web", "web-primary")


def sample(workload: str, value: float, **labels: str) -> tuple[dict[str, str], float]:
    return {"destination_workload": workload, **labels}, value


class TestQueries:
    def test_error_rate_reads_raw_request_and_5xx_counters_of_both_workloads(self) -> None:
        queries = judge_queries("errorRate", "shop", WORKLOADS)
        assert set(queries) == {"requests", "errors"}
        for query in queries.values():
            assert query.startswith("sum by (destination_workload) (istio_requests_total{")
            assert 'reporter="destination"' in query
            assert 'destination_workload_namespace="shop"' in query
            assert 'destination_workload=~"web|web-primary"' in query
            assert "rate(" not in query and "increase(" not in query
        assert 'response_code=~"5.*"' in queries["errors"]
        assert "response_code" not in queries["requests"]

    def test_latency_reads_every_bucket_by_workload(self) -> None:
        [query] = judge_queries("latency", "shop", WORKLOADS).values()
        assert query.startswith("sum by (destination_workload, le) "
                                "(istio_request_duration_milliseconds_bucket{")

    def test_dots_in_names_match_literally(self) -> None:
        [query] = judge_queries("latency", "shop", ("a.b", "a.b-primary")).values()
        assert 'destination_workload=~"a\\\\.b|a\\\\.b-primary"' in query

    @pytest.mark.parametrize("name", ['web"}', "Web", "a|b", "a b", ""])
    def test_names_that_could_change_the_query_are_refused(self, name: str) -> None:
        with pytest.raises(ConfigError):
            judge_queries("errorRate", "shop", (name, "web-primary"))


class TestCounters:
    def test_error_rate_counters_by_workload(self) -> None:
        canary, primary = counters.counters("errorRate", {
            "requests": [sample("web", 120.0), sample("web-primary", 880.0)],
            "errors": [sample("web", 12.0)]}, WORKLOADS)
        assert canary == Counters(120, 12)
        assert primary == Counters(880, 0)  # no 5xx series yet: none counted

    def test_a_workload_without_series_has_counted_nothing(self) -> None:
        canary, _ = counters.counters("errorRate", {
            "requests": [sample("web-primary", 5.0)], "errors": []}, WORKLOADS)
        assert canary == Counters(0, 0)

    def test_latency_buckets_are_parsed_and_sorted_by_bound(self) -> None:
        canary, primary = counters.counters("latency", {"buckets": [
            sample("web", 10.0, le="+Inf"), sample("web", 7.0, le="500.0"),
            sample("web", 3.0, le="100"), sample("web-primary", 4.0, le="+Inf"),
            sample("web-primary", 4.0, le="500")]}, WORKLOADS)
        assert canary.buckets == ((100.0, 3), (500.0, 7), (math.inf, 10))
        assert canary.requests == 10 and primary.requests == 4

    @pytest.mark.parametrize(("samples", "message"), [
        ({"requests": [sample("web", 1.5)], "errors": []}, "whole number"),
        ({"requests": [sample("other", 1.0)], "errors": []}, "unexpected workload"),
        ({"requests": [sample("web", 1.0)], "errors": [sample("web", 2.0)]},
         "more errors"),
        ({"buckets": [sample("web", 1.0, le="500")]}, "lack le=\\+Inf"),
        ({"buckets": [sample("web", 1.0)]}, "without a numeric le"),
    ])
    def test_samples_that_are_not_counts_are_refused(self, samples: dict[str, Any],
                                                     message: str) -> None:
        kind = "latency" if "buckets" in samples else "errorRate"
        with pytest.raises(ValueError, match=message):
            counters.counters(kind, samples, WORKLOADS)
        reading = counters.reading("m", kind, samples, WORKLOADS, ["q"])
        assert reading.error is not None and reading.queries == ("q",)

    @given(st.integers(0, 10**12), st.integers(0, 10**12))
    def test_whole_float_values_are_exact_counts(self, requests: int, extra: int) -> None:
        canary, _ = counters.counters("errorRate", {
            "requests": [sample("web", float(requests + extra))],
            "errors": [sample("web", float(requests))]}, WORKLOADS)
        assert canary == Counters(requests + extra, requests)


class FakeQuerier:
    """Answers the judge's instant queries from canned samples, recording each call."""

    def __init__(self, *_: Any) -> None:
        self.calls: list[tuple[str, float]] = []
        self.failing = False

    async def samples(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        self.calls.append((promql, at))
        if self.failing:
            raise QueryFailed("query failed: connection refused")
        if "bucket" in promql:
            return [sample("web", 4.0, le="+Inf"), sample("web", 3.0, le="500")]
        if "5.*" in promql:
            return [sample("web-primary", 2.0)]
        return [sample("web", 10.0), sample("web-primary", 90.0)]


def judged_canary() -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10, "judge": {
                     "metrics": [{"name": "errors", "type": "errorRate"},
                                 {"name": "slow", "type": "latency", "bound": 500}]}}}})


class TestAnalyst:
    async def test_every_counter_is_read_at_the_same_instant(self) -> None:
        fake = FakeQuerier()
        analyst = Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                          querier_factory=lambda *_: fake)
        readings = await analyst.read_judge(judged_canary())
        assert readings is not None
        errors, slow = readings
        assert errors.canary == Counters(10, 0) and errors.primary == Counters(90, 2)
        assert slow.canary.buckets == ((500.0, 3), (math.inf, 4))
        assert len(fake.calls) == 3 and len({at for _, at in fake.calls}) == 1
        assert all('destination_workload=~"web|web-primary"' in q for q, _ in fake.calls)

    async def test_a_failed_query_is_a_reading_with_an_error(self) -> None:
        fake = FakeQuerier()
        fake.failing = True
        analyst = Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                          querier_factory=lambda *_: fake)
        readings = await analyst.read_judge(judged_canary())
        assert readings is not None
        assert all(r.error == "query failed: connection refused" for r in readings)

    async def test_without_a_judge_nothing_is_read(self) -> None:
        canary = judged_canary()
        canary.spec.analysis.judge = None
        analyst = Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                          querier_factory=FakeQuerier)
        assert await analyst.read_judge(canary) is None

    async def test_without_a_prometheus_address_every_metric_says_so(self) -> None:
        analyst = Analyst(None, AnalysisSettings(), querier_factory=FakeQuerier)  # type: ignore[arg-type]
        readings = await analyst.read_judge(judged_canary())
        assert readings is not None
        assert all("--metrics-server" in (r.error or "") for r in readings)
