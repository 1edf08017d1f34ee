"""A fenced client asks its guard before every write, and again at the last moment before
the write's bytes leave, and sends nothing it refuses; reads and watches are never refused
(a follower keeps its caches warm)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import certifi
import pytest
from aiohttp import web

from canary.kube import KubeClient, NotLeader
from canary.kube import resources as r


class Answer:
    status = 200
    headers: dict[str, str] = {}

    async def read(self) -> bytes:
        return b"{}"

    def release(self) -> None:
        pass


class Transport:
    """Records what would have reached the API server."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def call_api(self, path: str, method: str, **options: Any) -> Answer:
        self.sent.append(method)
        return Answer()


def refuse() -> None:
    raise NotLeader("not the holder")


async def test_a_refused_write_is_never_sent() -> None:
    transport = Transport()
    client = KubeClient(transport).fenced(refuse)
    for write in (client.create(r.CONFIG_MAPS, {"metadata": {"name": "a"}}, "ns"),
                  client.merge_patch(r.CONFIG_MAPS, "a", {}, "ns"),
                  client.delete(r.CONFIG_MAPS, "a", "ns")):
        with pytest.raises(NotLeader):
            await write
    assert transport.sent == []


async def test_reads_pass_and_are_counted_with_the_unfenced_client() -> None:
    transport = Transport()
    plain = KubeClient(transport)
    client = plain.fenced(refuse)
    await client.get(r.CONFIG_MAPS, "a", "ns")
    assert transport.sent == ["GET"]
    assert plain.requests["GET"] == 1


async def test_an_allowed_write_is_sent() -> None:
    transport = Transport()
    await KubeClient(transport).fenced(lambda: None).merge_patch(r.CONFIG_MAPS, "a", {}, "ns")
    assert transport.sent == ["PATCH"]


# -- the last look, against a real HTTP server -----------------------------------------


@dataclass
class Received:
    """The methods of the requests whose headers reached the server."""

    methods: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def api_server(read_seconds: float) -> AsyncIterator[tuple[str, Received]]:
    """Answers ``{}``; reads take ``read_seconds``."""
    received = Received()

    async def handle(request: web.Request) -> web.Response:
        received.methods.append(request.method)
        await request.read()
        if request.method == "GET":
            await asyncio.sleep(read_seconds)
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


def connect(url: str, limit: int = 4) -> KubeClient:
    return KubeClient.with_token(url, "token", certifi.where(), max_connections=limit)


WRITES: dict[str, Callable[[KubeClient], Coroutine[Any, Any, Any]]] = {
    "POST": lambda kube: kube.create(r.CONFIG_MAPS, {"metadata": {"name": "a"}}, "ns"),
    "PATCH": lambda kube: kube.merge_patch(r.CONFIG_MAPS, "a", {"data": {"k": "v"}}, "ns"),
    "DELETE": lambda kube: kube.delete(r.CONFIG_MAPS, "a", "ns"),
}


class Leadership:
    """Holds until told otherwise, like an elector whose renew deadline passes."""

    def __init__(self) -> None:
        self.held = True

    def ensure(self) -> None:
        if not self.held:
            raise NotLeader("renew deadline passed")


@pytest.mark.parametrize("method", WRITES)
async def test_a_write_waiting_for_a_connection_when_the_lease_is_lost_is_not_sent(
        method: str) -> None:
    """One connection, busy with a slow read: the write passes the first check, waits for
    the connection, and the Lease is lost meanwhile."""
    leadership = Leadership()
    async with api_server(read_seconds=0.3) as (url, received), connect(url, 1) as kube:
        read = asyncio.create_task(kube.get(r.CONFIG_MAPS, "a", "ns"))
        await asyncio.sleep(0.05)
        write = asyncio.create_task(WRITES[method](kube.fenced(leadership.ensure)))
        await asyncio.sleep(0.05)
        leadership.held = False
        await read
        with pytest.raises(NotLeader):
            await write
        assert received.methods == ["GET"]
        assert kube.requests[method] == 0


class Countdown:
    """Allows the first ``allowed`` checks, refuses every later one; counts them all."""

    def __init__(self, allowed: int) -> None:
        self.allowed, self.calls = allowed, 0

    def check(self) -> None:
        self.calls += 1
        if self.calls > self.allowed:
            raise NotLeader("lost between two checks")


async def _checks_made(url: str, method: str, reuse: bool) -> int:
    everything = Countdown(allowed=1_000)
    async with connect(url) as kube:
        if reuse:
            await kube.get(r.CONFIG_MAPS, "a", "ns")
        await WRITES[method](kube.fenced(everything.check))
    return everything.calls


@pytest.mark.parametrize("reuse", [False, True], ids=["new connection", "kept-alive one"])
@pytest.mark.parametrize("method", WRITES)
async def test_a_write_is_checked_last_just_before_its_bytes_leave(
        method: str, reuse: bool) -> None:
    """Whichever check first refuses, the last one included, the server sees nothing of
    the write: no check comes after its bytes are sent."""
    async with api_server(read_seconds=0) as (url, received):
        checks = await _checks_made(url, method, reuse)
        assert checks >= 2, "the guard is called again once the connection is in hand"
        for allowed in range(checks):
            received.methods.clear()
            async with connect(url) as kube:
                if reuse:
                    await kube.get(r.CONFIG_MAPS, "a", "ns")
                with pytest.raises(NotLeader):
                    await WRITES[method](kube.fenced(Countdown(allowed).check))
            assert method not in received.methods, f"sent after {allowed} checks passed"
