"""Blue/green without a mesh: the ``kubernetes`` provider routes with Services only.

The three Services of :mod:`canary.router.services`, nothing else. The apex Service's
selector is the routing: it selects the primary's pods while the canary's weight is 0,
and the canary's when it is 100 (the promotion, while the primary takes on the new
revision), switching all traffic at once. Users never reach the canary during the
analysis, which runs against ``<svc>-canary``. A Service can send all traffic one way or
the other and nothing in between, so weights, A/B matches, mirroring and session
affinity are refused: the CRD's rules refuse such Canaries at apply, and a route that
still asks for one raises :class:`InexpressibleRoute` here rather than being approximated.
:func:`refused` lets the controller hold a Canary the CRD could not check (one without
``spec.provider`` under ``--mesh-provider kubernetes``) before anything is routed.
"""

from __future__ import annotations

from canary.core.actions import Route
from canary.core.observation import RouteHold
from canary.errors import CanaryError
from canary.models.canary import NEEDS_A_MESH, Canary, Provider, needs_a_mesh
from canary.router.port import JSON, Find, Named, Reversion
from canary.router.services import managed_services, released_apex, services


class InexpressibleRoute(CanaryError):
    """A route plain Kubernetes Services cannot carry; the message names the field."""


def refused(canary: Canary) -> str | None:
    """Why this Canary's analysis cannot be routed by Services alone, naming the first
    field that asks for a mesh (as the CRD's rules word it); None when it can. The CRD
    refuses these with ``spec.provider: kubernetes``; a Canary without ``spec.provider``
    under ``--mesh-provider kubernetes`` is checked here."""
    analysis = canary.spec.analysis.to_api()
    field = next((name for name in NEEDS_A_MESH if analysis.get(name)), None)
    return needs_a_mesh(field) if field is not None else None


def _weight_fields(canary: Canary) -> str:
    """The analysis fields that ask for a weighted split, as the manifest spells them."""
    analysis = canary.spec.analysis
    named = [name for name, value in (("stepWeight", analysis.step_weight),
                                      ("stepWeights", analysis.step_weights),
                                      ("stepWeightPromotion", analysis.step_weight_promotion))
             if value is not None]
    return " / ".join(f"spec.analysis.{name}" for name in named) or "the canary's weight"


def inexpressible(canary: Canary, route: Route) -> str | None:
    """Why ``route`` cannot be carried by Services alone, naming the field that asks for
    it; None when it can (all traffic to the primary, or all to the canary)."""
    needs = None
    if route.canary_weight not in (0, 100):
        needs = f"{_weight_fields(canary)} (a {route.canary_weight}% split)"
    elif route.match_to_canary:
        needs = "spec.analysis.match (A/B testing)"
    elif route.mirror_percent is not None:
        needs = "spec.analysis.mirror (mirroring)"
    elif route.sticky_cookie is not None:
        needs = "spec.analysis.sessionAffinity (sticky sessions)"
    if needs is None:
        return None
    return (f"spec.provider kubernetes routes all traffic to the primary or all to the "
            f"canary, so it cannot carry {needs}: use analysis.iterations for blue/green, "
            "or a provider with a mesh")


class KubernetesRouter:
    """The traffic port on plain Kubernetes: the apex Service's selector switches between
    the primary's pods and the canary's. Nothing reports acceptance, so the routing
    counts as accepted once applied."""

    provider: str = Provider.KUBERNETES.value
    kinds: tuple[str, ...] = ("Service",)

    def manifests(self, canary: Canary, owner: JSON, label: tuple[str, str],
                  route: Route) -> list[JSON]:
        problem = inexpressible(canary, route)
        if problem is not None:
            raise InexpressibleRoute(problem)
        return services(canary, owner, label, apex_to_canary=route.canary_weight == 100)

    def managed(self, service: str) -> frozenset[Named]:
        return managed_services(service)

    def reversion(self, canary: Canary, label: tuple[str, str]) -> Reversion:
        """The apex Service selects the target's pods and is released; nothing else
        routes, so nothing is deleted."""
        return Reversion(apply=(released_apex(canary, label),), delete=())

    def pending(self, canary: Canary, find: Find) -> RouteHold | None:
        return None
