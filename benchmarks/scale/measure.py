"""What the scale benchmark measures of a controller process, from outside it: memory and
CPU time by PID, API requests from the API server's audit log, Prometheus queries from
Prometheus' own metrics, and Canary phases from a watch."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from canary.kube import Gone, KubeClient, KubeError
from canary.kube import resources as r

MIB = 1024 * 1024


def percentile(values: Iterable[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in 0-1): with few values, p99 is the largest."""
    ordered = sorted(values)
    if not ordered:
        return None
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# -- memory and CPU ----------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    rss: int
    cpu_seconds: float


@dataclass
class ProcessSampler:
    """Samples a process's resident memory and CPU time every ``every`` seconds."""

    pid: int
    every: float = 1.0
    samples: list[Sample] = field(default_factory=list)

    def sample(self) -> Sample | None:
        try:
            process = psutil.Process(self.pid)
            times, rss = process.cpu_times(), process.memory_info().rss
        except psutil.Error:
            return None
        taken = Sample(time.monotonic(), rss, times.user + times.system)
        self.samples.append(taken)
        return taken

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.every)

    def peak_rss(self) -> int:
        """The kernel's high-water mark of resident memory (VmHWM): the true peak, not
        the largest sample."""
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return max((s.rss for s in self.samples), default=0)

    def window(self, start: float, end: float) -> dict[str, float]:
        """Median and largest RSS and CPU seconds per minute between two instants."""
        inside = [s for s in self.samples if start <= s.at <= end]
        if len(inside) < 2:
            return {}
        minutes = (inside[-1].at - inside[0].at) / 60
        return {"rss_median_mib": round(statistics.median(s.rss for s in inside) / MIB, 1),
                "rss_max_mib": round(max(s.rss for s in inside) / MIB, 1),
                "cpu_seconds_per_minute": round(
                    (inside[-1].cpu_seconds - inside[0].cpu_seconds) / minutes, 3)}

    def cpu_between(self, start: float, end: float) -> float:
        inside = [s for s in self.samples if start <= s.at <= end]
        return round(inside[-1].cpu_seconds - inside[0].cpu_seconds, 2) if inside else 0.0


# -- API requests ------------------------------------------------------------------------


class AuditLog:
    """The API server's audit log, which records every request of a ServiceAccount
    (canary.devenv.components.AUDIT_POLICY): requests counted by the server itself, per
    identity, whatever the client's own bookkeeping says."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        """Where the log's last complete line ends now: the API server may be writing the
        next one, and a mark inside it would tear it in two."""
        if not self.path.exists():
            return 0
        with self.path.open("rb") as handle:
            end = handle.seek(0, 2)
            start = end
            while start > 0:
                start = max(0, start - 65536)
                handle.seek(start)
                newline = handle.read(end - start).rfind(b"\n")
                if newline >= 0:
                    return start + newline + 1
            return 0

    def requests(self, user: str, start: int, end: int | None = None) -> Counter[str]:
        """``user``'s requests logged between two marks, as ``verb resource`` counts: a
        watch counts when it opens, any other request when answered."""
        counted: Counter[str] = Counter()
        stop = end if end is not None else self.mark()
        if stop < start:
            raise RuntimeError(f"the audit log {self.path} shrank under its reader "
                               f"({start} -> {stop} bytes): rotated or truncated")
        with self.path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(stop - start)
        for line in data.splitlines():
            if not line.strip():
                continue
            entry = json.loads(line)
            if entry.get("user", {}).get("username") != user:
                continue
            verb = entry.get("verb", "")
            if entry.get("stage") != ("ResponseStarted" if verb == "watch" else
                                      "ResponseComplete"):
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", entry.get("requestURI", "?"))
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            counted[f"{verb} {resource}"] += 1
        return counted


# -- Prometheus --------------------------------------------------------------------------


async def prometheus_queries(url: str) -> float:
    """Queries Prometheus has answered so far (instant and range), from its own
    ``prometheus_http_requests_total``: nothing else in the benchmark queries it."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{url}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "prometheus_http_requests":
            continue
        for sample in family.samples:
            if (sample.name.endswith("_total")
                    and sample.labels.get("handler", "").startswith("/api/v1/query")):
                total += sample.value
    return total


# -- Canary phases -----------------------------------------------------------------------


#: The phases a rollout ends in.
ENDED = ("Succeeded", "Failed")


@dataclass(frozen=True)
class Seen:
    """A Canary's phase and canary weight, from the moment the watch delivered them."""

    at: float
    phase: str
    weight: int


def ended_at(history: list[Seen], since: float) -> Seen | None:
    """The first end of a rollout seen after ``since``."""
    return next((s for s in history if s.at > since and s.phase in ENDED), None)


def step_lateness(history: list[Seen], since: float, interval: float) -> list[float]:
    """How late each analysis step ran against the interval, for the rollout that began
    after ``since``: the time between two successive rises of the canary weight, less the
    interval (the first step is detection's, measured apart)."""
    end = ended_at(history, since)
    rises, weight = [], 0
    for seen in history:
        if seen.at <= since or (end is not None and seen.at > end.at):
            continue
        if seen.weight > weight:
            rises.append(seen.at)
        weight = seen.weight
    return [round(b - a - interval, 3) for a, b in itertools.pairwise(rises)]


class PhaseWatch:
    """Follows every Canary of a resource through a watch: the phase of each, when all
    reached a phase, the moment an armed Canary first shows one of given phases, and
    every change of a Canary's phase or weight (:attr:`history`)."""

    def __init__(self, kube: KubeClient, resource: r.Resource) -> None:
        self.kube, self.resource = kube, resource
        self.phases: dict[tuple[str, str], str] = {}
        self.history: dict[tuple[str, str], list[Seen]] = {}
        self._armed: dict[tuple[str, str], tuple[frozenset[str], asyncio.Future[float]]] = {}
        self._changed = asyncio.Event()

    def arm(self, namespace: str, name: str, phases: Iterable[str]) -> asyncio.Future[float]:
        """A future set to the monotonic time the Canary is next seen in ``phases``."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._armed[(namespace, name)] = (frozenset(phases), future)
        return future

    def count(self, phase: str) -> int:
        return sum(p == phase for p in self.phases.values())

    async def wait_for_count(self, phase: str, wanted: int, timeout: float) -> float:
        """Until ``wanted`` Canaries are in ``phase``; the monotonic time they were."""
        try:
            return await self.wait_until(lambda: self.count(phase) >= wanted, timeout)
        except TimeoutError:
            raise TimeoutError(f"{self.count(phase)} of {wanted} Canaries {phase} "
                               f"after {timeout:.0f}s") from None

    async def wait_until(self, done: Callable[[], bool], timeout: float) -> float:
        """Until ``done()`` holds, looked at after every change the watch delivers; the
        monotonic time it did. TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not done():
            self._changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return time.monotonic()

    def _seen(self, obj: dict[str, Any], deleted: bool = False) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        if deleted:
            self.phases.pop(key, None)
        else:
            status = obj.get("status") or {}
            self.phases[key] = status.get("phase") or ""
            self._record(key, self.phases[key], int(status.get("canaryWeight") or 0))
        armed = self._armed.get(key)
        if armed and not armed[1].done() and self.phases.get(key) in armed[0]:
            armed[1].set_result(time.monotonic())
            del self._armed[key]
        self._changed.set()

    def _record(self, key: tuple[str, str], phase: str, weight: int) -> None:
        history = self.history.setdefault(key, [])
        if not history or (history[-1].phase, history[-1].weight) != (phase, weight):
            history.append(Seen(time.monotonic(), phase, weight))

    async def run(self) -> None:
        await follow(self.kube, self.resource, self._seen)


def initialized_after_available(histories: dict[tuple[str, str], list[Seen]],
                                available: dict[tuple[str, str], float]
                                ) -> dict[tuple[str, str], float]:
    """Per Canary, the seconds from its primary Deployment (``<name>-primary``) first
    seen Available to the Canary first seen ``Initialized``; Canaries without both
    are left out."""
    delays = {}
    for (namespace, name), history in histories.items():
        ready = available.get((namespace, f"{name}-primary"))
        initialized = next((seen.at for seen in history if seen.phase == "Initialized"),
                           None)
        if ready is not None and initialized is not None:
            delays[(namespace, name)] = initialized - ready
    return delays


class AvailableWatch:
    """Follows every Deployment through a watch: the moment each was first seen with its
    ``Available`` condition true (:attr:`available`)."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.available: dict[tuple[str, str], float] = {}

    def _seen(self, obj: dict[str, Any], deleted: bool = False) -> None:
        meta = obj.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        conditions = (obj.get("status") or {}).get("conditions") or []
        if key not in self.available and not deleted and any(
                c.get("type") == "Available" and c.get("status") == "True"
                for c in conditions):
            self.available[key] = time.monotonic()

    async def run(self) -> None:
        await follow(self.kube, r.DEPLOYMENTS, self._seen)


async def follow(kube: KubeClient, resource: r.Resource,
                 seen: Callable[[dict[str, Any], bool], None]) -> None:
    """List, then watch from there, handing ``seen`` every object (and whether it was
    deleted); list again when the watch is too old."""
    while True:
        listed = await kube.list(resource)
        for obj in listed["items"]:
            seen(obj, False)
        version = listed["metadata"]["resourceVersion"]
        try:
            while True:
                async for event in kube.watch(resource, None, version, timeout_seconds=300):
                    obj = event.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                        seen(obj, event["type"] == "DELETED")
        except Gone:
            continue
        except KubeError:
            await asyncio.sleep(1)
