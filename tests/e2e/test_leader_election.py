"""Leader election on a real Lease: one leader at a time, takeover after expiry or at once
after a release, and a controller replica set that survives losing its leader mid-rollout."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from canary.app import EXIT_LEASE_LOST
from canary.devenv import LocalEnvironment
from canary.kube import KubeClient, LeaderElector, LeaseSettings
from canary.kube import resources as r
from canary.kube.lease import micro_time
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import canary_object, deploy, events, phase, start, target_revision
from tests.e2e.waiting import wait_until

MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
#: The replicas' timings, in seconds.
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 4, 3, 0.5
#: What a busy 2-core machine may add to a takeover: the follower's attempts are
#: RETRY_PERIOD apart *plus* an API round trip each, about nine of them in a lease.
TAKEOVER_SLACK = 1.5


def elector(kube: KubeClient, namespace: str, identity: str) -> LeaderElector:
    return LeaderElector(kube, LeaseSettings(namespace=namespace, identity=identity,
                                             lease_duration=3, renew_deadline=2,
                                             retry_period=0.25))


async def lease(kube: KubeClient, namespace: str) -> dict[str, Any]:
    spec: dict[str, Any] = (await kube.get(r.LEASES, "canary-leader", namespace))["spec"]
    return spec


async def test_one_leader_at_a_time_and_takeover_only_after_expiry(
        kube: KubeClient, namespace: str) -> None:
    first, second = elector(kube, namespace, "a"), elector(kube, namespace, "b")
    await first.acquire()
    spec = await lease(kube, namespace)
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 3
    assert MICRO_TIME.match(spec["renewTime"]) and MICRO_TIME.match(spec["acquireTime"])
    holding = asyncio.create_task(first.hold())
    waiting = asyncio.create_task(second.acquire())
    await asyncio.sleep(4)  # longer than the lease: "a" keeps renewing it
    assert not waiting.done() and not holding.done()
    holding.cancel()  # "a" dies without releasing
    stopped = time.monotonic()
    await asyncio.wait_for(waiting, timeout=10)
    took = time.monotonic() - stopped
    assert 2.5 <= took <= 5, took  # after the lease duration, not before
    spec = await lease(kube, namespace)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1


async def test_a_released_lease_is_taken_at_once(kube: KubeClient, namespace: str) -> None:
    first, second = elector(kube, namespace, "a"), elector(kube, namespace, "b")
    await first.acquire()
    await first.release()
    assert not (await lease(kube, namespace)).get("holderIdentity")
    started = time.monotonic()
    await asyncio.wait_for(second.acquire(), timeout=10)
    assert time.monotonic() - started < 1.5


async def test_a_leader_whose_lease_was_taken_stops_at_once(kube: KubeClient,
                                                            namespace: str) -> None:
    first = elector(kube, namespace, "a")
    await first.acquire()
    holding = asyncio.create_task(first.hold())
    obj = await kube.get(r.LEASES, "canary-leader", namespace)
    obj["spec"]["holderIdentity"] = "intruder"
    await kube.replace(r.LEASES, obj, namespace)
    await asyncio.wait_for(holding, timeout=2)
    assert not first.leading


@pytest.fixture
def replicas(environment: LocalEnvironment, controller: ControllerProcess,
             namespace: str) -> Iterator[list[ControllerProcess]]:
    """Two controller replicas with leader election, alone on the cluster."""
    controller.stop()
    logs = environment.run_dir / "logs"
    pair = [ControllerProcess(environment, logs / f"replica-{i}-{namespace}.log",
                              "--leader-elect", "--leader-election-namespace", namespace,
                              "--leader-election-identity", f"replica-{i}",
                              "--lease-duration", f"{LEASE_DURATION}s",
                              "--renew-deadline", f"{RENEW_DEADLINE}s",
                              "--retry-period", f"{int(RETRY_PERIOD * 1000)}ms")
            for i in range(2)]
    for process in pair:
        process.start(wait_for=None)
    yield pair
    for process in pair:
        process.stop()


async def leader(kube: KubeClient, namespace: str,
                 replicas: list[ControllerProcess]) -> ControllerProcess:
    spec = await wait_until(lambda: lease(kube, namespace),
                            lambda s: bool(s.get("holderIdentity")), "a leader")
    return replicas[int(spec["holderIdentity"].rsplit("-", 1)[1])]


async def release_under_way(kube: KubeClient, namespace: str) -> str:
    """Deploy revision 2 and wait until the canary has traffic; returns the revision."""
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Progressing" and c["status"].get("canaryWeight"),
                     "the rollout to be under way")
    return revision


async def promoted(kube: KubeClient, namespace: str, revision: str) -> None:
    """Wait until the rollout ends, and require that ``revision`` was promoted."""
    done = await wait_until(lambda: canary_object(kube, namespace),
                            lambda c: phase(c) in ("Succeeded", "Failed"),
                            "the rollout to finish", timeout=120)
    assert phase(done) == "Succeeded" and done["status"]["lastPromotedSpec"] == revision


def wall_time(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time (a MicroTime, a log timestamp):
    every process here runs on one machine, so their wall clocks agree."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def became_leader_at(process: ControllerProcess) -> float:
    """When ``process`` logged "became leader" (JSON log lines carry a UTC timestamp)."""
    for line in process.log.read_text().splitlines():
        if line.startswith("{") and '"became leader"' in line:
            return wall_time(json.loads(line)["timestamp"])
    raise AssertionError(f"{process.log} does not show 'became leader'")


def follower_identity(replicas: list[ControllerProcess], process: ControllerProcess) -> str:
    return f"replica-{replicas.index(process)}"


async def test_the_follower_finishes_a_rollout_whose_leader_was_killed(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        replicas: list[ControllerProcess]) -> None:
    first = await leader(kube, namespace, replicas)
    follower = next(p for p in replicas if p is not first)
    await start(kube, environment, namespace)
    assert not follower.logged("caches synced")  # only the leader works
    revision = await release_under_way(kube, namespace)
    assert first.process is not None
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    # The dead leader's last renewal, read before the follower can have taken over (a
    # lease duration later at the earliest).
    last = await lease(kube, namespace)
    assert last["holderIdentity"] != follower_identity(replicas, follower)
    await asyncio.to_thread(follower.wait_for_log, "caches synced", 30)
    took = became_leader_at(follower) - wall_time(last["renewTime"])
    # Not before a lease duration had passed since that renewal, and at the first
    # attempt after it (the follower may see the renewal up to a retry period late).
    assert LEASE_DURATION <= took <= LEASE_DURATION + RETRY_PERIOD + TAKEOVER_SLACK, took
    await promoted(kube, namespace, revision)
    async def promotions() -> list[dict[str, Any]]:
        return [e for e in await events(kube, namespace, "Promoted") if revision in e["note"]]

    await wait_until(promotions, bool, "the Promoted event")
    await asyncio.sleep(3)  # time for a duplicate to show up, if there were one
    # One event, said once: a repeat would show as a second event or as a count.
    assert [e.get("deprecatedCount") for e in await promotions()] == [1]


async def test_a_leader_whose_lease_is_taken_mid_rollout_stops_and_exits_at_once(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        replicas: list[ControllerProcess]) -> None:
    first = await leader(kube, namespace, replicas)
    follower = next(p for p in replicas if p is not first)
    await start(kube, environment, namespace)
    revision = await release_under_way(kube, namespace)
    # Someone else holds the Lease now (as after a partition the leader did not notice).
    obj = await kube.get(r.LEASES, "canary-leader", namespace)
    obj["spec"].update(holderIdentity="intruder", renewTime=micro_time(datetime.now(UTC)))
    await kube.replace(r.LEASES, obj, namespace)
    taken = time.monotonic()
    assert first.process is not None
    code = await asyncio.to_thread(first.process.wait, 10)
    # At its next renewal attempt: a retry period, plus a busy machine's round trip.
    assert code == EXIT_LEASE_LOST and time.monotonic() - taken < RENEW_DEADLINE, code
    assert not follower.logged("became leader")  # the intruder's lease has not expired
    # Once it has, the follower takes over and completes the rollout, once.
    await promoted(kube, namespace, revision)
    assert follower.logged("became leader")


async def test_sigterm_releases_the_lease_and_exits_promptly(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        replicas: list[ControllerProcess]) -> None:
    first = await leader(kube, namespace, replicas)
    follower = next(p for p in replicas if p is not first)
    await asyncio.to_thread(first.wait_for_log, "caches synced", 30)
    await start(kube, environment, namespace)
    revision = await release_under_way(kube, namespace)
    started = time.monotonic()
    assert await asyncio.to_thread(first.stop) == 0  # mid-rollout
    assert time.monotonic() - started < 10
    assert first.logged("released the leader lease")
    await asyncio.to_thread(follower.wait_for_log, "became leader", 3)  # no expiry wait
    await promoted(kube, namespace, revision)
