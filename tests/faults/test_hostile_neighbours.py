"""Fault 9, rollouts among hostile neighbours: random mixes of misconfigurations, and alert
receivers and gates that misbehave, beside healthy rollouts.

Four applications get a new revision each round. Their alerts go to six receivers that
each misbehave in their own way (hang, reset the connection, answer 1 MB, redirect in a
loop, trickle the body, answer something that is not HTTP). A random moment into the
round, a random mix of two to five misconfigurations (``NEIGHBOURS``) lands in random
namespaces among them: a second Canary on a claimed Deployment, a Canary on another's
primary, a mounted ConfigMap or a MetricTemplate that does not exist, a template variable
that would change its query's structure, a gate that misbehaves. Then: every healthy
rollout is promoted, each decision said once and the events bounded, the watchdog saw
nothing unsafe; every misconfiguration ended as it must (held with a condition and a
Warning event naming the field, or rolled back naming the gate); the controller kept
answering its liveness probe and no reconcile failed unexpectedly.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import APP, SUCCESS_RATE, canary_object, events, occurrences, phase
from tests.e2e.waiting import wait_until
from tests.faults.conftest import SEED_VARIABLE
from tests.faults.health import still_alive, unexpected_failures
from tests.faults.observed import Expected, Violations, finished, judge_events, reasons
from tests.faults.stats import percentile
from tests.faults.test_controller_killed import deploy
from tests.faults.watchdog import watching
from tests.hostile_server import HostileServer, hostile

JSON = dict[str, Any]
ANALYSIS: JSON = {"interval": "2s", "threshold": 3, "maxWeight": 60, "stepWeight": 20,
                  "metrics": SUCCESS_RATE}
#: How each alert receiver misbehaves: the hostile server's paths.
RECEIVERS = {"hang": "/hang", "reset": "/reset", "big": "/big/200/1048576", "loop": "/loop",
             "trickle": "/slow-body/200", "garbage": "/garbage"}
#: The receivers that never approve a gate (a 200 with a 1 MB body is an approval: the
#: status decides, and only the first 64 KiB of the body is read).
REFUSING = ("hang", "reset", "loop", "trickle", "garbage")
#: Template variables that would change the structure of ``sum(vector(VALUE))`` (and that
#: the schema accepts: it refuses control characters at apply).
HOSTILE_VALUES = ("1)) or vector(1", "1 or up", '"} or up{', "1 # comment",
                  "1) + on() group_left vector(1")
#: Seconds a round may take at most, and a misconfiguration to show how it ended.
ROUND_SECONDS = 240.0
SETTLE_SECONDS = 90.0
#: Events about one healthy Canary in one round: its decisions and steps, and a Warning
#: for each undelivered alert (six receivers, a few alerts each). More is an event storm.
EVENT_BUDGET = 80


@dataclass(frozen=True)
class Ending:
    """How a misconfigured Canary must end: ``Ready=False`` for ``reason`` (or phase
    ``Failed`` when ``rolled_back``), its message and a Warning event of that reason both
    containing ``words``."""

    namespace: str
    name: str
    reason: str
    words: str
    rolled_back: bool = False


@dataclass
class Neighbours:
    """What a misconfiguration needs: the cluster, the hostile server, a random source."""

    kube: KubeClient
    server: HostileServer
    rng: random.Random


Neighbour = Callable[[Neighbours, str, str], Awaitable[Ending]]


async def rival(n: Neighbours, namespace: str, name: str) -> Ending:
    """A second Canary on the Deployment another Canary already claims."""
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, target=APP,
                                                     analysis=ANALYSIS))
    return Ending(namespace, name, "Conflict", f"already claims Deployment {APP}")


async def on_primary(n: Neighbours, namespace: str, name: str) -> Ending:
    """A Canary whose target is the primary another Canary manages."""
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, target=f"{APP}-primary",
                                                     analysis=ANALYSIS))
    return Ending(namespace, name, "UnsupportedTarget", "spec.targetRef")


async def missing_config(n: Neighbours, namespace: str, name: str) -> Ending:
    """A target mounting a ConfigMap that does not exist."""
    target = manifests.deployment(name, namespace)
    pod = target["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "config", "configMap": {"name": f"{name}-absent"}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/config"}]
    await n.kube.create(r.DEPLOYMENTS, target)
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, analysis=ANALYSIS))
    return Ending(namespace, name, "MissingReference", f"{name}-absent")


async def missing_template(n: Neighbours, namespace: str, name: str) -> Ending:
    """A metric naming a MetricTemplate that does not exist."""
    await n.kube.create(r.DEPLOYMENTS, manifests.deployment(name, namespace))
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, analysis={
        **ANALYSIS, "metrics": [{"name": "gone", "templateRef": {"name": f"{name}-gone"},
                                 "thresholdRange": {"min": 1}}]}))
    return Ending(namespace, name, "MissingReference", f"{name}-gone")


async def hostile_variable(n: Neighbours, namespace: str, name: str) -> Ending:
    """A template variable that would change its query's structure."""
    await n.kube.create(r.METRIC_TEMPLATES, {
        "apiVersion": "canary.dev/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus"},
                 "query": "sum(vector({{ variables.value }}))"}})
    await n.kube.create(r.DEPLOYMENTS, manifests.deployment(name, namespace))
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, analysis={
        **ANALYSIS, "metrics": [{"name": "hostile", "templateRef": {"name": name},
                                 "templateVariables": {"value": n.rng.choice(HOSTILE_VALUES)},
                                 "thresholdRange": {"min": 1}}]}))
    return Ending(namespace, name, "InvalidVariable", "templateVariables.value")


async def hostile_gate(n: Neighbours, namespace: str, name: str) -> Ending:
    """A pre-rollout gate that misbehaves, on a Canary released at once: the rollout must
    be rolled back, naming the gate."""
    path = RECEIVERS[n.rng.choice(REFUSING)]
    await n.kube.create(r.DEPLOYMENTS, manifests.deployment(name, namespace))
    await n.kube.create(r.CANARIES, manifests.canary(name, namespace, analysis={
        **ANALYSIS, "webhooks": [{"name": f"{name}-gate", "type": "pre-rollout",
                                  "url": n.server.at(path), "timeout": "2s"}]},
        progressDeadlineSeconds=60))
    await wait_until(lambda: canary_object(n.kube, namespace, name),
                     lambda c: phase(c) == "Initialized", f"{namespace}/{name} Initialized",
                     timeout=SETTLE_SECONDS)
    await n.kube.apply(manifests.deployment(name, namespace, annotations={"revision": "2"}),
                       field_manager="neighbour")
    return Ending(namespace, name, "RolledBack", f"{name}-gate", rolled_back=True)


NEIGHBOURS: dict[str, Neighbour] = {
    "rival": rival, "on-primary": on_primary, "missing-config": missing_config,
    "missing-template": missing_template, "hostile-variable": hostile_variable,
    "hostile-gate": hostile_gate,
}


@dataclass
class Run:
    kube: KubeClient
    neighbours: Neighbours
    namespaces: list[str]
    violations: Violations = field(default_factory=Violations)
    #: How each kind of misconfiguration ended: as it must, or how else.
    endings: Counter[str] = field(default_factory=Counter)
    rounds: list[float] = field(default_factory=list)
    most_events: int = 0


async def set_up(kube: KubeClient, env: LocalEnvironment, namespace: str,
                 server: HostileServer) -> None:
    """The healthy application, its alerts sent to every hostile receiver."""
    alerts = []
    for how, path in RECEIVERS.items():
        await kube.create(r.SECRETS, {
            "metadata": {"name": f"hostile-{how}", "namespace": namespace},
            "data": {"address": base64.b64encode(server.at(path).encode()).decode()}})
        await kube.create(r.ALERT_PROVIDERS, {
            "apiVersion": "canary.dev/v1beta1", "kind": "AlertProvider",
            "metadata": {"name": f"hostile-{how}", "namespace": namespace},
            "spec": {"type": "slack", "secretRef": {"name": f"hostile-{how}"}}})
        alerts.append({"name": how, "severity": "info",
                       "providerRef": {"name": f"hostile-{how}"}})
    await deploy(kube, namespace, {"revision": "1"})
    await kube.create(r.CANARIES, manifests.canary(
        APP, namespace, analysis={**ANALYSIS, "alerts": alerts}, progressDeadlineSeconds=60))
    await env.set_traffic(f"{APP}.{namespace}", rps=50)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     f"the {namespace} Canary to be Initialized", timeout=120)


async def test_rollouts_among_random_misconfigurations_and_hostile_receivers(
        kube: KubeClient, environment: LocalEnvironment, four_namespaces: list[str],
        running_controller: ControllerProcess, rounds: int) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    async with hostile(trickle=0.5) as server:
        run = Run(kube, Neighbours(kube, server, random.Random(seed)), four_namespaces)
        await asyncio.gather(*(set_up(kube, environment, ns, server) for ns in four_namespaces))
        log_start = running_controller.log.stat().st_size
        async with watching(kube, four_namespaces, run.violations) as dog:
            for number in range(2, rounds + 2):
                await one_round(run, number)
                await still_alive(running_controller)
        calls = len(server.requests)
    unexpected = unexpected_failures(running_controller, log_start, four_namespaces)
    summary = (f"hostile neighbours: {rounds} rounds ({len(four_namespaces)} rollouts each) "
               f"in {sum(run.rounds):.0f}s, seed {seed}; misconfigurations "
               f"{dict(run.endings)}; round p50 {percentile(run.rounds, 50):.0f}s max "
               f"{max(run.rounds):.0f}s; calls to hostile receivers and gates {calls}; "
               f"samples {dog.samples}; most events for one "
               f"rollout {run.most_events}; unexpected reconcile failures "
               f"{len(unexpected)}; violations {len(run.violations.found)}")
    print(summary)
    assert calls, "no alert or gate reached the hostile receivers"
    assert not run.violations.found and not unexpected, "\n".join(
        [summary, *run.violations.found, *unexpected])


async def one_round(run: Run, number: int) -> None:
    """New revisions for the healthy applications; a random mix of misconfigurations
    beside them a random moment later; both judged."""
    kube, rng = run.kube, run.neighbours.rng
    before = {ns: await reasons(kube, ns, APP) for ns in run.namespaces}
    counted = {ns: occurrences(await events(kube, ns, regarding=APP))
               for ns in run.namespaces}
    expected = [Expected(ns, await deploy(kube, ns, {"revision": str(number)}), promoted=True)
                for ns in run.namespaces]
    started = time.monotonic()
    await asyncio.sleep(rng.uniform(0, 4))
    kinds = rng.sample(sorted(NEIGHBOURS), rng.randint(2, 5))
    endings = await asyncio.gather(*(
        NEIGHBOURS[kind](run.neighbours, rng.choice(run.namespaces), f"{kind}-{number}")
        for kind in kinds))
    await asyncio.gather(rollouts_ended(run, expected, number),
                         *(ended_right(run, kind, ending) for kind, ending in zip(
                             kinds, endings, strict=True)))
    run.rounds.append(time.monotonic() - started)
    await asyncio.sleep(1)  # the events of the last decision follow its status
    for e in expected:
        judge_events(e, await reasons(kube, e.namespace, APP) - before[e.namespace],
                     run.violations)
        storm = occurrences(await events(kube, e.namespace, regarding=APP)) - \
            counted[e.namespace]
        run.most_events = max(run.most_events, storm)
        run.violations.check(storm <= EVENT_BUDGET, f"{e.namespace}: round {number}: "
                             f"{storm} events for one rollout (budget {EVENT_BUDGET})")
    for ending in endings:
        await kube.delete(r.CANARIES, ending.name, ending.namespace)


async def rollouts_ended(run: Run, expected: list[Expected], number: int) -> None:
    async def found() -> list[JSON]:
        return list(await asyncio.gather(*(canary_object(run.kube, e.namespace)
                                           for e in expected)))

    try:
        await wait_until(found, lambda got: all(map(finished, got, expected)),
                         f"round {number}'s healthy rollouts to be promoted",
                         timeout=ROUND_SECONDS, interval=1.0)
    except AssertionError as exc:
        run.violations.check(False, str(exc))


async def ended_right(run: Run, kind: str, ending: Ending) -> None:
    """The misconfiguration's condition (or rollback) and its Warning event say ``words``."""
    kube, where = run.kube, f"{kind} {ending.namespace}/{ending.name}"

    async def seen() -> tuple[JSON, list[JSON]]:
        obj = await canary_object(kube, ending.namespace, ending.name)
        found = await events(kube, ending.namespace, regarding=ending.name)
        return ({"status": obj.get("status") or {}},
                [{k: e.get(k) for k in ("type", "reason", "note")} for e in found])

    def said(got: tuple[JSON, list[JSON]]) -> bool:
        obj, warnings = got
        status = obj.get("status") or {}
        ready: JSON = next((c for c in status.get("conditions") or []
                            if c["type"] == "Ready"), {})
        held = ready.get("reason") == ending.reason and \
            ending.words in str(ready.get("message"))
        if ending.rolled_back:
            held = phase(obj) == "Failed" and ending.words in str(status.get("message") or
                                                                  ready.get("message"))
        return held and any(e["type"] == "Warning" and e["reason"] == ending.reason and
                            ending.words in str(e["note"]) for e in warnings)

    try:
        await wait_until(seen, said, f"{where} to say {ending.reason} naming "
                         f"{ending.words!r}", timeout=SETTLE_SECONDS, interval=1.0)
        run.endings[f"{kind}: as it must"] += 1
    except AssertionError as exc:
        run.endings[f"{kind}: otherwise"] += 1
        run.violations.check(False, str(exc)[:3000])
