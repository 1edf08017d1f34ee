"""Generating the load a :class:`LoadSpec` describes."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from canary.loadtester.hey import LoadSpec


@dataclass
class LoadReport:
    """What one run did: request counts by status (or error class) and latencies."""

    started: float = 0.0
    finished: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        """Requests answered 5xx or not answered at all."""
        return sum(n for status, n in self.statuses.items()
                   if not status.isdigit() or status.startswith("5"))

    def quantile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> dict[str, object]:
        elapsed = max(self.finished - self.started, 1e-9)
        p50, p99 = self.quantile(0.5), self.quantile(0.99)
        return {"requests": self.requests, "errors": self.errors,
                "seconds": round(elapsed, 3), "rps": round(self.requests / elapsed, 2),
                "p50_ms": None if p50 is None else round(p50 * 1000, 1),
                "p99_ms": None if p99 is None else round(p99 * 1000, 1),
                "statuses": dict(self.statuses)}


async def generate(spec: LoadSpec, client: httpx.AsyncClient | None = None) -> LoadReport:
    """Send the load: ``concurrency`` workers, each paced at ``rate_per_worker`` (if set),
    until ``duration`` has passed or ``requests`` have been sent."""
    own = client is None
    http = client or httpx.AsyncClient(
        limits=httpx.Limits(max_connections=spec.concurrency), follow_redirects=True)
    report = LoadReport(started=time.monotonic())
    deadline = None if spec.duration is None else report.started + spec.duration
    share, extra = divmod(spec.requests, spec.concurrency)
    try:
        await asyncio.gather(*(
            _worker(http, spec, report, deadline, None if deadline else share + (i < extra))
            for i in range(spec.concurrency)))
    finally:
        report.finished = time.monotonic()
        if own:
            await http.aclose()
    return report


async def _worker(http: httpx.AsyncClient, spec: LoadSpec, report: LoadReport,
                  deadline: float | None, count: int | None) -> None:
    gap = None if spec.rate_per_worker is None else 1.0 / spec.rate_per_worker
    next_at = time.monotonic()
    sent = 0
    while count is None or sent < count:
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            return
        if gap is not None:
            if next_at > now:
                if deadline is not None and next_at >= deadline:
                    return
                await asyncio.sleep(next_at - now)
            next_at = max(next_at + gap, time.monotonic())
        start = time.monotonic()
        try:
            response = await http.request(spec.method, spec.url, headers=list(spec.headers),
                                          content=spec.body, timeout=spec.timeout)
            status = str(response.status_code)
        except httpx.HTTPError as exc:
            status = exc.__class__.__name__
        report.latencies.append(time.monotonic() - start)
        report.statuses[status] += 1
        sent += 1
