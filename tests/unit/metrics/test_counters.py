"""The judge's counters: the PromQL that reads them and the samples that become counts."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.controller.analysis import Analyst
from canary.core import evidence
from canary.core.judge import JudgeState
from canary.core.observation import Counters
from canary.errors import ConfigError
from canary.metrics import counters
from canary.metrics.judgequery import judge_query
from canary.metrics.prometheus import QueryFailed
from canary.models.canary import Canary, JudgeCounts, JudgeStateRecord
from canary.settings import AnalysisSettings

WORKLOADS = counters.Workloads("web", "web-primary")


def sample(workload: str, value: float, **labels: str) -> tuple[dict[str, str], float]:
    return {"destination_workload": workload, **labels}, value


def part(what: str, workload: str, value: float, **labels: str) -> tuple[dict[str, str], float]:
    """A series of a judge query's answer: one part of it, for one workload."""
    return {"canary_judge": what, "destination_workload": workload, **labels}, value


class TestQueries:
    def test_error_rate_reads_raw_request_and_5xx_counters_in_one_query(self) -> None:
        query = judge_query("errorRate", "shop", WORKLOADS)
        requests, errors = query.split(" or label_replace(")
        errors = "label_replace(" + errors
        for promql in (requests, errors):
            assert promql.startswith(
                "label_replace(sum by (destination_workload) (istio_requests_total{")
            assert 'reporter="destination"' in promql
            assert 'destination_workload_namespace="shop"' in promql
            assert 'destination_workload=~"web|web-primary"' in promql
            assert "rate(" not in promql and "increase(" not in promql
        assert requests.endswith('"canary_judge", "requests", "", "")')
        assert errors.endswith('"canary_judge", "errors", "", "")')
        assert 'response_code=~"5.*"' in errors and "response_code" not in requests
        # A failed gRPC call (HTTP 200) is an error too, and a request counted once.
        assert ('response_code=~"5.*"} or istio_requests_total{' in errors
                and 'grpc_response_status=~"2|4|12|13|14|15"}' in errors)
        assert "lost" not in query  # nothing to check the first reading against

    def test_a_later_reading_counts_the_series_lost_since_the_previous_one(self) -> None:
        query = judge_query("errorRate", "shop", WORKLOADS, since=12.3456)
        lost = query.split(' or label_replace(count by (destination_workload) ')[1]
        lost = lost.split(" or label_replace(sum by")[0]
        assert lost.endswith('"canary_judge", "lost", "", "")')
        series = ('istio_requests_total{reporter="destination",destination_workload_namespace='
                  '"shop",destination_workload=~"web|web-primary"}')
        # Vanished, went down, reset in between, or back after an absence.
        assert f"({series} offset 12346ms unless {series})" in lost
        assert f"({series} < {series} offset 12346ms)" in lost
        assert f"(resets({series}[12346ms]) > 0)" in lost
        assert (f"({series} and (last_over_time({series}[1h] offset 12346ms) unless "
                f"{series} offset 12346ms))") in lost
        # And the requests Prometheus shows now at the previous reading's instant.
        assert query.endswith(f'label_replace(sum by (destination_workload) ({series} '
                              'offset 12346ms), "canary_judge", "previous", "", "")')
        latency = judge_query("latency", "shop", WORKLOADS, since=1)
        assert latency.endswith('destination_workload=~"web|web-primary",le="+Inf"} '
                                'offset 1000ms), "canary_judge", "previous", "", "")')

    def test_latency_reads_every_bucket_by_workload(self) -> None:
        query = judge_query("latency", "shop", WORKLOADS, since=10)
        assert query.startswith("label_replace(sum by (destination_workload, le) "
                                "(istio_request_duration_milliseconds_bucket{")
        assert "istio_request_duration_milliseconds_bucket{reporter" in \
            query.split('"lost"')[0].split('"buckets"')[1]

    def test_dots_in_names_match_literally(self) -> None:
        query = judge_query("latency", "shop", ("a.b", "a.b-primary"))
        assert 'destination_workload=~"a\\\\.b|a\\\\.b-primary"' in query

    def test_excluded_sources_leave_every_part_on_both_sides(self) -> None:
        query = judge_query("errorRate", "shop", WORKLOADS, since=10,
                            exclude_sources=("loadtester", "hey.tools"))
        selectors = [s.split("}")[0] for s in query.split("istio_requests_total{")[1:]]
        assert len(selectors) == 12
        assert all(s.endswith(',source_workload!~"loadtester|hey\\\\.tools"') or
                   s.endswith('source_workload!~"loadtester|hey\\\\.tools",'
                              'response_code=~"5.*"') or
                   s.endswith('source_workload!~"loadtester|hey\\\\.tools",'
                              'grpc_response_status=~"2|4|12|13|14|15"') for s in selectors)

    @pytest.mark.parametrize("name", ['web"}', "Web", "a|b", "a b", ""])
    def test_names_that_could_change_the_query_are_refused(self, name: str) -> None:
        with pytest.raises(ConfigError):
            judge_query("errorRate", "shop", (name, "web-primary"))
        with pytest.raises(ConfigError):
            judge_query("errorRate", "shop", WORKLOADS, exclude_sources=(name,))


class TestCounters:
    def test_error_rate_counters_by_workload(self) -> None:
        canary, primary = counters.counters("errorRate", {
            "requests": [sample("web", 120.0), sample("web-primary", 880.0)],
            "errors": [sample("web", 12.0)]}, WORKLOADS)
        assert canary == Counters(120, 12)
        assert primary == Counters(880, 0)  # no 5xx series yet: none counted

    def test_a_workload_without_series_is_absent_not_measured_as_zero(self) -> None:
        canary, primary = counters.counters("errorRate", {
            "requests": [sample("web-primary", 5.0)], "errors": []}, WORKLOADS)
        assert canary == Counters(0, 0, present=False)
        assert primary.present
        canary, primary = counters.counters("latency", {"buckets": []}, WORKLOADS)
        assert not canary.present and not primary.present

    def test_lost_series_are_counted_per_workload_when_checked(self) -> None:
        answer = [part("requests", "web", 1100.0), part("requests", "web-primary", 9000.0),
                  part("errors", "web", 11.0), part("lost", "web", 1.0),
                  part("previous", "web-primary", 8100.0)]
        reading = counters.reading("e", "errorRate", answer, WORKLOADS, "q", at=20.0,
                                   since=10.0)
        assert reading.error is None and (reading.at, reading.since) == (20.0, 10.0)
        assert reading.canary == Counters(1100, 11, lost=1, previous=0)
        assert reading.primary == Counters(9000, 0, lost=0, previous=8100)
        first = counters.reading("e", "errorRate", answer[:3], WORKLOADS, "q", at=10.0)
        assert first.canary.lost is None and first.primary.previous is None

    def test_latency_buckets_are_parsed_and_sorted_by_bound(self) -> None:
        canary, primary = counters.counters("latency", {"buckets": [
            sample("web", 10.0, le="+Inf"), sample("web", 7.0, le="500.0"),
            sample("web", 3.0, le="100"), sample("web-primary", 4.0, le="+Inf"),
            sample("web-primary", 4.0, le="500")]}, WORKLOADS)
        assert canary.buckets == ((100.0, 3), (500.0, 7), (math.inf, 10))
        assert canary.requests == 10 and primary.requests == 4

    @pytest.mark.parametrize(("samples", "message"), [
        ([part("requests", "web", 1.5)], "whole number"),
        ([part("requests", "other", 1.0)], "unexpected workload"),
        ([part("requests", "web", 1.0), part("errors", "web", 2.0)], "more errors"),
        ([part("requests", "web", 1.0), part("requests", "web", 2.0)], "two series"),
        ([part("buckets", "web", 1.0, le="500")], "lack le=\\+Inf"),
        ([part("buckets", "web", 1.0)], "without a numeric le"),
        ([({"destination_workload": "web"}, 1.0)], "no known part"),
    ])
    def test_samples_that_are_not_counts_are_refused(self, samples: list[Any],
                                                     message: str) -> None:
        kind = "latency" if samples[0][0].get("canary_judge") == "buckets" else "errorRate"
        reading = counters.reading("m", kind, samples, WORKLOADS, "q")
        assert reading.error is not None and reading.queries == ("q",)
        assert re.search(message, reading.error)

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
        lost = [part("lost", "web-primary", 2.0)] if '"lost"' in promql else []
        if "bucket" in promql:
            return [part("buckets", "web", 4.0, le="+Inf"),
                    part("buckets", "web", 3.0, le="500"), *lost]
        return [part("requests", "web", 10.0), part("requests", "web-primary", 90.0),
                part("errors", "web-primary", 2.0), *lost]


def judged_canary() -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
                 "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10, "judge": {
                     "metrics": [{"name": "errors", "type": "errorRate"},
                                 {"name": "slow", "type": "latency", "bound": 500}]}}}})


def analyst_with(fake: FakeQuerier) -> Analyst:
    """An Analyst whose Prometheus is ``fake``."""
    return Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                   querier_factory=lambda *_: fake)  # type: ignore[arg-type]


class TestAnalyst:
    async def test_every_counter_is_read_at_the_same_instant(self) -> None:
        fake = FakeQuerier()
        analyst = analyst_with(fake)
        readings = await analyst.read_counters(judged_canary())
        assert readings is not None
        errors, slow = readings
        assert errors.canary == Counters(10, 0) and errors.primary == Counters(90, 2)
        assert slow.canary.buckets == ((500.0, 3), (math.inf, 4))
        assert not slow.primary.present
        # One query per metric (requests and errors from the same scrapes), all at once;
        # before the first judged step, each also one interval (1m) earlier.
        at = errors.at
        assert at is not None and at == slow.at == round(at, 3)
        now = [q for q, when in fake.calls if when == at]
        before = [q for q, when in fake.calls if when == at - 60]
        assert len(now) == len(before) == 2 and len(fake.calls) == 4
        assert all('destination_workload=~"web|web-primary"' in q for q, _ in fake.calls)
        assert errors.earlier is not None and errors.earlier.at == at - 60
        assert errors.earlier.primary == Counters(90, 2)
        # The first readings of an analysis are checked against nothing.
        assert all('"lost"' not in q for q, _ in fake.calls) and errors.since is None

    async def test_later_readings_are_checked_against_each_metrics_last_reading(
            self) -> None:
        fake = FakeQuerier()
        analyst = analyst_with(fake)
        canary = judged_canary()
        canary.spec.analysis.judge.exclude_sources = ["loadtester"]  # type: ignore[union-attr]
        status = evidence.begin(canary.spec.analysis.judge, "rev")  # type: ignore[arg-type]
        errors = status.metrics[0]
        errors.reading = JudgeCounts(canary_requests=1, canary_events=0, primary_requests=9,
                                     primary_events=0)
        errors.reading_at = "2026-01-01T00:00:00.250Z"
        canary.status.judge = status
        first, second = await analyst.read_counters(canary) or ()
        previous = datetime(2026, 1, 1, 0, 0, 0, 250000, UTC).timestamp()
        assert first.since == previous and second.since is None
        assert first.primary.lost == 2 and first.canary.lost == 0
        (errors_query, at), (earlier_query, earlier_at), (latency_query, _), _ = fake.calls
        assert f"offset {round((at - previous) * 1000)}ms" in errors_query
        # Without a judged step yet, the traffic of the interval before is read too.
        assert earlier_at == at - 60 and '"lost"' not in earlier_query
        assert '"lost"' not in latency_query  # the latency metric has no reading yet
        assert all('source_workload!~"loadtester"' in q for q, _ in fake.calls)

    async def test_once_a_metric_has_a_judged_step_only_the_current_counters_are_read(
            self) -> None:
        fake = FakeQuerier()
        analyst = analyst_with(fake)
        canary = judged_canary()
        status = evidence.begin(canary.spec.analysis.judge, "rev")  # type: ignore[arg-type]
        for metric in status.metrics:
            metric.state = JudgeStateRecord.model_validate(
                JudgeState.start(evidence.design(1.5)).to_dict())
        canary.status.judge = status
        first, second = await analyst.read_counters(canary) or ()
        assert len(fake.calls) == 2 and first.earlier is None and second.earlier is None

    async def test_a_failed_query_is_a_reading_with_an_error(self) -> None:
        fake = FakeQuerier()
        fake.failing = True
        analyst = analyst_with(fake)
        readings = await analyst.read_counters(judged_canary())
        assert readings is not None
        assert all(r.error == "query failed: connection refused" for r in readings)

    async def test_without_a_judge_nothing_is_read(self) -> None:
        canary = judged_canary()
        canary.spec.analysis.judge = None
        analyst = Analyst(None, AnalysisSettings(metrics_server="http://prom:9090"),  # type: ignore[arg-type]
                          querier_factory=FakeQuerier)  # type: ignore[arg-type]
        assert await analyst.read_counters(canary) is None

    async def test_without_a_prometheus_address_every_metric_says_so(self) -> None:
        analyst = Analyst(None, AnalysisSettings(), querier_factory=FakeQuerier)  # type: ignore[arg-type]
        readings = await analyst.read_counters(judged_canary())
        assert readings is not None
        assert all("--metrics-server" in (r.error or "") for r in readings)
