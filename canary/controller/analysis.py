"""Running a Canary's analysis: resolve each metric's query and ask Prometheus."""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from canary.core import MetricValue, evidence
from canary.core.observation import JudgeReading
from canary.errors import ConfigError
from canary.kube import KubeClient, KubeError
from canary.kube import resources as r
from canary.kube.reads import CachedGet, read
from canary.metrics import counters
from canary.metrics.builtins import DataPlane, builtin_query, data_plane
from canary.metrics.judgequery import judge_query
from canary.metrics.prometheus import (
    MetricsUnavailable,
    PrometheusAuth,
    PrometheusQuerier,
    QueryFailed,
)
from canary.metrics.queries import QueryContext, render
from canary.models.base import format_duration
from canary.models.canary import Canary, CanaryMetric, JudgeMetric
from canary.models.templates import MetricTemplate
from canary.router import provider_of, service_name
from canary.settings import AnalysisSettings
from canary.targets.deployment import primary_name


class Analyst:
    """Measures every metric of a Canary's analysis; errors become per-metric results."""

    def __init__(self, client: KubeClient, settings: AnalysisSettings,
                 querier_factory: Callable[..., PrometheusQuerier] = PrometheusQuerier,
                 cached: CachedGet | None = None, mesh_provider: str = "istio") -> None:
        self.client = client
        self.settings = settings
        #: The provider of Canaries without spec.provider: whose metrics they read.
        self.mesh_provider = mesh_provider
        self.cached = cached
        self._queriers: dict[tuple[str, PrometheusAuth, bool], PrometheusQuerier] = {}
        self._factory = querier_factory

    def _querier(self, url: str, auth: PrometheusAuth, insecure: bool) -> PrometheusQuerier:
        key = (url, auth, insecure)
        if key not in self._queriers:
            self._queriers[key] = self._factory(url, auth, insecure,
                                                self.settings.query_timeout_seconds)
        return self._queriers[key]

    async def measure(self, canary: Canary) -> tuple[MetricValue, ...]:
        results = []
        for index, metric in enumerate(canary.spec.analysis.metrics or []):
            try:
                results.append(await self._measure(canary, metric, index))
            except (ConfigError, KubeError) as exc:
                results.append(MetricValue(metric.name, error=str(exc)))
        return tuple(results)

    async def read_counters(self, canary: Canary) -> tuple[JudgeReading, ...] | None:
        """The cumulative counters of every judged metric, for the canary and the primary,
        all evaluated at the same instant (each metric's in one query, so from the same
        scrapes), with every series checked against the metric's previous reading in
        ``canary.status.judge``; None when the analysis has no judge."""
        judge = canary.spec.analysis.judge
        if judge is None:
            return None
        url = self.settings.metrics_server
        plane = self.plane(canary)
        if plane.implementation is None:
            return tuple(JudgeReading(m.name, error=f"spec.analysis.judge: nothing to judge "
                                      f"with: {plane.why}") for m in judge.metrics)
        if not url:
            return tuple(JudgeReading(m.name, error="no Prometheus address: set "
                                      "--metrics-server") for m in judge.metrics)
        querier = self._querier(url, PrometheusAuth(), False)
        target = canary.spec.target_ref.name
        workloads = _Judged(canary.namespace, counters.Workloads(target, primary_name(target)),
                            plane.implementation, service_name(canary),
                            plane.grpc_errors_unseen)
        at = math.floor(time.time() * 1000) / 1000
        window = max(canary.spec.analysis.interval_seconds(),
                     self.settings.min_interval_seconds)
        readings = []
        for metric in judge.metrics:
            since = evidence.previous_reading(canary.status.judge, metric.name)
            if since is not None and since >= at:
                since = None  # a clock gone backwards: nothing to check against
            excluded = judge.exclude_sources or ()
            reading = await self._read(querier, workloads, metric, excluded, at, since)
            if reading.error is None and not evidence.has_judged(canary.status.judge,
                                                                metric.name):
                # The traffic of the interval before: the power check before the rollout.
                earlier = await self._read(querier, workloads, metric, excluded,
                                           at - window, None)
                reading = replace(reading, earlier=earlier)
            readings.append(reading)
        return tuple(readings)

    async def _read(self, querier: PrometheusQuerier, judged: _Judged, metric: JudgeMetric,
                    exclude_sources: Sequence[str], at: float, since: float | None
                    ) -> JudgeReading:
        workloads = judged.workloads
        if metric.type.value == "errorRate" and judged.grpc_errors_unseen:
            return JudgeReading(metric.name, error=(
                f"spec.analysis.judge: errorRate cannot see failed gRPC calls here: "
                f"{judged.grpc_errors_unseen}"))
        try:
            query = judge_query(metric.type.value, judged.namespace, workloads,
                                since=None if since is None else at - since,
                                exclude_sources=exclude_sources, plane=judged.plane,
                                service=judged.service)
        except ConfigError as exc:
            return JudgeReading(metric.name, error=str(exc))
        try:
            samples = await querier.samples(query, at)
        except QueryFailed as exc:
            return JudgeReading(metric.name, error=str(exc), queries=(query,),
                                unavailable=isinstance(exc, MetricsUnavailable))
        return counters.reading(metric.name, metric.type.value, samples, workloads, query,
                                at=at, since=since)

    def plane(self, canary: Canary) -> DataPlane:
        """The data plane whose metrics the Canary's built-ins and judge read."""
        return data_plane(provider_of(canary, self.mesh_provider),
                          canary.spec.service.gateway_implementation,
                          grpc=(canary.spec.service.app_protocol or "").lower() == "grpc")

    async def _measure(self, canary: Canary, metric: CanaryMetric, index: int
                       ) -> MetricValue:
        interval = metric.interval or format_duration(
            max(canary.spec.analysis.interval_seconds(), self.settings.min_interval_seconds))
        context = QueryContext(
            name=canary.name, namespace=canary.namespace, target=canary.spec.target_ref.name,
            service=service_name(canary), interval=interval,
            variables=metric.template_variables or {})
        url = self.settings.metrics_server
        auth, insecure = PrometheusAuth(), False
        if metric.template_ref is not None:
            namespace = metric.template_ref.namespace or canary.namespace
            origin = f"MetricTemplate {namespace}/{metric.template_ref.name}"
            try:
                raw = await read(self.client, self.cached, r.METRIC_TEMPLATES,
                                 metric.template_ref.name, namespace)
            except KubeError as exc:
                raise ConfigError(f"{origin}: {exc}") from exc
            template = MetricTemplate.model_validate(raw)
            query = template.spec.query
            provider = template.spec.provider
            url = provider.address or url
            insecure = bool(provider.insecure_skip_verify)
            if provider.secret_ref is not None:
                auth = await self._auth(namespace, provider.secret_ref.name)
        else:
            query = builtin_query(self.plane(canary), metric.name,
                                  f"spec.analysis.metrics[{index}].name")
            origin = ""
        if not url:
            raise ConfigError("no Prometheus address: set --metrics-server or the "
                              "MetricTemplate's provider.address")
        return await self._querier(url, auth, insecure).query(
            metric.name, _rendered(query, context, origin))

    async def _auth(self, namespace: str, name: str) -> PrometheusAuth:
        secret = await read(self.client, self.cached, r.SECRETS, name, namespace)
        data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        if "token" in data:
            return PrometheusAuth(token=data["token"].strip())
        if "username" in data and "password" in data:
            return PrometheusAuth(username=data["username"], password=data["password"])
        raise ConfigError(f"Secret {namespace}/{name} needs `token`, or `username` and "
                          "`password`")


@dataclass(frozen=True)
class _Judged:
    """Whose counters the judge reads: the workloads, where, and on which data plane."""

    namespace: str
    workloads: counters.Workloads
    plane: str
    service: str
    #: Why errors cannot be judged here (a gRPC service on Envoy Gateway); empty if they can.
    grpc_errors_unseen: str = ""


def _rendered(query: str, context: QueryContext, origin: str) -> str:
    """``query`` filled in; an error names the MetricTemplate it came from (``origin``,
    empty for a built-in query), so that the Canary's status and event say which object
    the placeholder is in."""
    try:
        return render(query, context)
    except ConfigError as exc:
        if not origin:
            raise
        raise ConfigError(f"{origin}: {exc}") from exc
