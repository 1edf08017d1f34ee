"""What the controller process tells about itself: /metrics while a rollout runs, and
its probes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import APP, canary_object, deploy, phase, start
from tests.e2e.waiting import wait_until


async def samples(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(url)).text
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], series: str, /,
          **labels: str) -> float | None:
    for sample_labels, sample_value in found.get(series, []):
        if all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


@pytest.mark.usefixtures("running_controller")
async def test_metrics_follow_a_rollout_to_its_promotion(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        controller: ControllerProcess) -> None:
    await start(kube, environment, namespace)
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: samples(controller.metrics_url),
                     lambda f: (value(f, "canary_weight", name=APP, namespace=namespace)
                                or 0) > 0,
                     "the canary's weight in /metrics")
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Succeeded",
                     "the promotion", timeout=120)
    found = await wait_until(
        lambda: samples(controller.metrics_url),
        lambda f: value(f, "canary_phase", name=APP, namespace=namespace,
                        phase="Succeeded") == 1.0, "the Succeeded phase in /metrics")
    assert value(found, "canary_phase", name=APP, namespace=namespace, phase="Progressing") == 0
    assert value(found, "canary_promotions_total", name=APP, namespace=namespace) == 1
    assert value(found, "canary_weight", name=APP, namespace=namespace) == 0
    analysed = value(found, "canary_analysis_value", name=APP, namespace=namespace,
                     metric="request-success-rate")
    assert analysed is not None and analysed >= 99
    assert (value(found, "canary_kube_requests_total", verb="PATCH", code="200") or 0) > 0


async def test_probes_answer_once_the_caches_are_listed(
        running_controller: ControllerProcess) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        ready = await http.get(f"{running_controller.probe_url}/readyz")
        alive = await http.get(f"{running_controller.probe_url}/healthz")
    assert ready.status_code == 200, ready.text
    assert alive.status_code == 200, alive.text
