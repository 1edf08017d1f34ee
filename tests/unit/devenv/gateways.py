"""A cluster of one served Gateway with its routes, for the simulator's unit tests (no I/O)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from canary.devenv.traffic.attachment import Listener, listeners_of
from canary.devenv.traffic.behaviour import Behaviour
from canary.devenv.traffic.cluster import Endpoint
from canary.devenv.traffic.gatewayapi import AttachedRoute, attached_to, attachments
from canary.devenv.traffic.routing import Destination

NAMESPACE = "shop"


class FakeGatewayApi:
    """The Gateway ``gateway`` (of namespace ``shop``) with ``routes`` (kind, object)
    attached as their parentRefs say; no ReferenceGrant permits anything."""

    def __init__(self, gateway: Mapping[str, Any],
                 routes: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self._name = str(gateway["metadata"]["name"])
        self._listeners = listeners_of(gateway)
        key = f"{NAMESPACE}/{self._name}"
        self._attached = attached_to(key, [
            (kind, route, attachments(route, kind, {key: self._listeners}, lambda _: {}))
            for kind, route in routes])

    def listeners(self, namespace: str, name: str) -> list[Listener] | None:
        return self._listeners if (namespace, name) == (NAMESPACE, self._name) else None

    def attached(self, gateway: str) -> list[AttachedRoute]:
        return self._attached

    def permits(self, *_: str) -> bool:
        return False


class FakeCluster:
    """Each Service of ``shop`` selects one pod of the Deployment of its name, failing
    as ``error_rates`` says (never by default); the Services in ``missing`` do not exist."""

    def __init__(self, gateway_api: FakeGatewayApi, error_rates: Mapping[str, float] = {},
                 missing: Collection[str] = ()) -> None:
        self.gateway_api = gateway_api
        self._error_rates, self._missing = error_rates, missing

    def synced(self) -> bool:
        return True

    def endpoints(self, destination: Destination) -> list[Endpoint] | None:
        name = destination.host.split(".")[0]
        if name in self._missing:
            return None
        return [Endpoint(pod=f"{name}-1", namespace=NAMESPACE, workload=name, app=name,
                         version="unknown", canonical_service=name,
                         behaviour=Behaviour(self._error_rates.get(name, 0.0), 5.0))]
