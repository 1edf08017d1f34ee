"""What went wrong with a Prometheus query, in a few words an operator can act on.

The HTTP client's errors quote the request's URL, so a failed query shows up as a
kilobyte or more of URL-encoded PromQL. Events and the Canary's status get instead the
server (host and port, never credentials) and what failed: the HTTP status, a timeout, a
refused connection, or Prometheus' own error text, cut short. The full query goes to
the log.

:func:`outage` tells the failures that mean the server could not answer now (refused or
failed connections, timeouts, HTTP 5xx and 429) from those that mean it will not answer
this query (HTTP 400 for a bad query, 401/403, a failed TLS handshake): the first are an
outage of the evidence, the second a mistake a person must fix.
"""

from __future__ import annotations

import ast
import json
import re
import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3
from prometheus_api_client.exceptions import PrometheusApiClientException

from canary.redact import excerpt

#: Characters of Prometheus' error text (or of an unexpected error) kept in a message.
ERROR_EXCERPT = 160
#: How prometheus-api-client words a non-200 answer: the status and the body's repr.
_STATUS = re.compile(r"^HTTP Status Code (\d+) \((b?(['\"]).*\3)\)$", re.S)
#: urllib3's words when it gave up retrying on a status.
_RETRIED = re.compile(r"too many (\d{3}) error responses")
#: Failures told by their type, most telling first (a refused connection is also, for
#: urllib3, a connection timeout).
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
_TLS = (ssl.SSLError, requests.exceptions.SSLError, urllib3.exceptions.SSLError)
_KNOWN: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (ConnectionRefusedError, "connection refused"),
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), "host not found"),
    (_TLS, "TLS handshake failed"),
    (_TIMEOUTS, "timed out"),
)
#: A URL's query string (and fragment), which holds the PromQL.
_QUERY_STRING = re.compile(r"\?[^\s'\")]*")


def server(url: str) -> str:
    """``host:port`` of a Prometheus address, without credentials, path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "an invalid address"
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return f"{host}:{port or default}" if (port or default) else host


def describe(exc: BaseException) -> str:
    """What failed, in a few words; never the request's URL nor the query."""
    chain = list(_causes(exc))
    for kinds, words in _KNOWN:
        if any(_is(cause, kinds) for cause in chain):
            return words
    for cause in chain:
        if isinstance(cause, PrometheusApiClientException):
            return _answer(str(cause))
        retried = _RETRIED.search(str(cause))
        if retried:
            return f"HTTP {retried.group(1)} (after retries)"
    reason = next((c.strerror for c in chain if isinstance(c, OSError) and c.strerror), None)
    if reason:
        return f"connection failed: {reason}"
    if any(isinstance(c, requests.ConnectionError) for c in chain):
        return "connection failed"
    return cut(f"{exc.__class__.__name__}: {exc}")


def outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the server could not answer now rather than refused the query:
    no connection, no answer in time, HTTP 5xx or 429 (Prometheus overloaded)."""
    chain = list(_causes(exc))
    if any(isinstance(c, _TLS) for c in chain):
        return False  # a TLS handshake that fails is a configuration to fix
    status = _status(chain)
    if status is not None:
        return status == 429 or 500 <= status <= 599
    return any(isinstance(c, (OSError, requests.ConnectionError, *_TIMEOUTS))
               for c in chain)


def _status(chain: list[BaseException]) -> int | None:
    """The HTTP status of a non-200 answer (or the one urllib3 gave up retrying on)."""
    for cause in chain:
        match = _STATUS.match(str(cause)) if isinstance(
            cause, PrometheusApiClientException) else _RETRIED.search(str(cause))
        if match:
            return int(match.group(1))
    return None


def _is(cause: BaseException,
        kinds: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
    """Whether ``cause`` is of ``kinds``; urllib3's failed connections (a subclass of its
    connection timeout) are no timeout."""
    if kinds is _TIMEOUTS and isinstance(cause, urllib3.exceptions.NewConnectionError):
        return False
    return isinstance(cause, kinds)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps: causes, contexts, urllib3's ``reason`` and
    exceptions passed as arguments (requests wraps urllib3's that way)."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None),
                   *current.args]
        pending += [w for w in wrapped if isinstance(w, BaseException)]


def _answer(text: str) -> str:
    """A non-200 answer: its status and Prometheus' error text (bad_data: a bad query)."""
    match = _STATUS.match(text)
    if match is None:
        return cut(text)
    status, body = match.group(1), _body(match.group(2))
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "error" in parsed:
        kind = parsed.get("errorType")
        what = "bad query" if kind == "bad_data" else f"{kind} error" if kind else "error"
        return cut(f"HTTP {status}, {what}: {parsed['error']}")
    return cut(f"HTTP {status}: {body}") if body.strip() else f"HTTP {status}"


def _body(literal: str) -> str:
    """The answer's body from the repr of its bytes."""
    try:
        raw = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return ""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def cut(text: str) -> str:
    """``text`` on one line, without query strings, cut to ERROR_EXCERPT characters."""
    return excerpt(text, lambda part: _QUERY_STRING.sub("?...", part), ERROR_EXCERPT)
