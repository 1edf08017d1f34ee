"""Leader election on a ``coordination.k8s.io/v1`` Lease.

Several replicas of the controller may run; only the holder of the Lease works (and so
only it writes). The algorithm is client-go's:

- A Lease is free when it has no holder, or when its record has not changed for the
  lease duration *as measured by this process's monotonic clock* since it was last seen
  to change. Wall-clock timestamps in the Lease (written in UTC, for people and other
  tools) are never compared across machines, so clock skew cannot cause two leaders. The
  lease duration a follower waits is the larger of its own and the one stored in the
  Lease (whole seconds, rounded up when written), so neither a holder configured with a
  fractional duration nor one configured longer than the follower can be cut short.
- Taking or renewing is a PUT carrying the resourceVersion that was read: of two
  contenders, one gets 409 Conflict and stays a follower.
- The holder renews every ``retry_period``. If it cannot renew for ``renew_deadline``
  (shorter than ``lease_duration``), it gives up: :meth:`LeaderElector.hold` returns and the
  caller stops all work at once, before any follower may consider the Lease expired.
- On a graceful stop the holder releases the Lease (no holder, duration 1 s), so a follower
  takes over without waiting for expiry.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from canary.kube import resources as r
from canary.kube.client import JSON
from canary.kube.errors import Conflict, KubeError, NotFound, NotLeader

log = structlog.get_logger("canary.lease")


@dataclass(frozen=True)
class LeaseSettings:
    """Where the Lease lives and how long leadership lasts (seconds)."""

    namespace: str
    identity: str
    name: str = "canary-leader"
    #: How long followers wait after the last observed change before taking the Lease.
    lease_duration: float = 15.0
    #: How long the leader keeps trying to renew before it stops working.
    renew_deadline: float = 10.0
    #: Time between attempts to take or renew.
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        check_timing(self.lease_duration, self.renew_deadline, self.retry_period)

    @property
    def lease_duration_seconds(self) -> int:
        """``leaseDurationSeconds`` as written: whole seconds, rounded *up*, so a follower
        that trusts it never waits less than this holder's lease duration."""
        return math.ceil(self.lease_duration)


def check_timing(lease_duration: float, renew_deadline: float, retry_period: float, *,
                 names: tuple[str, str, str] | None = None) -> None:
    """ValueError unless ``lease_duration >= 1`` and ``lease_duration > renew_deadline >
    retry_period > 0`` (seconds): the rules of :class:`LeaseSettings`. ``names`` are how
    the message calls the three values, e.g. the flags they came from; by default "the
    lease duration (15s)" and so on."""
    lease, renew, retry = names or (f"the lease duration ({lease_duration:g}s)",
                                    f"the renew deadline ({renew_deadline:g}s)",
                                    f"the retry period ({retry_period:g}s)")
    if lease_duration < 1:
        # The Lease stores whole seconds; below one second there is nothing to store.
        raise ValueError(f"{lease} is less than 1s (the Lease holds whole seconds)")
    if not lease_duration > renew_deadline > retry_period > 0:
        raise ValueError(f"{lease} must exceed {renew}, which must exceed {retry}, which "
                         "must exceed 0s")


class LeaseClient(Protocol):
    """What the elector needs from the API: read, create and replace one Lease
    (:class:`canary.kube.KubeClient` provides it; tests use an in-memory fake)."""

    async def get(self, resource: r.Resource, name: str, namespace: str | None = None
                  ) -> JSON: ...

    async def create(self, resource: r.Resource, body: JSON, namespace: str | None = None
                     ) -> JSON: ...

    async def replace(self, resource: r.Resource, body: JSON, namespace: str | None = None,
                      subresource: str | None = None) -> JSON: ...


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes, keeps and releases one Lease on behalf of this process."""

    def __init__(self, client: LeaseClient, settings: LeaseSettings,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.client = client
        self.settings = settings
        #: Monotonic seconds; every expiry and deadline is measured on it.
        self.clock = clock
        #: Only for the timestamps written into the Lease.
        self.wall_clock = wall_clock
        #: How the elector waits between attempts (a test moves its fake clock here).
        self.sleep = sleep
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        #: When leadership ends unless renewed (this process's monotonic clock).
        self._deadline = 0.0
        self.leading = False

    async def acquire(self) -> None:
        """Return once this process holds the Lease."""
        log.info("waiting for the leader lease", lease=self._lease_name,
                 identity=self.settings.identity)
        while True:
            started = self.clock()
            if await self._try_acquire_or_renew(self.settings.renew_deadline):
                self._deadline = started + self.settings.renew_deadline
                break
            await self.sleep(self.settings.retry_period)
        self.leading = True
        log.info("became leader", lease=self._lease_name, identity=self.settings.identity)

    async def hold(self) -> None:
        """Renew until the renew deadline passes without a renewal, or another holder is
        seen; then return (leadership lost).

        The deadline counts from the moment the last successful attempt *started*, and no
        attempt may outlive it: followers count the lease duration from when they saw that
        renewal, which cannot be earlier, so the leader always stops first.
        """
        while True:
            await self.sleep(max(0.0, min(self.settings.retry_period,
                                          self._deadline - self.clock())))
            started = self.clock()
            remaining = self._deadline - started
            if remaining > 0 and await self._try_acquire_or_renew(remaining):
                self._deadline = started + self.settings.renew_deadline
                continue
            if self._held_by_other() or self.clock() >= self._deadline:
                self.leading = False
                log.error("lost the leader lease", lease=self._lease_name,
                          identity=self.settings.identity,
                          holder=(self._observed or ("",))[0] or None)
                return

    def ensure_leading(self) -> None:
        """Raise :class:`NotLeader` unless this replica holds the Lease and renewed it
        within the renew deadline, on its monotonic clock. :meth:`hold` notices a lost
        Lease only when it next runs; a process paused past the lease duration (a
        SIGSTOP, a frozen VM) resumes with work queued before it, and this check is what
        keeps that work from writing beside the new leader."""
        if not self.leading or self.clock() >= self._deadline:
            raise NotLeader(f"not the holder of the leader Lease {self._lease_name} "
                            f"(last renewal more than {self.settings.renew_deadline:g}s ago)")

    async def release(self, timeout: float = 5.0) -> None:
        """Give the Lease up (best effort, within ``timeout`` seconds) so a follower need
        not wait for it to expire."""
        if not self.leading:
            return
        self.leading = False
        try:
            async with asyncio.timeout(timeout):
                await self._release()
        except TimeoutError:
            log.warning("could not release the leader lease in time", lease=self._lease_name)

    async def _release(self) -> None:
        try:
            lease = await self.client.get(r.LEASES, self.settings.name, self.settings.namespace)
            if (lease.get("spec") or {}).get("holderIdentity") != self.settings.identity:
                return
            now = micro_time(self.wall_clock())
            lease["spec"] |= {"holderIdentity": None, "leaseDurationSeconds": 1,
                              "renewTime": now}
            await self.client.replace(r.LEASES, lease, self.settings.namespace)
            log.info("released the leader lease", lease=self._lease_name)
        except KubeError as exc:
            log.warning("could not release the leader lease", error=str(exc))

    @property
    def _lease_name(self) -> str:
        return f"{self.settings.namespace}/{self.settings.name}"

    def _held_by_other(self) -> bool:
        holder = (self._observed or ("",))[0]
        return bool(holder) and holder != self.settings.identity

    async def _try_acquire_or_renew(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                return await self._attempt()
        except (KubeError, TimeoutError) as exc:
            log.warning("leader lease attempt failed", lease=self._lease_name, error=str(exc))
            return False

    async def _attempt(self) -> bool:
        s = self.settings
        now = self.wall_clock()
        try:
            lease = await self.client.get(r.LEASES, s.name, s.namespace)
        except NotFound:
            try:
                await self.client.create(r.LEASES, {
                    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": s.name, "namespace": s.namespace},
                    "spec": self._spec(now, acquired=True, transitions=0)}, s.namespace)
            except Conflict:
                return False
            self._observe((s.identity, micro_time(now), s.lease_duration_seconds))
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        self._observe((holder, spec.get("renewTime"), spec.get("leaseDurationSeconds")))
        duration = max(s.lease_duration, _seconds(spec.get("leaseDurationSeconds")))
        expired = self.clock() - self._observed_at >= duration
        if holder and holder != s.identity and not expired:
            return False
        taking_over = holder != s.identity
        transitions = int(spec.get("leaseTransitions") or 0) + (1 if taking_over else 0)
        lease["spec"] = spec | self._spec(now, acquired=taking_over, transitions=transitions)
        if not taking_over:
            lease["spec"]["acquireTime"] = spec.get("acquireTime") or micro_time(now)
        try:
            await self.client.replace(r.LEASES, lease, s.namespace)
        except Conflict:
            return False
        self._observe((s.identity, micro_time(now), s.lease_duration_seconds))
        return True

    def _spec(self, now: datetime, *, acquired: bool, transitions: int) -> JSON:
        spec: JSON = {"holderIdentity": self.settings.identity,
                      "leaseDurationSeconds": self.settings.lease_duration_seconds,
                      "renewTime": micro_time(now), "leaseTransitions": transitions}
        if acquired:
            spec["acquireTime"] = micro_time(now)
        return spec

    def _observe(self, record: tuple[Any, ...]) -> None:
        """Note when the Lease's record was last seen to change, by our own clock."""
        if record != self._observed:
            self._observed = record
            self._observed_at = self.clock()


def _seconds(value: Any) -> float:
    """A stored ``leaseDurationSeconds``; 0 when absent or not a number (then only this
    process's own lease duration counts)."""
    try:
        return max(0.0, float(value or 0))
    except (TypeError, ValueError):
        return 0.0
