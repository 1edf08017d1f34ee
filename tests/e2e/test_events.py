"""The events canary records, as the API server stores them and kubectl reads them:
the core/v1 fields kubectl sorts and counts by are set, events sort in the order they
were recorded, and a repeat raises the count of its Event instead of adding one."""

from __future__ import annotations

import asyncio
from typing import Any

from canary.devenv import LocalEnvironment
from canary.devenv.install import locate
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.kube.events import REPORTING_CONTROLLER, EventRecorder

#: Longer than a second: lastTimestamp (what `--sort-by=.lastTimestamp` compares) counts
#: whole seconds, so events a second apart must sort apart.
APART = 1.1


async def subject(kube: KubeClient, namespace: str) -> dict[str, Any]:
    """An object for the events to be about."""
    created = await kube.create(r.CONFIG_MAPS, {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "web", "namespace": namespace}, "data": {}})
    return created | {"apiVersion": "v1", "kind": "ConfigMap"}


async def core_events(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    """core/v1 Events about the subject, in the order the API server lists them."""
    listing = await kube.list(r.CORE_EVENTS, namespace,
                              field_selector="involvedObject.name=web")
    return list(listing["items"])


def by_last_timestamp(events: list[dict[str, Any]]) -> list[str]:
    """The reasons as `kubectl get events --sort-by=.lastTimestamp` orders them."""
    return [e["reason"] for e in sorted(events, key=lambda e: e["lastTimestamp"])]


async def kubectl(environment: LocalEnvironment, namespace: str, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(locate()["kubectl"]), "--kubeconfig", str(environment.kubeconfig),
        "-n", namespace, *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
    return out.decode()


async def test_events_sort_as_recorded_by_last_timestamp(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    about = await subject(kube, namespace)
    recorder = EventRecorder(kube, "e2e")
    reasons = ["Initializing", "Initialized", "NewRevision"]
    for reason in reasons:
        await recorder.record(about, "Normal", reason, f"{reason} of web")
        await asyncio.sleep(APART)
    events = await core_events(kube, namespace)
    assert by_last_timestamp(events) == reasons
    for event in events:
        assert event["firstTimestamp"] == event["lastTimestamp"] and event["count"] == 1
        assert event["source"]["component"] == REPORTING_CONTROLLER
        assert event["eventTime"] and event["reportingComponent"] == REPORTING_CONTROLLER
        assert event["involvedObject"]["uid"] == about["metadata"]["uid"]
    # The same objects through events.k8s.io/v1 carry them as the deprecated* fields.
    modern = (await kube.list(r.EVENTS, namespace))["items"]
    assert {(e["reason"], e["deprecatedCount"]) for e in modern} == {(x, 1) for x in reasons}
    assert all(e["deprecatedLastTimestamp"] and e["note"] for e in modern)
    # And kubectl agrees, both sorting by lastTimestamp and in describe.
    shown = await kubectl(environment, namespace, "get", "events", "--sort-by=.lastTimestamp",
                          "-o", "jsonpath={.items[*].reason}")
    assert shown.split() == reasons
    described = await kubectl(environment, namespace, "describe", "configmap", "web")
    assert [line.split()[1] for line in described.split("Events:")[1].splitlines()
            if line.strip().startswith("Normal")] == reasons


async def test_a_repeated_event_counts_on_one_object(
        kube: KubeClient, environment: LocalEnvironment, namespace: str) -> None:
    about = await subject(kube, namespace)
    recorder = EventRecorder(kube, "e2e")
    await recorder.record(about, "Normal", "WaitingForApproval", "web waits for approval")
    await asyncio.sleep(APART)
    await recorder.record(about, "Warning", "AnalysisFailed", "error rate 30% > 1%")
    await asyncio.sleep(APART)
    await recorder.record(about, "Normal", "WaitingForApproval", "web waits for approval")
    events = await core_events(kube, namespace)
    assert len(events) == 2
    [waiting] = [e for e in events if e["reason"] == "WaitingForApproval"]
    assert waiting["count"] == 2 and waiting["series"]["count"] == 2
    assert waiting["lastTimestamp"] > waiting["firstTimestamp"]
    # The repeat is the latest thing that happened to the object.
    assert by_last_timestamp(events) == ["AnalysisFailed", "WaitingForApproval"]
    described = await kubectl(environment, namespace, "describe", "configmap", "web")
    [line] = [line for line in described.splitlines() if "WaitingForApproval" in line]
    assert "(x2 over" in line
