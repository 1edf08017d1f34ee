"""Waiting for the cluster to get somewhere, with failures that say what was last seen."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from canary.kube.errors import NotFound, ServerError, TooManyRequests, TransportError

T = TypeVar("T")

#: Default seconds to wait for the cluster; generous, since CI machines are busy.
DEFAULT_TIMEOUT = 90.0


#: What "not yet" looks like: the object is not there yet (or the API server is briefly
#: unreachable), or a field the predicate reads is not set yet. Anything else (a typo's
#: NameError or AttributeError, a failed assertion) is a bug in the test and fails at once.
NOT_YET: tuple[type[BaseException], ...] = (
    NotFound, TransportError, TooManyRequests, ServerError, httpx.TransportError,
    KeyError, IndexError, TypeError)


async def wait_until(fetch: Callable[[], Awaitable[T]], predicate: Callable[[T], bool],
                     what: str, timeout: float = DEFAULT_TIMEOUT, interval: float = 0.25) -> T:
    """Fetch until ``predicate`` holds; fail naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = "<nothing fetched yet>"
    while True:
        try:
            value = await fetch()
            last = value
            if predicate(value):
                return value
        except NOT_YET as exc:
            last = f"{exc.__class__.__name__}: {exc}"
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; "
                                 f"last seen: {_short(last)}")
        await asyncio.sleep(interval)


def _short(value: Any, limit: int = 1500) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


async def prometheus_value(url: str, query: str) -> float | None:
    """The single value of an instant PromQL query, or None when it returns no series."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{url}/api/v1/query", params={"query": query})
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"PromQL {query!r} failed: {body}")
    result = body["data"]["result"]
    if not result:
        return None
    if len(result) > 1:
        raise AssertionError(f"PromQL {query!r} returned {len(result)} series: {result}")
    return float(result[0]["value"][1])
