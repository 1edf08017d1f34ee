"""The traffic port: what the controller asks of whatever routes a Canary's traffic.

One implementation per ``spec.provider`` (Istio, Gateway API, plain Kubernetes Services);
:func:`canary.router.router_for` picks it. A router builds manifests and reads cached
objects; it never calls the API: the controller applies, deletes and watches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from canary.core.actions import Route
from canary.core.observation import RouteHold
from canary.models.canary import Canary

JSON = dict[str, Any]
#: (kind, name) of an object in the Canary's namespace.
Named = tuple[str, str]
#: Finds an object canary wrote in the watch caches: (kind, name) -> object or None.
Find = Callable[[str, str], JSON | None]


def service_name(canary: Canary) -> str:
    """The apex Service's name, which every router routes to and metrics queries use."""
    return canary.spec.service.name or canary.spec.target_ref.name


@dataclass(frozen=True)
class Reversion:
    """What gives a deleted Canary's traffic back to its target (``revertOnDeletion``):
    objects to apply, no longer owned by the Canary so garbage collection keeps them,
    then objects to delete so traffic follows the apex Service."""

    apply: tuple[JSON, ...]
    delete: tuple[Named, ...]


class Router(Protocol):
    """Routes a Canary's traffic between its primary and its canary on one data plane."""

    #: The ``spec.provider`` value this router implements.
    provider: str
    #: The kinds of object it writes, for the controller's caches and wake-ups.
    kinds: tuple[str, ...]

    def manifests(self, canary: Canary, owner: JSON, label: tuple[str, str],
                  route: Route) -> list[JSON]:
        """Every object that routes ``route``, the Services first, in the order to apply
        them. ``label`` is the target's selector label (key, value)."""
        ...

    def managed(self, service: str) -> frozenset[Named]:
        """The routing objects of a Canary whose apex Service is ``service`` (those two
        Canaries must not share)."""
        ...

    def reversion(self, canary: Canary, label: tuple[str, str]) -> Reversion:
        """What sends the traffic to the target's pods (``label``) once the Canary is
        deleted with ``revertOnDeletion``."""
        ...

    def pending(self, canary: Canary, find: Find) -> RouteHold | None:
        """Why the data plane does not follow the routing objects as cached (``find``):
        refused, or not reported on yet; None once it follows them."""
        ...
