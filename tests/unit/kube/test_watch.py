"""A Reflector over several namespaces reports the activity of its *quietest* stream, so
a watch hung in one namespace is not hidden by events in another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from canary.kube import JSON, Reflector, Resource
from canary.kube import resources as r
from canary.observability import Health, HealthSettings
from tests.unit.kube.fakes import settle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWatches:
    """Lists are empty; each namespace's watch yields what the test puts in its queue and
    otherwise hangs, as a stream on a dead connection does."""

    def __init__(self) -> None:
        self.streams: dict[str | None, asyncio.Queue[JSON]] = {}

    async def list(self, resource: Resource, namespace: str | None = None,
                   **selectors: object) -> JSON:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: object) -> AsyncIterator[JSON]:
        stream = self.streams.setdefault(namespace, asyncio.Queue())
        while True:
            yield await stream.get()

    def bookmark(self, namespace: str | None, version: str) -> None:
        self.streams[namespace].put_nowait({"type": "BOOKMARK", "object": {
            "metadata": {"resourceVersion": version}}})

    def added(self, namespace: str, name: str, version: str) -> None:
        self.streams[namespace].put_nowait({"type": "ADDED", "object": {
            "metadata": {"namespace": namespace, "name": name, "resourceVersion": version}}})


async def test_a_hung_namespace_stream_shows_however_busy_the_others_are() -> None:
    clock, api = Clock(), FakeWatches()
    reflector = Reflector(api, r.CANARIES, ["a", "b"], clock=clock)  # type: ignore[arg-type]
    health = Health(["canaries"], HealthSettings(watch_silence_seconds=300), clock=clock)
    health.follow("canaries", lambda: reflector.last_activity)
    running = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 1)
        health.mark_listed("canaries")
        await settle()
        listed = clock.now
        assert reflector.last_activity == listed
        for step in range(1, 11):  # "b" keeps talking for 10 minutes; "a" says nothing
            clock.now = listed + 60 * step
            api.bookmark("b", str(step + 1))
            health.beat()
            await settle()
        assert reflector.activity == {"a": listed, "b": listed + 600}
        assert reflector.last_activity == listed
        assert str(health.liveness()) == "watch canaries silent for 600s"
        api.added("a", "web", "20")  # "a" is heard from again
        await settle()
        assert reflector.last_activity == listed + 600 and health.liveness().ok
        assert reflector.get("a", "web") is not None
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_one_stream_for_all_namespaces_reports_its_own_activity() -> None:
    clock, api = Clock(), FakeWatches()
    reflector = Reflector(api, r.CANARIES, clock=clock)  # type: ignore[arg-type]
    running = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 1)
        await settle()
        clock.now += 30
        api.bookmark(None, "2")
        await settle()
        assert reflector.last_activity == clock.now
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
