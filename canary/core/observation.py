"""What the controller observed, handed to the decision as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Workload:
    """A Deployment as the decision needs to see it."""

    exists: bool
    #: For the target: its template's hash. For the primary: the revision it was given.
    revision: str | None = None
    replicas: int = 0
    #: The rollout is complete and every replica is available.
    ready: bool = False
    #: Why it is not ready (for status and events).
    detail: str = ""
    #: Replicas available to serve (ready for minReadySeconds): zero means no pod would
    #: answer the traffic routed to it.
    available: int = 0


MISSING = Workload(exists=False, detail="not found")


@dataclass(frozen=True)
class MetricValue:
    """A measured value: ``value`` None means the query returned no values; ``error`` set
    means the query itself failed, and ``unavailable`` that it failed because the metrics
    server could not answer (an outage: no evidence either way)."""

    name: str
    value: float | None = None
    error: str | None = None
    query: str | None = None
    unavailable: bool = False


@dataclass(frozen=True)
class Counters:
    """One version's cumulative counters for a judged metric, as read from Prometheus:
    whole numbers since the counters started. For the error rate, ``requests`` and
    ``errors``; for latency, the histogram's ``buckets`` as ``(le, count)`` pairs,
    cumulative in ``le`` and ending at ``+Inf`` (empty when the version has no series).

    ``present`` says whether Prometheus had any series of the version (without, the counts
    are zeros by default, not measurements). ``lost`` is how many of its series vanished,
    went down or came back after an absence since the previous reading, and
    ``previous`` how many requests Prometheus shows now at the previous reading's instant
    (both None: not checked, as for the first reading)."""

    requests: int = 0
    errors: int = 0
    buckets: tuple[tuple[float, int], ...] = ()
    present: bool = True
    lost: int | None = None
    previous: int | None = None


@dataclass(frozen=True)
class JudgeReading:
    """The counters of one judged metric for the canary and the primary, read at one
    instant; ``error`` set means they could not be read (no evidence for the step).

    ``at`` is that instant (unix seconds, whole milliseconds) and ``since`` the instant
    of the previous reading that the counters' ``lost`` series were checked against.
    ``unavailable`` says the error is the metrics server's outage.
    ``earlier`` is the same counters one analysis interval before ``at``, read while the
    metric has no judged step yet: the traffic before the rollout, for the power check
    (an estimate only, never evidence)."""

    name: str
    canary: Counters = field(default_factory=Counters)
    primary: Counters = field(default_factory=Counters)
    error: str | None = None
    queries: tuple[str, ...] = ()
    at: float | None = None
    since: float | None = None
    earlier: JudgeReading | None = None
    unavailable: bool = False


@dataclass(frozen=True)
class ManualRequests:
    """Decisions a person took, recorded on the Canary so they survive restarts. Approve,
    promote and abort name the revision they apply to, so a request never outlives its
    rollout."""

    #: Let the held (Waiting) rollout of this revision start, as if confirm-rollout passed.
    approve_revision: str | None = None
    #: Promote this revision now, skipping the rest of its analysis.
    promote_revision: str | None = None
    #: Roll this revision back now, or refuse it while it is held.
    abort_revision: str | None = None
    paused: bool = False


@dataclass(frozen=True)
class HookResult:
    """One webhook's answer: ``passed`` when it answered 2xx."""

    name: str
    type: str
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class FieldOwner:
    """A field manager other than canary that owns a field canary manages (the target's
    ``spec.replicas``), as the target's managedFields say: a GitOps controller
    re-applying a manifest, a person's ``kubectl apply``."""

    manager: str
    #: ``Apply`` (server-side apply) or ``Update``.
    operation: str = "Apply"
    #: When its entry last changed, in the API server's clock (second precision); None
    #: when the entry has no time.
    time: datetime | None = None


@dataclass(frozen=True)
class RouteHold:
    """Why the data plane does not follow the routing canary wrote. ``refused``: it said
    no, or the route cannot be built or found (a Warning); otherwise it has not reported
    on the route yet, a normal wait after each write."""

    message: str
    refused: bool


@dataclass(frozen=True)
class Observation:
    now: datetime
    target: Workload
    primary: Workload
    #: Set only when the decision asked for an analysis and the controller ran it.
    metrics: tuple[MetricValue, ...] | None = None
    #: The judged metrics' counters, read with the metrics when the analysis has a judge.
    judge: tuple[JudgeReading, ...] | None = None
    #: Webhook answers by type, for the types the decision asked for.
    hooks: dict[str, tuple[HookResult, ...]] | None = None
    #: The Canary's metadata.generation.
    generation: int = 0
    #: Why the target cannot be delivered as it is, if it cannot (names the field).
    target_problem: str | None = None
    #: Why the Canary's ``spec.provider`` cannot route its traffic (this controller does
    #: not implement it): the Canary then changes nothing.
    provider_problem: str | None = None
    #: Why the data plane does not follow the routing canary wrote yet (a Gateway has not
    #: reported on the route or refused it, naming the Gateway and its reason); None once
    #: it does. The weights hold while it is set.
    route_pending: RouteHold | None = None
    #: What a person asked for (``canary promote/abort/pause``), from annotations.
    requests: ManualRequests = field(default_factory=lambda: ManualRequests())
    #: Why another Canary keeps what this one would manage (its target or an object
    #: canary generates): this Canary then changes nothing.
    conflict: str | None = None
    #: The references of the spec that name missing objects (MetricTemplates, the
    #: autoscaler, template variables, the configs the target's pods need), each naming
    #: its field; a new revision waits.
    missing_references: tuple[str, ...] = ()
    #: Template variables whose values do not fit their places in their MetricTemplates'
    #: queries, each naming its field; a new revision waits.
    invalid_references: tuple[str, ...] = ()
    #: Why the objects above may be out of date (a watch broke and has not caught up):
    #: deadlines then wait, so that nothing is rolled back for the lack of a change the
    #: cluster made while the controller could not see it.
    stale: str | None = None
    #: Why a new revision may not start its rollout now (the controller's limit on
    #: concurrent rollouts is reached, or others queued first), naming its place in the
    #: queue; None when it may start (always, without a limit).
    rollout_slot: str | None = None
    #: Who else owns the target's ``spec.replicas`` (not canary, not an autoscaler writing
    #: through the scale subresource); None when nobody else does.
    replicas_owner: FieldOwner | None = None
