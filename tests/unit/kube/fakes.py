"""An in-memory Lease store and a virtual clock, for the elector's unit tests; a
watch-list's events as the API server sends them, for fakes that answer lists; a
Reflector run until its fake API is watched."""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

from canary.kube import JSON, Conflict, NotFound, Reflector, Resource, ServerError


class VirtualTime:
    """Monotonic seconds that move only when a test says so. Coroutines sleep on it;
    :meth:`advance` wakes each sleeper at its moment, in order, letting it run before
    time moves on."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def offset(self, seconds: float) -> FakeMonotonic:
        """Another process's monotonic clock: the same pace, an unrelated origin."""
        return FakeMonotonic(self, seconds)

    async def sleep(self, seconds: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order),
                                        waiter))
        await waiter

    async def advance(self, seconds: float) -> None:
        target = self.now + seconds
        while True:
            await settle()
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled
            if not self._sleepers or self._sleepers[0][0] > target:
                break
            due, _, waiter = heapq.heappop(self._sleepers)
            self.now = max(self.now, due)
            waiter.set_result(None)
        self.now = target
        await settle()

    async def advance_to(self, moment: float) -> None:
        await self.advance(max(0.0, moment - self.now))


class FakeMonotonic:
    def __init__(self, time: VirtualTime, offset: float) -> None:
        self.time, self.offset = time, offset

    def __call__(self) -> float:
        return self.time.now + self.offset


async def settle() -> None:
    """Let every ready task run until all of them wait (on the clock or the store)."""
    for _ in range(50):
        await asyncio.sleep(0)


class WallClock:
    """A wall clock that may be set far from the truth: the elector must never compare
    it across processes."""

    def __init__(self, start: datetime, time: VirtualTime) -> None:
        self.start, self.time = start, time

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=self.time.now)


EPOCH = datetime(2030, 1, 1, tzinfo=UTC)


def initial_events(listing: JSON) -> list[JSON]:
    """A list's objects as a watch-list sends them (``sendInitialEvents``): an ADDED
    event each, then the bookmark that ends them, at the list's resourceVersion."""
    end = {"type": "BOOKMARK", "object": {"metadata": {
        "resourceVersion": listing["metadata"]["resourceVersion"],
        "annotations": {"k8s.io/initial-events-end": "true"}}}}
    return [{"type": "ADDED", "object": obj} for obj in listing["items"]] + [end]


class Watched(Protocol):
    """A fake API that sets ``watching`` once a watch is open on it."""

    watching: asyncio.Event


async def run_until_watching(reflector: Reflector, api: Watched) -> asyncio.Task[None]:
    """``reflector`` running, once it has listed and opened its watch on ``api``."""
    running = asyncio.create_task(reflector.run())
    await asyncio.wait_for(api.watching.wait(), 5)
    return running


async def stop(running: asyncio.Task[None]) -> None:
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


class FakeLeases:
    """Leases by (namespace, name), with resourceVersions and 409 on a stale replace,
    as the API server does. ``failing`` makes every call fail with a 503."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str | None, str], JSON] = {}
        self.versions = itertools.count(1)
        self.failing = False
        self.writes = 0

    def spec(self, namespace: str = "ns", name: str = "canary-leader") -> JSON:
        return copy.deepcopy(self.objects[(namespace, name)]["spec"])

    def _check(self) -> None:
        if self.failing:
            raise ServerError(503, "ServiceUnavailable", "the API server is overloaded")

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        await asyncio.sleep(0)
        self._check()
        try:
            return copy.deepcopy(self.objects[(namespace, name)])
        except KeyError:
            raise NotFound(404, "NotFound", f"leases {name!r} not found") from None

    async def create(self, resource: Resource, body: JSON, namespace: str | None = None
                     ) -> JSON:
        await asyncio.sleep(0)
        self._check()
        key = (namespace, body["metadata"]["name"])
        if key in self.objects:
            raise Conflict(409, "AlreadyExists", "already exists")
        return self._store(key, body)

    async def replace(self, resource: Resource, body: JSON, namespace: str | None = None,
                      subresource: str | None = None) -> JSON:
        await asyncio.sleep(0)
        self._check()
        key = (namespace, body["metadata"]["name"])
        current = self.objects.get(key)
        if current is None:
            raise NotFound(404, "NotFound", "not found")
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "Conflict", "the object has been modified")
        return self._store(key, body)

    def _store(self, key: tuple[str | None, str], body: JSON) -> JSON:
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self.versions))
        self.objects[key] = stored
        self.writes += 1
        return copy.deepcopy(stored)

    def tamper(self, **spec: object) -> None:
        """Another writer changes the Lease (a new resourceVersion)."""
        key = ("ns", "canary-leader")
        obj = copy.deepcopy(self.objects[key])
        obj["spec"] |= spec
        self._store(key, obj)
