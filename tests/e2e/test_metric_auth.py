"""A MetricTemplate's secretRef gives the Prometheus client its credentials."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from canary.controller.analysis import Analyst
from canary.core import MetricValue
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.metrics.prometheus import PrometheusAuth
from canary.models.canary import Canary
from canary.settings import AnalysisSettings
from tests.e2e import manifests


class RecordingQuerier:
    """Stands in for Prometheus: records how it was built and what it was asked."""

    made: list[tuple[str, PrometheusAuth]] = []

    def __init__(self, url: str, auth: PrometheusAuth, insecure: bool, timeout: float) -> None:
        RecordingQuerier.made.append((url, auth))

    async def query(self, name: str, promql: str) -> MetricValue:
        return MetricValue(name, 1.0, query=promql)


def _secret(name: str, namespace: str, **data: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


@pytest.mark.parametrize(("data", "expected"), [
    ({"token": "s3cr3t\n"}, PrometheusAuth(token="s3cr3t")),
    ({"username": "canary", "password": "pw"}, PrometheusAuth(username="canary", password="pw")),
])
async def test_credentials_come_from_the_secret(kube: KubeClient, namespace: str,
                                                data: dict[str, str],
                                                expected: PrometheusAuth) -> None:
    await kube.create(r.SECRETS, _secret("prom-auth", namespace, **data))
    await kube.create(r.METRIC_TEMPLATES, {
        "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": "http://prometheus.example:9090",
                              "secretRef": {"name": "prom-auth"}},
                 "query": 'sum(x{namespace="{{ namespace }}"})'}})
    canary = Canary.model_validate(manifests.canary("web", namespace, analysis={
        "interval": "1m", "threshold": 1, "stepWeight": 10,
        "metrics": [{"name": "errors", "templateRef": {"name": "errors"},
                     "thresholdRange": {"max": 1}}]}))
    RecordingQuerier.made.clear()
    analyst = Analyst(kube, AnalysisSettings(), querier_factory=RecordingQuerier)  # type: ignore[arg-type]
    [value] = await analyst.measure(canary)
    assert value.error is None and value.query == f'sum(x{{namespace="{namespace}"}})'
    assert RecordingQuerier.made == [("http://prometheus.example:9090", expected)]


async def test_a_secret_without_credentials_is_an_error_naming_it(kube: KubeClient,
                                                                  namespace: str) -> None:
    await kube.create(r.SECRETS, _secret("empty", namespace, other="x"))
    await kube.create(r.METRIC_TEMPLATES, {
        "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "errors", "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": "http://p:9090",
                              "secretRef": {"name": "empty"}}, "query": "x"}})
    canary = Canary.model_validate(manifests.canary("web", namespace, analysis={
        "interval": "1m", "threshold": 1, "stepWeight": 10,
        "metrics": [{"name": "errors", "templateRef": {"name": "errors"},
                     "thresholdRange": {"max": 1}}]}))
    [value] = await Analyst(kube, AnalysisSettings(),
                            querier_factory=RecordingQuerier).measure(canary)  # type: ignore[arg-type]
    assert value.error is not None and f"Secret {namespace}/empty needs `token`" in value.error
