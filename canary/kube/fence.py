"""The leader fence's last look: a write is checked again once its connection is in hand,
in the same synchronous step that hands its bytes to the socket.

Checking only before a request leaves every await after it open: waiting for a free
connection, opening one (TCP, TLS), the body writer's turn on the event loop. A replica
paused there (SIGSTOP, a frozen VM) past the Lease's expiry sends the write when it
resumes, beside the new leader. So the guard of a fenced request is also called from
aiohttp's tracing hooks:

- ``on_connection_reuseconn`` / ``on_connection_create_end``: the connection is in hand; a
  request without a body is written right after, with no await in between;
- ``on_request_chunk_sent``: called just before the first body bytes, with the headers
  buffered alongside them, are written to the transport.

What stays open is the step between the last look and the ``send`` system call: a few
microseconds of Python. No client of the Kubernetes API can close it (the API has no
fencing tokens); the Lease's margin (writes stop at the renew deadline, others take over
only after the lease duration) covers bytes already in flight.

The guard travels in a context variable, so one connection pool serves fenced and
unfenced clients alike (:meth:`canary.kube.client.KubeClient.fenced`), and the body
writer task, which copies its creator's context, sees it too.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import aiohttp

from canary.kube.errors import NotLeader

Guard = Callable[[], None]

_GUARD: ContextVar[Guard | None] = ContextVar("canary_write_guard", default=None)


@contextlib.contextmanager
def guarding(guard: Guard) -> Iterator[None]:
    """Requests sent inside this block call ``guard`` at their last look."""
    token = _GUARD.set(guard)
    try:
        yield
    finally:
        _GUARD.reset(token)


async def _last_look(session: Any, context: Any, params: Any) -> None:
    guard = _GUARD.get()
    if guard is not None:
        guard()


def trace_config() -> aiohttp.TraceConfig:
    """The hooks that call the guard of the request in progress, if any."""
    config = aiohttp.TraceConfig()
    config.on_connection_reuseconn.append(_last_look)
    config.on_connection_create_end.append(_last_look)
    config.on_request_chunk_sent.append(_last_look)
    config.freeze()
    return config


def install(session: aiohttp.ClientSession) -> None:
    """Add the last look to a session's requests (kubernetes-asyncio builds the session
    itself, without a way to pass tracing hooks in)."""
    session.trace_configs.append(trace_config())


def refusal(exc: BaseException) -> NotLeader | None:
    """The fence's refusal behind a transport error: aiohttp reports a body writer's
    failure as a connection error caused by it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, NotLeader):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
