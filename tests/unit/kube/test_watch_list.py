"""A watch-list (``initial_events``): one watch request that starts with every object,
served from the API server's watch cache, asked as the server expects it; a real HTTP
server on 127.0.0.1 records the query."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import certifi
from aiohttp import web

from canary.kube import KubeClient
from canary.kube import resources as r

INITIAL = [
    {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}},
    {"type": "BOOKMARK", "object": {"metadata": {
        "resourceVersion": "9", "annotations": {"k8s.io/initial-events-end": "true"}}}}]


@contextlib.asynccontextmanager
async def api_server(queries: list[dict[str, str]]) -> AsyncIterator[str]:
    """Answers a watch with INITIAL, then ends the stream."""

    async def handle(request: web.Request) -> web.StreamResponse:
        queries.append(dict(request.query))
        response = web.StreamResponse()
        await response.prepare(request)
        for event in INITIAL:
            await response.write(json.dumps(event).encode() + b"\n")
        return response

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
    async with api_server(queries) as url:
        seen = await events(url, "", initial_events=True)
    assert [e["type"] for e in seen] == ["ADDED", "BOOKMARK"]
    [query] = queries
    assert query["sendInitialEvents"] == "true"
    assert query["resourceVersionMatch"] == "NotOlderThan"
    assert query["allowWatchBookmarks"] == "true"
    assert "resourceVersion" not in query  # "": a state as fresh as a consistent list's


async def test_a_plain_watch_asks_for_no_initial_events() -> None:
    queries: list[dict[str, str]] = []
    async with api_server(queries) as url:
        await events(url, "7")
    [query] = queries
    assert query["resourceVersion"] == "7"
    assert "sendInitialEvents" not in query and "resourceVersionMatch" not in query
