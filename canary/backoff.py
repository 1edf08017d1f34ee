"""Exponential backoff with jitter: how long to wait before the next attempt.

Watches, workers, webhooks and alert deliveries all retry after failures; each waits
twice as long as the time before, up to a cap, so a broken dependency is not hammered,
and with a random spread so that many retrying at once do not retry in step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

#: Draws a number between its two arguments (``random.uniform`` unless a test says).
Uniform = Callable[[float, float], float]

#: Doublings beyond this change nothing (and 2.0 ** 1024 would overflow a float).
_MAX_DOUBLINGS = 1000


@dataclass(frozen=True)
class Backoff:
    """Waits of ``initial`` seconds for the first retry, doubled for each further one,
    never more than ``cap``; each scaled by a random factor in [1 - jitter, 1 + jitter]."""

    initial: float
    cap: float
    jitter: float = 0.0

    def base(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1 for the first), without jitter."""
        doublings = min(max(retry - 1, 0), _MAX_DOUBLINGS)
        return min(self.initial * 2.0 ** doublings, self.cap)

    def delay(self, retry: int, uniform: Uniform = random.uniform) -> float:
        """The wait before retry number ``retry``, with jitter; never negative."""
        wait = self.base(retry)
        if self.jitter:
            wait *= uniform(1 - self.jitter, 1 + self.jitter)
        return max(0.0, wait)
