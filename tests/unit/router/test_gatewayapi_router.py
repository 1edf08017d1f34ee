"""The Gateway API behind the traffic port: canary's own route and the three Services,
what it manages and reverts, and when its routing is pending."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.core import Route
from canary.core.observation import RouteHold
from canary.router import router_for, unsupported
from canary.router.gatewayapi.router import GatewayApiRouter
from canary.router.gatewayapi.routes import grpc_route, http_route
from canary.router.port import Router
from canary.router.services import released_apex, services
from tests.unit.router.gateway_canaries import OWNER, gateway_canary

LABEL = ("app", "web")
JSON = dict[str, Any]
routes = st.builds(Route, st.integers(0, 100), match_to_canary=st.booleans(),
                   mirror_percent=st.none() | st.integers(0, 100))


def status(generation: int, accepted: str = "True", resolved: str = "True",
           reason: str = "Accepted") -> JSON:
    """A route of ``generation`` as Gateway infra/public reported on it."""
    conditions = [{"type": "Accepted", "status": accepted, "reason": reason,
                   "message": "listener hostnames do not match", "observedGeneration": 3},
                  {"type": "ResolvedRefs", "status": resolved, "reason": "ResolvedRefs",
                   "observedGeneration": 3}]
    return {"metadata": {"name": "web", "namespace": "shop", "generation": generation},
            "spec": {"parentRefs": [{"name": "public", "namespace": "infra"}]},
            "status": {"parents": [{"parentRef": {"name": "public", "namespace": "infra"},
                                    "controllerName": "x", "conditions": conditions}]}}


def finding(obj: JSON | None, kind: str = "HTTPRoute") -> Any:
    return lambda k, name: obj if (k, name) == (kind, "web") else None


class TestChosen:
    def test_gatewayapi_v1_is_routed_by_the_gateway_api_router(self) -> None:
        router: Router = router_for("gatewayapi:v1")  # checked by mypy against the Protocol
        assert isinstance(router, GatewayApiRouter)
        assert unsupported("gatewayapi:v1") is None


class TestManifests:
    @given(routes)
    def test_the_services_then_the_http_route(self, route: Route) -> None:
        subject = gateway_canary()
        assert GatewayApiRouter().manifests(subject, OWNER, LABEL, route) == [
            *services(subject, OWNER, LABEL), http_route(subject, OWNER, route)]

    @given(routes)
    def test_a_grpc_service_gets_a_grpc_route(self, route: Route) -> None:
        subject = gateway_canary({"appProtocol": "gRPC"})
        assert GatewayApiRouter().manifests(subject, OWNER, LABEL, route)[-1] == \
            grpc_route(subject, OWNER, route)

    @given(routes)
    def test_it_manages_what_it_writes(self, route: Route) -> None:
        for subject in (gateway_canary(), gateway_canary({"appProtocol": "grpc"})):
            written = {(m["kind"], m["metadata"]["name"]) for m in
                       GatewayApiRouter().manifests(subject, OWNER, LABEL, route)}
            assert written <= GatewayApiRouter().managed("web")
            assert {kind for kind, _ in written} <= set(GatewayApiRouter().kinds)

    def test_a_route_that_cannot_be_built_is_left_out_and_said_pending(self) -> None:
        """No crash loop in the executor: the Services are written, the rollout waits."""
        unbuildable: list[JSON] = [{"gatewayRefs": None},
                                   {"corsPolicy": {"allowOrigins": []}}]
        for service in unbuildable:
            subject = gateway_canary(service)
            written = GatewayApiRouter().manifests(subject, OWNER, LABEL, Route(0))
            assert [m["kind"] for m in written] == ["Service"] * 3
            hold = GatewayApiRouter().pending(subject, finding(None))
            assert hold is not None and hold.refused
            assert hold.message.startswith("spec.service.")



def adopting() -> Any:
    return gateway_canary({"gatewayRefs": None,
                           "routeRef": {"kind": "HTTPRoute", "name": "storefront"}})


def users_route(generation: int = 3, accepted: str = "True") -> JSON:
    """The user's route storefront, sending / to the apex Service web."""
    route = status(generation, accepted)
    route["metadata"]["name"] = "storefront"
    route["spec"]["rules"] = [{"backendRefs": [{"name": "web", "port": 80}]}]
    return route


class TestTheUsersRoute:
    """spec.service.routeRef: the user's route is edited by the controller, not applied."""

    @given(routes)
    def test_only_the_services_are_applied(self, route: Route) -> None:
        written = GatewayApiRouter().manifests(adopting(), OWNER, LABEL, route)
        assert [m["kind"] for m in written] == ["Service"] * 3

    def test_its_acceptance_is_read_from_the_users_route(self) -> None:
        def find(route: JSON | None) -> Any:
            return lambda kind, name: route if (kind, name) == ("HTTPRoute",
                                                                "storefront") else None
        assert GatewayApiRouter().pending(adopting(), find(users_route())) is None
        refused = GatewayApiRouter().pending(adopting(), find(users_route(accepted="False")))
        assert refused is not None and refused.refused and refused.message.startswith(
            "HTTPRoute shop/storefront: Gateway infra/public refused the route")
        assert GatewayApiRouter().pending(adopting(), find(None)) == RouteHold(
            "spec.service.routeRef: HTTPRoute shop/storefront not found", refused=True)
        elsewhere = users_route()
        elsewhere["spec"]["rules"] = [{"backendRefs": [{"name": "legacy", "port": 80}]}]
        hold = GatewayApiRouter().pending(adopting(), find(elsewhere))
        assert hold is not None and hold.refused
        assert hold.message.startswith("spec.service.routeRef: no rule")

    def test_reverting_never_deletes_the_users_route(self) -> None:
        reversion = GatewayApiRouter().reversion(adopting(), LABEL)
        assert reversion.apply == (released_apex(adopting(), LABEL),)
        assert reversion.delete == ()


class TestReversion:
    def test_the_apex_is_released_onto_the_target_and_the_route_deleted(self) -> None:
        for subject, kind in ((gateway_canary(), "HTTPRoute"),
                              (gateway_canary({"appProtocol": "grpc"}), "GRPCRoute")):
            reversion = GatewayApiRouter().reversion(subject, LABEL)
            assert reversion.apply == (released_apex(subject, LABEL),)
            assert reversion.delete == ((kind, "web"),)


class TestPending:
    """In force only once every parent accepted the route's current generation."""

    def test_accepted_and_resolved_is_in_force(self) -> None:
        assert GatewayApiRouter().pending(gateway_canary(), finding(status(3))) is None

    def test_a_route_not_written_yet_is_pending(self) -> None:
        assert GatewayApiRouter().pending(gateway_canary(), finding(None)) == RouteHold(
            "HTTPRoute shop/web is not created yet", refused=False)

    def test_a_refusal_names_the_route_the_gateway_and_its_reason(self) -> None:
        hold = GatewayApiRouter().pending(gateway_canary(), finding(status(
            3, accepted="False", reason="NoMatchingListenerHostname")))
        assert hold == RouteHold("HTTPRoute shop/web: Gateway infra/public refused the "
                                 "route: NoMatchingListenerHostname: listener hostnames do "
                                 "not match", refused=True)

    def test_a_newer_generation_is_pending_until_reported_not_refused(self) -> None:
        hold = GatewayApiRouter().pending(gateway_canary(), finding(status(4)))
        assert hold is not None and not hold.refused
        assert "has not reported Accepted for generation 4" in hold.message

    def test_the_grpc_route_is_the_one_read(self) -> None:
        subject = gateway_canary({"appProtocol": "grpc"})
        assert GatewayApiRouter().pending(subject, finding(status(3), "GRPCRoute")) is None
        assert GatewayApiRouter().pending(subject, finding(status(3))) is not None
