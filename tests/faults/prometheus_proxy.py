"""A loopback HTTP proxy in front of the environment's Prometheus that misbehaves on
demand: it answers 503, answers too late, resets the connection, or passes the query on
and spoils the answer's values (NaN, +Inf, or no series at all)."""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from canary.devenv.process import free_port

#: Seconds a slow answer takes: longer than the controller's query timeout (10 s).
SLOW_SECONDS = 12.0


class Mode(StrEnum):
    """How the proxy answers."""

    PASS = "pass"
    #: Prometheus overloaded or restarting behind a load balancer.
    UNAVAILABLE = "503"
    SLOW = "slow"
    RESET = "reset"
    NAN = "NaN"
    INF = "+Inf"
    EMPTY = "empty"


#: The modes in which Prometheus cannot answer: an outage of the evidence.
OUTAGES = (Mode.UNAVAILABLE, Mode.SLOW, Mode.RESET)
#: The modes in which it answers with values that are no evidence.
SPOILED = (Mode.NAN, Mode.INF, Mode.EMPTY)


def spoil(body: dict[str, Any], mode: Mode) -> dict[str, Any]:
    """The answer of a query with its values replaced as ``mode`` says."""
    data = body.get("data")
    if not isinstance(data, dict) or body.get("status") != "success":
        return body
    result = data.get("result")
    if mode is Mode.EMPTY or not isinstance(result, list):
        return body | {"data": data | {"result": []}}
    value = "NaN" if mode is Mode.NAN else "+Inf"
    for series in result:
        if "value" in series:
            series["value"] = [series["value"][0], value]
        if "values" in series:
            series["values"] = [[t, value] for t, _ in series["values"]]
    return body


class PrometheusProxy:
    """Forwards every request to ``upstream`` in ``mode``; counts what it spoiled."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.mode = Mode.PASS
        #: Requests answered in each mode other than PASS.
        self.spoiled: dict[Mode, int] = {}
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._session = ClientSession(timeout=ClientTimeout(total=60))
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        mode = self.mode
        if mode is not Mode.PASS:
            self.spoiled[mode] = self.spoiled.get(mode, 0) + 1
        if mode is Mode.UNAVAILABLE:
            return web.Response(status=503, text="service unavailable")
        if mode is Mode.RESET and request.transport is not None:
            request.transport.abort()
            return web.Response(status=503)  # never sent: the connection is gone
        if mode is Mode.SLOW:
            await asyncio.sleep(SLOW_SECONDS)
        status, headers, body = await self._forward(request)
        if mode in SPOILED and status == 200:
            body = json.dumps(spoil(json.loads(body), mode)).encode()
        return web.Response(status=status, body=body, headers=headers)

    async def _forward(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "authorization", "accept")}
        async with self._session.request(request.method, self.upstream + request.path_qs,
                                         data=await request.read(), headers=headers) as answer:
            kept = {k: v for k, v in answer.headers.items() if k.lower() == "content-type"}
            return answer.status, kept, await answer.read()
