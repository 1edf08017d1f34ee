"""The user's own Gateway API route (``spec.service.routeRef``), edited in place.

canary never applies the user's route: every list of it is atomic, so an apply would
take the whole of ``spec.rules`` from the user. It reads the route, computes the rules
(``canary.router.adopted_rules``) and writes them back with a JSON patch whose first
operation tests the route's ``resourceVersion``. If the test fails, someone changed the
route since it was read: canary reads it again from the API and computes the rules from
that version, a bounded number of times, so no edit of the user's is overwritten.

The route is read from the controller's watch cache of HTTPRoutes and GRPCRoutes, which
holds every route of the watched namespaces, not only those labelled as canary's: a
user's route carries no label a selector could pick, one watch per kind serves canary's
own routes and the users' alike, and a route that already carries the rules costs no
request (an idle Canary makes none). A GET happens only after a failed test.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from canary.controller.contained import contains
from canary.core.actions import Route
from canary.kube import JSON, Conflict, Invalid, KubeError, NotFound
from canary.kube import resources as r
from canary.kube.resources import Resource
from canary.models.canary import Canary
from canary.router import (
    UnsupportedRoute,
    adopted_rules,
    released_rules,
    rules_patch,
    undefaulted,
    users_route,
)

log = structlog.get_logger("canary.controller")

#: How many times a write is tried when the route keeps changing underneath.
ATTEMPTS = 4
RESOURCES = {"HTTPRoute": r.HTTP_ROUTES, "GRPCRoute": r.GRPC_ROUTES}
#: The rules canary wants in a route, computed from the route as read.
Rules = Callable[[JSON], list[JSON]]
#: Finds a cached object of the Canary's namespace: (kind, name) -> object or None.
Find = Callable[[str, str], JSON | None]


class RouteContended(KubeError):
    """The user's route changed underneath every attempt to write it: tried again later."""


class RouteApi(Protocol):
    """The API calls that edit a user's route: read it again, patch its rules."""

    async def get(self, resource: Resource, name: str, namespace: str | None = None
                  ) -> JSON: ...

    async def json_patch(self, resource: Resource, name: str, operations: Sequence[JSON],
                         namespace: str | None = None,
                         subresource: str | None = None) -> JSON: ...


def carries(user_route: JSON, rules: list[JSON]) -> bool:
    """Whether the route holds ``rules`` as the API server stores them: every field of
    ``rules``, and nothing more than the fields the server fills in by default (so a
    filter canary no longer wants counts as a difference)."""
    actual = (user_route.get("spec") or {}).get("rules") or []
    return contains(actual, rules) and contains(rules, undefaulted(actual))


async def write_rules(client: RouteApi, route: JSON, rules_for: Rules) -> JSON | None:
    """Write ``rules_for(route)`` into the user's ``route`` unless it carries them; the
    route as written, None when nothing was written (or it is gone). A failed
    resourceVersion test reads the route again and starts over (:class:`RouteContended`
    after :data:`ATTEMPTS`); any other refusal is raised as it came."""
    meta = route["metadata"]
    resource = RESOURCES[route.get("kind", "HTTPRoute")]
    name, namespace = meta["name"], meta["namespace"]
    for _ in range(ATTEMPTS):
        rules = rules_for(route)
        if carries(route, rules):
            return None
        try:
            return await client.json_patch(resource, name, rules_patch(route, rules),
                                           namespace)
        except NotFound:
            return None
        except (Conflict, Invalid):
            tested = route["metadata"].get("resourceVersion")
            try:
                route = await client.get(resource, name, namespace)
            except NotFound:
                return None
            if route["metadata"].get("resourceVersion") == tested:
                raise  # refused for another reason than a concurrent change
    raise RouteContended(f"{route.get('kind')} {namespace}/{name} changed underneath "
                         f"{ATTEMPTS} writes in a row; trying again later")


class UserRoutes:
    """Carries out Route actions on users' routes, reading them from the watch cache.

    The cache may still show a route as it was before canary's last write; the route as
    written is used until the cache has moved past that version, so a write is not
    sent again only to fail its test."""

    #: Routes whose last write is remembered (the oldest forgotten first).
    REMEMBERED = 1024

    def __init__(self, client: RouteApi, find: Callable[[str], Find],
                 mesh_provider: str) -> None:
        self.client = client
        #: The cache lookup of a namespace.
        self.find = find
        self.mesh_provider = mesh_provider
        self._written: dict[tuple[str, str, str], tuple[str, JSON]] = {}

    def _current(self, namespace: str, kind: str, name: str) -> JSON | None:
        cached = self.find(namespace)(kind, name)
        key = (namespace, kind, name)
        remembered = self._written.get(key)
        if cached is not None and remembered is not None and \
                cached["metadata"].get("resourceVersion") == remembered[0]:
            return remembered[1]
        self._written.pop(key, None)
        return cached

    async def route(self, canary: Canary, route: Route) -> JSON | None:
        """Give the user's route the rules of ``route``; the route as written, None when
        nothing was written: it carries them already, is missing (the worker reports
        it) or cannot carry them (:meth:`GatewayApiRouter.pending` says why)."""
        named = users_route(canary, self.mesh_provider)
        if named is None:
            return None
        kind, name = named
        current = self._current(canary.namespace, kind, name)
        if current is None:
            return None
        try:
            written = await write_rules(self.client, {"kind": kind, **current},
                                        lambda read: adopted_rules(canary, route, read))
        except UnsupportedRoute as exc:
            log.debug("the user's route cannot carry the routing", reason=str(exc),
                      canary=f"{canary.namespace}/{canary.name}")
            return None
        if written is not None:
            before = str(current["metadata"].get("resourceVersion"))
            self._written[(canary.namespace, kind, name)] = (before, written)
            if len(self._written) > self.REMEMBERED:
                del self._written[next(iter(self._written))]
        return written


async def release(client: RouteApi, canary: Canary, mesh_provider: str) -> JSON | None:
    """Give the user's route back to the apex Service (a deleted Canary's routing), read
    fresh from the API; the route as written, None when there was nothing to give back."""
    named = users_route(canary, mesh_provider)
    if named is None:
        return None
    kind, name = named
    try:
        current = await client.get(RESOURCES[kind], name, canary.namespace)
        return await write_rules(client, {"kind": kind, **current},
                                 lambda read: released_rules(canary, read))
    except NotFound:
        return None
    except UnsupportedRoute as exc:
        log.info("the user's route no longer routes the apex Service: left as it is",
                 reason=str(exc), canary=f"{canary.namespace}/{canary.name}")
        return None
