"""What the decision asks the controller to make true. Every action is idempotent: doing
it twice, or again after a restart, leaves the world as doing it once."""

from __future__ import annotations

from dataclasses import dataclass


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
    percent to the canary and the rest to the primary."""

    canary_weight: int


Action = EnsurePrimary | ScaleCanary | Route
