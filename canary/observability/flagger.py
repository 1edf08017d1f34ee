"""Flagger's metric names, labels and values, for alerts and dashboards written for Flagger.

Exported only when ``flagger_compatible`` is set. Names, label names and value encodings
follow Flagger's ``pkg/metrics/recorder.go``; in particular its ``name`` label holds the
*target's* name (``spec.targetRef.name``), not the Canary's, ``flagger_canary_weight``
has one series for the target and one for ``<target>-primary``, and
``flagger_canary_status`` collapses the phases into 0 (Progressing), 2 (Failed) and 1
(every other phase).
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from canary.models.canary import Canary, Phase
from canary.observability.series import Key, LabelValues, SeriesBook, StatusGauge

#: Flagger's deployment_strategy label, by canary's status.strategy.
STRATEGIES = {"Canary": "canary", "ABTesting": "ab-testing", "BlueGreen": "blue-green",
              "BlueGreenMirroring": "blue-green"}
#: Flagger's histogram buckets for flagger_canary_duration_seconds (Prometheus' defaults).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def status_value(phase: Phase) -> int:
    """flagger_canary_status: 0 running (Progressing), 1 successful (any other), 2 failed."""
    if phase is Phase.PROGRESSING:
        return 0
    if phase is Phase.FAILED:
        return 2
    return 1


class FlaggerMetrics:
    """The ``flagger_*`` families, registered in the controller's registry."""

    def __init__(self, registry: CollectorRegistry, book: SeriesBook, *, version: str,
                 mesh_provider: str) -> None:
        self._book = book
        self.info = Gauge("flagger_info", "Flagger version and mesh provider information",
                          ["version", "mesh_provider"], registry=registry)
        self.info.labels(version, mesh_provider).set(1)
        self.total = Gauge("flagger_canary_total", "Total number of canary object",
                           ["namespace"], registry=registry)
        self.status = book.gauge(
            "flagger_canary_status",
            "Last canary analysis result (0 running, 1 successful, 2 failed)",
            ("name", "namespace"))
        self.weight = book.gauge("flagger_canary_weight",
                                 "The virtual service destination weight current value",
                                 ("workload", "namespace"))
        self.analysis = book.gauge("flagger_canary_metric_analysis",
                                   "Last canary analysis result per metric",
                                   ("name", "namespace", "metric"))
        self.duration = Histogram("flagger_canary_duration_seconds",
                                  "Seconds spent performing canary analysis.",
                                  ["name", "namespace"], buckets=DURATION_BUCKETS,
                                  registry=registry)
        outcome_labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self.successes = Counter("flagger_canary_successes",
                                 "Total number of canary successes", outcome_labels,
                                 registry=registry)
        self.failures = Counter("flagger_canary_failures", "Total number of canary failures",
                                outcome_labels, registry=registry)
        self._namespaces: set[str] = set()

    def gauges(self, canary: Canary) -> dict[StatusGauge, dict[LabelValues, float]]:
        """The Canary's flagger_* gauge series, from its spec and status."""
        target, namespace = canary.spec.target_ref.name, canary.namespace
        status = canary.status
        weight = status.canary_weight or 0
        values: dict[StatusGauge, dict[LabelValues, float]] = {
            self.weight: {(target, namespace): weight,
                          (f"{target}-primary", namespace): 100 - weight},
            self.analysis: {(target, namespace, result.name): result.value
                            for result in (status.last_analysis.results
                                           if status.last_analysis else [])
                            if result.value is not None},
        }
        if status.phase is not None:
            values[self.status] = {(target, namespace): status_value(status.phase)}
        return values

    def set_totals(self, keys: list[Key]) -> None:
        """flagger_canary_total: Canaries per namespace; namespaces without any disappear."""
        counts = totals_by_namespace(keys)
        for namespace, count in counts.items():
            self.total.labels(namespace).set(count)
        for namespace in self._namespaces - set(counts):
            self.total.remove(namespace)
        self._namespaces = set(counts)

    def record_outcome(self, key: Key, target: str, strategy: str | None, skipped: bool,
                       promoted: bool) -> None:
        """One more success (promotion) or failure (rollback) of the Canary ``key``."""
        labels = (target, key[0], STRATEGIES.get(strategy or "", "canary"),
                  "skipped" if skipped else "completed")
        counter = self.successes if promoted else self.failures
        counter.labels(*labels).inc()
        self._book.keep(key, counter, labels)

    def record_duration(self, key: Key, target: str, seconds: float) -> None:
        """One reconcile of the Canary ``key``: Flagger's time per analysis run."""
        labels = (target, key[0])
        self.duration.labels(*labels).observe(seconds)
        self._book.keep(key, self.duration, labels)


def totals_by_namespace(keys: list[Key]) -> Mapping[str, int]:
    """How many Canaries each namespace has."""
    counts: dict[str, int] = {}
    for namespace, _ in keys:
        counts[namespace] = counts.get(namespace, 0) + 1
    return counts
