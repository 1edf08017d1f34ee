"""The people port: alerts to Slack, Microsoft Teams, Discord, Google Chat, Rocket.Chat
and any HTTP receiver.

- :mod:`~canary.notify.alert`: what an alert says (:class:`Alert`, :class:`Evidence`),
  which events become alerts, severity filtering, dashboard links. Pure.
- :mod:`~canary.notify.template`: per-provider message templates and their variables.
- :mod:`~canary.notify.payloads`: one pure builder per provider type.
- :mod:`~canary.notify.delivery`: one POST with retries, backoff and Retry-After.
- :mod:`~canary.notify.notifier`: :class:`Notifier`, queues and workers per provider.

See docs/alerts.md for the user-facing description.
"""

from canary.notify.alert import (
    EVENT_ALERTS,
    SEVERITIES,
    Alert,
    Evidence,
    Severity,
    Target,
    accepts,
    alert_for_event,
    dashboard_url,
    default_subscriptions,
    from_canary,
)
from canary.notify.delivery import DeliveryResult, RetryPolicy
from canary.notify.errors import AddressUnavailable, NotifyError, ProviderUnavailable
from canary.notify.notifier import DeliveryFailure, Notifier, ProviderStats, TemplateProblem
from canary.notify.payloads import BUILDERS, COLOURS, build
from canary.notify.template import VARIABLES, render

__all__ = [
    "BUILDERS", "COLOURS", "EVENT_ALERTS", "SEVERITIES", "VARIABLES", "AddressUnavailable",
    "Alert", "DeliveryFailure", "DeliveryResult", "Evidence", "Notifier", "NotifyError",
    "ProviderStats", "ProviderUnavailable", "RetryPolicy", "Severity", "Target",
    "TemplateProblem", "accepts",
    "alert_for_event", "build", "dashboard_url", "default_subscriptions", "from_canary",
    "render",
]
