"""What must hold before canary moves traffic: the primary can serve, and every reference
of the spec resolves.

A rollout moves traffic between two workloads. Moving it towards one with no available
pods, or starting a rollout whose analysis cannot run, turns a release into an outage, so
the decision asks these questions first and holds the change while any answer is no.
"""

from __future__ import annotations

from dataclasses import dataclass

from canary.core.observation import Observation
from canary.models.canary import Phase

#: Phases in which the primary already exists and takes the traffic the canary does not.
_ESTABLISHED = (Phase.INITIALIZED, Phase.WAITING, Phase.QUEUED, Phase.PROGRESSING,
                Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED, Phase.FAILED)
#: Phases in which the primary's own rollout is expected to be incomplete.
_PRIMARY_ROLLING = (Phase.PROMOTING, Phase.FINALISING)


@dataclass(frozen=True)
class Problem:
    """Why the Canary is not Ready: a condition reason and its message."""

    reason: str
    message: str


def primary_unavailable(obs: Observation, phase: Phase | None, primary: str) -> str | None:
    """Why ``primary`` cannot serve any traffic at all (no Deployment, no available pod);
    None while it can, or before the Canary has one."""
    if phase not in _ESTABLISHED:
        return None
    if not obs.primary.exists:
        return f"Deployment {primary} not found"
    if obs.primary.available == 0:
        return f"{primary} has no available pods ({obs.primary.detail or 'not ready'})"
    return None


def readiness_problem(obs: Observation, phase: Phase | None, primary: str) -> Problem | None:
    """The first reason the Canary cannot deliver a new revision now, in order of what a
    person must fix first; None when it can."""
    if obs.missing_references:
        return Problem("MissingReference", "; ".join(obs.missing_references))
    if obs.invalid_references:
        return Problem("InvalidVariable", "; ".join(obs.invalid_references))
    unavailable = primary_unavailable(obs, phase, primary)
    if unavailable is not None:
        return Problem("PrimaryUnavailable", unavailable)
    if phase in _ESTABLISHED and phase not in _PRIMARY_ROLLING and not obs.primary.ready:
        return Problem("PrimaryNotReady", f"{primary} is not ready: "
                       f"{obs.primary.detail or 'its rollout is incomplete'}")
    return None
