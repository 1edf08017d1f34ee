"""A Reflector over several namespaces reports the activity of its *quietest* stream, so
a watch hung in one namespace is not hidden by events in another."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from structlog.testing import capture_logs

from canary.backoff import Backoff
from canary.kube import (
    JSON,
    Forbidden,
    Gone,
    Reflector,
    Resource,
    ServerError,
    TooManyRequests,
    TransportError,
    WatchSettings,
)
from canary.kube import resources as r
from canary.kube.watch import REOPEN_GRACE
from canary.observability import Health, HealthSettings
from tests.unit.kube.fakes import VirtualTime, initial_events, settle


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
        if options.get("initial_events"):
            for event in initial_events(await self.list(resource, namespace)):
                yield event
            return
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


class IdleApiServer:
    """A cluster where nothing happens and no bookmark is sent: each watch request ends,
    empty, after its ``timeout_seconds`` of virtual time, as the API server ends it."""

    def __init__(self, time: VirtualTime) -> None:
        self.time = time
        self.timeouts: list[int] = []

    async def list(self, resource: Resource, namespace: str | None = None,
                   **selectors: object) -> JSON:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    *, timeout_seconds: int, **options: object) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list(resource, namespace)):
                yield event
            return
        self.timeouts.append(timeout_seconds)
        await self.time.sleep(timeout_seconds)
        return
        yield  # an async generator that yields nothing


@pytest.mark.parametrize("longest", [False, True])
async def test_an_idle_namespace_stays_alive_without_bookmarks(
        longest: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default settings, the end of each watch request comes before the liveness
    probe's silence limit, whatever timeout each watch picks."""
    monkeypatch.setattr("canary.kube.watch.random.randint",
                        lambda low, high: high if longest else low)
    vt = VirtualTime()
    api = IdleApiServer(vt)
    reflector = Reflector(api, r.CANARIES, ["a", "b"], clock=vt)  # type: ignore[arg-type]
    health = Health(["canaries"], HealthSettings(), clock=vt)
    health.follow("canaries", lambda: reflector.last_activity)
    running = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 1)
        health.mark_listed("canaries")
        for _ in range(3600 // 5):  # an hour, probed every 5 s
            await vt.advance(5)
            health.beat()
            assert health.liveness().ok, f"{health.liveness()} at {vt.now}s"
        assert len(api.timeouts) >= 2 * 3600 // WatchSettings().max_timeout_seconds
        assert max(api.timeouts) < HealthSettings().watch_silence_seconds
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def test_the_longest_watch_timeout_is_below_the_silence_limit() -> None:
    assert WatchSettings().max_timeout_seconds < HealthSettings().watch_silence_seconds


@pytest.mark.parametrize(("low", "high"), [(0, 10), (20, 10)])
def test_impossible_watch_timeouts_are_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="watch timeouts"):
        WatchSettings(min_timeout_seconds=low, max_timeout_seconds=high)


class RefusingLists:
    """Every list fails with ``error``; the reflector retries until cancelled."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.attempts = 0
        self.retried = asyncio.Event()

    async def list(self, resource: Resource, namespace: str | None = None,
                   **selectors: object) -> JSON:
        self.attempts += 1
        if self.attempts > 1:
            self.retried.set()
        raise self.error

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: object) -> AsyncIterator[JSON]:
        """A watch-list fails as a list does."""
        for event in initial_events(await self.list(resource, namespace)):
            yield event


@pytest.mark.parametrize(("error", "level"), [
    (TooManyRequests(429, "TooManyRequests", "storage is (re)initializing"), "info"),
    (ServerError(503, "ServiceUnavailable", "etcd is down"), "warning"),
    (TransportError("connection refused"), "warning"),
    (Forbidden(403, "Forbidden", "cannot list canaries"), "error"),
])
async def test_a_failed_watch_is_logged_as_loudly_as_it_deserves(error: Exception,
                                                                 level: str) -> None:
    """A 429 (as while the API server's storage initializes at start-up) is a retry like
    any other, not an error; a refusal that will not mend by itself stays an error."""
    api = RefusingLists(error)
    reflector = Reflector(api, r.CANARIES, settings=WatchSettings(  # type: ignore[arg-type]
        backoff=Backoff(0.001, 0.001, jitter=0.2)))
    with capture_logs() as logs:
        running = asyncio.create_task(reflector.run())
        await asyncio.wait_for(api.retried.wait(), 5)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    failures = [entry for entry in logs if entry["event"] == "watch failed, retrying"]
    assert failures and {entry["log_level"] for entry in failures} == {level}


Step = Exception | tuple[str, Exception]


class Outage:
    """Lists succeed; each watch follows the next step of ``script``: an error ends it at
    once, a ``(version, error)`` pair delivers one event first. Then watches hang."""

    def __init__(self, script: Sequence[Step]) -> None:
        self.script = list(script)
        self.done = asyncio.Event()
        #: Per call of list or watch, its kind ("list" or "watch").
        self.calls: list[str] = []

    async def list(self, resource: Resource, namespace: str | None = None,
                   **selectors: object) -> JSON:
        self.calls.append("list")
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: object) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list(resource, namespace)):
                yield event
            return
        self.calls.append("watch")
        if not self.script:
            self.done.set()
            await asyncio.Event().wait()
        step = self.script.pop(0)
        if isinstance(step, tuple):
            yield {"type": "ADDED", "object": {"metadata": {
                "namespace": "shop", "name": "web", "resourceVersion": step[0]}}}
            step = step[1]
        raise step


async def run_through(api: Outage, backoff: Backoff) -> Reflector:
    """A reflector run until ``api`` has played its whole script."""
    reflector = Reflector(api, r.CANARIES, settings=WatchSettings(  # type: ignore[arg-type]
        backoff=backoff))
    running = asyncio.create_task(reflector.run())
    await asyncio.wait_for(api.done.wait(), 5)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running
    return reflector


async def pauses(script: Sequence[Step],
                 monkeypatch: pytest.MonkeyPatch) -> tuple[list[float], list[str]]:
    """The pauses a reflector takes through ``script`` (without waiting them out), and
    the calls it made."""
    api = Outage(script)
    taken: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        taken.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    await run_through(api, Backoff(1.0, 30.0, jitter=0.0))
    return taken, api.calls


BROKEN = TransportError("connection reset")
EXPIRED = Gone(410, "Expired", "too old resource version")


async def test_a_410_after_an_outage_lists_again_without_the_outage_backoff(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection breaks for a while, then the server answers 410: the cache is
    known to be stale, and the server is back, so the list comes after the first pause,
    not after the outage's longest (workers act on the stale cache meanwhile)."""
    taken, calls = await pauses([BROKEN] * 5 + [EXPIRED], monkeypatch)
    assert taken == [1.0, 2.0, 4.0, 8.0, 16.0, 1.0]
    assert calls == ["list", *["watch"] * 6, "list", "watch"]


async def test_410s_in_a_row_still_back_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 410 that keeps coming back, with no event in between, backs off as failures do:
    it must not become a tight list loop."""
    taken, _ = await pauses([EXPIRED] * 4, monkeypatch)
    assert taken == [1.0, 2.0, 4.0, 8.0]


async def test_a_stream_that_delivered_starts_the_next_outage_afresh(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Failures of one outage do not lengthen the pauses of the next, once a watch has
    delivered an event in between."""
    taken, _ = await pauses([BROKEN] * 3 + [("7", BROKEN), BROKEN], monkeypatch)
    assert taken == [1.0, 2.0, 4.0, 1.0, 2.0]


@pytest.mark.parametrize("ends", [
    [Gone(410, "Expired", "too old resource version")],
    [TransportError("connection reset"), Gone(410, "Expired", "too old"),
     ServerError(503, "ServiceUnavailable", "etcd is down"), Gone(410, "Gone", "compacted")],
    [TransportError("connection reset"), TransportError("connection reset")],
])
async def test_only_an_expired_resource_version_counts_as_a_relist(
        ends: list[Exception]) -> None:
    """A relist (what an SRE graphs as canary_watch_relists_total) follows a 410 and only
    a 410; every end of a watch counts as a restart. Each relist lists once more."""
    api = Outage(ends)
    reflector = await run_through(api, Backoff(0.001, 0.001, jitter=0.2))
    gone = sum(isinstance(end, Gone) for end in ends)
    assert reflector.relists == gone and reflector.restarts == len(ends)
    assert api.calls.count("list") == 1 + gone


class Reconnecting:
    """The first watch breaks; the next ones are accepted (``on_open``) and then deliver
    what the test puts in ``events``, or hang."""

    def __init__(self, first_end: Exception) -> None:
        self.first_end = first_end
        self.watches = 0
        self.opened = asyncio.Event()
        self.events: asyncio.Queue[JSON] = asyncio.Queue()

    async def list(self, resource: Resource, namespace: str | None = None,
                   **selectors: object) -> JSON:
        return {"items": [], "metadata": {"resourceVersion": "1"}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    on_open: Callable[[], None] | None = None,
                    **options: object) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            for event in initial_events(await self.list(resource, namespace)):
                yield event
            return
        self.watches += 1
        if self.watches == 1:
            raise self.first_end
        if on_open is not None:
            on_open()
        self.opened.set()
        while True:
            yield await self.events.get()


async def reconnected(first_end: Exception) -> tuple[Reflector, Reconnecting, Clock,
                                                     asyncio.Task[None], float | None]:
    """A reflector whose first watch ended with ``first_end``, 3 s before the next one
    was accepted; and how stale it said it was during that pause."""
    clock, api = Clock(), Reconnecting(first_end)
    reflector = Reflector(api, r.DEPLOYMENTS, clock=clock,  # type: ignore[arg-type]
                          settings=WatchSettings(backoff=Backoff(0.001, 0.001, jitter=0.2)))
    assert reflector.stale_seconds() is None
    real_sleep = asyncio.sleep
    during_pause: list[float | None] = []

    async def sleep(seconds: float) -> None:
        clock.now += 3
        during_pause.append(reflector.stale_seconds())
        await real_sleep(0)

    running = asyncio.create_task(reflector.run())
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(asyncio, "sleep", sleep)
        await asyncio.wait_for(api.opened.wait(), 5)
    return reflector, api, clock, running, during_pause[0]


async def stop(running: asyncio.Task[None]) -> None:
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


async def test_a_reopened_watch_is_current_only_after_its_grace() -> None:
    """From the break until the new watch has been open REOPEN_GRACE seconds, the copy
    may miss what changed meanwhile: it says so, and for how long."""
    reflector, _, clock, running, during_pause = await reconnected(BROKEN)
    try:
        assert during_pause == 3
        assert reflector.stale_seconds() == 3
        clock.now += REOPEN_GRACE / 2
        assert reflector.stale_seconds() is not None
        clock.now += REOPEN_GRACE / 2
        assert reflector.stale_seconds() is None
    finally:
        await stop(running)


async def test_an_expired_watch_is_stale_until_listed_again() -> None:
    reflector, _, _, running, during_pause = await reconnected(EXPIRED)
    try:
        assert during_pause == 3
        assert reflector.stale_seconds() is None
    finally:
        await stop(running)


async def test_a_reopened_watch_that_delivers_is_current_at_once() -> None:
    reflector, api, _, running, _ = await reconnected(BROKEN)
    try:
        api.events.put_nowait({"type": "MODIFIED", "object": {"metadata": {
            "namespace": "shop", "name": "web", "resourceVersion": "9"}}})
        await settle()
        assert reflector.get("shop", "web") is not None
        assert reflector.stale_seconds() is None
    finally:
        await stop(running)
