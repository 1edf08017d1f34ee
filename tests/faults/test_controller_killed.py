"""Fault 3, the controller SIGKILLed at random moments: rollouts of every strategy keep
their outcomes, and nothing unsafe is seen in between.

Eight Canaries, one per strategy (a weighted canary, a faulty weighted canary, A/B
testing, blue/green, blue/green with mirroring, gradual promotion, a weighted canary
behind every gate, and one with the judge), get a new revision each round. Until every
rollout has ended, the controller is killed with SIGKILL after a random 0.5-4 s, left
down for up to a second, and started again. A watchdog samples the cluster meanwhile
(tests/faults/watchdog.py). Then: every rollout ended in its right outcome, with its
routes and Deployments matching its status; no decision event is repeated (an event
lost with the process that would have sent it is counted, not failed); the events per
rollout stay bounded.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.gates import Gates, hooks
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    SUCCESS_RATE,
    canary_object,
    events,
    occurrences,
    phase,
    primary,
    target_revision,
)
from tests.e2e.waiting import wait_until
from tests.faults.conftest import SEED_VARIABLE
from tests.faults.observed import Expected, Violations, finished, judge_primary, reasons
from tests.faults.stats import percentile
from tests.faults.watchdog import canary_routed, watching

JSON = dict[str, Any]
ERROR_RATE = "devenv.canary.dev/error-rate"
#: A generous threshold: on a busy machine, just after traffic moves, a check may find no
#: canary series in Prometheus yet; the faulty canary still fails within three checks.
WEIGHTED: JSON = {"interval": "2s", "threshold": 3, "maxWeight": 60, "stepWeight": 20,
                  "metrics": SUCCESS_RATE}
COOKIE = {"headers": {"cookie": {"regex": r"^(.*?;\s*)?(canary=always)(;.*)?$"}}}
#: One user in two opted in to the A/B test.
USERS = {"users": 200, "profiles": [{"weight": 1, "cookies": {"canary": "always"}},
                                    {"weight": 1, "cookies": {"canary": "never"}}]}
ITERATIONS: JSON = {"interval": "2s", "threshold": 3, "iterations": 3, "metrics": SUCCESS_RATE}
JUDGED: JSON = {"interval": "2s", "threshold": 3, "maxWeight": 60, "stepWeight": 10,
                "judge": {"metrics": [{"name": "error-rate", "type": "errorRate",
                                       "minimumEffect": "1.5x"}],
                          "alpha": 0.001, "promoteEarly": True, "bakeTime": "4s"}}
GATES = ("confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
         "confirm-promotion", "post-rollout")
#: Seconds between the controller's start and its kill, and that it stays down.
ALIVE = (0.5, 4.0)
DOWN = (0.0, 1.0)
#: Seconds a round may take at most (its rollouts run at a fraction of their speed).
ROUND_SECONDS = 300.0
#: Events about one Canary in one round (a rollout of up to ten steps, with the repeats
#: of a controller restarted many times counted): more is an event storm.
EVENT_BUDGET = 60


@dataclass(frozen=True)
class Role:
    """One Canary of the round: its analysis, what its revisions carry, its traffic."""

    analysis: JSON
    annotations: dict[str, str] = field(default_factory=dict)
    faulty: bool = False
    gated: bool = False
    mix: JSON | None = None
    #: Requests per second sent straight to the canary's Service, as a load tester would.
    canary_rps: float = 0.0
    rps: float = 50.0


ROLES: dict[str, Role] = {
    "weighted": Role(WEIGHTED),
    "faulty": Role(WEIGHTED, faulty=True),
    "ab": Role(ITERATIONS | {"match": [COOKIE]}, mix=USERS),
    "bluegreen": Role(ITERATIONS, canary_rps=30),
    "mirroring": Role(ITERATIONS | {"mirror": True, "mirrorWeight": 50}),
    "gradual": Role({**WEIGHTED, "stepWeight": None, "stepWeights": [20, 40],
                     "stepWeightPromotion": 20}),
    "gated": Role(WEIGHTED, gated=True),
    "judged": Role(JUDGED, annotations={ERROR_RATE: "0.05"}, rps=100),
}


@dataclass
class Run:
    kube: KubeClient
    controller: ControllerProcess
    rng: random.Random
    #: The namespace of each role.
    roles: dict[str, str]
    violations: Violations = field(default_factory=Violations)
    kills: int = 0
    #: Seconds from each kill to the restarted controller's caches being synced.
    restarts: list[float] = field(default_factory=list)
    rounds: list[float] = field(default_factory=list)
    #: Decision events that a killed process never sent, by reason and role.
    lost: Counter[str] = field(default_factory=Counter)
    most_events: int = 0


def revision(role: Role, number: int) -> JSON:
    faulty = {ERROR_RATE: "0.3"} if role.faulty and number > 1 else {}
    return {"revision": str(number)} | role.annotations | faulty


def canary(name: str, namespace: str, role: Role, gates: Gates) -> JSON:
    analysis = {k: v for k, v in role.analysis.items() if v is not None}
    if role.gated:
        analysis["webhooks"] = hooks(gates, *GATES)
    return manifests.canary(name, namespace, analysis=analysis, progressDeadlineSeconds=60)


async def deploy(kube: KubeClient, namespace: str, annotations: dict[str, str]) -> str:
    await kube.apply(manifests.deployment(APP, namespace, replicas=2, annotations=annotations),
                     field_manager=FIELD_MANAGER)
    return await target_revision(kube, namespace)


async def set_up(kube: KubeClient, env: LocalEnvironment, namespace: str, role: Role,
                 gates: Gates) -> None:
    await deploy(kube, namespace, revision(role, 1))
    await kube.create(r.CANARIES, canary(APP, namespace, role, gates))
    await env.set_traffic(f"{APP}.{namespace}", rps=role.rps, mix=role.mix)
    if role.canary_rps:
        await env.set_traffic(f"{APP}-canary.{namespace}", rps=role.canary_rps)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     f"the {namespace} Canary to be Initialized", timeout=120)


async def test_rollouts_of_every_strategy_keep_their_outcomes_across_sigkills(
        kube: KubeClient, environment: LocalEnvironment, gates: Gates,
        eight_namespaces: list[str], running_controller: ControllerProcess,
        rounds: int) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    run = Run(kube, running_controller, random.Random(seed),
              dict(zip(ROLES, eight_namespaces, strict=True)))
    await asyncio.gather(*(set_up(kube, environment, run.roles[name], role, gates)
                           for name, role in ROLES.items()))
    try:
        async with watching(kube, run.roles.values(), run.violations) as dog:
            for number in range(2, rounds + 2):
                await one_round(run, number)
    finally:
        if not run.controller.running():
            run.controller.start()
    restarts = run.restarts
    summary = (f"sigkill: {rounds} rounds ({len(ROLES)} rollouts each) in "
               f"{sum(run.rounds):.0f}s, seed {seed}; kills {run.kills}; restart to synced "
               f"p50 {percentile(restarts, 50):.1f}s p99 {percentile(restarts, 99):.1f}s; "
               f"round p50 {percentile(run.rounds, 50):.0f}s max "
               f"{max(run.rounds):.0f}s; samples {dog.samples}; fewest ready primary pods "
               f"{dog.fewest_primary_pods}; most events for one rollout {run.most_events}; "
               f"decision events lost with a killed process {dict(run.lost)}; "
               f"violations {len(run.violations.found)}")
    print(summary)
    assert not run.violations.found, summary + "\n" + "\n".join(run.violations.found)


async def one_round(run: Run, number: int) -> None:
    """New revisions for every role; kills until all rollouts end; the invariants."""
    kube = run.kube
    before = {ns: await reasons(kube, ns) for ns in run.roles.values()}
    counted = {ns: await event_count(kube, ns) for ns in run.roles.values()}
    serving = {ns: await serving_revision(kube, ns) for ns in run.roles.values()}
    expected = [Expected(ns, await deploy(kube, ns, revision(ROLES[name], number)),
                         promoted=not ROLES[name].faulty)
                for name, ns in run.roles.items()]
    started = time.monotonic()
    await kill_until_finished(run, expected, number)
    run.rounds.append(time.monotonic() - started)
    for e in expected:
        await settled(run, e, number)
        await judge_primary(kube, e, serving[e.namespace], run.violations)
        await judge_decisions(run, e, before[e.namespace])
        storm = await event_count(kube, e.namespace) - counted[e.namespace]
        run.most_events = max(run.most_events, storm)
        run.violations.check(storm <= EVENT_BUDGET, f"{e.namespace}: round {number}: "
                             f"{storm} events for one rollout (budget {EVENT_BUDGET})")


async def kill_until_finished(run: Run, expected: list[Expected], number: int) -> None:
    """Kill and restart the controller at random moments until every rollout has ended
    (a rollout still running after ROUND_SECONDS is a violation)."""
    deadline = time.monotonic() + ROUND_SECONDS
    while not await all_finished(run.kube, expected):
        if time.monotonic() > deadline:
            run.violations.check(False, f"round {number}: rollouts not ended after "
                                 f"{ROUND_SECONDS:.0f}s")
            return
        await asyncio.sleep(run.rng.uniform(*ALIVE))
        run.controller.kill()
        killed = time.monotonic()
        run.kills += 1
        await asyncio.sleep(run.rng.uniform(*DOWN))
        await asyncio.to_thread(run.controller.start)
        run.restarts.append(time.monotonic() - killed)


async def all_finished(kube: KubeClient, expected: list[Expected]) -> bool:
    found = await asyncio.gather(*(canary_object(kube, e.namespace) for e in expected))
    return all(map(finished, found, expected))


async def settled(run: Run, expected: Expected, number: int) -> None:
    """The status is written before the actions it decides: within a few seconds of the
    end, the routes send nothing to the canary and the canary is scaled to zero, as the
    status says."""
    kube, namespace = run.kube, expected.namespace

    async def observed() -> tuple[JSON, JSON, JSON]:
        return (await canary_object(kube, namespace),
                await kube.get(r.VIRTUAL_SERVICES, APP, namespace),
                await kube.get(r.DEPLOYMENTS, APP, namespace))

    def at_rest(found: tuple[JSON, JSON, JSON]) -> bool:
        status, service, target = found
        return (status["status"].get("canaryWeight") or 0) == 0 and \
            not canary_routed(service) and len(service["spec"]["http"]) == 1 and \
            target["spec"].get("replicas") == 0

    try:
        await wait_until(observed, at_rest, "the routes and the canary at rest", timeout=20)
    except AssertionError as exc:
        run.violations.check(False, f"{namespace}: round {number}: status, routes and "
                             f"Deployments disagree after the rollout: {exc}")


async def judge_decisions(run: Run, expected: Expected, before: Counter[str]) -> None:
    """Each decision said at most once; what a killed process never said is counted."""
    want = Counter({"NewRevision": 1, "Promoting": 1, "Promoted": 1} if expected.promoted
                   else {"NewRevision": 1, "RolledBack": 1})
    await asyncio.sleep(1)  # the events of the last decision follow its status
    delta = await reasons(run.kube, expected.namespace) - before
    for reason in ("NewRevision", "Promoting", "Promoted", "RolledBack"):
        run.violations.check(delta[reason] <= want[reason],
                             f"{expected.namespace}: {reason} x{delta[reason]}, expected "
                             f"at most {want[reason]}")
        missing = max(0, want[reason] - delta[reason])
        if missing:
            role = next(name for name, ns in run.roles.items() if ns == expected.namespace)
            run.lost[f"{reason}@{role}"] += missing
    if expected.promoted:
        run.violations.check(delta[f"Promoted@{expected.revision}"] <= 1,
                             f"{expected.namespace}: revision {expected.revision} promoted "
                             f"x{delta[f'Promoted@{expected.revision}']}")


async def event_count(kube: KubeClient, namespace: str) -> int:
    return occurrences(await events(kube, namespace))


async def serving_revision(kube: KubeClient, namespace: str) -> str:
    return str((await primary(kube, namespace))["metadata"]["annotations"][REVISION_ANNOTATION])
