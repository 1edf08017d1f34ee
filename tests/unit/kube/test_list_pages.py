"""A Reflector that lists in pages (the API server refuses watch-lists, or they are
turned off) starts again when a continue token expires, watches from the final page's
resourceVersion, and stores every object through its transform."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from canary.backoff import Backoff
from canary.kube import JSON, Gone, NotFound, Reflector, Resource, WatchSettings
from canary.kube import resources as r
from canary.kube.trim import LAST_APPLIED
from tests.unit.kube.fakes import run_until_watching, settle, stop


def config(name: str, version: str = "1", **extra: object) -> JSON:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version,
                         "managedFields": [{"manager": "kubectl"}],
                         "annotations": {LAST_APPLIED: "{}", "kept": "yes"}}, **extra}


class PagedApi:
    """Answers lists ``limit`` objects at a time, as the API server does: each page's
    resourceVersion is the snapshot's, and ``expire`` continue tokens in a row are
    answered 410. The watch records where it starts and then waits."""

    def __init__(self, objects: list[JSON], version: str = "42", expire: int = 0) -> None:
        self.objects, self.version, self.expire = objects, version, expire
        self.calls: list[tuple[int | None, str | None]] = []
        self.watched_from: list[str] = []
        self.watching = asyncio.Event()
        #: What the watch yields next; an exception is raised instead.
        self.events: asyncio.Queue[JSON | Exception] = asyncio.Queue()
        self.gets = 0

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   limit: int | None = None, continue_token: str | None = None,
                   **selectors: object) -> JSON:
        self.calls.append((limit, continue_token))
        if continue_token is not None and self.expire:
            self.expire -= 1
            raise Gone(410, "Expired", "the continue token has expired")
        start = int(continue_token or 0)
        end = len(self.objects) if limit is None else start + limit
        meta: JSON = {"resourceVersion": self.version}
        if end < len(self.objects):
            meta["continue"] = str(end)
        return {"items": copy.deepcopy(self.objects[start:end]), "metadata": meta}

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> JSON:
        self.gets += 1
        for obj in self.objects:
            if obj["metadata"]["name"] == name:
                return copy.deepcopy(obj)
        raise NotFound(404, "NotFound", "not found")

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: object) -> AsyncIterator[JSON]:
        self.watched_from.append(resource_version)
        self.watching.set()
        while True:
            event = await self.events.get()
            if isinstance(event, Exception):
                raise event
            yield event


def paged(api: PagedApi, size: int = 2, **options: object) -> Reflector:
    settings = WatchSettings(list_page_size=size, backoff=Backoff(0.001, 0.001, jitter=0.2),
                             watch_list=False)
    return Reflector(api, r.CONFIG_MAPS, settings=settings,  # type: ignore[arg-type]
                     **options)  # type: ignore[arg-type]


async def test_the_list_is_read_page_by_page_and_the_watch_starts_from_its_version() -> None:
    api = PagedApi([config(f"c{i}") for i in range(5)])
    reflector = paged(api)
    running = await run_until_watching(reflector, api)
    try:
        assert api.calls == [(2, None), (2, "2"), (2, "4")]
        assert sorted(o["metadata"]["name"] for o in reflector.items()) == \
            ["c0", "c1", "c2", "c3", "c4"]
        assert api.watched_from == ["42"]
    finally:
        await stop(running)


@pytest.mark.parametrize(("expire", "calls"), [
    (1, [(2, None), (2, "2"), (2, None), (2, "2")]),
    (2, [(2, None), (2, "2"), (2, None), (2, "2"), (None, None)]),
])
async def test_an_expired_continue_token_lists_again_from_the_start(
        expire: int, calls: list[tuple[int | None, str | None]]) -> None:
    """One expiry starts the paginated list again; a second falls back to one list
    without a limit, which cannot expire (client-go's pager does the same)."""
    api = PagedApi([config(f"c{i}") for i in range(3)], expire=expire)
    reflector = paged(api)
    running = await run_until_watching(reflector, api)
    try:
        assert api.calls == calls
        assert len(reflector) == 3 and api.watched_from == ["42"]
        assert reflector.relists == 0  # the watch never expired
    finally:
        await stop(running)


async def test_a_relist_after_410_is_paginated_too() -> None:
    api = PagedApi([config("a"), config("b"), config("c")])
    reflector = paged(api)
    running = await run_until_watching(reflector, api)
    try:
        api.watching.clear()
        api.calls.clear()
        api.objects, api.version = [config("a", "50"), config("c"), config("d")], "60"
        await api.events.put(Gone(410, "Expired", "too old resource version"))
        await asyncio.wait_for(api.watching.wait(), 5)
        assert api.calls == [(2, None), (2, "2")]
        assert sorted(o["metadata"]["name"] for o in reflector.items()) == ["a", "c", "d"]
        assert reflector.get("ns", "a")["metadata"]["resourceVersion"] == "50"  # type: ignore[index]
        assert api.watched_from == ["42", "60"] and reflector.relists == 1
    finally:
        await stop(running)


async def test_a_cache_says_once_how_long_its_first_lists_took_and_each_list_again(
) -> None:
    """What a start-up's readiness waited for, per cache: one line for all namespaces;
    a list after 410 Gone is rare and said each time."""
    api = PagedApi([config(f"c{i}") for i in range(3)])
    ticks = iter(range(1000))
    reflector = paged(api, namespace=["a", "b"], clock=lambda: float(next(ticks)))
    with capture_logs() as logs:
        running = await run_until_watching(reflector, api)
        try:
            api.watching.clear()
            await api.events.put(Gone(410, "Expired", "too old resource version"))
            await asyncio.wait_for(api.watching.wait(), 5)
        finally:
            await stop(running)
    said = [(e["event"], e.get("namespace"), e["objects"]) for e in logs
            if e["event"].startswith("listed")]
    assert said[0] == ("listed", None, 3) and said[1][0] == "listed again"
    assert len(said) == 2 and said[1][2] == 3
    assert all(e["seconds"] > 0 for e in logs if e["event"].startswith("listed"))


async def test_lists_and_events_are_stored_through_the_transform() -> None:
    api = PagedApi([config("a", data={"k": "v"})])
    reflector = paged(api, transform=lambda obj: {**obj, "seen": True})
    seen: list[JSON] = []
    reflector.add_handler(lambda kind, obj: seen.append(obj))
    running = await run_until_watching(reflector, api)
    try:
        await api.events.put({"type": "MODIFIED", "object": config("b", "43")})
        await settle()
        assert all(obj.get("seen") for obj in reflector.items())
        assert [obj["metadata"]["name"] for obj in seen] == ["a", "b"]
        assert all(obj.get("seen") for obj in seen)
    finally:
        await stop(running)


async def test_the_default_transform_drops_managed_fields_and_last_applied() -> None:
    api = PagedApi([config("a")])
    reflector = paged(api)
    running = await run_until_watching(reflector, api)
    try:
        await api.events.put({"type": "ADDED", "object": config("b", "43")})
        await settle()
        for obj in reflector.items():
            assert "managedFields" not in obj["metadata"]
            assert obj["metadata"]["annotations"] == {"kept": "yes"}
    finally:
        await stop(running)


async def test_fetch_reads_the_whole_object_and_refreshes_the_same_version() -> None:
    """A reader that needs what the transform left out fetches it; the cache keeps what
    the transform keeps of that version, and never goes back to an older one."""
    api = PagedApi([config("a", data={"k": "v"})])
    keep = {"a": False}
    reflector = paged(api, transform=lambda obj: obj if keep[obj["metadata"]["name"]]
                      else {"metadata": obj["metadata"], "trimmed": True})
    running = await run_until_watching(reflector, api)
    try:
        assert (reflector.get("ns", "a") or {}).get("trimmed") is True
        keep["a"] = True
        whole = await reflector.fetch("ns", "a")
        assert whole is not None and whole["data"] == {"k": "v"}
        assert reflector.get("ns", "a")["data"] == {"k": "v"}  # type: ignore[index]
        api.objects = [config("a", "99", data={"k": "older or newer"})]
        keep["a"] = False
        await reflector.fetch("ns", "a")  # not the cached version: the cache stays
        assert reflector.get("ns", "a")["data"] == {"k": "v"}  # type: ignore[index]
        assert await reflector.fetch("ns", "gone") is None
    finally:
        await stop(running)


def test_a_page_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="list_page_size"):
        WatchSettings(list_page_size=0)


class WorkClock:
    """A clock that only the work of a list moves: each object through the transform
    or a handler takes ``step`` seconds of it."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def work(self, obj: JSON) -> JSON:
        self.now += self.step
        return obj


class Interleaving:
    """Records, while a list runs, how many objects were worked on before each turn
    another task got."""

    def __init__(self) -> None:
        self.worked = 0
        self.turns: list[int] = []

    async def watch_turns(self) -> None:
        while True:
            self.turns.append(self.worked)
            await asyncio.sleep(0)


async def test_a_page_too_long_to_digest_at_once_lets_other_tasks_run() -> None:
    """A page whose objects take longer than a slice to store is stored in slices, the
    other tasks running in between (a page of large configs digested at once held
    the event loop for tens of milliseconds)."""
    clock, seen = WorkClock(0.005), Interleaving()

    def transform(obj: JSON) -> JSON:
        seen.worked += 1
        return clock.work(obj)

    api = PagedApi([config(f"c{i}") for i in range(40)])
    reflector = paged(api, size=40, transform=transform, clock=clock)
    others = asyncio.create_task(seen.watch_turns())
    running = await run_until_watching(reflector, api)
    try:
        during = sorted({t for t in seen.turns if 0 < t < 40})
        assert len(during) >= 8, seen.turns  # 40 objects of 5 ms in slices of 20 ms
        assert len(reflector) == 40
    finally:
        others.cancel()
        await stop(running)


async def test_the_events_of_a_list_are_handed_out_in_slices_after_the_store_is_full(
        ) -> None:
    """A list's events go to the handlers a slice at a time, other tasks running in
    between; every handler already finds the whole list in the store."""
    clock, seen = WorkClock(0.005), Interleaving()
    stored: list[int] = []
    api = PagedApi([config(f"c{i}") for i in range(40)])
    reflector = paged(api, size=40, clock=clock)

    def handler(kind: str, obj: JSON) -> None:
        stored.append(len(reflector))
        seen.worked += 1
        clock.work(obj)

    reflector.add_handler(handler)
    others = asyncio.create_task(seen.watch_turns())
    running = await run_until_watching(reflector, api)
    try:
        assert stored == [40] * 40
        assert len(sorted({t for t in seen.turns if 0 < t < 40})) >= 8, seen.turns
    finally:
        others.cancel()
        await stop(running)


async def test_on_listed_is_called_after_each_list_once_its_events_are_out() -> None:
    """What the caller does once a list has filled the store (``canary run`` moves the
    list out of the garbage collector's scans) comes after the first list and after
    each list again, when every event of it has been handed out."""
    events: list[str] = []
    listed: list[tuple[int, int]] = []
    api = PagedApi([config("a"), config("b")])

    def on_listed() -> None:
        listed.append((len(reflector), len(events)))

    reflector: Reflector = paged(api, on_event=lambda kind, obj: events.append(kind),
                                 on_listed=on_listed)
    running = await run_until_watching(reflector, api)
    try:
        assert listed == [(2, 2)]
        api.watching.clear()
        api.objects = [config("a", "50"), config("b"), config("c")]
        await api.events.put(Gone(410, "Expired", "too old resource version"))
        await asyncio.wait_for(api.watching.wait(), 5)
        assert listed == [(2, 2), (3, 4)]  # a MODIFIED and an ADDED
    finally:
        await stop(running)


async def test_over_several_namespaces_on_listed_comes_once_all_are_listed() -> None:
    listed: list[bool] = []
    api = PagedApi([config("a"), config("b")])
    settings = WatchSettings(list_page_size=2, backoff=Backoff(0.001, 0.001, jitter=0.2),
                             watch_list=False)

    def on_listed() -> None:
        listed.append(reflector.synced.is_set())

    reflector = Reflector(api, r.CONFIG_MAPS, ["x", "y", "z"],  # type: ignore[arg-type]
                          settings=settings, on_listed=on_listed)
    running = asyncio.create_task(reflector.run())
    try:
        await asyncio.wait_for(reflector.synced.wait(), 5)
        await settle()
        assert listed == [True]
    finally:
        await stop(running)
