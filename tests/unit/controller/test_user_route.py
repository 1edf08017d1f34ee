"""Editing the user's own route (spec.service.routeRef): a write only when the route does
not carry canary's rules yet, guarded by the resourceVersion read, and read again and
recomputed when someone changed the route in between, so their edit survives."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Sequence
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.controller.executor import Executor
from canary.controller.user_route import (
    ATTEMPTS,
    RouteContended,
    UserRoutes,
    carries,
    release,
    write_rules,
)
from canary.core import Route
from canary.kube import Conflict, Invalid, NotFound
from canary.kube.resources import Resource
from canary.models.canary import Canary, Provider
from canary.router import adopted_rules
from canary.settings import Settings, WorkloadSettings
from tests.unit.controller.caches import Cache, caches
from tests.unit.router.gateway_canaries import gateway_canary

JSON = dict[str, Any]
HEADER_FILTER = {"type": "RequestHeaderModifier",
                 "requestHeaderModifier": {"set": [{"name": "x-tenant", "value": "shop"}]}}
OTHER_RULE = {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}],
              "backendRefs": [{"name": "other", "port": 8080}]}


def users_route() -> JSON:
    """The user's HTTPRoute as the API server holds it: the app's rule to the apex
    Service web with a header filter, and another path to another Service."""
    route: JSON = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "storefront", "namespace": "shop", "resourceVersion": "1"},
             "spec": {"parentRefs": [{"name": "public"}], "hostnames": ["shop.example.com"],
                      "rules": [{"name": "app", "filters": [HEADER_FILTER],
                                 "backendRefs": [{"name": "web", "port": 80}]},
                                copy.deepcopy(OTHER_RULE)]}}
    route["spec"]["rules"] = stored(route["spec"]["rules"])
    return route


def stored(rules: list[JSON]) -> list[JSON]:
    """``rules`` as the API server stores them: the CRD's defaults filled in."""
    rules = copy.deepcopy(rules)
    for rule in rules:
        for match in rule.setdefault("matches", [{"path": {"value": "/"}}]):
            if "path" in match:
                match["path"].setdefault("type", "PathPrefix")
            for header in match.get("headers", []):
                header.setdefault("type", "Exact")
        refs = [*rule.get("backendRefs", []),
                *(f["requestMirror"]["backendRef"] for f in rule.get("filters", [])
                  if f["type"] == "RequestMirror")]
        for ref in refs:
            ref.setdefault("group", "")
            ref.setdefault("kind", "Service")
        for ref in rule.get("backendRefs", []):
            ref.setdefault("weight", 1)
    return rules


class Api:
    """One route in an API server: JSON patches whose test fails as the server's does,
    a GET, and ``edit`` run before a patch as someone else's change."""

    def __init__(self, route: JSON, failure: type[Exception] = Invalid) -> None:
        self.route = route
        self.failure = failure
        self.calls: list[str] = []
        self.edits: list[Callable[[JSON], None]] = []

    def change(self, edit: Callable[[JSON], None]) -> None:
        edit(self.route)
        version = int(self.route["metadata"]["resourceVersion"]) + 1
        self.route["metadata"]["resourceVersion"] = str(version)

    async def get(self, resource: Resource, name: str, namespace: str | None = None
                  ) -> JSON:
        self.calls.append("get")
        if self.route is None:
            raise NotFound(404, "NotFound", "gone")
        return copy.deepcopy(self.route)

    async def json_patch(self, resource: Resource, name: str, operations: Sequence[JSON],
                         namespace: str | None = None,
                         subresource: str | None = None) -> JSON:
        self.calls.append("patch")
        if self.edits:
            self.change(self.edits.pop(0))
        test, replace = operations
        assert (test["op"], test["path"]) == ("test", "/metadata/resourceVersion")
        assert (replace["op"], replace["path"]) == ("replace", "/spec/rules")
        if test["value"] != self.route["metadata"]["resourceVersion"]:
            raise self.failure(422, "Invalid", "the test operation failed")
        self.change(lambda route: route["spec"].update(rules=stored(replace["value"])))
        return copy.deepcopy(self.route)


def adopting(**analysis: Any) -> Canary:
    return gateway_canary({"gatewayRefs": None, "routeRef": {"name": "storefront"}},
                          **analysis)


def ab_canary() -> Canary:
    """A/B testing, so that every kind of rule canary writes can appear."""
    return adopting(iterations=3, match=[{"headers": {"x-canary": {"exact": "1"}}}])


def routing(canary: Canary, route: Route) -> Callable[[JSON], list[JSON]]:
    return lambda read: adopted_rules(canary, route, read)


states = st.builds(Route, st.integers(0, 100), match_to_canary=st.booleans(),
                   mirror_percent=st.none() | st.integers(1, 100),
                   sticky_cookie=st.none() | st.just("canary=web-2"))


class TestAWriteOnlyWhenNeeded:
    """The route as the server stored canary's write carries it: no second write."""

    @given(states)
    def test_a_route_that_carries_the_rules_is_not_written_again(self, state: Route) -> None:
        api = Api(users_route())

        async def twice() -> tuple[JSON | None, JSON | None]:
            first = await write_rules(api, api.route, routing(ab_canary(), state))
            return first, await write_rules(api, copy.deepcopy(api.route),
                                            routing(ab_canary(), state))
        first, second = asyncio.run(twice())
        assert first is not None and second is None
        assert api.calls == ["patch"]

    @given(states, states)
    def test_another_state_is_a_difference(self, first: Route, second: Route) -> None:
        """Removing a mirror or canary's A/B rule is seen, though the server's defaults
        are not a difference."""
        route = users_route()
        route["spec"]["rules"] = stored(adopted_rules(ab_canary(), first, route))
        wanted = adopted_rules(ab_canary(), second, route)
        assert carries(route, wanted) == (stored(wanted) == route["spec"]["rules"])

    async def test_the_users_rules_survive_and_only_the_app_is_split(self) -> None:
        api = Api(users_route())
        written = await write_rules(api, api.route, routing(adopting(), Route(30)))
        assert written is not None
        app, other = written["spec"]["rules"]
        assert other == stored([OTHER_RULE])[0] and app["filters"] == [HEADER_FILTER]
        assert [(ref["name"], ref["weight"]) for ref in app["backendRefs"]] == [
            ("web-primary", 70), ("web-canary", 30)]
        assert written["spec"]["hostnames"] == ["shop.example.com"]


class TestConflicts:
    """Someone changed the route between canary's read and its write."""

    @pytest.mark.parametrize("failure", [Invalid, Conflict])
    async def test_the_route_is_read_again_and_the_users_edit_survives(
            self, failure: type[Exception]) -> None:
        api = Api(users_route(), failure)
        read = copy.deepcopy(api.route)
        extra = {"name": "extra", "backendRefs": [{"name": "other", "port": 8080}]}
        api.edits.append(lambda route: route["spec"]["rules"].append(stored([extra])[0]))
        written = await write_rules(api, read, routing(adopting(), Route(20)))
        assert api.calls == ["patch", "get", "patch"]
        assert written is not None
        assert [rule.get("name") for rule in written["spec"]["rules"]] == [
            "app", None, "extra"]
        assert written["spec"]["rules"][0]["backendRefs"][1]["weight"] == 20

    async def test_a_change_that_already_carries_the_rules_ends_the_write(self) -> None:
        """The cache showed the route before canary's own last write."""
        api = Api(users_route())
        stale = copy.deepcopy(api.route)
        await write_rules(api, copy.deepcopy(api.route), routing(adopting(), Route(20)))
        assert await write_rules(api, stale, routing(adopting(), Route(20))) is None
        assert api.calls == ["patch", "patch", "get"]

    async def test_a_route_changing_at_every_attempt_is_left_for_later(self) -> None:
        api = Api(users_route())
        api.edits = [lambda route: None] * ATTEMPTS
        with pytest.raises(RouteContended):
            await write_rules(api, copy.deepcopy(api.route), routing(adopting(), Route(20)))
        assert api.calls.count("patch") == ATTEMPTS
        assert api.route["spec"]["rules"] == users_route()["spec"]["rules"]

    async def test_a_refusal_that_is_no_conflict_is_raised(self) -> None:
        """The route unchanged since the read: the server refused the rules themselves."""
        api = Api(users_route())

        async def refuse(*args: Any, **kwargs: Any) -> JSON:
            api.calls.append("patch")
            raise Invalid(422, "Invalid", "spec.rules: Too many: 17")
        api.json_patch = refuse  # type: ignore[method-assign]
        with pytest.raises(Invalid, match="Too many"):
            await write_rules(api, copy.deepcopy(api.route), routing(adopting(), Route(20)))
        assert api.calls == ["patch", "get"]


class TestFromTheCache:
    """The executor reads the user's route from the watch cache."""

    def routes(self, api: Api, cache: Cache) -> UserRoutes:
        return UserRoutes(api, lambda namespace: lambda kind, name: cache.get(namespace, name)
                          if kind == "HTTPRoute" else None, "istio")

    async def test_an_idle_canary_makes_no_request(self) -> None:
        api = Api(users_route())
        cache = Cache(api.route)
        routes = self.routes(api, cache)
        canary = gateway_api(adopting())
        assert await routes.route(canary, Route(10)) is not None
        # The watch has not delivered the write yet: the written route is used.
        assert await routes.route(canary, Route(10)) is None
        cache.objects[("shop", "storefront")] = copy.deepcopy(api.route)
        assert await routes.route(canary, Route(10)) is None
        assert api.calls == ["patch"]

    async def test_a_missing_route_or_another_provider_writes_nothing(self) -> None:
        api = Api(users_route())
        routes = self.routes(api, Cache())
        assert await routes.route(gateway_api(adopting()), Route(10)) is None
        assert await self.routes(api, Cache(api.route)).route(adopting(), Route(10)) is None
        assert api.calls == []


def gateway_api(canary: Canary) -> Canary:
    return canary.model_copy(update={"spec": canary.spec.model_copy(
        update={"provider": Provider.GATEWAY_API})})


async def test_released_the_app_rule_sends_to_the_apex_service_again() -> None:
    """A deleted Canary (revertOnDeletion): the route is read fresh from the API and its
    app rule given back to web, the user's filter and other rule as they were."""
    api = Api(users_route())
    await write_rules(api, copy.deepcopy(api.route),
                      routing(adopting(), Route(40, mirror_percent=10)))
    released = await release(api, gateway_api(adopting()), "istio")
    assert released is not None
    assert released["spec"]["rules"] == users_route()["spec"]["rules"]
    assert api.calls == ["patch", "get", "patch"]


class Client(Api):
    """The API the executor talks to: the Services applied, the route patched."""

    def __init__(self, route: JSON) -> None:
        super().__init__(route)
        self.applied: list[str] = []

    async def apply(self, body: JSON, *, field_manager: str) -> JSON:
        self.applied.append(f"{body['kind']} {body['metadata']['name']}")
        return body


async def test_the_executor_applies_the_services_and_edits_the_users_route() -> None:
    client = Client(users_route())
    target = {"metadata": {"name": "web", "namespace": "shop"},
              "spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}}}}}
    held = caches(deployments=Cache(target),
                  http_routes=Cache(client.route))
    settings = Settings(workloads=WorkloadSettings(selector_labels=("app",)))
    executor = Executor(client, settings, held,  # type: ignore[arg-type]
                        cast(Any, None))
    owner = {"metadata": {"name": "web", "uid": "u"}}
    await executor.execute(owner, gateway_api(adopting()), (Route(10),))
    assert client.applied == ["Service web", "Service web-primary", "Service web-canary"]
    assert client.calls == ["patch"]
    assert client.route["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
