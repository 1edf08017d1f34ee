"""The leader election algorithm on an in-memory Lease and a virtual clock: one leader at
a time, expiry measured on the follower's own monotonic clock from when it saw the record
change, fractional durations rounded up, a leader that stops before anyone may take
over, and release on stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from canary.kube import LeaderElector, LeaseSettings, NotLeader
from canary.kube.lease import micro_time
from tests.unit.kube.fakes import EPOCH, FakeLeases, VirtualTime, WallClock, settle


@pytest.fixture
def store() -> FakeLeases:
    return FakeLeases()


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def tasks() -> AsyncIterator[list[asyncio.Task[None]]]:
    started: list[asyncio.Task[None]] = []
    yield started
    for task in started:
        task.cancel()
    await asyncio.gather(*started, return_exceptions=True)


def elector(store: FakeLeases, vt: VirtualTime, identity: str, *, lease: float = 10,
            renew: float = 6, retry: float = 2, offset: float = 0,
            wall: datetime = EPOCH) -> LeaderElector:
    """An elector whose monotonic clock has its own origin (``offset``) and whose wall
    clock may be anywhere (``wall``): neither is ever compared with another process's."""
    return LeaderElector(store, LeaseSettings(namespace="ns", identity=identity,
                                              lease_duration=lease, renew_deadline=renew,
                                              retry_period=retry),
                         clock=vt.offset(offset), wall_clock=WallClock(wall, vt),
                         sleep=vt.sleep)


def start(tasks: list[asyncio.Task[None]], coro: object) -> asyncio.Task[None]:
    task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
    tasks.append(task)
    return task


class TestSettings:
    @pytest.mark.parametrize(("lease", "renew", "retry"), [
        (0.5, 0.4, 0.1),  # stored as whole seconds: below 1s there is nothing to store
        (10, 10, 2), (10, 6, 6), (10, 6, 0), (5, 10, 2)])
    def test_impossible_timings_are_refused(self, lease: float, renew: float,
                                            retry: float) -> None:
        with pytest.raises(ValueError, match=r"is less than 1s|must exceed"):
            LeaseSettings(namespace="ns", identity="a", lease_duration=lease,
                          renew_deadline=renew, retry_period=retry)

    @pytest.mark.parametrize(("lease", "stored"), [(1, 1), (1.2, 2), (2.5, 3), (15, 15)])
    def test_the_stored_duration_is_rounded_up(self, lease: float, stored: int) -> None:
        settings = LeaseSettings(namespace="ns", identity="a", lease_duration=lease,
                                 renew_deadline=0.9, retry_period=0.3)
        assert settings.lease_duration_seconds == stored


async def test_an_absent_lease_is_created_and_held(store: FakeLeases, vt: VirtualTime) -> None:
    a = elector(store, vt, "a", lease=2.5, renew=2, retry=0.5)
    await asyncio.wait_for(a.acquire(), 1)
    assert a.leading
    spec = store.spec()
    assert spec == {"holderIdentity": "a", "leaseDurationSeconds": 3,
                    "renewTime": micro_time(EPOCH), "acquireTime": micro_time(EPOCH),
                    "leaseTransitions": 0}


async def test_a_released_lease_without_holder_is_taken_at_once(
        store: FakeLeases, vt: VirtualTime) -> None:
    a, b = elector(store, vt, "a"), elector(store, vt, "b")
    await a.acquire()
    await a.release()
    assert not a.leading
    assert store.spec()["holderIdentity"] is None
    assert store.spec()["leaseDurationSeconds"] == 1
    await asyncio.wait_for(b.acquire(), 1)  # no sleep on the virtual clock was needed
    assert store.spec()["holderIdentity"] == "b" and store.spec()["leaseTransitions"] == 1


async def test_the_leader_renews_every_retry_period(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]]) -> None:
    a = elector(store, vt, "a")
    await a.acquire()
    acquired = store.spec()
    holding = start(tasks, a.hold())
    renewals = []
    for _ in range(5):
        await vt.advance(2)
        renewals.append(store.spec()["renewTime"])
    assert renewals == [micro_time(EPOCH.replace(second=2 * i)) for i in range(1, 6)]
    spec = store.spec()
    assert spec["acquireTime"] == acquired["acquireTime"]
    assert spec["holderIdentity"] == "a" and spec["leaseTransitions"] == 0
    assert not holding.done() and a.leading


async def test_a_follower_waits_the_lease_duration_from_when_it_saw_the_record(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]]) -> None:
    """The leader's renewTime says (by any wall clock) that the Lease expired long ago;
    the follower still waits a whole lease duration, on its own clock, from the moment it
    first saw that record."""
    a = elector(store, vt, "a", wall=datetime(2001, 1, 1, tzinfo=UTC))
    await a.acquire()  # at 0; "a" then dies without renewing or releasing
    await vt.advance(7)
    b = elector(store, vt, "b", offset=-123_456.0)  # its monotonic origin is elsewhere
    taking = start(tasks, b.acquire())
    await vt.advance_to(7 + 10 - 0.01)
    assert not taking.done(), "took the Lease before a lease duration had passed"
    await vt.advance_to(7 + 10 + 2)  # the next attempt after expiry
    assert taking.done() and b.leading
    spec = store.spec()
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == spec["renewTime"]


async def test_every_renewal_restarts_the_followers_wait(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]]) -> None:
    a, b = elector(store, vt, "a"), elector(store, vt, "b", offset=500.0)
    await a.acquire()
    holding = start(tasks, a.hold())
    taking = start(tasks, b.acquire())
    await vt.advance(60)  # many lease durations: the renewals keep "b" out
    assert not taking.done() and not holding.done()
    holding.cancel()  # "a" dies; its last renewal was at 60
    await vt.advance_to(60 + 10 - 0.01)
    assert not taking.done()
    await vt.advance_to(60 + 10 + 2 + 2)  # seen up to a retry period late, + one retry
    assert taking.done() and store.spec()["holderIdentity"] == "b"


@pytest.mark.parametrize(("holder_lease", "follower_lease"), [
    (2.5, 1.5),  # written as 3, never as 2: the follower waits at least the holder's 2.5
    (20, 5),  # a follower configured shorter waits the holder's stored duration
    (5, 20),  # and one configured longer waits its own
])
async def test_a_follower_waits_the_longer_of_its_own_and_the_stored_duration(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]],
        holder_lease: float, follower_lease: float) -> None:
    a = elector(store, vt, "a", lease=holder_lease, renew=holder_lease * 0.6,
                retry=holder_lease * 0.1)
    b = elector(store, vt, "b", lease=follower_lease, renew=follower_lease * 0.6,
                retry=0.1)
    await a.acquire()
    taking = start(tasks, b.acquire())
    longest = max(store.spec()["leaseDurationSeconds"], follower_lease)
    assert longest >= holder_lease
    await vt.advance(longest - 0.05)
    assert not taking.done()
    await vt.advance(0.2)
    assert taking.done() and store.spec()["holderIdentity"] == "b"


async def test_of_two_contenders_only_one_wins(store: FakeLeases, vt: VirtualTime,
                                               tasks: list[asyncio.Task[None]]) -> None:
    a, b = elector(store, vt, "a"), elector(store, vt, "b")
    first, second = start(tasks, a.acquire()), start(tasks, b.acquire())
    await vt.advance(10 - 0.01)  # neither renews: the loser may take over only at 10
    assert [first.done(), second.done()].count(True) == 1
    assert a.leading != b.leading


async def test_a_leader_that_cannot_renew_stops_at_the_renew_deadline(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]]) -> None:
    a = elector(store, vt, "a")
    await a.acquire()  # at 0
    holding = start(tasks, a.hold())
    await vt.advance(3)  # renewed at 2
    store.failing = True  # the API server stops answering well
    await vt.advance_to(2 + 6 - 0.01)
    assert not holding.done() and a.leading
    await vt.advance_to(2 + 6)
    assert holding.done() and not a.leading
    # ... before any follower may take over: 10s after it saw the renewal at 2.
    store.failing = False
    b = elector(store, vt, "b")
    taking = start(tasks, b.acquire())
    await vt.advance(9)
    assert not taking.done()


async def test_a_leader_whose_lease_was_taken_stops_at_the_next_attempt(
        store: FakeLeases, vt: VirtualTime, tasks: list[asyncio.Task[None]]) -> None:
    a = elector(store, vt, "a")
    await a.acquire()
    holding = start(tasks, a.hold())
    await vt.advance(1)
    store.tamper(holderIdentity="intruder")
    await vt.advance(1)
    assert holding.done() and not a.leading


async def test_a_renewal_that_hangs_never_outlives_the_renew_deadline() -> None:
    """On the real clock: the attempt is cut off at the deadline, not after it."""
    store = FakeLeases()
    a = LeaderElector(store, LeaseSettings(namespace="ns", identity="a", lease_duration=1,
                                           renew_deadline=0.4, retry_period=0.1))
    await a.acquire()
    hung = asyncio.Event()

    async def hang(*args: object, **kwargs: object) -> dict[str, object]:
        await hung.wait()
        return {}

    store.get = hang  # type: ignore[method-assign]
    started = time.monotonic()
    await asyncio.wait_for(a.hold(), 2)
    assert time.monotonic() - started < 0.4 + 0.2
    assert not a.leading


async def test_release_leaves_a_lease_held_by_another_alone(
        store: FakeLeases, vt: VirtualTime) -> None:
    a = elector(store, vt, "a")
    await a.acquire()
    store.tamper(holderIdentity="b")
    writes = store.writes
    await a.release()
    assert store.writes == writes and store.spec()["holderIdentity"] == "b"


async def test_release_is_a_no_op_for_a_follower(store: FakeLeases, vt: VirtualTime) -> None:
    a, b = elector(store, vt, "a"), elector(store, vt, "b")
    await a.acquire()
    await b.release()
    await settle()
    assert store.spec()["holderIdentity"] == "a"


class TestFencing:
    """Work may write only while its replica surely holds the Lease: a process paused past
    the lease duration resumes with work queued before it, before :meth:`hold` runs."""

    async def test_a_follower_may_not_write(self, store: FakeLeases, vt: VirtualTime) -> None:
        with pytest.raises(NotLeader):
            elector(store, vt, "a").ensure_leading()

    async def test_the_leader_may_write_within_its_renew_deadline(
            self, store: FakeLeases, vt: VirtualTime,
            tasks: list[asyncio.Task[None]]) -> None:
        a = elector(store, vt, "a")
        await a.acquire()
        start(tasks, a.hold())
        for _ in range(10):
            await vt.advance(2)
            a.ensure_leading()

    async def test_a_leader_paused_past_its_renew_deadline_may_not_write(
            self, store: FakeLeases, vt: VirtualTime) -> None:
        """Its clock moved on while it was stopped; nothing renewed meanwhile."""
        a = elector(store, vt, "a", renew=6)
        await a.acquire()
        vt.now += 6.0  # paused: no task ran, so hold() could not renew
        assert a.leading  # it has not noticed yet
        with pytest.raises(NotLeader, match="renewal more than 6s ago"):
            a.ensure_leading()
