"""Rounds of rollouts across an outage that takes the API server away from the
controller (faults 1, 2 and 5): what a round applies, when, and what it checks.

Each round starts rollouts in four namespaces, then, at a random moment, starts the
outage (see :mod:`tests.faults.outages`), applies new revisions the controller cannot
see (just before, where the cluster takes no writes during the outage), and ends it after
a random gap. Then: the controller is still running, the revision applied last is seen
soon after the outage ends, every rollout ends in its right outcome, each decision is
reported exactly once, and the relists are counted (canary_watch_relists_total) where
etcd was compacted meanwhile.
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
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import SUCCESS_RATE, canary_object, deploy, primary, start, target_revision
from tests.e2e.waiting import wait_until
from tests.faults import etcd
from tests.faults.conftest import SEED_VARIABLE
from tests.faults.observed import (
    Expected,
    Violations,
    finished,
    judge_events,
    judge_primary,
    reasons,
    totals,
)
from tests.faults.outages import Outage
from tests.faults.stats import percentile
from tests.faults.uncached import UncachedApiServer

ANALYSIS: dict[str, Any] = {"interval": "2s", "threshold": 2, "maxWeight": 60,
                            "stepWeight": 20, "metrics": SUCCESS_RATE}
#: Six steps for the Canary whose revision is superseded during the outage, so the
#: first revision is still being analysed when the second arrives.
SLOW_ANALYSIS: dict[str, Any] = ANALYSIS | {"stepWeight": 10}
FAULTY = {"devenv.canary.dev/error-rate": "0.3"}
#: Seconds from applying the round's revisions to the outage, and of the outage (from
#: its beginning to the moment it is ended: a restarted component then takes a few
#: seconds more to answer).
BEFORE_CUT = (0.0, 4.0)
GAP = (1.0, 6.0)
#: Seconds after the outage ends within which the revision applied last must be seen: the
#: watches' reconnect pauses (at most about 6.4 s after a 6 s gap), the list, one
#: reconcile, and room for a busy machine.
PICKUP_SECONDS = 20.0
#: The minute-long outage of fault 2.
LONG_GAP = (60.0, 60.0)


@dataclass
class Run:
    kube: KubeClient
    controller: ControllerProcess
    outage: Outage
    etcd_url: str
    rng: random.Random
    #: Namespace of each role: healthy, faulty, superseded (a new revision replaces the
    #: one under analysis during the outage), edited (a revision applied only during the
    #: outage, or just before, to a Canary at rest).
    roles: dict[str, str]
    seed: int = 0
    #: Seconds the outage lasts, and whether etcd is compacted during it.
    gap: tuple[float, float] = GAP
    compact: bool = True
    violations: Violations = field(default_factory=Violations)
    relists: Counter[str] = field(default_factory=Counter)
    cut_connections: int = 0
    #: Per round, seconds from the end of the outage to the edited Canary showing its new
    #: revision.
    pickups: list[float] = field(default_factory=list)


async def started(kube: KubeClient, environment: LocalEnvironment, namespaces: list[str],
                  uncached_apiserver: UncachedApiServer, controller: ControllerProcess,
                  outage: Outage) -> Run:
    """The four Canaries, Initialized; the run's random timings seeded."""
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    run = Run(kube, controller, outage, uncached_apiserver.etcd_url, random.Random(seed),
              dict(zip(("healthy", "faulty", "superseded", "edited"), namespaces, strict=True)),
              seed=seed)
    await asyncio.gather(*(start(kube, environment, ns, analysis=SLOW_ANALYSIS
                                 if role == "superseded" else ANALYSIS)
                           for role, ns in run.roles.items()))
    return run


async def across_outages(run: Run, rounds: int, label: str) -> None:
    began = time.monotonic()
    for number in range(2, rounds + 2):
        await one_round(run, number)
    summary = (f"{label}: {rounds} rounds in {time.monotonic() - began:.0f}s, seed "
               f"{run.seed}; relists observed {sum(run.relists.values())} "
               f"({dict(sorted(run.relists.items()))}); connections cut "
               f"{run.cut_connections}; pickup after the outage p50 "
               f"{percentile(run.pickups, 50):.1f}s max {max(run.pickups, default=0):.1f}s; "
               f"controller exits {int(not run.controller.running())}; "
               f"violations {len(run.violations.found)}")
    print(summary)
    assert not run.violations.found, summary + "\n" + "\n".join(run.violations.found)


async def apply(run: Run, role: str, revision: str) -> str:
    """Apply a revision of the role's app; returns its template hash."""
    namespace = run.roles[role]
    await deploy(run.kube, namespace, {"revision": revision} |
                 (FAULTY if role == "faulty" else {}))
    return await target_revision(run.kube, namespace)


async def one_round(run: Run, number: int) -> None:
    """Rollouts across an outage (and a compaction, if asked), then the invariants."""
    kube = run.kube
    before = {ns: await reasons(kube, ns) for ns in run.roles.values()}
    counters = await totals(run.controller.metrics_url)
    serving = {ns: (await primary(kube, ns))["metadata"]["annotations"][REVISION_ANNOTATION]
               for ns in run.roles.values()}
    expected = [Expected(run.roles["healthy"], await apply(run, "healthy", str(number)), True),
                Expected(run.roles["faulty"], await apply(run, "faulty", str(number)), False)]
    await apply(run, "superseded", f"{number}a")
    await asyncio.sleep(run.rng.uniform(*BEFORE_CUT))
    expected += await through_outage(run, number)
    await picked_up(run, expected[-1], number)
    await wait_until(lambda: asyncio.gather(*(canary_object(kube, e.namespace)
                                              for e in expected)),
                     lambda found: all(map(finished, found, expected)),
                     f"round {number}: every rollout to end", timeout=240, interval=0.5)
    after = await relisted(run, counters, number) if run.compact \
        else await totals(run.controller.metrics_url)
    run.violations.check(run.controller.running(), f"round {number}: the controller exited")
    run.violations.check(after["canary_promotions_total"]
                         - counters["canary_promotions_total"] == 3,
                         f"round {number}: promotions counted "
                         f"{after['canary_promotions_total'] - counters['canary_promotions_total']}"
                         ", expected 3")
    run.violations.check(after["canary_rollbacks_total"]
                         - counters["canary_rollbacks_total"] == 1,
                         f"round {number}: rollbacks counted "
                         f"{after['canary_rollbacks_total'] - counters['canary_rollbacks_total']}"
                         ", expected 1")
    await judge_round(run, expected, before, serving)


async def through_outage(run: Run, number: int) -> list[Expected]:
    """Start the outage, compact etcd, apply revisions the controller cannot see (just
    before, if the cluster takes no writes meanwhile), end it after the gap."""
    gap = run.rng.uniform(*run.gap)
    expected = [] if run.outage.writable else await last_revisions(run, number)
    began = time.monotonic()
    run.cut_connections += await run.outage.begin()
    if run.compact:
        await etcd.compact(run.etcd_url)
    if run.outage.writable:
        expected = await last_revisions(run, number)
    await asyncio.sleep(max(0.0, gap - (time.monotonic() - began)))
    await run.outage.end()
    return expected


async def last_revisions(run: Run, number: int) -> list[Expected]:
    """A second revision for the superseded Canary, the round's only one for the edited."""
    return [Expected(run.roles["superseded"], await apply(run, "superseded", f"{number}b"),
                     True, new_revisions=(1, 2), promotions=(1, 2)),
            Expected(run.roles["edited"], await apply(run, "edited", str(number)), True)]


async def picked_up(run: Run, edited: Expected, number: int) -> None:
    """The revision applied last is seen soon after the outage: the controller's cache
    is known to be stale from the first failed watch and must not stay so."""
    healed = time.monotonic()
    try:
        await wait_until(lambda: canary_object(run.kube, edited.namespace),
                         lambda c: c["status"].get("lastAppliedSpec") == edited.revision,
                         f"round {number}: the revision applied during the outage",
                         timeout=PICKUP_SECONDS, interval=0.2)
    except AssertionError:
        run.violations.check(False, f"{edited.namespace}: round {number}: revision "
                             f"{edited.revision}, applied during the outage, not seen "
                             f"within {PICKUP_SECONDS:.0f}s of its end")
    run.pickups.append(time.monotonic() - healed)


async def relisted(run: Run, counters: Counter[str], number: int) -> Counter[str]:
    """Wait until the controller has counted a relist of the Canaries and Deployments
    (its counters are fed every few seconds); returns its counters then."""
    after = await wait_until(
        lambda: totals(run.controller.metrics_url),
        lambda now: all(now[f"relists:{kind}"] > counters[f"relists:{kind}"]
                        for kind in ("canaries", "deployments")),
        f"round {number}: relists of canaries and deployments", timeout=60)
    for key, value in after.items():
        if key.startswith("relists:"):
            run.relists[key.removeprefix("relists:")] += value - counters[key]
    return after


async def judge_round(run: Run, expected: list[Expected], before: dict[str, Counter[str]],
                      serving: dict[str, str]) -> None:
    """Events once every decision has been reported, and a moment later (a duplicate
    may trail); the primaries."""
    def deltas(now: list[Counter[str]]) -> list[Counter[str]]:
        return [now_ - before[e.namespace] for now_, e in zip(now, expected, strict=True)]

    await wait_until(
        lambda: asyncio.gather(*(reasons(run.kube, e.namespace) for e in expected)),
        lambda now: all(d["Promoted" if e.promoted else "RolledBack"] >= 1
                        for d, e in zip(deltas(now), expected, strict=True)),
        "the outcome events", timeout=30)
    await asyncio.sleep(3)
    now = await asyncio.gather(*(reasons(run.kube, e.namespace) for e in expected))
    for delta, e in zip(deltas(list(now)), expected, strict=True):
        judge_events(e, delta, run.violations)
        await judge_primary(run.kube, e, serving[e.namespace], run.violations)
