"""Fault 7: two replicas, never two actors. The leader is cut off from its API server (not
killed), or paused with SIGSTOP past its lease and resumed with SIGCONT, while rollouts
run; the other replica takes over. A replica that lost the Lease exits, and is started
again as a Deployment's pod would be.

Each round applies a healthy revision to one Canary and a faulty one to another, waits a
random 0-3 s, takes the current leader away for the lease duration and a random 1-4 s
more (alternately cut off and paused), then waits for both rollouts to end. Then: each
ended right, no decision was reported twice, and the API server's audit log shows that
every write of either replica was received while that replica was the last to have
renewed the Lease; the Lease changed hands at least once a round.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e.rollout import SUCCESS_RATE, canary_object, deploy, primary, start, target_revision
from tests.e2e.waiting import wait_until
from tests.faults import audit, uncached
from tests.faults.conftest import SEED_VARIABLE, Replica
from tests.faults.observed import Expected, Violations, finished, judge_primary, reasons

LEASE_NAME = "canary-leader"
#: The replicas' lease duration (see the ``replicas`` fixture), and how much longer than
#: it the leader is away: always long enough for the other replica to take over.
LEASE_SECONDS = 4.0
AWAY = (1.0, 4.0)
BEFORE = (0.0, 3.0)
ANALYSIS = {"interval": "2s", "threshold": 2, "maxWeight": 60, "stepWeight": 20,
            "metrics": SUCCESS_RATE}
FAULTY = {"devenv.canary.dev/error-rate": "0.3"}


async def test_only_the_lease_holder_writes_when_the_leader_is_cut_off_or_paused(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, replicas: list[Replica], rounds: int) -> None:
    seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    rng, violations = random.Random(seed), Violations()
    log = environment.logs_dir / f"{uncached.NAME}.audit"
    offset = log.stat().st_size
    roles = {"healthy": namespace, "faulty": other_namespace}
    restarts: list[int] = [0]
    async with supervised(replicas, restarts):
        await asyncio.gather(*(start(kube, environment, ns, analysis=ANALYSIS)
                               for ns in roles.values()))
        began = time.monotonic()
        for number in range(2, rounds + 2):
            how = "paused" if number % 2 else "cut off"
            await one_round(kube, namespace, roles, replicas, rng, number, how, violations)
    writes = audit.writes_since(log, offset, {replica.user for replica in replicas},
                                (namespace, LEASE_NAME))
    two_actors, handovers = audit.two_actors(writes)
    summary = (f"two-replicas: {rounds} rounds in {time.monotonic() - began:.0f}s, seed "
               f"{seed}; writes audited {len(writes)}, handovers {handovers}, replicas "
               f"restarted {restarts[0]}; writes beside the holder {len(two_actors)}; "
               f"violations {len(violations.found)}")
    print(summary, *two_actors[:20], *violations.found, sep="\n")
    assert handovers >= rounds, summary + ": the Lease did not change hands every round"
    assert not two_actors and not violations.found, summary


@contextlib.asynccontextmanager
async def supervised(replicas: list[Replica], restarts: list[int]) -> AsyncIterator[None]:
    """Start again, every 0.5 s, a replica that exited (as after losing the Lease)."""
    async def supervise() -> None:
        while True:
            for replica in replicas:
                if not replica.process.running():
                    replica.process.start(wait_for=None)
                    restarts[0] += 1
            await asyncio.sleep(0.5)

    task = asyncio.create_task(supervise())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def one_round(kube: KubeClient, lease_namespace: str, roles: dict[str, str],
                    replicas: list[Replica], rng: random.Random, number: int, how: str,
                    violations: Violations) -> None:
    before = {ns: await reasons(kube, ns) for ns in roles.values()}
    serving = {ns: (await primary(kube, ns))["metadata"]["annotations"][REVISION_ANNOTATION]
               for ns in roles.values()}
    expected = []
    for role, ns in roles.items():
        await deploy(kube, ns, {"revision": str(number)} | (FAULTY if role == "faulty" else {}))
        expected.append(Expected(ns, await target_revision(kube, ns), role == "healthy"))
    await asyncio.sleep(rng.uniform(*BEFORE))
    leader = await holder(kube, lease_namespace, replicas)
    await away(leader, how, LEASE_SECONDS + rng.uniform(*AWAY))
    await wait_until(lambda: asyncio.gather(*(canary_object(kube, e.namespace)
                                              for e in expected)),
                     lambda found: all(map(finished, found, expected)),
                     f"round {number} (leader {how}): every rollout to end", timeout=240,
                     interval=0.5)
    await asyncio.sleep(1)  # the events of the last decisions follow their status
    for e in expected:
        await judge_primary(kube, e, serving[e.namespace], violations)
        delta = await reasons(kube, e.namespace) - before[e.namespace]
        for reason in ("Promoted", "RolledBack"):
            violations.check(delta[reason] <= 1, f"{e.namespace}: round {number} (leader "
                             f"{how}): {reason} x{delta[reason]}")


async def holder(kube: KubeClient, namespace: str, replicas: list[Replica]) -> Replica:
    """The replica holding the Lease now."""
    lease = await wait_until(lambda: kube.get(r.LEASES, LEASE_NAME, namespace),
                             lambda found: bool(found["spec"].get("holderIdentity")),
                             "a leader", timeout=30)
    index = int(str(lease["spec"]["holderIdentity"]).rsplit("-", 1)[1])
    return replicas[index]


async def away(leader: Replica, how: str, seconds: float) -> None:
    """Take the leader away for ``seconds``: its connections cut, or its process
    stopped; then back."""
    if how == "paused":
        assert leader.process.process is not None
        pid = leader.process.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
    else:
        leader.partition.cut()
        try:
            await asyncio.sleep(seconds)
        finally:
            leader.partition.heal()
