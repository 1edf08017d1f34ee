"""The decision core: pure functions from (Canary, observation) to (status, actions)."""

from canary.core.actions import Action, EnsurePrimary, Route, ScaleCanary
from canary.core.decide import Decision, DecisionSettings, Event, decide
from canary.core.observation import MISSING, MetricValue, Observation, Workload
from canary.core.revision import template_hash

__all__ = [
    "MISSING", "Action", "Decision", "DecisionSettings", "EnsurePrimary", "Event",
    "MetricValue", "Observation", "Route", "ScaleCanary", "Workload", "decide", "template_hash",
]
