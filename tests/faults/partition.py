"""A loopback TCP proxy between the controller and its API server that a test can cut.

Cutting closes every connection through it and refuses new ones until healed, as a
network partition does: the controller's watches break, and it reconnects from the last
resourceVersion it saw once the partition heals. The proxy runs its own event loop in a
thread, so it keeps forwarding while the test blocks (as ``ControllerProcess.start``
does while waiting for the log).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHUNK = 64 * 1024


class Partition:
    """Forwards 127.0.0.1:``port`` to ``upstream_port`` until :meth:`cut`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.cuts = 0
        self._open = True
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="partition")
        self._server: asyncio.Server | None = None

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def cut(self) -> int:
        """Close every connection and refuse new ones; returns how many were closed."""
        async def close_all() -> int:
            self._open = False
            writers = list(self._writers)
            for writer in writers:
                writer.transport.abort()
            self._writers.clear()
            return len(writers)
        self.cuts += 1
        return self._call(close_all())

    def heal(self) -> None:
        async def reopen() -> None:
            self._open = True
        self._call(reopen())

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _accept(self, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        if not self._open:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1",
                                                                 self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await source.read(CHUNK):
                sink.write(data)
                await sink.drain()
        sink.transport.abort()
        self._writers.discard(sink)
