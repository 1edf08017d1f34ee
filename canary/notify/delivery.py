"""POSTing one payload, with retries that respect the receiver.

Retried: connection failures and timeouts, 408, 429 and 5xx, with exponential backoff,
or after the ``Retry-After`` the receiver asked for (Slack, Discord and Teams send it
with 429). Not retried: any other 4xx, since the same request would fail the same way
(a revoked webhook, a malformed payload), nor a redirect, which is not followed either
(:mod:`canary.outbound` bounds each attempt). A timeout is retried although the
receiver may have accepted the first attempt: a duplicate alert is better than a lost one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from canary import outbound
from canary.backoff import Backoff
from canary.notify.address_redaction import redact_addresses, variants
from canary.redact import excerpt

log = structlog.get_logger("canary.notify")

Sleep = Callable[[float], Awaitable[None]]

#: Characters of a refused answer's body kept in the outcome's detail.
BODY_EXCERPT = 200
#: 1 s before the first retry, doubled for each further one up to 30 s; each scaled by a
#: random factor in [0.8, 1.2], so receivers recovering from an outage are not hit by
#: every controller at once.
ALERT_BACKOFF = Backoff(1.0, 30.0, jitter=0.2)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one alert (seconds)."""

    #: Attempts in all, the first included.
    attempts: int = 5
    #: Waits between attempts when the receiver asks for none.
    backoff: Backoff = ALERT_BACKOFF
    #: The longest ``Retry-After`` honoured; a longer one is cut to this.
    max_retry_after: float = 60.0
    #: Per attempt, in all: connecting, sending and reading the answer.
    timeout: float = 10.0

    def delay(self, retry: int) -> float:
        """Wait before retry number ``retry`` (1 for the first) when no Retry-After says."""
        return self.backoff.delay(retry)


@dataclass(frozen=True)
class DeliveryResult:
    """What posting one alert came to, after its retries."""

    delivered: bool
    attempts: int
    #: The last HTTP status, None when no answer came.
    status: int | None
    #: What went wrong (or "HTTP 200"): redacted, safe for logs and events.
    detail: str


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _not_retryable(exc: httpx.TransportError) -> bool:
    """Errors in the request itself: a retry would fail identically."""
    return isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError)


async def post(client: httpx.AsyncClient, url: str, payload: dict[str, Any],
               policy: RetryPolicy, *, secrets: Collection[str] = (),
               sleep: Sleep = asyncio.sleep, context: dict[str, str] | None = None
               ) -> DeliveryResult:
    """POST ``payload`` as JSON to ``url`` until it is accepted (2xx) or ``policy`` gives up.

    Each attempt may take ``policy.timeout`` in all, its answer included (of which at
    most :data:`canary.outbound.BODY_LIMIT` bytes are read); a redirect is not followed,
    nor retried. Never raises for HTTP or network trouble; cancellation propagates. The
    outcome's detail never shows ``url`` (nor its path or tokens), any other URL, or
    ``secrets``; ``context`` is added to the debug lines about retries.
    """
    secrets = variants(url) | set(secrets)

    def scrub(text: str) -> str:
        return redact_addresses(text, secrets)

    detail, status = "not attempted", None
    attempts = max(1, policy.attempts)
    for attempt in range(1, attempts + 1):
        wait: float | None = None
        try:
            answer = await outbound.post(client, url, payload, policy.timeout)
        except outbound.TimedOut as exc:
            status, detail = exc.status, str(exc)
        except httpx.TransportError as exc:
            status = None
            detail = excerpt(outbound.describe(exc), scrub, BODY_EXCERPT)
            if _not_retryable(exc):
                return DeliveryResult(False, attempt, None, detail)
        else:
            status = answer.status
            if answer.ok:
                return DeliveryResult(True, attempt, status, f"HTTP {status}")
            # Redacted before it is cut, so a secret across the cut leaves no prefix.
            detail = answer.summary(scrub, BODY_EXCERPT)
            if not retryable(status):
                return DeliveryResult(False, attempt, status, detail)
            asked = retry_after(answer.headers.get("Retry-After"))
            if asked is not None:
                wait = min(asked, policy.max_retry_after)
        if attempt == attempts:
            break
        if wait is None:
            wait = policy.delay(attempt)
        log.debug("alert delivery failed; retrying", attempt=attempt, error=detail,
                  retry_in=round(wait, 3), **(context or {}))
        await sleep(wait)
    return DeliveryResult(False, attempts, status, detail)
