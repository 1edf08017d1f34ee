"""A bad Canary is refused at apply time, with a message that names the problem."""

from __future__ import annotations

from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import Invalid, KubeClient, Resource
from tests.e2e import manifests

CANARIES = Resource("canary.dev", "v1beta1", "canaries", "Canary")


async def test_a_valid_canary_is_accepted_with_its_short_name_and_columns(
        kube: KubeClient, namespace: str) -> None:
    created = await kube.create(CANARIES, manifests.canary("web", namespace))
    assert created["spec"]["analysis"]["stepWeight"] == 10
    crd = await kube.request("GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                             "canaries.canary.dev")
    assert crd["spec"]["names"]["shortNames"] == ["cn"]
    columns = [c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]]
    assert columns == ["Status", "Weight", "FailedChecks", "LastTransitionTime"]


def _without_target(m: dict[str, Any]) -> None:
    del m["spec"]["targetRef"]


def _analysis(**fields: Any) -> Any:
    def change(m: dict[str, Any]) -> None:
        m["spec"]["analysis"] = {"interval": "1m", "threshold": 5, **fields}
    return change


@pytest.mark.parametrize(("change", "message"), [
    (_without_target, "spec.targetRef: Required value"),
    (_analysis(stepWeight=60, maxWeight=50), "stepWeight must not exceed maxWeight"),
    (_analysis(maxWeight=50), "a weighted canary needs stepWeight or stepWeights"),
    (_analysis(iterations=10, stepWeight=10), "different strategies: choose one"),
    (_analysis(stepWeights=[10, 50, 20]), "stepWeights must be in increasing order"),
    (_analysis(stepWeight=10, interval="ten seconds"), "spec.analysis.interval"),
    (_analysis(stepWeight=10, threshold=0), "spec.analysis.threshold"),
    (_analysis(stepWeight=10, metrics=[{"name": "error-budget",
                                        "thresholdRange": {"max": 1}}]),
     "needs templateRef"),
    (_analysis(stepWeight=10, metrics=[{"name": "request-success-rate",
                                        "thresholdRange": {"min": 99, "max": 90}}]),
     "min must not exceed max"),
], ids=["missing-target", "step-over-max", "no-strategy", "two-strategies", "unsorted-steps",
        "bad-duration", "zero-threshold", "unknown-metric", "inverted-range"])
async def test_an_invalid_canary_is_refused(kube: KubeClient, namespace: str,
                                            change: Any, message: str) -> None:
    manifest = manifests.canary("web", namespace)
    change(manifest)
    with pytest.raises(Invalid) as refused:
        await kube.create(CANARIES, manifest)
    assert message in refused.value.message


async def test_kubectl_finds_a_canary_by_singular_plural_and_short_name(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    import asyncio

    from canary.devenv.install import locate

    await kube.create(CANARIES, manifests.canary("web", namespace))
    kubectl = str(locate()["kubectl"])
    for name in ("canary", "canaries", "cn", "canaries.canary.dev"):
        process = await asyncio.create_subprocess_exec(
            kubectl, "--kubeconfig", str(environment.kubeconfig), "-n", namespace, "get",
            name, "web", "-o", "name", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await process.communicate()
        assert process.returncode == 0, f"kubectl get {name} web: {err.decode()}"
        assert out.decode().strip() == "canary.canary.dev/web"
