"""Moving from Flagger: the workshop's backend, converted with ``canary convert`` and
applied with no edit beyond what convert's notes ask, is promoted on a healthy release and
rolled back on a faulty one.

The Canary keeps the workshop's own pace (15 s interval, 5% steps to 50%, 10 failed checks
before a rollback): about three minutes a release. The healthy and the faulty release run
side by side, each in a namespace of its own, so the test takes one release's time.

Its hooks run in ``canary loadtester --allow-commands``: the conformance check is
``curl ... http://backend-canary.<ns>:9898/token | grep token`` and the load test
``hey -z 1m ... http://backend-canary.<ns>:9898/``. With no cluster DNS here, the load
tester reaches those Services through the traffic simulator's forward proxy
(``http_proxy``), as a mesh sidecar would carry them.

The workshop's frontend is not exercised here: its A/B test is routed by the ingress
gateway (its VirtualService names ``istio-system/public-gateway``, not ``mesh``) and its
load test calls that gateway, which the simulator does not model; its conversion is
checked in ``tests/unit/cli/test_convert_manifests.py``.
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
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.loadtester_process import LoadTesterProcess
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")

FIXTURE = Path(__file__).parents[1] / "unit" / "cli" / "fixtures" / "flagger" / \
    "gitops-istio-backend.yaml"
FIELD_MANAGER = "gitops"
#: The workload the load tester's requests come from in the mesh's metrics.
LOADTESTER_IDENTITY = "canary-loadtester"
#: Per release: 10 steps of 15 s and the promotion, or 10 failed checks of 15 s, plus
#: the pre-rollout hook and a busy machine's delays.
RELEASE_TIMEOUT = 420.0


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


def converted(namespace: str, loadtester: str, prometheus: str) -> list[dict[str, Any]]:
    """The fixture through ``canary convert``, with exactly the edits its notes ask."""
    # The one mechanical edit of a test: the workshop lives in namespace prod; each test
    # has a namespace of its own.
    text = re.sub(r"\bprod\b", namespace, FIXTURE.read_text())
    result = convert_text(text, FIXTURE.name)
    assert result.errors == []
    documents = [yaml.safe_load(d) for d in result.documents]
    for note in result.notes:
        follow(note, documents, loadtester, prometheus)
    return documents


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


async def backend(kube: KubeClient, namespace: str) -> dict[str, Any]:
    return await kube.get(r.CANARIES, "backend", namespace)


def phase(canary: dict[str, Any]) -> str | None:
    return (canary.get("status") or {}).get("phase")


async def primary_image(kube: KubeClient, namespace: str) -> str:
    primary = await kube.get(r.DEPLOYMENTS, "backend-primary", namespace)
    return str(primary["spec"]["template"]["spec"]["containers"][0]["image"])


async def roll_out(kube: KubeClient, env: LocalEnvironment, namespace: str,
                   loadtester: LoadTesterProcess, annotations: dict[str, str]) -> str:
    """Install the converted backend, release 6.1.1 with ``annotations``; its last phase."""
    documents = converted(namespace, loadtester.url, env.prometheus_url)
    await apply_all(kube, documents)
    await env.set_traffic(f"backend.{namespace}", rps=20)
    await wait_until(lambda: backend(kube, namespace), lambda c: phase(c) == "Initialized",
                     f"backend in {namespace} to be Initialized", timeout=120)
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    await kube.apply(release(deployment, "6.1.1", annotations), field_manager=FIELD_MANAGER)
    done = await wait_until(lambda: backend(kube, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            f"the release in {namespace} to finish", timeout=RELEASE_TIMEOUT,
                            interval=2)
    return str(phase(done))


async def requests_from_loadtester(env: LocalEnvironment, namespace: str) -> int:
    """Requests the load tester sent to the backend canary, as the mesh counted them."""
    assert env.simulator_url is not None
    async with httpx.AsyncClient(trust_env=False) as http:
        text = (await http.get(f"{env.simulator_url}/metrics")).text
    total = 0
    for line in text.splitlines():
        if line.startswith("istio_requests_total{") and 'reporter="destination"' in line \
                and f'source_workload="{LOADTESTER_IDENTITY}"' in line \
                and f'destination_workload_namespace="{namespace}"' in line \
                and 'destination_workload="backend"' in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def test_the_converted_workshop_backend_is_promoted_when_healthy_and_rolled_back_when_faulty(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, other_namespace: str,
        proxied_loadtester: LoadTesterProcess) -> None:
    faulty = other_namespace
    try:
        healthy_phase, faulty_phase = await asyncio.gather(
            roll_out(kube, environment, namespace, proxied_loadtester, {}),
            roll_out(kube, environment, faulty, proxied_loadtester,
                     {"devenv.canary.dev/error-rate": "0.5"}))
        assert healthy_phase == "Succeeded", proxied_loadtester.log.read_text()[-3000:]
        assert await primary_image(kube, namespace) == "ghcr.io/stefanprodan/podinfo:6.1.1"
        assert faulty_phase == "Failed"
        assert await primary_image(kube, faulty) == "ghcr.io/stefanprodan/podinfo:6.1.0"
        failed = await backend(kube, faulty)
        results = {m["name"]: m["verdict"] for m in failed["status"]["lastAnalysis"]["results"]}
        assert results["error-rate"] == "Failed"
        # The hooks' curl and hey reached the canary through the mesh, from the load tester.
        log = proxied_loadtester.log.read_text()
        assert "command finished" in log and "load finished" in log
        assert await requests_from_loadtester(environment, namespace) > 100
    finally:
        for host in (f"backend.{namespace}", f"backend.{faulty}"):
            with contextlib.suppress(DevenvError):
                await environment.set_traffic(host, rps=0)
