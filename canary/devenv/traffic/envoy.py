"""Envoy Gateway's cluster stats for the requests through a Gateway API Gateway, as its
proxies expose them to Prometheus (``/stats/prometheus``), kept in memory.

Envoy Gateway names the cluster of a route rule ``<kind>/<namespace>/<route>/rule/<i>``
(the kind lowercased: ``httproute``, ``grpcroute``) and puts every backendRef of the rule
in it, unless one of them carries a filter: then each backendRef has its own cluster,
``<kind>/<namespace>/<route>/rule/<i>/backend/<j>``. Per cluster, the simulator counts
what Envoy does: ``envoy_cluster_upstream_rq`` by ``envoy_response_code``,
``envoy_cluster_upstream_rq_xx`` by ``envoy_response_code_class``,
``envoy_cluster_upstream_rq_total``, and the histogram ``envoy_cluster_upstream_rq_time``
(milliseconds, Envoy's default buckets), all labelled ``envoy_cluster_name``. Envoy
declares the first three counters without a ``_total`` suffix, which prometheus_client's
counters would add, so they are exposed untyped under Envoy's exact names. Mirrored
requests (Envoy's shadow clusters) are not counted.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import HistogramMetricFamily, Metric, UnknownMetricFamily
from prometheus_client.registry import Collector

from canary.devenv.traffic.metrics import BUCKETS_MS, format_bound

CLUSTER = "envoy_cluster_name"


def cluster_name(kind: str, namespace: str, route: str, rule: int,
                 backend: int | None = None) -> str:
    """The cluster of rule ``rule`` of a route, or of its backendRef ``backend`` when the
    rule's backendRefs have clusters of their own."""
    base = f"{kind.lower()}/{namespace}/{route}/rule/{rule}"
    return base if backend is None else f"{base}/backend/{backend}"


class _Cluster:
    __slots__ = ("buckets", "codes", "total")

    def __init__(self) -> None:
        self.codes: Counter[int] = Counter()
        self.buckets = [0] * len(BUCKETS_MS)
        self.total = 0.0


class EnvoyMetrics(Collector):
    """The upstream request stats of Envoy Gateway's clusters."""

    def __init__(self) -> None:
        self._clusters: dict[str, _Cluster] = {}

    def record(self, cluster: str, status: int, duration_ms: float) -> None:
        stats = self._clusters.get(cluster)
        if stats is None:
            stats = self._clusters[cluster] = _Cluster()
        stats.codes[status] += 1
        index = bisect.bisect_left(BUCKETS_MS, duration_ms)
        if index < len(BUCKETS_MS):
            stats.buckets[index] += 1
        stats.total += duration_ms

    def forget(self, namespace: str) -> int:
        """Drop the clusters of the routes of ``namespace``, deleted (their names carry
        it second: ``<kind>/<namespace>/...``). How many were dropped."""
        gone = [name for name in self._clusters if name.split("/")[1:2] == [namespace]]
        for name in gone:
            del self._clusters[name]
        return len(gone)

    def total(self, cluster: str, code_class: str | None = None) -> int:
        """Requests answered through ``cluster`` (of ``code_class``, e.g. ``"5"``)."""
        stats = self._clusters.get(cluster)
        if stats is None:
            return 0
        return sum(n for code, n in stats.codes.items()
                   if code_class is None or str(code)[0] == code_class)

    def collect(self) -> Iterator[Metric]:
        by_code = UnknownMetricFamily("envoy_cluster_upstream_rq",
                                      "Upstream requests by response code.",
                                      labels=[CLUSTER, "envoy_response_code"])
        by_class = UnknownMetricFamily("envoy_cluster_upstream_rq_xx",
                                       "Upstream requests by response code class.",
                                       labels=[CLUSTER, "envoy_response_code_class"])
        totals = UnknownMetricFamily("envoy_cluster_upstream_rq_total",
                                     "Upstream requests.", labels=[CLUSTER])
        times = HistogramMetricFamily("envoy_cluster_upstream_rq_time",
                                      "Upstream request time in milliseconds.",
                                      labels=[CLUSTER])
        for name, stats in list(self._clusters.items()):
            classes: Counter[str] = Counter()
            for code, count in sorted(stats.codes.items()):
                by_code.add_metric([name, str(code)], count)
                classes[str(code)[0]] += count
            for code_class, count in sorted(classes.items()):
                by_class.add_metric([name, code_class], count)
            count = sum(stats.codes.values())
            totals.add_metric([name], count)
            cumulative, buckets = 0, []
            for bound, n in zip(BUCKETS_MS, stats.buckets, strict=True):
                cumulative += n
                buckets.append((format_bound(bound), cumulative))
            buckets.append(("+Inf", count))
            times.add_metric([name], buckets, stats.total)
        yield from (by_code, by_class, totals, times)
