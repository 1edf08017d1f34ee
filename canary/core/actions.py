"""What the decision asks the controller to make true. Every action is idempotent: doing
it twice, or again after a restart, leaves the world as doing it once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class EnsurePrimary:
    """The primary Deployment runs the target's template of ``revision``."""

    revision: str


@dataclass(frozen=True)
class ScaleCanary:
    """The target (the canary) runs ``replicas`` pods; None means as many as the primary."""

    replicas: int | None


@dataclass(frozen=True)
class Route:
    """Services, DestinationRules and the VirtualService exist, sending ``canary_weight``
    percent to the canary and the rest to the primary; with ``match_to_canary`` the
    requests matching ``analysis.match`` all go to the canary first (A/B testing); with
    ``mirror_percent`` that share of the primary's requests is copied to the canary."""

    canary_weight: int
    match_to_canary: bool = False
    mirror_percent: float | None = None
    #: Session affinity: the ``name=value`` cookie the canary sets (with ``Max-Age``
    #: ``sticky_max_age`` seconds) and that sends its bearer to the canary from then on.
    sticky_cookie: str | None = None
    sticky_max_age: int = 86400


@dataclass(frozen=True)
class EnsureAutoscaler:
    """The primary has its own copy of the user's HorizontalPodAutoscaler (spec.autoscalerRef),
    following every edit of the original."""


@dataclass(frozen=True)
class CallHooks:
    """Call the webhooks of ``type`` for their own sake (post-rollout): the answers
    change nothing."""

    type: str


@dataclass(frozen=True)
class ForgetRequest:
    """A person's request (``approve``, ``promote`` or ``abort``) of ``revision`` can no
    longer be served (carried out, overtaken, or for a template the target no longer
    has): it leaves the Canary, so that the same template coming back later (a revert,
    then a re-apply) starts a rollout of its own."""

    request: Literal["approve", "promote", "abort"]
    revision: str


Action = EnsurePrimary | ScaleCanary | Route | CallHooks | EnsureAutoscaler | ForgetRequest
