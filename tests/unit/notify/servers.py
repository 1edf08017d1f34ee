"""Real HTTP endpoints on 127.0.0.1 for the delivery tests: a receiver that records and
answers as told, one that accepts connections and never answers, and a forward proxy."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    path: str
    body: Any
    headers: dict[str, str]
    #: time.monotonic() at arrival.
    at: float


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"


class Receiver:
    """Records every request; answers from ``answers`` in order, then ``default``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[Answer] = []
        self.default = Answer()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._arrival = asyncio.Condition()

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        # No access log: it would print request paths, which here hold the secrets the
        # tests look for in the captured logs.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            body: Any = json.loads(text)
        except ValueError:
            body = text
        async with self._arrival:
            self.received.append(Received(request.path_qs, body, dict(request.headers),
                                          time.monotonic()))
            self._arrival.notify_all()
        answer = self.answers.pop(0) if self.answers else self.default
        return web.Response(status=answer.status, headers=answer.headers,
                            text=answer.body.replace("{path}", request.path_qs))

    async def wait_for(self, count: int, timeout: float = 3.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived."""
        async with self._arrival:
            await asyncio.wait_for(
                self._arrival.wait_for(lambda: len(self.received) >= count), timeout)
        return self.received[:count]


class BlackHole:
    """Accepts connections and reads forever without answering: a hung endpoint."""

    def __init__(self) -> None:
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: list[asyncio.Task[Any]] = []

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._swallow, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def _swallow(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.append(task)
        while await reader.read(65536):
            pass

    async def stop(self) -> None:
        # Closing a connection ends its handler's read with EOF (cancelling the handler
        # instead makes asyncio log an error on Python 3.11).
        for writer in self._writers:
            writer.close()
        await asyncio.wait_for(asyncio.gather(*self._handlers), 2.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class Proxy:
    """A forward HTTP proxy that answers every request itself with 200, recording the
    request line (absolute-form, naming the target) and the Proxy-Authorization header."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None, bytes]] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((lines[0], headers.get("proxy-authorization"), body))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
