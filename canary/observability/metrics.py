"""The controller's own Prometheus metrics (``canary_*``), in a registry of its own.

Per-Canary gauges are derived from the Canary's spec and status by :meth:`observe`, so
they say exactly what ``kubectl describe canary`` says and survive a controller restart:
the first status read after a restart restores them. Counters and histograms count what
this process saw happen. A deleted Canary's series are removed by :meth:`forget`, so
dashboards never show Canaries that no longer exist.

The registry is private to each :class:`ControllerMetrics` (not prometheus-client's
global one), so several instances (tests, or two controllers in one process) never clash.
Every name and label is documented in docs/metrics.md.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import choose_encoder

from canary import __version__
from canary.core.strategy import infer
from canary.core.timefmt import parse_time
from canary.models.canary import Canary, CanaryStatus, Phase
from canary.observability.flagger import FlaggerMetrics
from canary.observability.series import Key, LabelValues, SeriesBook, StatusGauge

#: Every verdict a metric of the analysis can have (MetricResult.verdict).
VERDICTS = ("Passed", "Failed", "NoValues", "Error", "Unavailable")
#: Rollouts last minutes to hours: 1 min .. 2 h.
ROLLOUT_BUCKETS = (60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0,
                   5400.0, 7200.0)
#: A reconcile reads caches (milliseconds) and may wait for metric queries and webhooks
#: (seconds, bounded by their timeouts).
RECONCILE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                     60.0)
#: Labels of a per-Canary series, and of a per-metric one.
_CANARY_LABELS: tuple[str, ...] = ("name", "namespace")
_METRIC_LABELS: tuple[str, ...] = ("name", "namespace", "metric")
#: Outcomes of an alert delivery (canary_alerts_total's ``outcome``).
ALERT_OUTCOMES = ("delivered", "failed", "dropped")
#: What became of the Kubernetes events canary recorded (see canary.kube.event_retry).
EVENT_OUTCOMES = ("written", "resent", "refused", "dropped")


def rollout_seconds(status: CanaryStatus, now: datetime) -> float | None:
    """Seconds since traffic first reached the canary, or None if it never did.

    ``status`` is the status that records the outcome: promotion and rollback keep
    ``analysisStartedAt``, a new revision clears it.
    """
    if not status.analysis_started_at:
        return None
    return max(0.0, (now - parse_time(status.analysis_started_at)).total_seconds())


@dataclass(frozen=True)
class _Identity:
    """What the counters need to know about a Canary, from its last observed state."""

    target: str
    strategy: str
    skip_analysis: bool


class ControllerMetrics:
    """canary's metrics; optionally Flagger's names too (``flagger_compatible``)."""

    def __init__(self, *, flagger_compatible: bool = False, mesh_provider: str = "istio",
                 version: str = __version__, process_metrics: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._book = SeriesBook()
        self._lock = threading.Lock()
        self._identities: dict[Key, _Identity] = {}
        registry = self.registry
        if process_metrics:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self._define_state()
        self._define_analysis()
        self._define_outcomes(registry)
        self._define_controller(registry)

        self.flagger = (FlaggerMetrics(registry, self._book, version=version,
                                       mesh_provider=mesh_provider)
                        if flagger_compatible else None)
        registry.register(self._book)  # once every family it exposes is made

    def _define_state(self) -> None:
        """The Canary's state, as its status says it."""
        gauge = self._book.gauge
        self.info = gauge("canary_info", "A Canary: its target, strategy and the revision "
                          "being delivered; always 1.",
                          (*_CANARY_LABELS, "target", "strategy", "revision"))
        self.phase = gauge("canary_phase", "The Canary's phase as a state set: 1 for the "
                           "current phase, 0 for the others.", (*_CANARY_LABELS, "phase"))
        self.weight = gauge("canary_weight", "Percent of traffic routed to the canary.",
                            _CANARY_LABELS)
        self.failed_checks = gauge("canary_failed_checks", "Failed checks of the current "
                                   "analysis; the rollback comes at the analysis threshold.",
                                   _CANARY_LABELS)
        self.iterations = gauge("canary_iterations", "Iterations done by an A/B or "
                                "blue/green analysis.", _CANARY_LABELS)

    def _define_analysis(self) -> None:
        """The last analysis: each metric's value, bounds and verdict."""
        gauge = self._book.gauge
        self.analysis_value = gauge("canary_analysis_value", "A metric's value at the last "
                                    "analysis, in the metric's own unit; absent when the "
                                    "query returned no value.", _METRIC_LABELS)
        self.analysis_min = gauge("canary_analysis_min_bound", "The lowest value of a metric "
                                  "that passes; absent when unbounded below.", _METRIC_LABELS)
        self.analysis_max = gauge("canary_analysis_max_bound", "The highest value of a metric "
                                  "that passes; absent when unbounded above.", _METRIC_LABELS)
        self.analysis_verdict = gauge("canary_analysis_verdict", "A metric's verdict at the "
                                      "last analysis as a state set: 1 for the verdict, 0 "
                                      "for the others.", (*_METRIC_LABELS, "verdict"))
        self.analysis_time = gauge("canary_analysis_timestamp_seconds", "When the last "
                                   "analysis ran, in seconds since the Unix epoch.",
                                   _CANARY_LABELS)

    def _define_outcomes(self, registry: CollectorRegistry) -> None:
        """How rollouts ended, counted by this process."""
        self.rollout_duration = Histogram(
            "canary_rollout_duration_seconds", "Seconds from traffic first reaching the "
            "canary to its promotion or rollback.", ["outcome"], buckets=ROLLOUT_BUCKETS,
            registry=registry)
        self.promotions = Counter("canary_promotions", "Revisions promoted.", _CANARY_LABELS,
                                  registry=registry)
        self.rollbacks = Counter("canary_rollbacks", "Revisions rolled back.", _CANARY_LABELS,
                                 registry=registry)

    def _define_controller(self, registry: CollectorRegistry) -> None:
        """The controller's own work: reconciles, watches, API requests, alerts."""
        self.reconcile_duration = Histogram(
            "canary_reconcile_duration_seconds", "Seconds one reconcile of a Canary took, "
            "metric queries and webhooks included.", buckets=RECONCILE_BUCKETS,
            registry=registry)
        self.watch_restarts = Counter("canary_watch_restarts", "Watches re-established "
                                      "after a failure or an expired resourceVersion.",
                                      ["resource"], registry=registry)
        self.watch_relists = Counter("canary_watch_relists", "Lists again after the API "
                                     "server answered a watch with 410 Gone (its history "
                                     "compacted past the resourceVersion).", ["resource"],
                                     registry=registry)
        self.kube_requests = Counter("canary_kube_requests", "Requests to the Kubernetes "
                                     "API, by verb (WATCH for watch streams) and status code "
                                     "(error when no response came).", ["verb", "code"],
                                     registry=registry)
        self.queue_depth = Gauge("canary_queue_depth", "Canaries with work pending: woken "
                                 "and not yet reconciled.", registry=registry)
        self.alerts = Counter("canary_alerts", "Alerts by AlertProvider (namespace/name) "
                              "and outcome: delivered, failed (after retries) or dropped "
                              "(queue full).", ["provider", "outcome"], registry=registry)
        self.events = Counter("canary_events", "Kubernetes events by outcome: written, "
                              "resent (written after the API server refused them for a "
                              "while; also counted as written), refused (for good: 403, "
                              "404, 422) or dropped (refused for too long).", ["outcome"],
                              registry=registry)

    # -- per Canary ---------------------------------------------------------------------

    def observe(self, canary: Canary) -> None:
        """Set the Canary's gauges from its spec and status; call after each status write
        and for each Canary the watch delivers."""
        key = (canary.namespace, canary.name)
        status = canary.status
        strategy = status.strategy or str(infer(canary.spec.analysis))
        with self._lock:
            new = key not in self._identities
            self._identities[key] = _Identity(canary.spec.target_ref.name, strategy,
                                              bool(canary.spec.skip_analysis))
        gauges = self._gauges(canary, strategy)
        if self.flagger is not None:
            gauges.update(self.flagger.gauges(canary))
        self._book.set_gauges(key, gauges)
        if new and self.flagger is not None:
            self.flagger.set_totals(self._book.keys())

    def _gauges(self, canary: Canary, strategy: str
                ) -> dict[StatusGauge, dict[LabelValues, float]]:
        ns_name = (canary.name, canary.namespace)
        status = canary.status
        gauges: dict[StatusGauge, dict[LabelValues, float]] = {
            self.info: {(*ns_name, canary.spec.target_ref.name, strategy,
                         status.last_applied_spec or ""): 1},
            self.phase: {(*ns_name, str(phase)): float(phase == status.phase)
                         for phase in Phase},
            self.weight: {ns_name: status.canary_weight or 0},
            self.failed_checks: {ns_name: status.failed_checks or 0},
            self.iterations: {ns_name: status.iterations or 0},
            self.analysis_value: {}, self.analysis_min: {}, self.analysis_max: {},
            self.analysis_verdict: {}, self.analysis_time: {},
        }
        record = status.last_analysis
        if record is None:
            return gauges
        gauges[self.analysis_time][ns_name] = parse_time(record.time).timestamp()
        for result in record.results:
            labels = (*ns_name, result.name)
            for gauge, value in ((self.analysis_value, result.value),
                                 (self.analysis_min, result.min),
                                 (self.analysis_max, result.max)):
                if value is not None:
                    gauges[gauge][labels] = value
            for verdict in VERDICTS:
                gauges[self.analysis_verdict][(*labels, verdict)] = float(
                    verdict == result.verdict)
        return gauges

    def forget(self, namespace: str, name: str) -> None:
        """Remove every series of a deleted Canary."""
        key = (namespace, name)
        with self._lock:
            self._identities.pop(key, None)
        self._book.forget(key)
        if self.flagger is not None:
            self.flagger.set_totals(self._book.keys())

    def record_transition(self, namespace: str, name: str, old_phase: Phase | None,
                          new_phase: Phase | None, rollout_seconds: float | None = None
                          ) -> None:
        """Count a promotion (-> Succeeded) or rollback (-> Failed) once the status that
        records it is written; ``rollout_seconds`` (see :func:`rollout_seconds`) feeds
        the duration histogram. Other transitions are ignored."""
        if new_phase == old_phase or new_phase not in (Phase.SUCCEEDED, Phase.FAILED):
            return
        promoted = new_phase is Phase.SUCCEEDED
        key = (namespace, name)
        counter = self.promotions if promoted else self.rollbacks
        counter.labels(name, namespace).inc()
        self._book.keep(key, counter, (name, namespace))
        if rollout_seconds is not None:
            self.rollout_duration.labels("promoted" if promoted else "rolled_back").observe(
                rollout_seconds)
        if self.flagger is not None:
            who = self._identity(key)
            self.flagger.record_outcome(key, who.target, who.strategy, who.skip_analysis,
                                        promoted)

    def _identity(self, key: Key) -> _Identity:
        with self._lock:
            # A Canary not observed yet: Flagger's defaults (target named as the Canary).
            return self._identities.get(key) or _Identity(key[1], "Canary", False)

    # -- the controller -----------------------------------------------------------------

    def record_reconcile(self, seconds: float, namespace: str | None = None,
                         name: str | None = None) -> None:
        """One reconcile took ``seconds``; naming the Canary also feeds Flagger's
        per-canary duration."""
        self.reconcile_duration.observe(seconds)
        if self.flagger is not None and namespace is not None and name is not None:
            key = (namespace, name)
            self.flagger.record_duration(key, self._identity(key).target, seconds)

    def record_watch_restart(self, resource: str, count: int = 1) -> None:
        """A watch on ``resource`` (its plural, e.g. deployments) was re-established."""
        self.watch_restarts.labels(resource).inc(count)

    def record_watch_relist(self, resource: str, count: int = 1) -> None:
        """A watch on ``resource`` was answered 410 Gone and listed again."""
        self.watch_relists.labels(resource).inc(count)

    def record_kube_request(self, verb: str, code: int | str) -> None:
        """One API request: verb (GET, POST, PATCH, ..., WATCH) and status code."""
        self.kube_requests.labels(verb, str(code)).inc()

    def set_queue_depth(self, depth: int) -> None:
        self.queue_depth.set(depth)

    def record_alert(self, provider: str, outcome: str, count: int = 1) -> None:
        """Alerts to an AlertProvider (``namespace/name``) delivered, failed or dropped."""
        if outcome not in ALERT_OUTCOMES:
            raise ValueError(f"unknown alert outcome {outcome!r}; use one of {ALERT_OUTCOMES}")
        self.alerts.labels(provider, outcome).inc(count)

    def record_events(self, outcome: str, count: int = 1) -> None:
        """Kubernetes events written, resent or dropped."""
        if outcome not in EVENT_OUTCOMES:
            raise ValueError(f"unknown event outcome {outcome!r}; use one of {EVENT_OUTCOMES}")
        self.events.labels(outcome).inc(count)

    # -- exposition ---------------------------------------------------------------------

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """The registry in the format the ``Accept`` header asks for (Prometheus text
        by default, OpenMetrics on request): (body, content type)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
