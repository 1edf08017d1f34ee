"""Message templates: an AlertProvider's ``messageTemplate`` replaces the default text.

Templates are Python :class:`string.Template` strings (``$name`` or ``${name}``, ``$$`` for
a literal dollar): no expressions and no attribute access, so a template in a
namespace-scoped resource cannot reach into the controller. Unknown names are left as
written rather than failing, so a typo shows in the message instead of losing it, and
the notifier reports them (:func:`unknown_variables`) in a Warning event on the Canary.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Template

from canary.notify.alert import Alert, number

#: Every variable a template may use, and what it holds.
VARIABLES: Mapping[str, str] = {
    "canary": "the Canary's name",
    "namespace": "the Canary's namespace",
    "target": "the target Deployment's name",
    "target_kind": "the target's kind (Deployment)",
    "phase": "the phase after the change (Progressing, Succeeded, Failed, ...)",
    "previous_phase": "the phase before the change (empty when unknown)",
    "weight": "the canary's traffic weight, percent",
    "rolled_back_at": "on a rollback, the weight it was rolled back at (else empty)",
    "severity": "info, warn or error",
    "reason": "Progressing, Promoted, RolledBack, CheckFailed, Waiting, ...",
    "message": "the default message (the decision's own sentence)",
    "metric": "the first failing metric's name (empty when none failed)",
    "value": "its measured value",
    "bound": "its bound: >= 99, <= 500 or 90 to 100",
    "min": "its lower bound (empty when none)",
    "max": "its upper bound (empty when none)",
    "evidence": "every failing check, '; '-separated: name value (bound ...): verdict",
    "dashboard": "the Grafana link (empty when none is configured)",
    "revision": "the revision being delivered",
}


def variables(alert: Alert) -> dict[str, str]:
    """The values of :data:`VARIABLES` for one alert."""
    failing = alert.failing
    first = failing[0] if failing else None
    return {
        "canary": alert.canary,
        "namespace": alert.namespace,
        "target": alert.target.name,
        "target_kind": alert.target.kind,
        "phase": alert.phase,
        "previous_phase": alert.previous_phase or "",
        "weight": str(alert.weight),
        "rolled_back_at": "" if alert.rolled_back_at is None else str(alert.rolled_back_at),
        "severity": alert.severity,
        "reason": alert.reason,
        "message": alert.message,
        "metric": first.metric if first else "",
        "value": first.shown_value() if first else "",
        "bound": first.bound() if first else "",
        "min": number(first.min) if first else "",
        "max": number(first.max) if first else "",
        "evidence": "; ".join(e.summary() for e in failing),
        "dashboard": alert.dashboard_url or "",
        "revision": alert.revision or "",
    }


def render(template: str | None, alert: Alert) -> str:
    """The alert's text: the template filled in, or the default message without one."""
    if not template:
        return alert.message
    return Template(template).safe_substitute(variables(alert))


def unknown_variables(template: str) -> list[str]:
    """Names a template uses that are not in :data:`VARIABLES`, in order of use."""
    return [name for name in Template(template).get_identifiers() if name not in VARIABLES]
