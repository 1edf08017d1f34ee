"""A watch-list (``initial_events``): one watch request that starts with every object,
served from the API server's watch cache, asked as the server expects it (a real HTTP
server on 127.0.0.1 records the query); a cache lists by one, and in pages where the
server refuses it or does not know it."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import certifi
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from canary.backoff import Backoff
from canary.kube import (
    JSON,
    ApiError,
    Gone,
    Invalid,
    KubeClient,
    Reflector,
    Resource,
    TooManyRequests,
    TransportError,
    WatchSettings,
)
from canary.kube import resources as r
from tests.unit.kube.fakes import initial_events, run_until_watching, stop

INITIAL = [
    {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
    {"type": "BOOKMARK", "object": {"metadata": {
        "resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}}]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def streaming_initial(queries: list[dict[str, str]]) -> Handler:
    """Answers a watch with INITIAL, then ends the stream."""

    async def handle(request: web.Request) -> web.StreamResponse:
        queries.append(dict(request.query))
        response = web.StreamResponse()
        await response.prepare(request)
        for event in INITIAL:
            await response.write(json.dumps(event).encode() + b"\n")
        return response

    return handle


@contextlib.asynccontextmanager
async def api_server(handle: Handler) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that answers every GET by ``handle``; its URL."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def events(url: str, resource_version: str, **options: Any) -> list[dict[str, Any]]:
    async with KubeClient.with_token(url, "token", certifi.where()) as kube:
        return [event async for event in kube.watch(
            r.CONFIG_MAPS, None, resource_version, timeout_seconds=60, **options)]


async def test_a_watch_list_asks_for_initial_events_at_least_as_fresh_as_a_list() -> None:
    queries: list[dict[str, str]] = []
    async with api_server(streaming_initial(queries)) as url:
        seen = await events(url, "", initial_events=True)
    assert [e["type"] for e in seen] == ["ADDED", "BOOKMARK"]
    [query] = queries
    assert query["sendInitialEvents"] == "true"
    assert query["resourceVersionMatch"] == "NotOlderThan"
    assert query["allowWatchBookmarks"] == "true"
    assert "resourceVersion" not in query  # "": a state as fresh as a consistent list's


async def test_a_plain_watch_asks_for_no_initial_events() -> None:
    queries: list[dict[str, str]] = []
    async with api_server(streaming_initial(queries)) as url:
        await events(url, "7")
    [query] = queries
    assert query["resourceVersion"] == "7"
    assert "sendInitialEvents" not in query and "resourceVersionMatch" not in query


def config(name: str, version: str = "1") -> JSON:
    return {"metadata": {"namespace": "ns", "name": name, "resourceVersion": version,
                         "managedFields": [{"manager": "kubectl"}]}, "data": {"k": name}}


class StreamingApi:
    """Serves a watch-list as the API server does: every object an ADDED event, then the
    bookmark that ends them; ``refuse`` answers it with an error instead (the first
    ``refusals`` times, every time by default), ``plain``
    answers it as a plain watch (an ADDED event each, then live events, no bookmark).
    A plain watch records where it starts and waits for what the test puts in
    ``events``. Paged lists are counted."""

    def __init__(self, objects: list[JSON], version: str = "42", *,
                 refuse: Exception | None = None, refusals: int | None = None,
                 plain: list[JSON] | None = None) -> None:
        self.objects, self.version = objects, version
        self.refuse, self.refusals, self.plain = refuse, refusals, plain
        self.streams = 0
        self.closed = 0
        self.pages = 0
        self.watched_from: list[str] = []
        self.watching = asyncio.Event()
        self.events: asyncio.Queue[JSON | Exception] = asyncio.Queue()

    async def list(self, resource: Resource, namespace: str | None = None,
                   **options: object) -> JSON:
        self.pages += 1
        return {"items": copy.deepcopy(self.objects),
                "metadata": {"resourceVersion": self.version}}

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    **options: object) -> AsyncIterator[JSON]:
        if options.get("initial_events"):
            async for event in self.initial(resource, namespace):
                yield event
            return
        self.watched_from.append(resource_version)
        self.watching.set()
        while True:
            next_ = await self.events.get()
            if isinstance(next_, Exception):
                raise next_
            yield next_

    async def initial(self, resource: Resource, namespace: str | None
                      ) -> AsyncIterator[JSON]:
        self.streams += 1
        if self.refuse is not None and (self.refusals is None
                                        or self.streams <= self.refusals):
            raise self.refuse
        try:
            listing = await self.list(resource, namespace)
            self.pages -= 1  # served by the stream, not a page
            events = initial_events(listing)
            for event in (events[:-1] + self.plain if self.plain is not None else events):
                yield event
            if self.plain is not None:
                await asyncio.Event().wait()  # a plain watch stays open
        finally:
            self.closed += 1


FAST = WatchSettings(backoff=Backoff(0.001, 0.001, jitter=0.2))


async def test_a_cache_lists_by_one_watch_list_and_watches_from_its_bookmark() -> None:
    """No paged list: the initial events fill the store through the transform, the
    handlers hear of each, the stream is closed at its bookmark, and the watch that
    follows starts from the bookmark's resourceVersion."""
    api = StreamingApi([config("a"), config("b")], version="42")
    heard: list[tuple[str, str]] = []
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST,  # type: ignore[arg-type]
                          on_event=lambda kind, obj: heard.append(
                              (kind, obj["metadata"]["name"])))
    running = await run_until_watching(reflector, api)
    try:
        assert (api.streams, api.closed, api.pages) == (1, 1, 0)
        assert api.watched_from == ["42"]
        assert sorted(heard) == [("ADDED", "a"), ("ADDED", "b")]
        stored = reflector.get("ns", "a")
        assert stored is not None and "managedFields" not in stored["metadata"]
        assert reflector.synced.is_set() and reflector.watch_list
    finally:
        await stop(running)


async def test_a_relist_after_410_is_a_watch_list_too_and_says_what_changed() -> None:
    api = StreamingApi([config("a"), config("b")])
    heard: list[tuple[str, str]] = []
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST,  # type: ignore[arg-type]
                          on_event=lambda kind, obj: heard.append(
                              (kind, obj["metadata"]["name"])))
    running = await run_until_watching(reflector, api)
    try:
        heard.clear()
        api.watching.clear()
        api.objects, api.version = [config("a", "50"), config("c")], "60"
        await api.events.put(Gone(410, "Expired", "too old resource version"))
        await asyncio.wait_for(api.watching.wait(), 5)
        assert (api.streams, api.pages) == (2, 0)
        assert sorted(heard) == [("ADDED", "c"), ("DELETED", "b"), ("MODIFIED", "a")]
        assert api.watched_from == ["42", "60"] and reflector.relists == 1
    finally:
        await stop(running)


@pytest.mark.parametrize("refusal", [
    Invalid(422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents is forbidden "
            "for watch unless the WatchList feature gate is enabled"),
    ApiError(400, "BadRequest", "unknown parameter"),
], ids=["422", "400"])
async def test_a_server_that_refuses_watch_lists_is_listed_in_pages_from_then_on(
        refusal: ApiError) -> None:
    api = StreamingApi([config("a")], refuse=refusal)
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST)  # type: ignore[arg-type]
    with capture_logs() as logs:
        running = await run_until_watching(reflector, api)
    try:
        assert (api.streams, api.pages) == (1, 1) and len(reflector) == 1
        assert not reflector.watch_list
        [said] = [e for e in logs if e["event"] == "watch-list refused, listing in pages"]
        assert said["log_level"] == "info" and str(refusal.status) in said["reason"]
        api.watching.clear()
        await api.events.put(Gone(410, "Expired", "too old resource version"))
        await asyncio.wait_for(api.watching.wait(), 5)
        assert (api.streams, api.pages) == (1, 2)  # not asked again
    finally:
        await stop(running)


@pytest.mark.parametrize("plain", [
    [{"type": "MODIFIED", "object": config("a", "43")}],
    [],
], ids=["a live event first", "no bookmark"])
async def test_a_server_that_answers_a_plain_watch_is_listed_in_pages(plain: list[JSON]
                                                                      ) -> None:
    """A server older than watch-lists ignores the parameter: a live event before any
    bookmark gives it away, and so does the stream's end with no bookmark."""
    api = StreamingApi([config("a")], plain=plain)
    if not plain:
        async def ended(resource: Resource, namespace: str | None) -> AsyncIterator[JSON]:
            api.streams += 1
            for event in initial_events({"items": [config("a")],
                                         "metadata": {"resourceVersion": "42"}})[:-1]:
                yield event
        api.initial = ended  # type: ignore[method-assign]
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST)  # type: ignore[arg-type]
    running = await run_until_watching(reflector, api)
    try:
        assert (api.streams, api.pages) == (1, 1) and not reflector.watch_list
        assert api.closed == (1 if plain else 0)  # the open stream was closed
        assert api.watched_from == ["42"] and len(reflector) == 1
    finally:
        await stop(running)


@pytest.mark.parametrize("failure", [
    TooManyRequests(429, "TooManyRequests", "storage is (re)initializing"),
    TransportError("connection refused"),
])
async def test_a_failed_watch_list_is_tried_again_as_one(failure: Exception) -> None:
    """A watch-list that fails as any request can (the API server starting, a broken
    connection) says nothing about watch-lists: the retry is one too."""
    api = StreamingApi([config("a")], refuse=failure, refusals=2)
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST)  # type: ignore[arg-type]
    running = await run_until_watching(reflector, api)
    try:
        assert (api.streams, api.pages) == (3, 0)
        assert reflector.watch_list and len(reflector) == 1
    finally:
        await stop(running)


async def test_turning_watch_lists_off_lists_in_pages() -> None:
    api = StreamingApi([config("a")])
    reflector = Reflector(api, r.CONFIG_MAPS,  # type: ignore[arg-type]
                          settings=WatchSettings(watch_list=False))
    running = await run_until_watching(reflector, api)
    try:
        assert (api.streams, api.pages) == (0, 1) and len(reflector) == 1
    finally:
        await stop(running)


async def test_a_long_watch_list_lets_other_tasks_run_while_it_is_stored() -> None:
    """Objects that arrive faster than they are stored (a buffer full of large configs)
    are stored in slices, the other tasks running in between."""
    now = [0.0]
    stored: list[int] = []
    turns: list[int] = []

    def transform(obj: JSON) -> JSON:
        now[0] += 0.005  # each object takes 5 ms of the clock
        stored.append(1)
        return obj

    async def others() -> None:
        while True:
            turns.append(len(stored))
            await asyncio.sleep(0)

    api = StreamingApi([config(f"c{i}") for i in range(40)])
    reflector = Reflector(api, r.CONFIG_MAPS, settings=FAST,  # type: ignore[arg-type]
                          transform=transform, clock=lambda: now[0])
    other = asyncio.create_task(others())
    running = await run_until_watching(reflector, api)
    try:
        assert len(reflector) == 40
        assert len({t for t in turns if 0 < t < 40}) >= 8, turns  # slices of 20 ms
    finally:
        other.cancel()
        await stop(running)


async def test_a_refusal_over_http_is_read_as_one() -> None:
    """The API server's 422 for a watch-list, as it sends it, makes the cache list in
    pages."""
    refused = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
               "reason": "Invalid", "message": "sendInitialEvents: Forbidden"}
    listing = {"kind": "ConfigMapList", "apiVersion": "v1",
               "metadata": {"resourceVersion": "7"}, "items": [config("a")]}
    queries: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        queries.append(dict(request.query))
        if request.query.get("sendInitialEvents"):
            return web.json_response(refused, status=422)
        if request.query.get("watch"):
            await asyncio.Event().wait()
        return web.json_response(listing)

    async with api_server(handle) as url, \
            KubeClient.with_token(url, "token", certifi.where()) as kube:
        reflector = Reflector(kube, r.CONFIG_MAPS, settings=FAST)
        running = asyncio.create_task(reflector.run())
        try:
            await asyncio.wait_for(reflector.synced.wait(), 5)
            assert len(reflector) == 1 and not reflector.watch_list
            assert [q.get("limit") for q in queries[1:2]] == ["500"]
        finally:
            await stop(running)
