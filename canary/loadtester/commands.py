"""Running one external command for a hook, bounded in time and in output.

The command runs without a shell (the argv is executed as given; a ``bash`` hook is
``bash -c <its command>``, nothing more), in a process group of its own, with stdin
closed and stderr folded into stdout. At its timeout the whole group is killed, so a
shell's children go with it; whatever the command left running when it exits is
stopped too. Only the last ``limit`` bytes of its output are kept, and the text says
how much was cut.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

#: Bytes of a command's output kept (the end of it).
OUTPUT_LIMIT = 64 * 1024
#: Seconds given to read what is left in the pipe once the group is gone.
_DRAIN = 1.0


@dataclass(frozen=True)
class CommandResult:
    """What one command did: its exit status (None when it was killed at its timeout)
    and the end of its output."""

    argv: tuple[str, ...]
    exit_code: int | None
    output: str
    timeout: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def status(self) -> str:
        if self.exit_code is None:
            return (f"timed out after {self.timeout:g}s "
                    "(killed with every process it started)")
        if self.exit_code < 0:
            return f"killed by signal {-self.exit_code}"
        return f"exit status {self.exit_code}"

    def tail(self, chars: int) -> str:
        """The last ``chars`` characters of the output, on one line."""
        text = " ".join(self.output.split())
        return text if len(text) <= chars else "..." + text[-chars:]


class _Tail:
    """The last ``limit`` bytes written, and how many came before them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.kept = bytearray()
        self.dropped = 0

    def write(self, chunk: bytes) -> None:
        self.kept += chunk
        if len(self.kept) > self.limit:
            extra = len(self.kept) - self.limit
            del self.kept[:extra]
            self.dropped += extra

    def text(self) -> str:
        body = self.kept.decode("utf-8", errors="replace")
        if not self.dropped:
            return body
        return f"[output cut: the first {self.dropped} bytes were dropped]\n{body}"


async def run_command(argv: tuple[str, ...], timeout: float,
                      limit: int = OUTPUT_LIMIT) -> CommandResult:
    """Run ``argv`` until it exits or ``timeout`` seconds pass. Cancelling the caller
    kills the command's process group too."""
    output = _Tail(limit)
    reader, process = await _start(argv, output)
    exit_code: int | None = None
    try:
        async with asyncio.timeout(timeout):
            exit_code = await process.wait()
    except TimeoutError:
        pass
    finally:
        _kill_group(process.pid)
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.shield(process.wait())
        await _drain(reader)
    return CommandResult(argv, exit_code, output.text(), timeout)


async def _start(argv: tuple[str, ...], output: _Tail
                 ) -> tuple[asyncio.Task[None], asyncio.subprocess.Process]:
    """The command started in a new session, and a task reading its output. The pipe is
    the load tester's own, not the process's: waiting for the process never waits for
    whoever else holds the pipe open."""
    read_end, write_end = os.pipe()
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=write_end,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return asyncio.create_task(_read(read_end, output)), process


async def _read(read_end: int, output: _Tail) -> None:
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_end, "rb", 0))
    try:
        while chunk := await stream.read(65536):
            output.write(chunk)
    finally:
        transport.close()


async def _drain(reader: asyncio.Task[None]) -> None:
    """Wait a moment for the pipe's end (a process that left the group may hold it)."""
    done, _ = await asyncio.wait({reader}, timeout=_DRAIN)
    if not done:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
