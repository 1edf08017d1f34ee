"""Requests to the API server share a bounded pool of connections, and watches do not
take from it: a real HTTP server on 127.0.0.1 counts the connections it is asked on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import certifi
import pytest
from aiohttp import web

from canary.kube import KubeClient
from canary.kube import resources as r
from canary.settings import KubeSettings


@dataclass
class Counting:
    """What the server saw: the client ports of every request, and how many requests
    (so connections, one request at a time each under HTTP/1.1) were in flight at once."""

    peers: set[int] = field(default_factory=set)
    in_flight: int = 0
    most: int = 0
    watches: int = 0
    #: Set once :attr:`expected_watches` watches are open.
    all_watching: asyncio.Event = field(default_factory=asyncio.Event)
    expected_watches: int = 10
    #: Requests to namespace ``held`` wait for this before they are answered.
    release: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def api_server() -> AsyncIterator[tuple[str, Counting]]:
    """Answers a list after 20 ms; a watch is accepted and then never ends."""
    seen = Counting()

    async def handle(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if request.query.get("watch") == "true":
            seen.watches += 1
            if seen.watches >= seen.expected_watches:
                seen.all_watching.set()
            response = web.StreamResponse()
            await response.prepare(request)
            await asyncio.Event().wait()
        if "/namespaces/held/" in request.path:
            await seen.release.wait()
        seen.peers.add(peer[1] if peer else 0)
        seen.in_flight += 1
        seen.most = max(seen.most, seen.in_flight)
        try:
            await asyncio.sleep(0.02)
        finally:
            seen.in_flight -= 1
        return web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


def client(url: str, limit: int) -> KubeClient:
    return KubeClient.with_token(url, "token", certifi.where(), max_connections=limit)


async def test_a_burst_of_300_requests_never_opens_more_than_the_limit() -> None:
    async with api_server() as (url, seen), client(url, 32) as kube:
        await asyncio.gather(*(kube.list(r.CONFIG_MAPS, f"ns-{i}") for i in range(300)))
    assert seen.most == 32
    assert len(seen.peers) <= 32


async def test_without_a_low_limit_the_same_burst_opens_hundreds() -> None:
    """The measure above can tell: with room for all, the burst takes far more."""
    async with api_server() as (url, seen), client(url, 1000) as kube:
        await asyncio.gather(*(kube.list(r.CONFIG_MAPS, f"ns-{i}") for i in range(300)))
    assert seen.most > 100


async def test_watches_do_not_take_the_connections_requests_need() -> None:
    """More open watches than the limit, and requests still go through."""
    async with api_server() as (url, seen), client(url, 4) as kube:
        watches = [asyncio.create_task(_drain(kube, f"ns-{i}")) for i in range(10)]
        try:
            async with asyncio.timeout(5):
                await seen.all_watching.wait()
                await asyncio.gather(*(kube.list(r.SECRETS, "a") for _ in range(20)))
            assert seen.most <= 4
        finally:
            for task in watches:
                task.cancel()
            await asyncio.gather(*watches, return_exceptions=True)


async def _drain(kube: KubeClient, namespace: str) -> None:
    async for _ in kube.watch(r.DEPLOYMENTS, namespace, "1", timeout_seconds=60):
        pass


async def test_the_lease_has_connections_the_controllers_burst_cannot_take() -> None:
    """Every request connection held by slow requests, more waiting: a request through
    the Lease's own pool is answered at once; through the shared pool it would wait."""
    async with api_server() as (url, seen), client(url, 2) as kube, \
            kube.with_own_connections() as lease:
        burst = [asyncio.create_task(kube.list(r.CONFIG_MAPS, "held")) for _ in range(6)]
        try:
            async with asyncio.timeout(1):
                await lease.get(r.LEASES, "canary-leader", "default")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.5):
                    await kube.get(r.LEASES, "canary-leader", "default")
            assert kube.requests["GET"] == 8  # both count into the same figures
        finally:
            seen.release.set()
            await asyncio.gather(*burst)


def test_the_limit_is_a_setting_with_a_default() -> None:
    assert KubeSettings().max_connections == 64
    with pytest.raises(ValueError, match="max_connections"):
        KubeSettings(max_connections=0)
