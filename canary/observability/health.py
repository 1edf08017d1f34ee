"""Readiness and liveness of the controller, answerable from any thread.

Ready means every declared watch has completed its first list: before that the caches
are incomplete and a decision could act on a partial picture. A replica that declared no
watches yet (a standby waiting for the leader Lease) is ready: it is ready to take over.

Alive means two things, both checked from the probe server's own thread, because a
stuck event loop cannot answer an HTTP request about itself:

- the event loop turns: :meth:`Health.heartbeat` (a task on the loop) records the time
  every ``heartbeat_interval_seconds``; when the last beat is older than
  ``loop_stall_seconds`` the loop is blocked (a synchronous call, a CPU-bound bug, a
  deadlock) and the process should be restarted;
- every watch still hears from the API server: each event, each bookmark and the normal
  end of each watch request counts. The API server ends a watch at its timeout (at most
  240 s, :class:`canary.kube.WatchSettings`), so even a stream in a namespace where
  nothing happens, and to which no bookmark comes, shows activity within
  ``watch_silence_seconds``; a watch silent for longer is stuck on a connection that will
  never deliver again, the failure kopf users meet most often. A watch that cannot reconnect
  at all (the API server unreachable that long) is reported the same way; a restart then
  starts from fresh connections and credentials.

All times come from one monotonic clock (``time.monotonic`` unless a test injects
another), the clock :class:`canary.kube.Reflector` uses for ``last_activity``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Clock = Callable[[], float]


@dataclass(frozen=True)
class HealthSettings:
    """How quickly the probes give up; every value in seconds."""

    #: Time between two heartbeats of the event loop.
    heartbeat_interval_seconds: float = 1.0
    #: A loop without a heartbeat for this long is stalled. Generous, so that a busy
    #: 2-core node or a long garbage collection never restarts a working controller.
    loop_stall_seconds: float = 30.0
    #: A watch without any event, bookmark or end of a watch request for this long is
    #: silent; it must exceed the longest watch timeout (``WatchSettings``, 240 s).
    watch_silence_seconds: float = 300.0


@dataclass(frozen=True)
class Check:
    """The result of a probe: ok, or the problems found, one sentence each."""

    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return "\n".join(self.problems) if self.problems else "ok"


class Health:
    """What /readyz and /healthz report, for a declared set of watched resources."""

    def __init__(self, resources: Iterable[str] = (), settings: HealthSettings | None = None,
                 *, clock: Clock = time.monotonic, starting: bool = False) -> None:
        self.settings = settings or HealthSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._starting = False
        self._resources: tuple[str, ...] = ()
        self._listed: set[str] = set()
        #: Last activity per watch; a watch not heard from yet counts from its declaration.
        self._touched: dict[str, float] = {}
        self._sources: dict[str, Callable[[], float]] = {}
        self._last_beat = clock()
        self.declare(resources)
        #: Not ready until the process says what it watches (:meth:`declare`) or that
        #: it waits as a standby (:meth:`standby`): its probes may answer before.
        self._starting = starting and not self._resources

    @property
    def resources(self) -> tuple[str, ...]:
        with self._lock:
            return self._resources

    def declare(self, resources: Iterable[str]) -> None:
        """Watches that start now: readiness waits for their first list, liveness for
        their silence counts from now. A standby replica (leader election) declares its
        watches only when it starts them, so it stays ready and alive while it waits."""
        now = self._clock()
        with self._lock:
            self._starting = False
            for resource in resources:
                if resource not in self._touched:
                    self._resources += (resource,)
                    self._touched[resource] = now

    def standby(self) -> None:
        """The process waits for the leader Lease before it watches anything: ready."""
        with self._lock:
            self._starting = False

    def _known(self, resource: str) -> None:
        with self._lock:
            known = resource in self._touched
            declared = ", ".join(self._resources)
        if not known:
            raise ValueError(f"{resource!r} is not a declared resource ({declared})")

    # -- fed by the controller ----------------------------------------------------------

    def mark_listed(self, resource: str) -> None:
        """The watch on ``resource`` completed its first list (which is also activity)."""
        self._known(resource)
        with self._lock:
            self._listed.add(resource)
            self._touched[resource] = self._clock()

    def touch(self, resource: str) -> None:
        """The watch on ``resource`` received something: an event or a bookmark."""
        self._known(resource)
        with self._lock:
            self._touched[resource] = self._clock()

    def follow(self, resource: str, last_activity: Callable[[], float]) -> None:
        """Read the watch's last activity from ``last_activity`` at each probe, instead of
        (or besides) :meth:`touch`: e.g. ``lambda: reflector.last_activity``, which
        bookmarks update too. It must use this Health's clock and be safe to call from
        another thread (reading one float attribute is)."""
        self._known(resource)
        with self._lock:
            self._sources[resource] = last_activity

    def beat(self) -> None:
        """The event loop is turning."""
        with self._lock:
            self._last_beat = self._clock()

    async def heartbeat(self) -> None:
        """Beat every ``heartbeat_interval_seconds`` until cancelled; run it as a task on
        the controller's loop as soon as the loop starts."""
        while True:
            self.beat()
            await asyncio.sleep(self.settings.heartbeat_interval_seconds)

    # -- read by the probes -------------------------------------------------------------

    def readiness(self) -> Check:
        with self._lock:
            if self._starting:
                return Check(("starting: the watches are not started yet",))
            missing = [r for r in self._resources if r not in self._listed]
        if not missing:
            return Check()
        return Check((f"waiting for the first list of {', '.join(missing)}",))

    def liveness(self) -> Check:
        now = self._clock()
        with self._lock:
            last_beat = self._last_beat
            resources = self._resources
            touched = dict(self._touched)
            sources = dict(self._sources)
        problems = []
        stalled = now - last_beat
        if stalled > self.settings.loop_stall_seconds:
            problems.append(f"event loop stalled for {_seconds(stalled)}")
        for resource in resources:
            last = touched[resource]
            if resource in sources:
                try:
                    last = max(last, sources[resource]())
                except Exception as exc:  # a probe must answer, whatever the source does
                    problems.append(f"watch {resource}: its activity cannot be read: {exc}")
                    continue
            silent = now - last
            if silent > self.settings.watch_silence_seconds:
                problems.append(f"watch {resource} silent for {_seconds(silent)}")
        return Check(tuple(problems))


def _seconds(value: float) -> str:
    return f"{value:.0f}s" if value >= 10 else f"{value:.1f}s"
