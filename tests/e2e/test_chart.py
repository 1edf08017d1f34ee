"""The Helm chart, installed with a real ``helm`` into the local environment; the
controller then runs under the chart's ServiceAccount token (not admin credentials) and
completes a promotion, a rollback and a deletion. The API server's audit log shows that
nothing it did was refused and that every permission the chart grants was used."""

from __future__ import annotations

import asyncio
import functools
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
import yaml

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.models.annotations import PAUSED_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.identities import service_account_kubeconfig
from tests.e2e.rollout import ANALYSIS, APP, FIELD_MANAGER, canary_object, phase
from tests.e2e.waiting import wait_until

CHARTS = Path(__file__).parents[2] / "charts"
RELEASE, RELEASE_NAMESPACE = "canary", "canary-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}"


def helm(environment: LocalEnvironment, *args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(locate()["helm"]), *args, "--kubeconfig", str(environment.kubeconfig)],
        cwd=cwd, capture_output=True, text=True, check=False,
        env={"HOME": str(environment.run_dir), "PATH": "/usr/bin:/bin",
             "HELM_CACHE_HOME": str(environment.run_dir / "helm-cache"),
             "HELM_CONFIG_HOME": str(environment.run_dir / "helm-config"),
             "HELM_DATA_HOME": str(environment.run_dir / "helm-data")})
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def chart(environment: LocalEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the charts with the load tester vendored (``helm dependency build``)."""
    root = tmp_path_factory.mktemp("charts")
    shutil.copytree(CHARTS, root, dirs_exist_ok=True)
    helm(environment, "dependency", "build", str(root / "canary"))
    return root / "canary"


def test_the_chart_lints_and_renders_with_its_test_values(environment: LocalEnvironment,
                                                           chart: Path) -> None:
    helm(environment, "lint", str(chart), "--strict", "-f", str(chart / "ci/test-values.yaml"))
    for values in ("test-values.yaml", "namespaced-values.yaml"):
        rendered = list(yaml.safe_load_all(helm(
            environment, "template", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE,
            "--kube-version", "1.36.3", "-f", str(chart / "ci" / values))))
        kinds = {doc["kind"] for doc in rendered if doc}
        assert "Deployment" in kinds
        if values == "namespaced-values.yaml":
            assert "ClusterRole" not in kinds
            roles = [d for d in rendered if d and d["kind"] == "Role"]
            assert {d["metadata"]["namespace"] for d in roles} == {"team-a", "team-b"}


def test_wrong_values_are_refused_with_the_field_named(environment: LocalEnvironment,
                                                       chart: Path) -> None:
    result = subprocess.run(
        [str(locate()["helm"]), "template", RELEASE, str(chart), "--kube-version", "1.36.3",
         "--set", "meshProvider=linkerd", "--set", "leaderElection.leaseDuration=soon"],
        capture_output=True, text=True, check=False, env={"HOME": str(environment.run_dir)})
    assert result.returncode != 0
    assert "/meshProvider" in result.stderr and "/leaderElection/leaseDuration" in result.stderr
    for values, named in ((["replicaCount=2"], "/replicaCount"),
                          (["watchNamespaces={a}", "slack.secretName=hook"],
                           "watchNamespaces must then include")):
        result = subprocess.run(
            [str(locate()["helm"]), "template", RELEASE, str(chart), "--kube-version",
             "1.36.3", *[arg for value in values for arg in ("--set", value)]],
            capture_output=True, text=True, check=False, env={"HOME": str(environment.run_dir)})
        assert result.returncode != 0 and named in result.stderr, result.stderr


@pytest_asyncio.fixture(loop_scope="session")
async def chart_controller(environment: LocalEnvironment, controller: ControllerProcess,
                           kube: KubeClient, chart: Path, tmp_path: Path
                           ) -> AsyncIterator[ControllerProcess]:
    """The chart installed; the controller running as its ServiceAccount, alone."""
    # No ServiceMonitor CRD here (no Prometheus operator): everything else as in CI.
    await asyncio.to_thread(
        helm, environment, "install", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE,
        "--create-namespace", "-f", str(chart / "ci/test-values.yaml"),
        "--set", "metrics.serviceMonitor.enabled=false")
    await asyncio.to_thread(controller.stop)
    process = ControllerProcess(
        environment, environment.run_dir / "logs" / "chart-controller.log",
        "--leader-elect", "--leader-election-namespace", RELEASE_NAMESPACE,
        "--leader-election-id", f"{RELEASE}-leader", "--lease-duration", "4s",
        "--renew-deadline", "3s", "--retry-period", "500ms",
        kubeconfig=await service_account_kubeconfig(kube, environment,
                                                    tmp_path / "sa.kubeconfig",
                                                    RELEASE_NAMESPACE, RELEASE))
    await asyncio.to_thread(process.start)
    yield process
    await asyncio.to_thread(process.stop)
    await asyncio.to_thread(helm, environment, "uninstall", RELEASE, "--namespace",
                            RELEASE_NAMESPACE)


def audited_requests(environment: LocalEnvironment, user: str) -> list[dict[str, Any]]:
    requests = []
    with environment.audit_log.open() as log:
        for line in log:
            entry = json.loads(line)
            if entry.get("user", {}).get("username") == user and entry.get("objectRef"):
                requests.append(entry)
    return requests


def watch_list(entry: dict[str, Any]) -> bool:
    """A watch that starts with every object (``sendInitialEvents``)."""
    query = parse_qs(urlsplit(entry.get("requestURI", "")).query)
    return entry["verb"] == "watch" and query.get("sendInitialEvents") == ["true"]


def forbidden(entry: dict[str, Any]) -> bool:
    """Refused by authorization (RBAC), as opposed to a 403 from admission, such as a
    write into a namespace being deleted by an earlier test."""
    return bool(entry.get("annotations", {}).get("authorization.k8s.io/decision") == "forbid")


def permission(entry: dict[str, Any]) -> tuple[str, str, str]:
    ref = entry["objectRef"]
    resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return ref.get("apiGroup", ""), resource, entry["verb"]


async def test_the_controller_works_under_the_charts_service_account_with_least_privilege(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        chart_controller: ControllerProcess) -> None:
    # A workload that uses everything the controller can touch: a ConfigMap and a Secret
    # it refers to, an autoscaler, and revertOnDeletion.
    for kind, resource, data in (("ConfigMap", r.CONFIG_MAPS, {"color": "blue"}),
                                 ("Secret", r.SECRETS, {"token": "c2VjcmV0"})):
        await kube.create(resource, {"apiVersion": "v1", "kind": kind,
                                     "metadata": {"name": f"{APP}-{kind.lower()}",
                                                  "namespace": namespace}, "data": data})
    await kube.apply(manifests.autoscaler(APP, namespace), field_manager=FIELD_MANAGER)
    await deploy_app(kube, namespace, "1")
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, analysis=ANALYSIS, progressDeadlineSeconds=60, revertOnDeletion=True,
        autoscalerRef={"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                       "name": APP}))
    await environment.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     "the Canary to be Initialized")
    await deploy_app(kube, namespace, "2")
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Succeeded",
                     "the promotion", timeout=120)
    for _ in range(2):  # the second pause repeats the first's event: its count goes up
        await pause(kube, namespace, paused=True)
        await pause(kube, namespace, paused=False)
    await deploy_app(kube, namespace, "3", {"devenv.canary.dev/error-rate": "0.3"})
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Failed",
                     "the rollback", timeout=120)
    await kube.delete(r.CANARIES, APP, namespace)
    await wait_until(lambda: kube.list(r.CANARIES, namespace), lambda found: not found["items"],
                     "the Canary to be finalized and gone")
    await gateway_routes_come_and_go(kube, namespace)

    requests = audited_requests(environment, SERVICE_ACCOUNT)
    refused = sorted({permission(e) for e in requests if forbidden(e)})
    assert not refused, f"the chart's RBAC refused: {refused}"
    used = {permission(e) for e in requests}
    # A server-side apply that creates its object is audited as a patch answered 201; the
    # API server authorizes it as a create too.
    used |= {(*permission(e)[:2], "create") for e in requests
             if e["verb"] == "patch" and e.get("responseStatus", {}).get("code") == 201}
    # The caches list by watch-lists; `list` stays granted for the pages a cache lists
    # in where the API server refuses one (the WatchList feature gate off).
    streamed = {permission(e)[:2] for e in requests if watch_list(e)}
    assert {("", "configmaps"), ("", "secrets"), ("apps", "deployments"),
            ("canary.dev", "canaries")} <= streamed, streamed
    used |= {(*resource, "list") for resource in streamed}
    granted = await granted_rules(kube)
    unused = sorted((group, resource, verb) for group, resource, verb in granted
                    if (group, resource, verb) not in used)
    assert not unused, (f"the chart grants permissions the controller never used "
                        f"(remove them): {unused}")


async def gateway_routes_come_and_go(kube: KubeClient, namespace: str) -> None:
    """Canaries routed by the Gateway API, one with an HTTPRoute (moved there from Istio,
    whose objects are then deleted) and one with a GRPCRoute, initialized and then
    deleted with revertOnDeletion (their routes deleted)."""
    service = {"port": 80, "targetPort": 9898, "gatewayRefs": [{"name": "public"}]}
    await kube.apply(manifests.deployment("storefront", namespace), field_manager=FIELD_MANAGER)
    await kube.create(r.CANARIES, manifests.canary("storefront", namespace, provider="istio",
                                                   revertOnDeletion=True))
    # Initialized is written before the routing it asks for: wait for the routing.
    await wait_until(lambda: kube.list(r.VIRTUAL_SERVICES, namespace),
                     lambda found: len(found["items"]) == 1, "storefront routed by Istio")
    await kube.merge_patch(r.CANARIES, "storefront", {"spec": {
        "provider": "gatewayapi:v1", "service": service}}, namespace)
    await wait_until(lambda: kube.list(r.HTTP_ROUTES, namespace),
                     lambda found: len(found["items"]) == 1, "storefront's HTTPRoute")
    await wait_until(lambda: kube.list(r.DESTINATION_RULES, namespace),
                     lambda found: not found["items"], "the Istio objects to be deleted")
    await kube.apply(manifests.deployment("checkout", namespace), field_manager=FIELD_MANAGER)
    await kube.create(r.CANARIES, manifests.canary(
        "checkout", namespace, provider="gatewayapi:v1", revertOnDeletion=True,
        service={**service, "appProtocol": "grpc"}))
    for name in ("storefront", "checkout"):
        await wait_until(functools.partial(canary_object, kube, namespace, name),
                         lambda c: phase(c) == "Initialized", f"Canary {name} initialized")
        await kube.delete(r.CANARIES, name, namespace)
    await wait_until(lambda: kube.list(r.CANARIES, namespace), lambda found: not found["items"],
                     "the Gateway API Canaries to be finalized and gone")


async def pause(kube: KubeClient, namespace: str, *, paused: bool) -> None:
    """Pause or resume the Canary, as `canary pause|resume` does, until it says so."""
    await kube.merge_patch(r.CANARIES, APP, {"metadata": {"annotations": {
        PAUSED_ANNOTATION: "true" if paused else None}}}, namespace)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: any(x["type"] == "Paused" and x["status"] == str(paused)
                                   for x in c["status"].get("conditions") or []),
                     "the pause" if paused else "the resume")


async def granted_rules(kube: KubeClient) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every rule of the chart's ClusterRole and Roles."""
    roles = [await kube.get(r.CLUSTER_ROLES, RELEASE)]
    roles += (await kube.list(r.ROLES, RELEASE_NAMESPACE,
                              label_selector=f"app.kubernetes.io/instance={RELEASE}"))["items"]
    return {(group, resource, verb)
            for role in roles for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"]
            for verb in rule["verbs"]}


async def deploy_app(kube: KubeClient, namespace: str, revision: str,
                     extra: dict[str, str] | None = None) -> None:
    deployment = manifests.deployment(APP, namespace, replicas=2,
                                      annotations={"revision": revision, **(extra or {})})
    deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [
        {"configMapRef": {"name": f"{APP}-configmap"}}, {"secretRef": {"name": f"{APP}-secret"}}]
    await kube.apply(deployment, field_manager=FIELD_MANAGER)


async def test_a_namespace_scoped_shard_works_with_roles_alone(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        controller: ControllerProcess, chart: Path, tmp_path: Path) -> None:
    """watchNamespaces and canarySelector: Roles in the watched namespace are enough, and
    only the Canaries of the shard are handled."""
    release = "canary-shard"
    await asyncio.to_thread(
        helm, environment, "install", release, str(chart), "--namespace", RELEASE_NAMESPACE,
        "--create-namespace", "--set", f"watchNamespaces={{{namespace}}}",
        "--set", "canarySelector=shard=a")
    try:
        rendered_roles = await kube.list(r.CLUSTER_ROLES,
                                         label_selector=f"app.kubernetes.io/instance={release}")
        assert not rendered_roles["items"], "namespace-scoped mode needs no ClusterRole"
        await asyncio.to_thread(controller.stop)
        kubeconfig = await service_account_kubeconfig(kube, environment,
                                                      tmp_path / "shard.kubeconfig",
                                                      RELEASE_NAMESPACE, release)
        process = ControllerProcess(
            environment, environment.run_dir / "logs" / "shard-controller.log",
            "--namespace", namespace, "--canary-selector", "shard=a", kubeconfig=kubeconfig)
        await asyncio.to_thread(process.start)
        try:
            for name, labels in (("mine", {"shard": "a"}), ("theirs", {"shard": "b"})):
                await kube.apply(manifests.deployment(name, namespace, replicas=1),
                                 field_manager=FIELD_MANAGER)
                canary = manifests.canary(name, namespace)
                canary["metadata"]["labels"] = labels
                await kube.create(r.CANARIES, canary)
            await wait_until(lambda: canary_object(kube, namespace, "mine"),
                             lambda c: phase(c) == "Initialized", "the shard's Canary")
            await asyncio.sleep(3)
            assert phase(await canary_object(kube, namespace, "theirs")) is None
        finally:
            await asyncio.to_thread(process.stop)
        user = f"system:serviceaccount:{RELEASE_NAMESPACE}:{release}"
        refused = sorted({permission(e) for e in audited_requests(environment, user)
                          if forbidden(e)})
        assert not refused, f"the namespace-scoped RBAC refused: {refused}"
    finally:
        await asyncio.to_thread(helm, environment, "uninstall", release, "--namespace",
                                RELEASE_NAMESPACE)


def test_crds_created_by_helm_are_upgraded_with_the_documented_command(
        environment: LocalEnvironment, tmp_path: Path) -> None:
    """Helm creates ``crds/`` once, under its own field manager; the README's upgrade,
    ``kubectl apply --server-side --force-conflicts``, takes a changed schema over (and
    without ``--force-conflicts`` the apply is refused). Shown on a copy of a chart CRD in
    a group of its own, so the session's CRDs stay as they are."""
    source = yaml.safe_load((CHARTS / "canary/crds/canary.dev_alertproviders.yaml").read_text())
    group = f"upgrade-{tmp_path.name.lower().replace('_', '-')[-20:].strip('-')}.canary.dev"
    source["spec"]["group"] = group
    source["metadata"]["name"] = f"{source['spec']['names']['plural']}.{group}"
    version = source["spec"]["versions"][0]
    released = tmp_path / "released"
    released.mkdir()
    (released / "crd.yaml").write_text(yaml.safe_dump(source))
    schema = version["schema"]["openAPIV3Schema"]
    schema["description"] = "The next release's description."
    upgraded = tmp_path / "upgraded"
    upgraded.mkdir()
    (upgraded / "crd.yaml").write_text(yaml.safe_dump(source))

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(locate()["kubectl"]), "--kubeconfig",
                               str(environment.kubeconfig), *args],
                              capture_output=True, text=True, check=False)

    created = kubectl("create", "--field-manager=helm", "-f", str(released))
    assert created.returncode == 0, created.stderr
    try:
        refused = kubectl("apply", "--server-side", "-f", str(upgraded))
        assert refused.returncode != 0 and "conflict" in refused.stderr.lower(), refused
        applied = kubectl("apply", "--server-side", "--force-conflicts", "-f", str(upgraded))
        assert applied.returncode == 0, applied.stderr
        stored = json.loads(kubectl("get", "crd", source["metadata"]["name"], "-o",
                                    "json").stdout)
        assert stored["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["description"] == \
            "The next release's description."
    finally:
        kubectl("delete", "crd", source["metadata"]["name"], "--wait=false")
