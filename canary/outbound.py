"""One POST to an endpoint canary does not control (a webhook gate, an alert receiver),
bounded in time and memory whatever the endpoint does.

An endpoint may hang, reset the connection, answer without end, trickle its answer a
byte at a time, redirect in a loop or not speak HTTP; none of that may hold up a rollout
decision or an alert queue for longer than its timeout, or fill the controller's memory:

- **One deadline** covers the whole exchange, from connecting to the last byte read.
  httpx's own timeout bounds each read alone, so an answer trickled a byte a second
  never trips it.
- **At most** :data:`BODY_LIMIT` **bytes** of an answer's body are read, counted as they
  arrive: the body only ever goes into a message. The request asks for no compression,
  and a compressed body sent anyway is not decoded, so a small answer cannot inflate to
  gigabytes.
- **Redirects are not followed**: a gate must give its verdict itself, and an alert goes
  only where its provider says.
- **No cap on connections**: a client from :func:`client` opens as many as there are
  calls in flight, so a hundred calls hanging on one endpoint do not make the calls to
  other endpoints wait for a free connection (httpx's default cap is 100).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any, cast

import httpx

from canary.errors import CanaryError
from canary.redact import excerpt, shown_url

#: Bytes of an answer's body read at most (64 KiB): far more than the 200 characters a
#: message keeps, even once runs of whitespace are folded; the rest is never read.
BODY_LIMIT = 64 * 1024
#: Connections a client keeps open between calls (per client, idle ones only); the calls
#: in flight are not capped.
KEEPALIVE_CONNECTIONS = 20
#: Asks for the body as is, so that BODY_LIMIT bounds what is decoded.
_HEADERS = {"Accept-Encoding": "identity"}
#: The statuses that send the client elsewhere (Location).
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Causes an httpx error is looked through for words when it has none of its own.
_MAX_CAUSES = 8


class TimedOut(CanaryError, TimeoutError):
    """The answer was not in within ``seconds``; ``status`` is set when its status line
    was, and only its body was late."""

    def __init__(self, seconds: float, status: int | None = None) -> None:
        self.seconds = seconds
        self.status = status
        late = "" if status is None else f" reading the body of an HTTP {status} answer"
        super().__init__(f"timed out after {seconds:g}s{late}")


@dataclass(frozen=True)
class Answer:
    """What an endpoint answered: its status, its headers and the start of its body."""

    status: int
    headers: httpx.Headers
    #: The body's first BODY_LIMIT bytes, as sent.
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body as text, in the charset its Content-Type names (else UTF-8)."""
        message = Message()
        message["Content-Type"] = self.headers.get("Content-Type", "")
        charset = str(message.get_param("charset") or "utf-8")
        try:
            codecs.lookup(charset)
        except LookupError:
            charset = "utf-8"
        return self.body.decode(charset, errors="replace")

    def summary(self, scrub: Callable[[str], str], limit: int) -> str:
        """``HTTP 503: <the body on one line, scrubbed, cut to limit characters>``. A
        redirect says where to, and that it was not followed; a compressed body is not
        shown."""
        head = f"HTTP {self.status}"
        location = self.headers.get("Location")
        if self.status in _REDIRECTS and location:
            return f"{head}: a redirect to {scrub(shown_url(location, '***'))}, not followed"
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        if self.body and encoding != "identity":
            return f"{head} (a {excerpt(encoding, scrub, 20)}-encoded body, not shown)"
        text = excerpt(self.text(), scrub, limit)
        return f"{head}: {text}" if text else head


def client(**options: Any) -> httpx.AsyncClient:
    """An httpx client for :func:`post`: no cap on connections in flight, no redirects."""
    return httpx.AsyncClient(
        limits=httpx.Limits(max_connections=None,
                            max_keepalive_connections=KEEPALIVE_CONNECTIONS),
        follow_redirects=False, **options)


async def post(http: httpx.AsyncClient, url: str, payload: Any, timeout: float,
               headers: Mapping[str, str] | None = None) -> Answer:
    """POST ``payload`` as JSON to ``url`` and read the answer, all within ``timeout``
    seconds. Raises :class:`TimedOut`, or the httpx error (:func:`describe` words it)."""
    sent = httpx.Headers(_HEADERS)
    sent.update(headers or {})
    status: int | None = None
    try:
        async with asyncio.timeout(timeout), http.stream(
                "POST", url, json=payload, headers=sent, timeout=timeout,
                follow_redirects=False) as response:
            status = response.status_code
            body = await _head(response)
    except (TimeoutError, httpx.TimeoutException):
        raise TimedOut(timeout, status) from None
    return Answer(response.status_code, response.headers, body)


async def _head(response: httpx.Response) -> bytes:
    """The first BODY_LIMIT bytes of the body; the rest is left unread (closing the
    response then drops the connection)."""
    if response.is_stream_consumed:  # made whole, not read from the network (a test's)
        return response.content[:BODY_LIMIT]
    body = bytearray()
    # Closed at once when left early, rather than whenever it is collected.
    raw = cast(AsyncGenerator[bytes, None], response.aiter_raw())
    async with contextlib.aclosing(raw) as chunks:
        async for chunk in chunks:
            body += chunk
            if len(body) >= BODY_LIMIT:
                break
    return bytes(body[:BODY_LIMIT])


def describe(exc: Exception) -> str:
    """``Kind: what happened`` for an error of :func:`post`. httpx gives some errors no
    words (a reset connection is ``ReadError('')``): those take the operating system's,
    ``ReadError: Connection reset by peer``."""
    text = str(exc)
    cause: BaseException | None = exc
    for _ in range(_MAX_CAUSES):
        if text or cause is None:
            break
        if isinstance(cause, OSError) and cause.strerror:
            text = cause.strerror
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
