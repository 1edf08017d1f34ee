"""Prometheus queries through prometheus-api-client, off the event loop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_api_client import PrometheusConnect

from canary.core import MetricValue
from canary.errors import CanaryError
from canary.metrics import failure
from canary.metrics.counters import Sample

log = structlog.get_logger("canary.metrics")

#: One series over a range: its labels and (unix time, value) points.
Series = tuple[Mapping[str, str], list[tuple[float, float]]]


class QueryFailed(CanaryError):
    """A Prometheus query failed, timed out or answered something unexpected."""


class MetricsUnavailable(QueryFailed):
    """Prometheus could not answer: no connection, no answer in time, HTTP 5xx or 429.
    An outage of the evidence, not a verdict on the canary nor a mistake in the query."""


@dataclass(frozen=True)
class PrometheusAuth:
    token: str | None = None
    username: str | None = None
    password: str | None = None


class PrometheusQuerier:
    """Instant queries against one Prometheus; the client is synchronous, so each query
    runs in a worker thread and never blocks the event loop."""

    def __init__(self, url: str, auth: PrometheusAuth | None = None,
                 insecure_skip_verify: bool = False, timeout: float = 10.0) -> None:
        headers = {}
        auth = auth or PrometheusAuth()
        if auth.token:
            headers["Authorization"] = f"Bearer {auth.token}"
        self.url = url
        #: host:port, what messages name (the address may hold credentials).
        self.server = failure.server(url)
        self.timeout = timeout
        self._client = PrometheusConnect(
            url=url, headers=headers or None, disable_ssl=insecure_skip_verify,
            auth=(auth.username, auth.password) if auth.username else None,
            timeout=timeout)

    async def query(self, name: str, promql: str) -> MetricValue:
        """The single value of ``promql``; None when it has no values; an error string when
        the query failed or was ambiguous."""
        try:
            result = await self._call(self._client.custom_query, promql, metric=name,
                                      params={"timeout": f"{self.timeout:g}s"})
        except QueryFailed as exc:
            return MetricValue(name, error=str(exc), query=promql,
                               unavailable=isinstance(exc, MetricsUnavailable))
        if not result:
            return MetricValue(name, None, query=promql)
        if len(result) > 1:
            return MetricValue(name, error=f"the query returned {len(result)} series, "
                               "expected one", query=promql)
        try:
            value = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            return MetricValue(name, error=self._unexpected(result[0]), query=promql)
        if math.isnan(value):
            return MetricValue(name, None, query=promql)
        if math.isinf(value):
            # e.g. histogram_quantile above the highest bucket; JSON cannot carry it.
            return MetricValue(name, error=f"the query returned {value}", query=promql)
        return MetricValue(name, value, query=promql)

    async def _call(self, function: Any, query: str, metric: str | None = None,
                    **kwargs: Any) -> Any:
        """``function(query, **kwargs)`` in a worker thread; QueryFailed names the server
        and what failed in a line, while the log gets the whole query. MetricsUnavailable
        when the server could not answer at all (see :func:`failure.outage`)."""
        try:
            # The HTTP timeout bounds the thread; asyncio.timeout bounds the caller even if
            # the client misbehaves (the thread is then abandoned, not waited for).
            async with asyncio.timeout(self.timeout + 5):
                return await asyncio.to_thread(function, query, **kwargs)
        except TimeoutError:
            what, down = f"no answer within {self.timeout + 5:g}s", True
            log.warning("prometheus query failed", metric=metric, server=self.server,
                        error=what, query=query)
        except Exception as exc:  # the client raises several unrelated exception types
            what, down = failure.describe(exc), failure.outage(exc)
            log.warning("prometheus query failed", metric=metric, server=self.server,
                        error=what, detail=str(exc), query=query)
        raise (MetricsUnavailable if down else QueryFailed)(
            f"Prometheus at {self.server}: {what}")

    def _unexpected(self, result: Any) -> str:
        return failure.cut(f"Prometheus at {self.server}: unexpected result {result!r}")

    async def samples(self, promql: str, at: float) -> list[Sample]:
        """Every series of the instant query ``promql`` evaluated at unix time ``at``."""
        result = await self._call(self._client.custom_query, promql, params={
            "time": f"{at:.3f}", "timeout": f"{self.timeout:g}s"})
        try:
            return [(dict(s["metric"]), float(s["value"][1])) for s in result]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise QueryFailed(self._unexpected(result)) from exc

    async def series(self, promql: str, start: float, end: float, step: float
                     ) -> list[Series]:
        """Every series of ``promql`` evaluated from ``start`` to ``end`` (unix times) every
        ``step`` seconds, as a range query does."""
        # The client rounds start and end to whole seconds; its params win over them, and
        # carry the exact times (Prometheus evaluates at start + k * step).
        result = await self._call(
            self._client.custom_query_range, promql,
            start_time=datetime.fromtimestamp(start, UTC),
            end_time=datetime.fromtimestamp(end, UTC), step=f"{step:g}s",
            params={"start": f"{start:.3f}", "end": f"{end:.3f}",
                    "timeout": f"{self.timeout:g}s"})
        try:
            return [(dict(s["metric"]), [(float(t), float(v)) for t, v in s["values"]])
                    for s in result]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise QueryFailed(self._unexpected(result)) from exc
