"""A real HTTP server on 127.0.0.1 that misbehaves on purpose, for the tests of what
canary calls over HTTP and does not control (webhook gates, alert receivers).

Each path is one way of misbehaving, after the request has been read whole:

- ``/ok``: 200 with ``ok``, the well-behaved receiver the others are compared with.
- ``/hang``: never answers; the connection stays open until the client gives up.
- ``/reset``: resets the connection (TCP RST) instead of answering.
- ``/big/STATUS/SIZE``: answers STATUS with SIZE bytes of body (``Content-Length``).
- ``/stream/STATUS/SIZE``: the same in 64 KiB chunks with no length announced (chunked),
  as fast as the client reads them.
- ``/gzip/STATUS/SIZE``: SIZE zero bytes gzip-compressed (about 1,000 times smaller on the
  wire), sent whatever the request's ``Accept-Encoding``.
- ``/loop``: 302 to itself, forever.
- ``/away``: 302 to :attr:`HostileServer.elsewhere` (another host).
- ``/slow-body/STATUS``: STATUS and its headers at once (``Content-Length: 1000``), then
  one byte of body every :attr:`HostileServer.trickle` seconds.
- ``/slow-head``: the status line and headers themselves one byte per ``trickle``.
- ``/garbage``: bytes that are not HTTP.
- ``/escapes``: 500 with a body of terminal escapes, NULs and a bidirectional override.

Every answer closes its connection. :attr:`HostileServer.requests` records the paths
asked for; :attr:`HostileServer.sent` counts the body bytes written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator

#: Bytes written at a time for the big, streamed and gzip answers.
CHUNK = 64 * 1024
#: Length the slow-body answers announce (bytes), more than any test waits for.
SLOW_BODY_LENGTH = 1000
#: A status line no HTTP client can parse, and more of the same after it.
GARBAGE = b"\x16\x03\x01 THIS IS NOT HTTP \x00\xff\r\n" * 20
#: A body that would recolour a terminal, hide text and reverse what follows it.
ESCAPES = "\x1b[31mred\x1b[0m \x00\x07 \u202eexe.gnp".encode()

Behaviour = Callable[[list[str], asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _head(status: int, **headers: str | int) -> bytes:
    lines = [f"HTTP/1.1 {status} Hostile", "Connection: close",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@functools.cache
def _gzip_chunks(size: int) -> list[bytes]:
    """``size`` zero bytes, gzip-compressed, in pieces of at most CHUNK bytes (made once:
    compressing 50 MB takes a quarter of a second)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(CHUNK)
    out = bytearray()
    for start in range(0, size, CHUNK):
        out += compressor.compress(zeros[:min(CHUNK, size - start)])
    out += compressor.flush()
    return [bytes(out[i:i + CHUNK]) for i in range(0, len(out), CHUNK)]


class HostileServer:
    """The server; ``trickle`` is the pause (s) between the bytes of the slow answers."""

    def __init__(self, trickle: float = 0.2) -> None:
        self.trickle = trickle
        #: Where ``/away`` redirects.
        self.elsewhere = "http://localhost:9/elsewhere"
        self.url = ""
        self.requests: list[str] = []
        self.sent = 0
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._behaviours: dict[str, Behaviour] = {
            "ok": self._ok, "hang": self._hang, "reset": self._reset, "big": self._big,
            "stream": self._stream, "gzip": self._gzip, "loop": self._loop,
            "away": self._away, "slow-body": self._slow_body, "slow-head": self._slow_head,
            "garbage": self._garbage, "escapes": self._escapes}

    def at(self, path: str) -> str:
        """The URL of ``path`` (no leading slash)."""
        return f"{self.url}/{path}"

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self.url

    async def stop(self) -> None:
        """End every answer under way and close every connection, then stop listening."""
        self._stopping.set()
        for writer in list(self._writers):
            writer.close()
        if self._handlers:
            await asyncio.wait_for(asyncio.gather(*self._handlers, return_exceptions=True),
                                   5.0)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next((int(line.partition(":")[2]) for line in lines
                           if line.lower().startswith("content-length:")), 0)
            await reader.readexactly(length)
            path = lines[0].split(" ")[1]
            self.requests.append(path)
            parts = path.strip("/").split("/")
            await self._behaviours[parts[0]](parts[1:], reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client gave up: what several behaviours wait for
        finally:
            self._writers.discard(writer)
            writer.close()
            # Collects the error a write into a reset connection left behind.
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            self._handlers.discard(task)

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False when the server is stopping instead."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _send(self, writer: asyncio.StreamWriter, chunks: Iterable[bytes],
                    counted: bool = True) -> None:
        """Write each chunk once the client has taken the one before (or stop)."""
        for chunk in chunks:
            if self._stopping.is_set() or writer.is_closing():
                return
            writer.write(chunk)
            self.sent += len(chunk) if counted else 0
            await writer.drain()

    async def _ok(self, args: list[str], reader: asyncio.StreamReader,
                  writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [_head(200, Content_Length=2), b"ok"])

    async def _hang(self, args: list[str], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        # Reads until the client closes the connection (or the server stops).
        while await reader.read(CHUNK):
            pass

    async def _reset(self, args: list[str], reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        # Closing with a zero linger time sends RST rather than FIN.
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _big(self, args: list[str], reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter) -> None:
        status, size = int(args[0]), int(args[1])
        await self._send(writer, [_head(status, Content_Length=size)], counted=False)
        body = b"x" * CHUNK
        await self._send(writer, [body[:min(CHUNK, size - start)]
                                  for start in range(0, size, CHUNK)])

    async def _stream(self, args: list[str], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        status, size = int(args[0]), int(args[1])
        await self._send(writer, [_head(status, Transfer_Encoding="chunked")],
                         counted=False)
        body = b"y" * CHUNK

        def chunked() -> Iterator[bytes]:
            for start in range(0, size, CHUNK):
                piece = body[:min(CHUNK, size - start)]
                yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"

        await self._send(writer, chunked())
        await self._send(writer, [b"0\r\n\r\n"], counted=False)

    async def _gzip(self, args: list[str], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        status, size = int(args[0]), int(args[1])
        chunks = await asyncio.to_thread(_gzip_chunks, size)
        length = sum(len(chunk) for chunk in chunks)
        await self._send(writer, [_head(status, Content_Length=length,
                                        Content_Encoding="gzip")], counted=False)
        await self._send(writer, chunks)

    async def _loop(self, args: list[str], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [_head(302, Location=self.at("loop"), Content_Length=0)])

    async def _away(self, args: list[str], reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [_head(302, Location=self.elsewhere, Content_Length=0)])

    async def _slow_body(self, args: list[str], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [_head(int(args[0]), Content_Length=SLOW_BODY_LENGTH)],
                         counted=False)
        for _ in range(SLOW_BODY_LENGTH):
            await self._send(writer, [b"z"])
            if not await self._pause(self.trickle):
                return

    async def _slow_head(self, args: list[str], reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        for byte in _head(200, Content_Length=2, X_Padding="p" * SLOW_BODY_LENGTH):
            await self._send(writer, [bytes([byte])], counted=False)
            if not await self._pause(self.trickle):
                return

    async def _garbage(self, args: list[str], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [GARBAGE], counted=False)

    async def _escapes(self, args: list[str], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        await self._send(writer, [_head(500, Content_Length=len(ESCAPES)), ESCAPES])


@contextlib.asynccontextmanager
async def hostile(trickle: float = 0.2) -> AsyncIterator[HostileServer]:
    """A started :class:`HostileServer`, stopped on exit."""
    server = HostileServer(trickle)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
