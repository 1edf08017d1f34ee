"""provider kubernetes: blue/green with Services alone. Users calling the apex Service
reach only the primary during the analysis (run against ``<svc>-canary``), then only the
new version once promoted; a failing canary is rolled back before any user reaches it.
What Services cannot route is refused at apply, naming the field."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.kube import Invalid, KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    SUCCESS_RATE,
    canary_object,
    phase,
    promotion_history,
    target_revision,
)
from tests.e2e.waiting import prometheus_value, wait_until
from tests.unit.router.support import ASKING_FOR_A_MESH

pytestmark = pytest.mark.usefixtures("running_controller")

BLUE_GREEN = {"interval": "4s", "threshold": 2, "iterations": 2, "metrics": SUCCESS_RATE}


async def release(kube: KubeClient, namespace: str, version: str,
                  annotations: dict[str, str] | None = None) -> str:
    """Apply the app with pods labelled ``version`` (the simulator's destination_version);
    returns the new revision."""
    deployment = manifests.deployment(APP, namespace, replicas=2,
                                      annotations={"revision": version, **(annotations or {})})
    deployment["spec"]["template"]["metadata"]["labels"]["version"] = version
    await kube.apply(deployment, field_manager=FIELD_MANAGER)
    return await target_revision(kube, namespace)


def users_on(namespace: str, version: str) -> str:
    """Requests users sent to the apex Service that ``version`` answered."""
    return (f'sum(istio_requests_total{{reporter="source",destination_service_name="{APP}",'
            f'destination_service_namespace="{namespace}",destination_version="{version}"}})')


async def count(env: LocalEnvironment, query: str) -> float:
    return await prometheus_value(env.prometheus_url, query) or 0.0


async def apex_selector(kube: KubeClient, namespace: str) -> dict[str, str]:
    return dict((await kube.get(r.SERVICES, APP, namespace))["spec"]["selector"])


async def start_blue_green(kube: KubeClient, env: LocalEnvironment, namespace: str) -> None:
    """v1 initialized under a kubernetes-provider Canary, users calling the apex Service
    and a load tester calling the canary's own Service."""
    await release(kube, namespace, "v1")
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, analysis=BLUE_GREEN, progressDeadlineSeconds=60,
        provider="kubernetes"))
    await env.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Initialized", "the Canary to be Initialized")
    await env.set_traffic(f"{APP}-canary.{namespace}", rps=30)
    await wait_until(lambda: count(env, users_on(namespace, "v1")), lambda v: v > 50,
                     "users answered by v1")


async def only_services_are_written(kube: KubeClient, namespace: str) -> None:
    for name in (APP, f"{APP}-primary", f"{APP}-canary"):
        await kube.get(r.SERVICES, name, namespace)
    for resource, name in ((r.VIRTUAL_SERVICES, APP), (r.DESTINATION_RULES, f"{APP}-primary"),
                           (r.DESTINATION_RULES, f"{APP}-canary")):
        with pytest.raises(NotFound):
            await kube.get(resource, name, namespace)


async def test_blue_green_keeps_users_on_the_primary_then_on_the_new_version(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start_blue_green(kube, environment, namespace)
    await only_services_are_written(kube, namespace)
    assert await apex_selector(kube, namespace) == {"app": f"{APP}-primary"}
    revision = await release(kube, namespace, "v2")
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing"
                     and bool(c["status"].get("analysisStartedAt")), "the analysis to start")
    # The analysis measures the canary through its own Service...
    await wait_until(lambda: count(environment, f'sum(istio_requests_total{{reporter='
                                   f'"destination",destination_workload_namespace='
                                   f'"{namespace}",destination_workload="{APP}"}})'),
                     lambda v: v > 60, "the canary to serve its own Service's requests")
    # ...while every user is answered by the primary.
    assert phase(await canary_object(kube, namespace)) == "Progressing"
    assert await apex_selector(kube, namespace) == {"app": f"{APP}-primary"}
    assert await count(environment, users_on(namespace, "v2")) == 0, "a user reached v2"
    history = await promotion_history(kube, namespace, revision)
    assert history.weights() in ([0, 100, 0], [0])
    assert await apex_selector(kube, namespace) == {"app": f"{APP}-primary"}
    # Once promoted, users get the new version only: v1 answers no more of them.
    await asyncio.sleep(3)
    before = [await count(environment, users_on(namespace, v)) for v in ("v1", "v2")]
    await asyncio.sleep(4)
    after = [await count(environment, users_on(namespace, v)) for v in ("v1", "v2")]
    assert after[0] == before[0] and after[1] - before[1] > 100, (before, after)


async def test_a_failing_canary_is_rolled_back_before_any_user_reaches_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    await start_blue_green(kube, environment, namespace)
    await release(kube, namespace, "v2", {"devenv.canary.dev/error-rate": "0.5"})
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    assert failed["status"]["canaryWeight"] == 0
    assert await apex_selector(kube, namespace) == {"app": f"{APP}-primary"}
    await asyncio.sleep(2)
    assert await count(environment, users_on(namespace, "v2")) == 0, "a user reached v2"
    assert await count(environment, users_on(namespace, "v1")) > 0


def _kubernetes(**analysis: Any) -> dict[str, Any]:
    return {"interval": "1m", "threshold": 5, **analysis}


@pytest.mark.parametrize("field", sorted(ASKING_FOR_A_MESH))
async def test_what_services_cannot_route_is_refused_naming_the_field(
        kube: KubeClient, namespace: str, field: str) -> None:
    manifest = manifests.canary("web", namespace, analysis=_kubernetes(
        **ASKING_FOR_A_MESH[field]), provider="kubernetes")
    with pytest.raises(Invalid) as refused:
        await kube.create(r.CANARIES, manifest)
    assert "spec.provider kubernetes" in refused.value.message
    assert f"spec.analysis.{field} needs a provider with a mesh" in refused.value.message
    # The same analysis through a mesh is accepted.
    del manifest["spec"]["provider"]
    await kube.create(r.CANARIES, manifest)


async def test_kubectl_apply_refuses_a_weighted_kubernetes_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, tmp_path: Any
        ) -> None:
    """What a user sees; blue/green with mirror: false is accepted."""
    path = tmp_path / "canary.json"
    path.write_text(json.dumps(manifests.canary("web", namespace, provider="kubernetes")))
    process = await asyncio.create_subprocess_exec(
        str(locate()["kubectl"]), "--kubeconfig", str(environment.kubeconfig), "apply",
        "-f", str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode != 0
    assert "spec.analysis.stepWeight needs a provider with a mesh" in err.decode()
    await kube.create(r.CANARIES, manifests.canary(
        "web", namespace, provider="kubernetes", analysis=_kubernetes(iterations=3,
                                                                     mirror=False)))
