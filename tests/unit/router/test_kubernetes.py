"""Blue/green without a mesh: the apex Service's selector is the routing, and whatever it
cannot carry is refused by name rather than approximated."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.core import Route
from canary.models.canary import NEEDS_A_MESH, Canary, CanarySpec, Phase, needs_a_mesh
from canary.models.crds import structural
from canary.router.kubernetes import InexpressibleRoute, KubernetesRouter, inexpressible, refused
from canary.router.port import Router
from canary.router.services import released_apex, services
from canary.targets.deployment import primary_name
from tests.unit.core.scenario import World, initialized
from tests.unit.router.support import ASKING_FOR_A_MESH, OWNER, names

ROUTER = KubernetesRouter()
labels = st.tuples(st.sampled_from(["app", "name", "app.kubernetes.io/name"]), names)
#: The routes blue/green asks for: all traffic to the primary, or all to the canary.
switches = st.sampled_from([Route(0), Route(100)])


def canary(service: str | None = None, **analysis: Any) -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"provider": "kubernetes",
                 "targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80, **({"name": service} if service else {})},
                 "analysis": {"interval": "1m", "threshold": 1,
                              **(analysis or {"iterations": 3})}}})


def by_name(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests}


class TestTheApexServiceRoutes:
    def test_it_is_a_router_writing_services_only(self) -> None:
        router: Router = ROUTER  # checked by mypy against the Protocol
        assert router.provider == "kubernetes" and router.kinds == ("Service",)

    @given(names, labels, switches)
    def test_the_apex_selects_exactly_one_workloads_pods(
            self, service: str, label: tuple[str, str], route: Route) -> None:
        """Weight 0: the primary's pods only; weight 100: the canary's only."""
        key, value = label
        written = by_name(ROUTER.manifests(canary(service), OWNER, label, route))
        assert set(written) == {service, f"{service}-primary", f"{service}-canary"}
        apex = written[service]["spec"]["selector"]
        primary = written[f"{service}-primary"]["spec"]["selector"]
        target = written[f"{service}-canary"]["spec"]["selector"]
        assert primary == {key: primary_name(value)} and target == {key: value}
        assert apex == (target if route.canary_weight == 100 else primary)

    @given(names, labels, switches)
    def test_only_the_apex_selector_changes_with_the_route(
            self, service: str, label: tuple[str, str], route: Route) -> None:
        """The primary and canary Services, and everything else of the apex, are those
        every router writes."""
        subject = canary(service)
        written = ROUTER.manifests(subject, OWNER, label, route)
        shared = services(subject, OWNER, label)
        assert written[1:] == shared[1:]
        assert {**written[0], "spec": {**written[0]["spec"], "selector": None}} == \
            {**shared[0], "spec": {**shared[0]["spec"], "selector": None}}

    @given(names, labels, switches)
    def test_it_manages_exactly_the_services_it_writes(
            self, service: str, label: tuple[str, str], route: Route) -> None:
        written = {(m["kind"], m["metadata"]["name"])
                   for m in ROUTER.manifests(canary(service), OWNER, label, route)}
        assert ROUTER.managed(service) == written

    def test_reverting_releases_the_apex_service_onto_the_target_and_deletes_nothing(
            self) -> None:
        subject = canary("api")
        reversion = ROUTER.reversion(subject, ("app", "web"))
        (apex,) = reversion.apply
        assert apex == released_apex(subject, ("app", "web"))
        assert apex["metadata"]["name"] == "api" and apex["spec"]["selector"] == {"app": "web"}
        assert "ownerReferences" not in apex["metadata"]
        assert reversion.delete == ()

    def test_nothing_reports_acceptance_so_nothing_is_pending(self) -> None:
        assert ROUTER.pending(canary(), lambda kind, name: None) is None


class TestWhatServicesCannotCarryIsRefused:
    @given(st.integers(1, 99))
    def test_a_weighted_split_names_the_weight_field(self, weight: int) -> None:
        subject = canary(stepWeight=10, stepWeightPromotion=20)
        with pytest.raises(InexpressibleRoute) as raised:
            ROUTER.manifests(subject, OWNER, ("app", "web"), Route(weight))
        message = str(raised.value)
        assert "spec.provider kubernetes" in message and f"a {weight}% split" in message
        assert "spec.analysis.stepWeight / spec.analysis.stepWeightPromotion" in message

    @pytest.mark.parametrize(("route", "field"), [
        (Route(0, match_to_canary=True), "spec.analysis.match"),
        (Route(0, mirror_percent=50.0), "spec.analysis.mirror"),
        (Route(100, sticky_cookie="c=r"), "spec.analysis.sessionAffinity"),
    ])
    def test_matches_mirroring_and_sticky_sessions_name_their_field(
            self, route: Route, field: str) -> None:
        with pytest.raises(InexpressibleRoute, match=field):
            ROUTER.manifests(canary(), OWNER, ("app", "web"), route)

    @given(switches)
    def test_a_plain_switch_is_expressible(self, route: Route) -> None:
        assert inexpressible(canary(), route) is None


def routes_of(world: World) -> list[Route]:
    return [a for d in world.decisions for a in d.actions if isinstance(a, Route)]


class TestBlueGreenNeedsNothingMore:
    @given(st.integers(1, 5), st.booleans())
    def test_every_route_of_a_blue_green_rollout_is_a_switch(
            self, iterations: int, healthy: bool) -> None:
        """What the CRD lets through with provider kubernetes (iterations without match,
        mirror or session affinity) only ever asks for weight 0 or 100, promoted or
        rolled back."""
        world = initialized(stepWeight=None, maxWeight=None, iterations=iterations)
        world.success_rate = 100.0 if healthy else 50.0
        world.target_revision = "rev-2"
        world.run_until_quiet()
        assert world.phase() == (Phase.SUCCEEDED if healthy else Phase.FAILED)
        routes = routes_of(world)
        assert routes and all(inexpressible(canary(), route) is None for route in routes)
        assert (Route(100) in routes) == healthy and routes[-1] == Route(0)


class TestTheCrdRefusesWhatNeedsAMesh:
    def test_every_field_the_crd_refuses_is_tried_here(self) -> None:
        assert set(ASKING_FOR_A_MESH) == set(NEEDS_A_MESH)

    @pytest.mark.parametrize("field", sorted(ASKING_FOR_A_MESH))
    def test_the_controller_refuses_what_the_crd_could_not_check_in_the_same_words(
            self, field: str) -> None:
        """A Canary without spec.provider under --mesh-provider kubernetes."""
        assert refused(canary(**ASKING_FOR_A_MESH[field])) == needs_a_mesh(field)

    @pytest.mark.parametrize("analysis", [{"iterations": 3}, {"iterations": 3, "match": []},
                                          {"iterations": 3, "mirror": False}])
    def test_blue_green_is_not_refused(self, analysis: dict[str, Any]) -> None:
        assert refused(canary(**analysis)) is None

    @pytest.mark.parametrize("field", sorted(ASKING_FOR_A_MESH))
    def test_one_rule_per_field_names_it(self, field: str) -> None:
        [rule] = [r for r in structural(CanarySpec)["x-kubernetes-validations"]
                  if f"spec.analysis.{field} " in r["message"]]
        assert f"self.analysis.{field})" in rule["rule"]
        assert rule["rule"].startswith("!has(self.provider) || self.provider != 'kubernetes'")
