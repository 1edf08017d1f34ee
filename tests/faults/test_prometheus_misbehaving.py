"""Fault 4, Prometheus misbehaving mid-analysis: no traffic moves and nothing is promoted
on answers that are no evidence, and no healthy rollout is rolled back for them.

Four Canaries (thresholds on the success rate, thresholds on the P99 latency, the judge,
and a faulty one) get a new revision each round. After a random 0-4 s, Prometheus is
spoiled for a random 4-12 s. In the first test the proxy between the controller and
Prometheus (tests/faults/prometheus_proxy.py) misbehaves in the round's mode: HTTP 503,
answers slower than the controller's timeout, reset connections (an outage of the
evidence), or every value NaN, +Inf, or no series at all (answers that are no evidence);
each round takes the next mode. In the second, Prometheus is stopped, its time series
removed, and started again once the time is up: every counter starts over, and the
spoiled window lasts until it scrapes again. In the third, Prometheus is stopped for two
minutes (with its data) once in five rounds. While it lasts, no Canary's weight may rise
and none may begin its promotion. Then: every rollout ends in its right outcome, and each
decision is reported at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.prometheus_outage import prometheus_stopped
from tests.e2e.rollout import (
    APP,
    FIELD_MANAGER,
    SUCCESS_RATE,
    canary_object,
    phase,
    primary,
    target_revision,
)
from tests.e2e.waiting import wait_until
from tests.faults.conftest import SEED_VARIABLE
from tests.faults.observed import Expected, Violations, finished, judge_primary, reasons
from tests.faults.prometheus_proxy import Mode, PrometheusProxy
from tests.faults.stats import percentile
from tests.faults.watchdog import PROMOTING

JSON = dict[str, Any]
ERROR_RATE = "devenv.canary.dev/error-rate"
LATENCY = "devenv.canary.dev/latency-ms"
#: More failed checks allowed than a misbehaving window can cause (at most 12 s of 2 s
#: steps), so only a regression can roll a healthy revision back.
PATIENT = 10
WEIGHTED: JSON = {"interval": "2s", "threshold": PATIENT, "maxWeight": 60, "stepWeight": 20,
                  "metrics": SUCCESS_RATE}
LATENCY_CHECK = [{"name": "request-duration", "interval": "10s",
                  "thresholdRange": {"max": 500}}]
JUDGED: JSON = {"interval": "2s", "threshold": PATIENT, "maxWeight": 60, "stepWeight": 10,
                "judge": {"metrics": [{"name": "error-rate", "type": "errorRate",
                                       "minimumEffect": "1.5x"}],
                          "alpha": 0.001, "promoteEarly": True, "bakeTime": "4s"}}
ROLES: dict[str, tuple[JSON, dict[str, str]]] = {
    "success-rate": (WEIGHTED, {}),
    "latency": (WEIGHTED | {"metrics": LATENCY_CHECK}, {LATENCY: "p50=20,p99=120"}),
    "judged": (JUDGED, {ERROR_RATE: "0.05"}),
    "faulty": (WEIGHTED | {"threshold": 2}, {}),
}
MODES = [mode for mode in Mode if mode is not Mode.PASS]
#: Seconds from the round's revisions to the misbehaviour, and how long it lasts.
BEFORE = (0.0, 4.0)
LASTS = (4.0, 12.0)
#: Seconds the long outage lasts: two minutes in the full run (``CANARY_FAULT_ROUNDS`` of 5
#: or more), half a minute in the smoke that ``make test`` runs.
LONG_OUTAGE = (120.0, 30.0)
#: Seconds after the misbehaviour begins during which a decision made on the answers
#: before it may still be written.
GRACE = 1.0


#: What spoils Prometheus for a round: a name, and a context that spoils it while open.
Spoil = tuple[str, contextlib.AbstractAsyncContextManager[None]]


@dataclass
class Run:
    kube: KubeClient
    proxy: PrometheusProxy
    #: Seeds the run's random timings (printed, to replay them).
    seed: int
    roles: dict[str, str]
    #: What spoils Prometheus in round ``number``.
    spoil: Callable[[int], Spoil]
    #: Seconds a spoil lasts, drawn from this range.
    lasts: tuple[float, float] = LASTS
    rng: random.Random = field(init=False)
    violations: Violations = field(default_factory=Violations)
    #: Per spoil: rounds, and how many Canaries said MetricsUnavailable during it.
    rounds: Counter[str] = field(default_factory=Counter)
    held: Counter[str] = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    #: Seconds from the end of the misbehaviour until every rollout moved on.
    resumes: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


def revision(role: str, number: int) -> dict[str, str]:
    faulty = {ERROR_RATE: "0.3"} if role == "faulty" and number > 1 else {}
    return {"revision": str(number)} | ROLES[role][1] | faulty


async def deploy(kube: KubeClient, namespace: str, annotations: dict[str, str]) -> str:
    await kube.apply(manifests.deployment(APP, namespace, replicas=2, annotations=annotations),
                     field_manager=FIELD_MANAGER)
    return await target_revision(kube, namespace)


async def set_up(kube: KubeClient, env: LocalEnvironment, namespace: str, role: str,
                 deadline: float = 60) -> None:
    await deploy(kube, namespace, revision(role, 1))
    await kube.create(r.CANARIES, manifests.canary(APP, namespace, analysis=ROLES[role][0],
                                                   progressDeadlineSeconds=int(deadline)))
    await env.set_traffic(f"{APP}.{namespace}", rps=100)
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Initialized",
                     f"the {namespace} Canary to be Initialized", timeout=120)


async def test_no_traffic_moves_on_answers_that_are_no_evidence(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        prometheus_proxy: PrometheusProxy, proxied_controller: ControllerProcess,
        rounds: int) -> None:
    seed = run_seed()

    def spoil(number: int) -> Spoil:
        mode = MODES[(seed + number) % len(MODES)]
        return str(mode), answering(prometheus_proxy, mode)

    await run_rounds(Run(kube, prometheus_proxy, seed, await set_up_all(
        kube, environment, [namespace, other_namespace, *two_more_namespaces]), spoil),
        rounds, "prometheus")


async def test_no_traffic_moves_while_prometheus_restarts_without_its_data(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        prometheus_proxy: PrometheusProxy, proxied_controller: ControllerProcess,
        rounds: int) -> None:
    """Prometheus stopped, its time series removed, and started again: every counter
    starts over (the judge's windows see resets) and every range query needs new scrapes
    before it has values. The sampled window runs until it scrapes again."""
    def spoil(number: int) -> Spoil:
        return "restart-without-data", stopped(environment, lose_data=True)

    await run_rounds(Run(kube, prometheus_proxy, run_seed(), await set_up_all(
        kube, environment, [namespace, other_namespace, *two_more_namespaces]), spoil),
        rounds, "prometheus-data-lost")


async def test_nothing_is_promoted_or_rolled_back_while_prometheus_is_down_for_minutes(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        prometheus_proxy: PrometheusProxy, proxied_controller: ControllerProcess,
        rounds: int) -> None:
    """Prometheus stopped for longer than every threshold of failed checks would allow,
    within the progress deadline (past it, the rollout is rolled back by design:
    docs/metrics.md): each rollout holds where it is, says why, and moves on once
    Prometheus answers again."""
    seconds = LONG_OUTAGE[0] if rounds >= 5 else LONG_OUTAGE[1]

    def spoil(number: int) -> Spoil:
        return f"stopped-{seconds:.0f}s", stopped(environment, lose_data=False)

    await run_rounds(Run(kube, prometheus_proxy, run_seed(), await set_up_all(
        kube, environment, [namespace, other_namespace, *two_more_namespaces],
        deadline=seconds + 60), spoil, lasts=(seconds, seconds)), max(1, rounds // 5),
        "prometheus-down")


def run_seed() -> int:
    return int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))


async def set_up_all(kube: KubeClient, env: LocalEnvironment, namespaces: list[str],
                     deadline: float = 60) -> dict[str, str]:
    """Every role's Canary (progress deadline ``deadline`` seconds), Initialized; the
    namespace of each role."""
    roles = dict(zip(ROLES, namespaces, strict=True))
    await asyncio.gather(*(set_up(kube, env, ns, role, deadline)
                           for role, ns in roles.items()))
    return roles


@contextlib.asynccontextmanager
async def answering(proxy: PrometheusProxy, mode: Mode) -> AsyncIterator[None]:
    proxy.mode = mode
    try:
        yield
    finally:
        proxy.mode = Mode.PASS


@contextlib.asynccontextmanager
async def stopped(env: LocalEnvironment, *, lose_data: bool) -> AsyncIterator[None]:
    """Prometheus stopped for the block, started again after it (without its time series
    if ``lose_data``)."""
    async with prometheus_stopped(env, lose_data=lose_data):
        yield


async def run_rounds(run: Run, rounds: int, label: str) -> None:
    for number in range(2, rounds + 2):
        await one_round(run, number)
    summary = (f"{label}: {rounds} rounds in {sum(run.durations):.0f}s, seed "
               f"{run.seed}; rounds by spoil {dict(run.rounds)}; "
               f"answers spoiled { {str(k): v for k, v in run.proxy.spoiled.items()} }; "
               f"Canaries seen saying MetricsUnavailable by spoil {dict(run.held)}; moved on "
               f"after Prometheus answered again within p50 "
               f"{percentile(run.resumes, 50):.1f}s max {max(run.resumes):.1f}s; "
               f"violations {len(run.violations.found)}")
    print(summary, *run.violations.found, sep="\n")
    assert not run.violations.found, summary + "\n" + "\n".join(run.violations.found)


async def one_round(run: Run, number: int) -> None:
    kube = run.kube
    label, spoil = run.spoil(number)
    before = {ns: await reasons(kube, ns) for ns in run.roles.values()}
    serving = {ns: (await primary(kube, ns))["metadata"]["annotations"][REVISION_ANNOTATION]
               for ns in run.roles.values()}
    expected = [Expected(ns, await deploy(kube, ns, revision(role, number)),
                         promoted=role != "faulty") for role, ns in run.roles.items()]
    started = time.monotonic()
    await asyncio.sleep(run.rng.uniform(*BEFORE))
    await misbehaving(run, spoil, run.rng.uniform(*run.lasts), label,
                      f"round {number} ({label})")
    await resumed(run, expected, number)
    await wait_until(lambda: asyncio.gather(*(canary_object(kube, e.namespace)
                                              for e in expected)),
                     lambda found: all(map(finished, found, expected)),
                     f"round {number} ({label}): every rollout to end", timeout=240,
                     interval=0.5)
    run.durations.append(time.monotonic() - started)
    run.rounds[label] += 1
    await asyncio.sleep(1)  # the events of the last decisions follow their status
    for e in expected:
        await judge_primary(kube, e, serving[e.namespace], run.violations)
        delta = await reasons(kube, e.namespace) - before[e.namespace]
        for reason in ("Promoted", "RolledBack"):
            run.violations.check(delta[reason] <= 1, f"{e.namespace}: round {number}: "
                                 f"{reason} x{delta[reason]}")


async def misbehaving(run: Run, spoil: contextlib.AbstractAsyncContextManager[None],
                      seconds: float, label: str, when: str) -> None:
    """Spoil Prometheus for ``seconds`` (and, for a restart, until it scrapes again),
    sampling the Canaries meanwhile: after the grace, no weight rises and no promotion
    begins."""
    began = time.monotonic()
    held: set[str] = set()
    sampling = asyncio.create_task(sample(run, began, held, when))
    try:
        async with spoil:
            await asyncio.sleep(seconds)
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
    run.held[label] += len(held)


async def sample(run: Run, began: float, held: set[str], when: str) -> None:
    """Every 0.2 s after the grace, until cancelled: the invariants of :func:`_no_advance`,
    and which Canaries say MetricsUnavailable."""
    await asyncio.sleep(GRACE)
    first: dict[str, tuple[int, str | None]] = {}
    while True:
        for canary in (await run.kube.list(r.CANARIES))["items"]:
            namespace = canary["metadata"]["namespace"]
            if namespace in run.roles.values():
                held |= {namespace} if _says_unavailable(canary) else set()
                _no_advance(run, canary, first.setdefault(namespace, _point(canary)), when)
        await asyncio.sleep(0.2)


async def resumed(run: Run, expected: list[Expected], number: int) -> None:
    """Once Prometheus answers again, every rollout moves on (a weight or phase change, or
    its end) within a few steps; the time it took is recorded."""
    ended = time.monotonic()

    async def points() -> list[tuple[JSON, tuple[int, str | None]]]:
        found = await asyncio.gather(*(canary_object(run.kube, e.namespace) for e in expected))
        return [(c, _point(c)) for c in found]

    then = [point for _, point in await points()]
    await wait_until(points, lambda now: all(
        point != was or finished(c, e)
        for (c, point), was, e in zip(now, then, expected, strict=True)),
        f"round {number}: every rollout to move on once Prometheus answers", timeout=60,
        interval=0.2)
    run.resumes.append(time.monotonic() - ended)


def _point(canary: JSON) -> tuple[int, str | None]:
    return int((canary.get("status") or {}).get("canaryWeight") or 0), phase(canary)


def _says_unavailable(canary: JSON) -> bool:
    return any(c.get("reason") == "MetricsUnavailable"
               for c in (canary.get("status") or {}).get("conditions") or [])


def _no_advance(run: Run, canary: JSON, first: tuple[int, str | None], when: str) -> None:
    """No rise of the weight (but to the first step, which needs no evidence of the
    canary's own) and no promotion begun since ``first``."""
    weight, now = _point(canary)
    namespace = canary["metadata"]["namespace"]
    role = next(name for name, ns in run.roles.items() if ns == namespace)
    allowed = max(first[0], int(ROLES[role][0]["stepWeight"]) if first[0] == 0 else 0)
    run.violations.check(weight <= allowed, f"{namespace}: {when}: the weight rose from "
                         f"{first[0]} to {weight} on answers that are no evidence")
    run.violations.check(now not in PROMOTING or first[1] in PROMOTING,
                         f"{namespace}: {when}: {now} on answers that are no evidence")
