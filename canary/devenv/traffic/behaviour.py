"""How a simulated workload answers, read from its pod template's annotations (pure).

``devenv.canary.dev/error-rate``: the fraction of requests answered with HTTP 500, e.g.
``"0.1"`` (for a gRPC call, gRPC status UNKNOWN: see :mod:`.grpcstatus`).
``devenv.canary.dev/latency-ms``: latency quantiles in milliseconds, e.g.
``"p50=20,p99=150"``; latency is log-normal through the median and the highest quantile
given. Pods carry their template's annotations, so a new revision behaves newly.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from canary.errors import ConfigError

ERROR_RATE_ANNOTATION = "devenv.canary.dev/error-rate"
LATENCY_ANNOTATION = "devenv.canary.dev/latency-ms"

#: Standard normal quantiles of the percentiles a latency annotation may name.
_Z = {"p75": 0.6745, "p90": 1.2816, "p95": 1.6449, "p99": 2.3263, "p999": 3.0902}
#: Spread (log-normal sigma) when only the median is given.
DEFAULT_SIGMA = 0.3


@dataclass(frozen=True)
class Behaviour:
    error_rate: float = 0.0
    median_ms: float = 10.0
    sigma: float = DEFAULT_SIGMA

    def sample(self, rng: random.Random) -> tuple[int, float]:
        """One response: (HTTP status, latency in milliseconds)."""
        status = 500 if rng.random() < self.error_rate else 200
        latency = self.median_ms * math.exp(self.sigma * rng.gauss(0.0, 1.0))
        return status, latency


def parse_error_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ConfigError(f"{ERROR_RATE_ANNOTATION}: {text!r} is not a number") from None
    if not 0.0 <= rate <= 1.0:
        raise ConfigError(f"{ERROR_RATE_ANNOTATION}: {text!r} must be a fraction in [0, 1]")
    return rate


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
    if ERROR_RATE_ANNOTATION in annotations:
        behaviour = Behaviour(parse_error_rate(annotations[ERROR_RATE_ANNOTATION]),
                              behaviour.median_ms, behaviour.sigma)
    if LATENCY_ANNOTATION in annotations:
        median, sigma = parse_latency(annotations[LATENCY_ANNOTATION])
        behaviour = Behaviour(behaviour.error_rate, median, sigma)
    return behaviour
