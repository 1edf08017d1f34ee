"""Canaries in a given state, the exposition parsed into samples, a clock tests move."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from canary.models.canary import Canary, Phase
from canary.observability import ControllerMetrics

#: (sample name, sorted label items) -> value
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

SUCCESS_RATE = {"name": "request-success-rate", "value": 99.5, "min": 99.0,
                "verdict": "Passed"}
DURATION = {"name": "request-duration", "value": 612.0, "max": 500.0, "verdict": "Failed"}


def make_canary(phase: Phase | None = Phase.PROGRESSING, *, name: str = "web",
                namespace: str = "shop", target: str = "web-app", weight: int | None = 20,
                failed_checks: int | None = 1, revision: str | None = "rev-2",
                results: list[dict[str, Any]] | None = None, **spec: Any) -> Canary:
    status: dict[str, Any] = {"phase": phase, "canaryWeight": weight,
                              "failedChecks": failed_checks, "lastAppliedSpec": revision}
    if results is not None:
        status["lastAnalysis"] = {"time": "2026-01-01T00:00:00Z", "revision": revision,
                                  "weight": weight or 0, "results": results}
    analysis = {"interval": "1m", "threshold": 3, "maxWeight": 50, "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99}}]}
    analysis.update(spec.pop("analysis", {}))
    return Canary.model_validate({
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"kind": "Deployment", "name": target},
                 "service": {"port": 80}, "analysis": analysis, **spec},
        "status": {k: v for k, v in status.items() if v is not None}})


def samples(metrics: ControllerMetrics) -> Samples:
    """Every sample of the registry, as a scrape would parse it."""
    body, _ = metrics.exposition()
    return parse(body.decode())


def parse(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def series(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples named ``name``, by their labels."""
    return {labels: value for (sample, labels), value in found.items() if sample == name}


def labels(**items: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(items.items()))


def get(url: str, accept: str | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, whatever the status."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return (response.status, response.headers["Content-Type"],
                    response.read().decode())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
