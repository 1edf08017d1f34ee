"""What the judge reads: requests and events of the canary and the primary.

An *event* is whatever the judged metric counts: a failed request for the error rate, a
request slower than a bucket bound for latency. Both reduce to the same comparison of
event rates, so the statistics see only :class:`Counts`.

Counts come from cumulative Prometheus counters read at two instants and differenced by
the caller (:meth:`Counts.between`). They must be the counters' raw values, not
``increase()`` or ``rate()``, which extrapolate and are not whole numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import pairwise


def as_count(value: float | int, name: str = "count") -> int:
    """A counter value as an int: Prometheus returns floats, but a count must be whole."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r} (use the "
                             "counters' values, not increase() or rate())")
        value = int(value)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


@dataclass(frozen=True)
class Counts:
    """Requests and events of both versions: over one step, or cumulative."""

    canary_requests: int
    canary_events: int
    primary_requests: int
    primary_events: int

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{f.name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"{f.name} must not be negative, got {value}")
        if self.canary_events > self.canary_requests:
            raise ValueError(f"canary_events ({self.canary_events}) exceed canary_requests "
                             f"({self.canary_requests})")
        if self.primary_events > self.primary_requests:
            raise ValueError(f"primary_events ({self.primary_events}) exceed "
                             f"primary_requests ({self.primary_requests})")

    @property
    def events(self) -> int:
        return self.canary_events + self.primary_events

    @property
    def requests(self) -> int:
        return self.canary_requests + self.primary_requests

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.canary_requests + other.canary_requests,
                      self.canary_events + other.canary_events,
                      self.primary_requests + other.primary_requests,
                      self.primary_events + other.primary_events)

    @classmethod
    def between(cls, earlier: Counts, later: Counts) -> Counts:
        """What happened between two readings of cumulative counters. A counter that went
        down was reset (a pod restarted): the step cannot be measured, and the caller must
        skip it rather than guess."""
        values = []
        for f in fields(cls):
            before, after = getattr(earlier, f.name), getattr(later, f.name)
            if after < before:
                raise ValueError(f"{f.name} went down from {before} to {after}: "
                                 "a counter was reset")
            values.append(after - before)
        return cls(*values)


ZERO = Counts(0, 0, 0, 0)


def slow_requests(buckets: Sequence[tuple[float, float | int]], bound: float
                  ) -> tuple[int, int]:
    """``(requests, slower than bound)`` from one version's histogram buckets.

    ``buckets`` are ``(le, count)`` pairs of a Prometheus histogram over the same step
    (each cumulative in ``le``, as Prometheus keeps them), including ``le = +Inf``, which
    counts every request. ``bound`` must be one of the finite ``le`` values: counts are
    exact only at bucket bounds, and interpolating would invent requests.
    """
    by_bound: dict[float, int] = {}
    for le, count in buckets:
        if math.isnan(le):
            raise ValueError("a bucket bound is NaN")
        if le in by_bound:
            raise ValueError(f"bucket le={le:g} appears twice")
        by_bound[le] = as_count(count, f"bucket le={le:g}")
    if math.inf not in by_bound:
        raise ValueError("the buckets need le=+Inf, which counts every request")
    ordered = sorted(by_bound.items())
    for (low, below), (high, above) in pairwise(ordered):
        if above < below:
            raise ValueError(f"bucket le={high:g} holds {above}, fewer than le={low:g} "
                             f"({below}): buckets must be cumulative")
    if bound not in by_bound or math.isinf(bound):
        finite = ", ".join(f"{le:g}" for le, _ in ordered if math.isfinite(le))
        raise ValueError(f"bound {bound:g} is not a finite bucket bound (have: {finite})")
    total = by_bound[math.inf]
    return total, total - by_bound[bound]


def latency_counts(canary_buckets: Sequence[tuple[float, float | int]],
                   primary_buckets: Sequence[tuple[float, float | int]],
                   bound: float) -> Counts:
    """Counts for the latency judge: the events are requests slower than ``bound``."""
    canary_requests, canary_slow = slow_requests(canary_buckets, bound)
    primary_requests, primary_slow = slow_requests(primary_buckets, bound)
    return Counts(canary_requests, canary_slow, primary_requests, primary_slow)
