"""The local environment behaves like a real cluster with a mesh and Prometheus."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import Forbidden, Invalid, KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.waiting import prometheus_value, wait_until

FIELD_MANAGER = "e2e"


async def _pods(kube: KubeClient, namespace: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await kube.list(r.PODS, namespace,
                                                   label_selector=f"app={app}"))["items"]
    return items


class TestWorkloads:
    """Deployments really create pods, and kwok really makes them Ready and removes them."""

    async def test_pods_become_ready_scale_to_zero_and_roll(self, kube: KubeClient,
                                                            namespace: str) -> None:
        await kube.apply(manifests.deployment("web", namespace, replicas=3),
                         field_manager=FIELD_MANAGER)

        async def status() -> dict[str, Any]:
            return await kube.get(r.DEPLOYMENTS, "web", namespace)

        await wait_until(status, lambda d: d.get("status", {}).get("readyReplicas") == 3,
                         "Deployment web to have readyReplicas == 3")

        # A rolling update: a new template, every replica replaced, old ReplicaSet emptied.
        rolled = manifests.deployment("web", namespace, replicas=3,
                                      annotations={"revision": "2"})
        await kube.apply(rolled, field_manager=FIELD_MANAGER)

        def rolled_out(d: dict[str, Any]) -> bool:
            s = d.get("status", {})
            return bool(s.get("observedGeneration") == d["metadata"]["generation"]
                        and s.get("updatedReplicas") == 3 and s.get("readyReplicas") == 3
                        and s.get("replicas") == 3)

        await wait_until(status, rolled_out, "the rolling update to complete")
        pods = await wait_until(
            lambda: _pods(kube, namespace, "web"),
            lambda ps: len(ps) == 3 and all(
                p["metadata"].get("annotations", {}).get("revision") == "2" for p in ps),
            "exactly three pods, all of the new revision")
        assert {p["spec"]["nodeName"] for p in pods} == {"kwok-node-0"}

        await kube.merge_patch(r.DEPLOYMENTS, "web", {"spec": {"replicas": 0}}, namespace)
        await wait_until(lambda: _pods(kube, namespace, "web"), lambda ps: ps == [],
                         "no pods left after scaling to zero")


class TestIstioSchemas:
    """Routing objects are validated by the real Istio CRD schemas."""

    async def test_a_valid_virtual_service_is_accepted(self, kube: KubeClient,
                                                       namespace: str) -> None:
        vs = manifests.virtual_service("web", namespace, [("web-primary", 90), ("web-canary", 10)])
        created = await kube.apply(vs, field_manager=FIELD_MANAGER)
        assert created["spec"]["http"][0]["route"][1]["weight"] == 10

    @pytest.mark.parametrize(("weight", "message"), [
        ("fifty", "spec.http[0].route[0].weight"),
        (12.5, "spec.http[0].route[0].weight"),
    ])
    async def test_an_invalid_route_weight_is_refused_naming_the_field(
            self, kube: KubeClient, namespace: str, weight: Any, message: str) -> None:
        vs = manifests.virtual_service("web", namespace, [("web-primary", weight)])
        with pytest.raises(Invalid) as refused:
            await kube.create(r.VIRTUAL_SERVICES, vs)
        assert message in refused.value.message

    async def test_a_route_without_destination_is_refused(self, kube: KubeClient,
                                                          namespace: str) -> None:
        vs = manifests.virtual_service("web", namespace, [("web-primary", 100)])
        del vs["spec"]["http"][0]["route"][0]["destination"]
        with pytest.raises(Invalid, match="destination"):
            await kube.create(r.VIRTUAL_SERVICES, vs)


class TestRbac:
    """RBAC is on: a ServiceAccount can do only what it is granted."""

    async def test_a_service_account_token_is_refused_until_granted(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        await kube.create(r.SERVICE_ACCOUNTS, {"metadata": {"name": "reader"}}, namespace)
        token_request = await kube.request(
            "POST", r.SERVICE_ACCOUNTS.path(namespace, "reader") + "/token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 600}})
        token = token_request["status"]["token"]
        async with KubeClient.with_token(environment.api_server, token,
                                         environment.ca_file) as reader:
            with pytest.raises(Forbidden):
                await reader.list(r.PODS, namespace)
            await kube.create(r.ROLES, {
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]},
                namespace)
            await kube.create(r.ROLE_BINDINGS, {
                "metadata": {"name": "reader-reads-pods"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                            "name": "pod-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader",
                              "namespace": namespace}]}, namespace)

            async def allowed() -> bool:
                """The authorizer learns of the binding from its informer, a moment
                after the create returned."""
                try:
                    await reader.list(r.PODS, namespace)
                except Forbidden:
                    return False
                return True

            await wait_until(allowed, bool, "the granted list to be allowed", timeout=30)
            with pytest.raises(Forbidden):
                await reader.list(r.SECRETS, namespace)


def _requests(namespace: str, workload: str, extra: str = "") -> str:
    return (f'sum(istio_requests_total{{reporter="destination",'
            f'destination_workload_namespace="{namespace}",'
            f'destination_workload="{workload}"{extra}}})')


class TestTrafficSimulator:
    """Traffic is routed as Istio would, and Prometheus sees Istio's metrics."""

    async def test_success_rate_matches_the_annotated_error_rate(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        await kube.apply(manifests.deployment(
            "shop", namespace, replicas=2,
            annotations={"devenv.canary.dev/error-rate": "0.1",
                         "devenv.canary.dev/latency-ms": "p50=20,p99=150"}),
            field_manager=FIELD_MANAGER)
        await kube.apply(manifests.service("shop", namespace), field_manager=FIELD_MANAGER)
        await wait_until(lambda: kube.get(r.DEPLOYMENTS, "shop", namespace),
                         lambda d: d.get("status", {}).get("readyReplicas") == 2,
                         "shop to be ready")
        await environment.set_traffic(f"shop.{namespace}", rps=200)
        total = await wait_until(
            lambda: prometheus_value(environment.prometheus_url, _requests(namespace, "shop")),
            lambda v: v is not None and v >= 3000, "3000 requests to shop in Prometheus",
            timeout=120)
        assert total is not None
        successes = _requests(namespace, "shop", ',response_code!~"5.*"')
        success_rate = await prometheus_value(
            environment.prometheus_url, f'{successes} / {_requests(namespace, "shop")}')
        # Binomial noise over >= 3000 requests: sd ~0.55 points; 3 points is > 5 sd.
        assert success_rate == pytest.approx(0.90, abs=0.03)
        p50 = await prometheus_value(
            environment.prometheus_url,
            'histogram_quantile(0.5, sum by (le) (istio_request_duration_milliseconds_bucket'
            f'{{reporter="destination",destination_workload_namespace="{namespace}",'
            'destination_workload="shop"}))')
        # Istio's buckets around 20 ms are 10 and 25, so the estimate is coarse.
        assert p50 is not None and 10 <= p50 <= 25
        await environment.set_traffic(f"shop.{namespace}", rps=0)

    async def test_virtual_service_weights_decide_which_workload_gets_traffic(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        for name in ("api-primary", "api-canary"):
            await kube.apply(manifests.deployment(name, namespace), field_manager=FIELD_MANAGER)
            await kube.apply(manifests.service(name, namespace), field_manager=FIELD_MANAGER)
        await kube.apply(manifests.service("api", namespace, app="api-primary"),
                         field_manager=FIELD_MANAGER)
        await kube.apply(manifests.virtual_service(
            "api", namespace, [("api-primary", 100), ("api-canary", 0)]),
            field_manager=FIELD_MANAGER)
        for name in ("api-primary", "api-canary"):
            await wait_until(functools.partial(kube.get, r.DEPLOYMENTS, name, namespace),
                             lambda d: d.get("status", {}).get("readyReplicas") == 1,
                             f"{name} to be ready")
        await environment.set_traffic(f"api.{namespace}", rps=200)
        prom = environment.prometheus_url
        primary, canary = _requests(namespace, "api-primary"), _requests(namespace, "api-canary")
        await wait_until(lambda: prometheus_value(prom, primary),
                         lambda v: v is not None and v >= 1000, "primary traffic")
        assert await prometheus_value(prom, canary) is None, "the canary got traffic at weight 0"

        await kube.apply(manifests.virtual_service(
            "api", namespace, [("api-primary", 20), ("api-canary", 80)]),
            field_manager=FIELD_MANAGER)
        await wait_until(lambda: prometheus_value(prom, canary),
                         lambda v: v is not None and v > 0, "the canary's first requests")
        await asyncio.sleep(2)  # past the scrape that straddled the switch
        before = [await prometheus_value(prom, q) or 0.0 for q in (primary, canary)]
        await wait_until(lambda: prometheus_value(prom, canary),
                         lambda v: v is not None and v >= before[1] + 2000,
                         "2000 more canary requests")
        after = [await prometheus_value(prom, q) or 0.0 for q in (primary, canary)]
        grown_primary, grown_canary = after[0] - before[0], after[1] - before[1]
        assert grown_canary / (grown_primary + grown_canary) == pytest.approx(0.8, abs=0.05)
        await environment.set_traffic(f"api.{namespace}", rps=0)

    async def test_a_service_without_ready_pods_answers_503(
            self, kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
        await kube.apply(manifests.deployment("down", namespace, replicas=0),
                         field_manager=FIELD_MANAGER)
        await kube.apply(manifests.service("down", namespace), field_manager=FIELD_MANAGER)
        await environment.set_traffic(f"down.{namespace}", rps=50)
        query = ('sum(istio_requests_total{reporter="source",response_code="503",'
                 f'response_flags="UH",destination_service_namespace="{namespace}",'
                 'destination_service_name="down"})')
        await wait_until(lambda: prometheus_value(environment.prometheus_url, query),
                         lambda v: v is not None and v > 0, "503 responses for 'down'")
        await environment.set_traffic(f"down.{namespace}", rps=0)


async def test_stopping_a_namespaces_traffic_leaves_other_namespaces_driven(
        environment: LocalEnvironment, namespace: str, other_namespace: str) -> None:
    """Each test's namespace stops its traffic when it ends, so the simulator never keeps
    driving hosts of deleted namespaces for the tests after it."""
    for host in (f"web.{namespace}", f"api.{namespace}", f"web.{other_namespace}"):
        await environment.set_traffic(host, rps=1)
    stopped = await environment.stop_traffic(namespace)
    assert sorted(stopped) == [f"api.{namespace}.svc.cluster.local",
                               f"web.{namespace}.svc.cluster.local"]
    driven = await environment.traffic()
    assert f"web.{other_namespace}.svc.cluster.local" in driven
    assert not [host for host in driven if host.split(".")[1] == namespace]
