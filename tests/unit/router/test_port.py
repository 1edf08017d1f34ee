"""The traffic port: the choice of a router by provider, and Istio behind the port."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import Route
from canary.models.canary import Canary, Provider
from canary.router import (
    ROUTERS,
    UnsupportedProvider,
    managed,
    problem,
    provider_of,
    routed_kinds,
    router_for,
    supported,
    unsupported,
)
from canary.router.istio import IstioRouter, destination_rules, virtual_service
from canary.router.kubernetes import KubernetesRouter
from canary.router.port import Router
from canary.router.services import released_apex, services
from tests.unit.router.support import OWNER, names

LABEL = ("app", "web")


def canary(service: str | None = None, provider: str | None = None) -> Canary:
    spec: dict[str, Any] = {
        "targetRef": {"kind": "Deployment", "name": "web"},
        "service": {"port": 80, **({"name": service} if service else {})},
        "analysis": {"interval": "1m", "threshold": 1, "stepWeight": 10}}
    if provider is not None:
        spec["provider"] = provider
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"},
                                  "spec": spec})


routes = st.builds(Route, st.integers(0, 100), match_to_canary=st.booleans(),
                   mirror_percent=st.none() | st.integers(0, 100))


class TestChoosing:
    def test_istio_is_routed_by_the_istio_router(self) -> None:
        router = router_for("istio")
        assert isinstance(router, IstioRouter) and router.provider == "istio"

    def test_kubernetes_is_routed_by_the_kubernetes_router(self) -> None:
        router = router_for("kubernetes")
        assert isinstance(router, KubernetesRouter) and router.provider == "kubernetes"

    @pytest.mark.parametrize("provider", ["linkerd", "gatewayapi:v1beta1"])
    def test_a_provider_not_implemented_is_refused_naming_the_field_and_the_choices(
            self, provider: str) -> None:
        with pytest.raises(UnsupportedProvider) as raised:
            router_for(provider)
        message = unsupported(provider)
        assert message is not None and str(raised.value) == message
        assert f"spec.provider {provider}" in message and "istio" in message

    def test_every_implemented_provider_is_one_the_crd_accepts(self) -> None:
        assert set(ROUTERS) <= {p.value for p in Provider}
        assert set(supported()) == set(ROUTERS) == {"istio", "kubernetes", "gatewayapi:v1"}
        assert all(unsupported(provider) is None for provider in supported())

    def test_spec_provider_wins_over_the_controllers_default(self) -> None:
        assert provider_of(canary(), "istio") == "istio"
        assert provider_of(canary(provider="kubernetes"), "istio") == "kubernetes"

    def test_a_problem_is_an_unimplemented_provider_or_what_it_cannot_route(self) -> None:
        """stepWeight: routable through Istio, not by Services alone, whether the
        provider comes from spec.provider or the controller's default."""
        assert problem(canary(), "istio") is None
        assert "spec.analysis.stepWeight" in (problem(canary(), "kubernetes") or "")
        assert "spec.analysis.stepWeight" in (problem(canary(provider="kubernetes"), "istio")
                                              or "")
        assert problem(canary(provider="gatewayapi:v1"), "istio") is None
        assert problem(canary(), "linkerd") == unsupported("linkerd")

    def test_the_watched_kinds_are_those_the_routers_write(self) -> None:
        assert routed_kinds() == ("Service", "DestinationRule", "VirtualService", "HTTPRoute",
                                 "GRPCRoute")

    def test_an_unsupported_provider_manages_no_routing_object(self) -> None:
        assert managed("linkerd", "web") == frozenset()
        assert managed("istio", "web") == IstioRouter().managed("web")
        assert managed("kubernetes", "web") == KubernetesRouter().managed("web")


class TestIstioThroughThePort:
    def test_it_is_a_router(self) -> None:
        router: Router = IstioRouter()  # checked by mypy against the Protocol
        assert router.kinds == ("Service", "DestinationRule", "VirtualService")

    @given(routes)
    def test_the_manifests_are_the_services_the_rules_and_the_virtual_service(
            self, route: Route) -> None:
        """Same objects, same order as the Istio functions build them."""
        subject = canary()
        assert IstioRouter().manifests(subject, OWNER, LABEL, route) == [
            *services(subject, OWNER, LABEL), *destination_rules(subject, OWNER),
            virtual_service(subject, OWNER, route)]

    @given(names, routes)
    def test_it_manages_exactly_the_objects_it_writes(self, service: str, route: Route
                                                       ) -> None:
        subject = canary(service)
        written = {(m["kind"], m["metadata"]["name"])
                   for m in IstioRouter().manifests(subject, OWNER, LABEL, route)}
        assert IstioRouter().managed(service) == written
        assert set(IstioRouter().kinds) == {kind for kind, _ in written}

    def test_reverting_releases_the_apex_service_onto_the_target_and_drops_the_routes(
            self) -> None:
        subject = canary("api")
        reversion = IstioRouter().reversion(subject, LABEL)
        (apex,) = reversion.apply
        owned = services(subject, OWNER, LABEL)[0]
        assert apex["spec"] == {**owned["spec"], "selector": {"app": "web"}}
        assert "ownerReferences" not in apex["metadata"]
        assert apex == released_apex(subject, LABEL)
        assert reversion.delete == (("VirtualService", "api"),)

    def test_istio_accepts_what_is_applied(self) -> None:
        assert IstioRouter().pending(canary(), lambda kind, name: None) is None
