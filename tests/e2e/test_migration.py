"""Moving from Flagger: the workshop's backend and frontend, converted with ``canary convert``
and applied with no edit beyond what convert's notes ask, are promoted on a healthy release
and rolled back on a faulty one.

The Canaries keep the workshop's own pace: the backend 15 s steps of 5% to 50% and 10 failed
checks before a rollback, the frontend an A/B test of 10 iterations of 15 s on insiders and
Firefox users. Each takes about three minutes a release. The four releases (each
application healthy and faulty) run side by side, each in a namespace of its own, so the
test takes one release's time.

Their hooks run in ``canary loadtester --allow-commands``: the conformance checks are
``curl ... http://<app>-canary.<ns>:9898/token | grep token``; the backend's load test is
``hey -z 1m ... http://backend-canary.<ns>:9898/`` and the frontend's
``hey -z 1m ... -H 'Cookie: type=insider' http://istio-gateway.istio-system/``, through the
ingress gateway, whose VirtualService (bound to ``istio-system/public-gateway`` only) sends
insiders to the canary. With no cluster DNS here, the load tester reaches those Services
through the traffic simulator's forward proxy (``http_proxy``), as a mesh sidecar would
carry them, and the simulator routes what reaches the gateway Service as the gateway does.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from canary.convert import Note, convert_text
from canary.devenv import DevenvError, LocalEnvironment
from canary.devenv.traffic.gateway import GATEWAY_WORKLOAD
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.loadtester_process import LoadTesterProcess
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

FIXTURES = Path(__file__).parents[1] / "unit" / "cli" / "fixtures" / "flagger"
FIELD_MANAGER = "gitops"
#: The workload the load tester's requests come from in the mesh's metrics.
LOADTESTER_IDENTITY = "canary-loadtester"
#: Per release: 10 steps (or iterations) of 15 s and the promotion, or 10 failed checks of
#: 15 s, plus the pre-rollout hook and the delays of a busy machine running four at once.
RELEASE_TIMEOUT = 600.0
FAULTY = {"devenv.canary.dev/error-rate": "0.5"}
#: Host and rate of the simulator's own traffic per application: the frontend's users
#: come in through the ingress gateway, the backend's from inside the mesh.
USERS = {"backend": ("backend.{ns}", 20), "frontend": ("istio-gateway.{ns}", 10)}


@pytest.fixture
def proxied_loadtester(tmp_path: Path, environment: LocalEnvironment, namespace: str
                       ) -> Iterator[LoadTesterProcess]:
    """canary's load tester allowed to run commands, its requests to Services carried by
    the simulator's forward proxy, which it tells who it is (the proxy user)."""
    assert environment.simulator_url is not None
    proxy = environment.simulator_url.replace(
        "://", f"://{LOADTESTER_IDENTITY}.{namespace}@", 1)
    process = LoadTesterProcess(
        tmp_path / "state" / "gates.json", tmp_path / "loadtester.log", "--allow-commands",
        env={"http_proxy": proxy, "HTTP_PROXY": proxy, "no_proxy": "", "NO_PROXY": ""})
    process.start()
    yield process
    process.stop()


def converted(app: str, namespace: str, loadtester: str, prometheus: str
              ) -> list[dict[str, Any]]:
    """The workshop's ``app`` through ``canary convert``, with exactly the edits its notes
    ask."""
    fixture = FIXTURES / f"gitops-istio-{app}.yaml"
    # The one mechanical edit of a test: the workshop lives in namespaces prod and
    # istio-system (the gateway, the frontend's metric templates); each release here has a
    # namespace of its own, with a gateway of its own (see ingress_gateway), so that the
    # two frontends' `hosts: ["*"]` do not meet on one gateway.
    text = re.sub(r"\b(prod|istio-system)\b", namespace, fixture.read_text())
    result = convert_text(text, fixture.name)
    assert result.errors == []
    documents = [yaml.safe_load(d) for d in result.documents]
    for note in result.notes:
        follow(note, documents, loadtester, prometheus)
    return documents


def ingress_gateway(namespace: str) -> list[dict[str, Any]]:
    """The workshop's infrastructure for the frontend: the Gateway ``public-gateway`` of
    the ingress gateway pods (``istio: ingressgateway``) and their Service
    ``istio-gateway``, which the load test calls."""
    selector = {"istio": "ingressgateway"}
    return [
        {"apiVersion": "networking.istio.io/v1", "kind": "Gateway",
         "metadata": {"name": "public-gateway", "namespace": namespace},
         "spec": {"selector": selector, "servers": [
             {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}]}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "istio-gateway", "namespace": namespace},
         "spec": {"selector": selector,
                  "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
    ]


def follow(note: Note, documents: list[dict[str, Any]], loadtester: str,
           prometheus: str) -> None:
    """Do what one note asks; fail on a note this migration does not expect."""
    document = next(d for d in documents if note.document == describe(d))
    if "changed to" in note.message:
        return  # done by convert itself
    if "flagger-loadtester" in note.message:
        set_field(document, note.path, f"{loadtester}/")
    elif "--allow-commands" in note.message:
        return  # the load tester is started with it
    elif "flagger-prometheus" in note.message:
        set_field(document, note.path, prometheus)
    else:
        raise AssertionError(f"a note this migration does not expect: {note}")


def describe(document: dict[str, Any]) -> str:
    meta = document["metadata"]
    return f"{document['kind']} {meta['namespace']}/{meta['name']}"


def set_field(document: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b[0].c`` in ``document``."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, *indexes = re.split(r"\[(\d+)\]", part)
        keys += [name, *(int(i) for i in indexes if i)]
    here: Any = document
    for key in keys[:-1]:
        here = here[key]
    here[keys[-1]] = value


async def apply_all(kube: KubeClient, documents: list[dict[str, Any]]) -> None:
    """As a GitOps tool would: the Canary last, once what it refers to exists."""
    for document in sorted(documents, key=lambda d: d["kind"] == "Canary"):
        await kube.apply(document, field_manager=FIELD_MANAGER)


def release(deployment: dict[str, Any], tag: str, annotations: dict[str, str]
            ) -> dict[str, Any]:
    """The Deployment with a new image tag (and the simulator's behaviour annotations)."""
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    container["image"] = container["image"].rsplit(":", 1)[0] + f":{tag}"
    template["metadata"].setdefault("annotations", {}).update(annotations)
    return deployment


async def canary(kube: KubeClient, app: str, namespace: str) -> dict[str, Any]:
    return await kube.get(r.CANARIES, app, namespace)


def phase(found: dict[str, Any]) -> str | None:
    return (found.get("status") or {}).get("phase")


async def primary_image(kube: KubeClient, app: str, namespace: str) -> str:
    primary = await kube.get(r.DEPLOYMENTS, f"{app}-primary", namespace)
    return str(primary["spec"]["template"]["spec"]["containers"][0]["image"])


async def roll_out(kube: KubeClient, env: LocalEnvironment, app: str, namespace: str,
                   loadtester: LoadTesterProcess, annotations: dict[str, str]) -> str:
    """Install the converted ``app``, release 6.1.1 with ``annotations``; its last phase."""
    documents = converted(app, namespace, loadtester.url, env.prometheus_url)
    if app == "frontend":
        documents += ingress_gateway(namespace)
    await apply_all(kube, documents)
    host, rps = USERS[app]
    await env.set_traffic(host.format(ns=namespace), rps=rps)
    await wait_until(lambda: canary(kube, app, namespace), lambda c: phase(c) == "Initialized",
                     f"{app} in {namespace} to be Initialized", timeout=240)
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    await kube.apply(release(deployment, "6.1.1", annotations), field_manager=FIELD_MANAGER)
    done = await wait_until(lambda: canary(kube, app, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            f"the {app} release in {namespace} to finish",
                            timeout=RELEASE_TIMEOUT, interval=2)
    return str(phase(done))


async def requests_to_canary(env: LocalEnvironment, app: str, namespace: str,
                             source: str) -> int:
    """Requests ``source`` sent to ``app``'s canary pods, as the mesh counted them."""
    assert env.simulator_url is not None
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(f"{env.simulator_url}/metrics")).text
    total = 0
    for line in text.splitlines():
        if line.startswith("istio_requests_total{") and 'reporter="destination"' in line \
                and f'source_workload="{source}"' in line \
                and f'destination_workload_namespace="{namespace}"' in line \
                and f'destination_workload="{app}"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def assert_rolled_back(kube: KubeClient, app: str, namespace: str) -> None:
    assert await primary_image(kube, app, namespace) == "ghcr.io/stefanprodan/podinfo:6.1.0"
    failed = await canary(kube, app, namespace)
    results = {m["name"]: m["verdict"] for m in failed["status"]["lastAnalysis"]["results"]}
    assert results["error-rate"] == "Failed"


async def test_the_converted_workshop_is_promoted_when_healthy_and_rolled_back_when_faulty(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, other_namespace: str,
        two_more_namespaces: list[str], proxied_loadtester: LoadTesterProcess) -> None:
    releases = [("backend", namespace, {}), ("backend", other_namespace, FAULTY),
                ("frontend", two_more_namespaces[0], {}),
                ("frontend", two_more_namespaces[1], FAULTY)]
    try:
        phases = await asyncio.gather(*(
            roll_out(kube, environment, app, ns, proxied_loadtester, annotations)
            for app, ns, annotations in releases))
        log = proxied_loadtester.log.read_text()
        assert phases == ["Succeeded", "Failed", "Succeeded", "Failed"], log[-3000:]
        for app, ns, annotations in releases:
            if annotations:
                await assert_rolled_back(kube, app, ns)
            else:
                assert await primary_image(kube, app, ns) == "ghcr.io/stefanprodan/podinfo:6.1.1"
        # The hooks' curl and hey reached the canaries, the backend's from the load tester
        # through the mesh, the frontend's through the ingress gateway.
        assert "command finished" in log and "load finished" in log
        assert await requests_to_canary(environment, "backend", namespace,
                                         LOADTESTER_IDENTITY) > 100
        assert await requests_to_canary(environment, "frontend", two_more_namespaces[0],
                                         GATEWAY_WORKLOAD) > 100
    finally:
        for app, ns, _ in releases:
            with contextlib.suppress(DevenvError):
                await environment.set_traffic(USERS[app][0].format(ns=ns), rps=0)
