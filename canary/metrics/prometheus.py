"""Prometheus queries through prometheus-api-client, off the event loop."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from prometheus_api_client import PrometheusConnect

from canary.core import MetricValue


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
        self.timeout = timeout
        self._client = PrometheusConnect(
            url=url, headers=headers or None, disable_ssl=insecure_skip_verify,
            auth=(auth.username, auth.password) if auth.username else None,
            timeout=timeout)

    async def query(self, name: str, promql: str) -> MetricValue:
        """The single value of ``promql``; None when it has no values; an error string when
        the query failed or was ambiguous."""
        try:
            # The HTTP timeout bounds the thread; asyncio.timeout bounds the caller even if
            # the client misbehaves (the thread is then abandoned, not waited for).
            async with asyncio.timeout(self.timeout + 5):
                result = await asyncio.to_thread(
                    self._client.custom_query, promql,
                    params={"timeout": f"{self.timeout:g}s"})
        except TimeoutError:
            return MetricValue(name, error=f"no answer from Prometheus within "
                               f"{self.timeout + 5:g}s", query=promql)
        except Exception as exc:  # the client raises several unrelated exception types
            return MetricValue(name, error=f"query failed: {exc}", query=promql)
        if not result:
            return MetricValue(name, None, query=promql)
        if len(result) > 1:
            return MetricValue(name, error=f"the query returned {len(result)} series, "
                               "expected one", query=promql)
        try:
            value = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError):
            return MetricValue(name, error=f"unexpected result {result[0]!r}", query=promql)
        if math.isnan(value):
            return MetricValue(name, None, query=promql)
        if math.isinf(value):
            # e.g. histogram_quantile above the highest bucket; JSON cannot carry it.
            return MetricValue(name, error=f"the query returned {value}", query=promql)
        return MetricValue(name, value, query=promql)
