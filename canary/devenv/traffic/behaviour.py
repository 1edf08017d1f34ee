"""How a simulated workload answers, read from its pod template's annotations (pure).

``devenv.canary.dev/error-rate``: the fraction of requests answered with HTTP 500, e.g.
``"0.1"`` (for a gRPC call, gRPC status UNKNOWN: see :mod:`.grpcstatus`).
``devenv.canary.dev/error-rate-ramp``: instead, an error rate that changes with the pod's
age (the time since its ``metadata.creationTimestamp``), so that a revision can start
healthy and degrade later without a new pod template: comma-separated
``duration=fraction`` points, e.g. ``"20s=0.005,40s=0.2"``, durations as the Canary's
(``30s``, ``1m30s``) and strictly increasing. The rate is linear between neighbouring
points, the first point's before the first, and the last point's after the last (there:
0.5% until 20 s, rising to 20% at 40 s, 20% from then on). A pod given both annotations is
refused: which one meant what would be a guess.
``devenv.canary.dev/latency-ms``: latency quantiles in milliseconds, e.g.
``"p50=20,p99=150"``; latency is log-normal through the median and the highest quantile
given. Pods carry their template's annotations, so a new revision behaves newly.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace

from canary.errors import ConfigError
from canary.models.base import parse_duration

ERROR_RATE_ANNOTATION = "devenv.canary.dev/error-rate"
ERROR_RATE_RAMP_ANNOTATION = "devenv.canary.dev/error-rate-ramp"
LATENCY_ANNOTATION = "devenv.canary.dev/latency-ms"

#: Standard normal quantiles of the percentiles a latency annotation may name.
_Z = {"p75": 0.6745, "p90": 1.2816, "p95": 1.6449, "p99": 2.3263, "p999": 3.0902}
#: Spread (log-normal sigma) when only the median is given.
DEFAULT_SIGMA = 0.3


@dataclass(frozen=True)
class Ramp:
    """An error rate against a pod's age: (seconds, fraction) points, strictly increasing
    in time, linear between them and flat beyond them."""

    points: tuple[tuple[float, float], ...]

    def rate_at(self, age_seconds: float) -> float:
        after = bisect.bisect_right(self.points, age_seconds, key=lambda p: p[0])
        if after == 0:
            return self.points[0][1]
        if after == len(self.points):
            return self.points[-1][1]
        (t0, r0), (t1, r1) = self.points[after - 1], self.points[after]
        rate = r0 + (r1 - r0) * (age_seconds - t0) / (t1 - t0)
        # Rounding must not take the rate past either neighbour.
        return min(max(rate, min(r0, r1)), max(r0, r1))


@dataclass(frozen=True)
class Behaviour:
    """How a pod answers; with a ramp, the ramp (not ``error_rate``) sets the error rate."""

    error_rate: float = 0.0
    median_ms: float = 10.0
    sigma: float = DEFAULT_SIGMA
    ramp: Ramp | None = None

    def error_rate_at(self, age_seconds: float) -> float:
        """The fraction of requests failed by a pod ``age_seconds`` old."""
        return self.error_rate if self.ramp is None else self.ramp.rate_at(age_seconds)

    def sample(self, rng: random.Random, age_seconds: float) -> tuple[int, float]:
        """One response of a pod ``age_seconds`` old: (HTTP status, latency in ms)."""
        status = 500 if rng.random() < self.error_rate_at(age_seconds) else 200
        latency = self.median_ms * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return status, latency


def _fraction(text: str, annotation: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ConfigError(f"{annotation}: {text!r} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{annotation}: {text!r} must be a fraction in [0, 1]")
    return rate


def parse_error_rate(text: str) -> float:
    return _fraction(text, ERROR_RATE_ANNOTATION)


def parse_ramp(text: str) -> Ramp:
    """``"20s=0.005,40s=0.2"`` -> the ramp through those points."""
    points: list[tuple[float, float]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        point = _ramp_point(part)
        if points and point[0] <= points[-1][0]:
            raise ConfigError(f"{ERROR_RATE_RAMP_ANNOTATION}: times must increase, but "
                              f"{part!r} follows a later or equal time in {text!r}")
        points.append(point)
    if not points:
        raise ConfigError(f"{ERROR_RATE_RAMP_ANNOTATION}: {text!r} has no point "
                          "(duration=fraction, e.g. 20s=0.05)")
    return Ramp(tuple(points))


def _ramp_point(part: str) -> tuple[float, float]:
    age, equals, rate = part.partition("=")
    try:
        seconds = parse_duration(age.strip()) if equals else None
    except ValueError:
        seconds = None
    if seconds is None:
        raise ConfigError(f"{ERROR_RATE_RAMP_ANNOTATION}: {part!r} is not duration=fraction, "
                          "e.g. 20s=0.05")
    return seconds, _fraction(rate.strip(), ERROR_RATE_RAMP_ANNOTATION)


def parse_latency(text: str) -> tuple[float, float]:
    """``"p50=20,p99=150"`` -> (median 20, sigma fitted to p99)."""
    quantiles: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name != "p50" and name not in _Z:
            raise ConfigError(f"{LATENCY_ANNOTATION}: unknown quantile {name!r} in {text!r} "
                              f"(use p50 and one of {', '.join(_Z)})")
        try:
            quantiles[name] = float(value)
        except ValueError:
            raise ConfigError(f"{LATENCY_ANNOTATION}: {part!r} is not name=milliseconds") from None
        if quantiles[name] <= 0:
            raise ConfigError(f"{LATENCY_ANNOTATION}: {part!r} must be positive")
    if "p50" not in quantiles:
        raise ConfigError(f"{LATENCY_ANNOTATION}: {text!r} needs p50")
    median = quantiles.pop("p50")
    if not quantiles:
        return median, DEFAULT_SIGMA
    top = max(quantiles, key=lambda q: _Z[q])
    if quantiles[top] < median:
        raise ConfigError(f"{LATENCY_ANNOTATION}: {top} must not be below p50 in {text!r}")
    return median, math.log(quantiles[top] / median) / _Z[top]


def from_annotations(annotations: Mapping[str, str]) -> Behaviour:
    """The behaviour an annotated pod has; raises :class:`ConfigError` naming a bad one."""
    behaviour = Behaviour()
    if ERROR_RATE_ANNOTATION in annotations and ERROR_RATE_RAMP_ANNOTATION in annotations:
        raise ConfigError(f"{ERROR_RATE_RAMP_ANNOTATION}: give it or "
                          f"{ERROR_RATE_ANNOTATION}, not both")
    if ERROR_RATE_ANNOTATION in annotations:
        behaviour = replace(behaviour,
                            error_rate=parse_error_rate(annotations[ERROR_RATE_ANNOTATION]))
    if ERROR_RATE_RAMP_ANNOTATION in annotations:
        behaviour = replace(behaviour,
                            ramp=parse_ramp(annotations[ERROR_RATE_RAMP_ANNOTATION]))
    if LATENCY_ANNOTATION in annotations:
        median, sigma = parse_latency(annotations[LATENCY_ANNOTATION])
        behaviour = replace(behaviour, median_ms=median, sigma=sigma)
    return behaviour
