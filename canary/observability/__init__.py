"""What the controller tells about itself: Prometheus metrics and health probes.

- :mod:`~canary.observability.metrics`: :class:`ControllerMetrics`, the ``canary_*``
  metrics in a registry of their own, set from each Canary's status and from what the
  controller does; optionally Flagger's ``flagger_*`` names
  (:mod:`~canary.observability.flagger`).
- :mod:`~canary.observability.health`: :class:`Health`, readiness (every watch listed)
  and liveness (the event loop turns, no watch has gone silent).
- :mod:`~canary.observability.server`: :class:`ObservabilityServer`, ``/metrics``,
  ``/healthz`` and ``/readyz`` served from a thread, so a stuck loop is still reported.

Names, labels and probe semantics: docs/metrics.md.
"""

from canary.observability.health import Check, Health, HealthSettings
from canary.observability.metrics import ControllerMetrics, rollout_seconds
from canary.observability.server import ObservabilityServer, parse_address

__all__ = ["Check", "ControllerMetrics", "Health", "HealthSettings", "ObservabilityServer",
           "parse_address", "rollout_seconds"]
