"""Istio-standard request metrics, kept in memory and exposed for Prometheus."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import NamedTuple

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

#: Istio's default buckets for istio_request_duration_milliseconds (Envoy's defaults).
BUCKETS_MS = (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
              300000, 600000, 1800000, 3600000)


class Labels(NamedTuple):
    """The Istio standard labels the simulator fills in."""

    reporter: str
    source_workload: str
    source_workload_namespace: str
    source_app: str
    destination_workload: str
    destination_workload_namespace: str
    destination_app: str
    destination_version: str
    destination_service: str
    destination_service_name: str
    destination_service_namespace: str
    destination_canonical_service: str
    request_protocol: str
    response_code: str
    #: The gRPC status of a gRPC call (``"0"`` for OK); empty for plain HTTP.
    grpc_response_status: str
    response_flags: str
    connection_security_policy: str


class _Series:
    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * len(BUCKETS_MS)
        self.count = 0
        self.total = 0.0


class IstioMetrics(Collector):
    """``istio_requests_total`` and ``istio_request_duration_milliseconds`` by label set."""

    def __init__(self) -> None:
        self._series: dict[Labels, _Series] = {}

    def record(self, labels: Labels, duration_ms: float) -> None:
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = _Series()
        index = bisect.bisect_left(BUCKETS_MS, duration_ms)
        if index < len(BUCKETS_MS):
            series.buckets[index] += 1
        series.count += 1
        series.total += duration_ms

    def forget(self, namespace: str) -> int:
        """Drop the series of requests from or to ``namespace``, deleted: as a mesh's do
        when the namespace's proxies are gone. Without this, the series of every
        namespace ever served would make each scrape longer. How many were dropped."""
        gone = [labels for labels in self._series
                if namespace in (labels.source_workload_namespace,
                                 labels.destination_workload_namespace,
                                 labels.destination_service_namespace)]
        for labels in gone:
            del self._series[labels]
        return len(gone)

    def total(self, **where: str) -> int:
        """Requests recorded whose labels equal every given value (for checks and tests)."""
        return sum(s.count for labels, s in self._series.items()
                   if all(getattr(labels, k) == v for k, v in where.items()))

    def collect(self) -> Iterator[Metric]:
        names = list(Labels._fields)
        requests = CounterMetricFamily("istio_requests", "Requests seen by the mesh.",
                                       labels=names)
        durations = HistogramMetricFamily("istio_request_duration_milliseconds",
                                          "Request duration in milliseconds.", labels=names)
        for labels, series in list(self._series.items()):
            values = list(labels)
            requests.add_metric(values, series.count)
            cumulative, buckets = 0, []
            for bound, count in zip(BUCKETS_MS, series.buckets, strict=True):
                cumulative += count
                buckets.append((format_bound(bound), cumulative))
            buckets.append(("+Inf", series.count))
            durations.add_metric(values, buckets, series.total)
        yield requests
        yield durations


def format_bound(bound: float) -> str:
    return str(float(bound)) if bound != int(bound) else str(int(bound))
