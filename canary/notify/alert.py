"""What an alert says, independent of where it goes.

An :class:`Alert` is plain data built from a Canary and one of the decision's events; the
payload builders turn it into each chat service's JSON. Pure: no I/O, no clock (the
:class:`~canary.notify.Notifier` stamps the time when it accepts an alert).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from canary.models.canary import Canary, CanaryAlert, MetricResult

Severity = Literal["info", "warn", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warn", "error")
_RANK: Mapping[str, int] = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def accepts(subscribed: Severity, severity: Severity) -> bool:
    """Whether a subscription at ``subscribed`` hears an alert of ``severity``: ``info``
    hears everything, ``warn`` hears warnings and errors, ``error`` only errors."""
    return _RANK[severity] >= _RANK[subscribed]


def default_subscriptions(provider: tuple[str, str] | None, severity: Severity = "info"
                          ) -> tuple[CanaryAlert, ...]:
    """What a Canary without ``analysis.alerts`` of its own subscribes to: the controller's
    default AlertProvider (``(namespace, name)``) at ``severity``, or nothing."""
    if provider is None:
        return ()
    namespace, name = provider
    return (CanaryAlert.model_validate({"name": "default", "severity": severity,
                                        "providerRef": {"name": name,
                                                        "namespace": namespace}}),)


def number(value: float | None) -> str:
    """A measured value or bound as people read it: ``99.5``, ``500``, ``1.2e+06``."""
    return "" if value is None else f"{value:g}"


@dataclass(frozen=True)
class Evidence:
    """One check of the analysis: the metric, what it measured, its bounds, the verdict."""

    metric: str
    value: float | None
    min: float | None = None
    max: float | None = None
    #: Passed, Failed, NoValues or Error (as in the Canary's status).
    verdict: str = "Passed"
    message: str | None = None

    @classmethod
    def from_result(cls, result: MetricResult) -> Evidence:
        return cls(result.name, result.value, result.min, result.max, result.verdict,
                   result.message)

    @property
    def failed(self) -> bool:
        return self.verdict != "Passed"

    def bound(self) -> str:
        """The range a value must stay in: ``>= 99``, ``<= 500`` or ``90 to 100``."""
        if self.min is not None and self.max is not None:
            return f"{number(self.min)} to {number(self.max)}"
        if self.min is not None:
            return f">= {number(self.min)}"
        if self.max is not None:
            return f"<= {number(self.max)}"
        return "none"

    def shown_value(self) -> str:
        """The value, or why there is none."""
        if self.value is not None:
            return number(self.value)
        if self.verdict == "NoValues":
            return "no values"
        return self.message or "not measured"

    def summary(self) -> str:
        """One line: ``request-success-rate 95.2 (bound >= 99): Failed``."""
        if self.value is None and self.min is None and self.max is None:
            return f"{self.metric}: {self.shown_value()} ({self.verdict})"
        return f"{self.metric} {self.shown_value()} (bound {self.bound()}): {self.verdict}"


@dataclass(frozen=True)
class Target:
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Alert:
    """One thing worth telling people about a Canary."""

    canary: str
    namespace: str
    target: Target
    severity: Severity
    #: CamelCase: Progressing, Promoted, RolledBack, CheckFailed, Waiting, ...
    reason: str
    #: The human sentence, e.g. the decision's event message.
    message: str
    #: The phase after the change, and before it (None when unknown or unchanged).
    phase: str
    previous_phase: str | None = None
    #: The canary's share of traffic, percent, after the change.
    weight: int = 0
    #: On a rollback, the canary's weight when it was rolled back (the weight it is
    #: reset from); None for other alerts, or when the canary never had traffic.
    rolled_back_at: int | None = None
    #: The last analysis of the revision being delivered; the failing checks are shown.
    evidence: tuple[Evidence, ...] = ()
    dashboard_url: str | None = None
    revision: str | None = None
    time: datetime | None = None

    @property
    def failing(self) -> tuple[Evidence, ...]:
        return tuple(e for e in self.evidence if e.failed)

    @property
    def title(self) -> str:
        """``Rolled back: test/podinfo``."""
        return f"{words(self.reason)}: {self.namespace}/{self.canary}"

    def shown_weight(self) -> str:
        """``30%``, or ``0% (rolled back at 30%)`` on a rollback."""
        if self.rolled_back_at:
            return f"{self.weight}% (rolled back at {self.rolled_back_at}%)"
        return f"{self.weight}%"

    def phase_change(self) -> str:
        """``Progressing → Failed``, or the phase alone when it did not change."""
        if self.previous_phase and self.previous_phase != self.phase:
            return f"{self.previous_phase} → {self.phase}"
        return self.phase


def words(reason: str) -> str:
    """``RolledBack`` -> ``Rolled back``."""
    parts = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", reason) or [reason]
    text = " ".join(p if p.isupper() and len(p) > 1 else p.lower() for p in parts)
    return text[:1].upper() + text[1:]


#: The decision's events that become alerts: event reason -> (alert reason, severity).
#: Steps that only move traffic (WeightIncreased, ...) stay events: a chat channel that
#: hears every step stops being read.
EVENT_ALERTS: Mapping[str, tuple[str, Severity]] = {
    "Initialized": ("Initialized", "info"),
    "NewRevision": ("Progressing", "info"),
    "WaitingForApproval": ("Waiting", "info"),
    "Paused": ("Paused", "info"),
    "Resumed": ("Resumed", "info"),
    "Promoting": ("Promoting", "info"),
    "Promoted": ("Promoted", "info"),
    "AnalysisFailed": ("CheckFailed", "warn"),
    "RolledBack": ("RolledBack", "error"),
    "ProgressDeadlineExceeded": ("DeadlineExceeded", "error"),
    "TargetNotFound": ("TargetNotFound", "error"),
    "UnsupportedTarget": ("UnsupportedTarget", "error"),
    "UnsupportedProvider": ("UnsupportedProvider", "error"),
}


def from_canary(canary: Canary, *, reason: str, message: str, severity: Severity,
                previous_phase: str | None = None, previous_weight: int | None = None,
                dashboard: str | None = None, time: datetime | None = None) -> Alert:
    """An alert about ``canary`` as just decided (its new status).

    The evidence is the last analysis when it concerns the revision being delivered, so
    an alert about a new revision never shows the previous revision's numbers.
    ``previous_weight`` is the canary's weight before the decision: a rollback resets the
    weight to 0, so its alert says the weight it was rolled back at (without it, the
    weight of the last analysis of this revision). ``dashboard`` is the Grafana
    dashboard's base URL (see :func:`dashboard_url`).
    """
    status = canary.status
    analysis = status.last_analysis
    evidence: tuple[Evidence, ...] = ()
    current = analysis is not None and analysis.revision == status.last_applied_spec
    if analysis is not None and current:
        evidence = tuple(Evidence.from_result(r) for r in analysis.results)
    rolled_back_at = None
    if reason == "RolledBack":
        rolled_back_at = previous_weight
        if rolled_back_at is None and analysis is not None and current:
            rolled_back_at = analysis.weight
    target = canary.spec.target_ref
    return Alert(
        canary=canary.name, namespace=canary.namespace,
        target=Target(target.kind, target.name), severity=severity, reason=reason,
        message=message, phase=str(status.phase or ""), previous_phase=previous_phase,
        weight=status.canary_weight or 0, rolled_back_at=rolled_back_at or None,
        evidence=evidence,
        dashboard_url=dashboard_url(dashboard, canary.namespace, canary.name)
        if dashboard else None,
        revision=status.last_applied_spec, time=time)


def alert_for_event(canary: Canary, event_reason: str, message: str, *,
                    previous_phase: str | None = None, previous_weight: int | None = None,
                    dashboard: str | None = None,
                    time: datetime | None = None) -> Alert | None:
    """The alert for one of the decision's events, or None when it is not alert-worthy
    (see :data:`EVENT_ALERTS`)."""
    known = EVENT_ALERTS.get(event_reason)
    if known is None:
        return None
    reason, severity = known
    return from_canary(canary, reason=reason, message=message, severity=severity,
                       previous_phase=previous_phase, previous_weight=previous_weight,
                       dashboard=dashboard, time=time)


def dashboard_url(base: str, namespace: str, name: str, *,
                  namespace_variable: str = "namespace",
                  canary_variable: str = "canary") -> str:
    """A Grafana link showing one canary: ``base`` with ``var-namespace`` and
    ``var-canary`` set (replacing any already there, keeping the rest, e.g. ``orgId``)."""
    parts = urlsplit(base)
    names = {f"var-{namespace_variable}", f"var-{canary_variable}"}
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in names]
    query += [(f"var-{namespace_variable}", namespace), (f"var-{canary_variable}", name)]
    return urlunsplit(parts._replace(query=urlencode(query)))
