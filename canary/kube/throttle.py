"""When to send again a request the API server refused for load.

API Priority and Fairness answers 429 with ``Retry-After`` when a client's priority
level is full, and an API server starting or shutting down answers 429 or 5xx with it
too. Such a request was not processed, so it is safe to send again, whatever its verb,
after the pause the server asks for, as client-go does. Without ``Retry-After`` a 5xx
is an answer about the request itself and is not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleSettings:
    """How many times, and after what pauses, a refused request is sent again."""

    #: Sends in all, the first included.
    attempts: int = 6
    #: Seconds waited when a 429 does not say how long.
    default_wait_seconds: float = 1.0
    #: The longest pause honoured from ``Retry-After``, in seconds: a server asking for
    #: more is asked again after this, so a bad header cannot wedge a worker.
    max_wait_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.default_wait_seconds < 0 or self.max_wait_seconds < 0:
            raise ValueError("throttle settings need attempts >= 1 and waits >= 0")


def wait_before_resending(status: int, retry_after: str | None, attempt: int,
                          settings: ThrottleSettings) -> float | None:
    """Seconds to wait before sending again a request answered ``status`` on its
    ``attempt``-th send (from 1), or None to give the answer to the caller."""
    if attempt >= settings.attempts:
        return None
    asked = _seconds(retry_after)
    if status == 429:
        wait = settings.default_wait_seconds if asked is None else asked
    elif status >= 500 and asked is not None:
        wait = asked
    else:
        return None
    return min(wait, settings.max_wait_seconds)


def _seconds(retry_after: str | None) -> float | None:
    """``Retry-After`` in seconds; None when absent or not a number of seconds (the API
    server sends whole seconds, never an HTTP date)."""
    if retry_after is None:
        return None
    try:
        seconds = float(retry_after.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
