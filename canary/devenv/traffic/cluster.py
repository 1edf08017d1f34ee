"""The simulator's view of the cluster: watch caches, endpoints and workloads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from canary.core.timefmt import parse_time
from canary.devenv.traffic import behaviour
from canary.devenv.traffic.gateway import Ingress, gateway_route, ingress_of
from canary.devenv.traffic.gatewayview import GatewayApiView
from canary.devenv.traffic.routing import (
    CLUSTER_DOMAIN,
    Destination,
    bound_to,
    host_matches,
    qualify,
)
from canary.errors import ConfigError
from canary.kube import JSON, KubeClient, Reflector
from canary.kube import resources as r

log = structlog.get_logger("canary.devenv.traffic")


@dataclass(frozen=True)
class Endpoint:
    """A Ready pod behind a service, with what the metrics need to know of it."""

    pod: str
    namespace: str
    workload: str
    app: str
    version: str
    canonical_service: str
    behaviour: behaviour.Behaviour
    #: When the pod was created (seconds since the epoch), which a ramp's age counts from.
    created: float = 0.0

    def age(self, now: float) -> float:
        """Seconds since the pod was created, at ``now`` (seconds since the epoch)."""
        return now - self.created


def split_service_host(host: str) -> tuple[str, str] | None:
    """``name.namespace.svc.cluster.local`` -> (name, namespace); None for other hosts."""
    suffix = f".svc.{CLUSTER_DOMAIN}"
    if not host.endswith(suffix):
        return None
    parts = host[: -len(suffix)].split(".")
    return (parts[0], parts[1]) if len(parts) == 2 else None


def created_at(meta: dict[str, Any]) -> float:
    """A pod's ``metadata.creationTimestamp`` in seconds since the epoch (0 without one)."""
    stamp = meta.get("creationTimestamp")
    return parse_time(str(stamp)).timestamp() if stamp else 0.0


def workload_of(pod: JSON) -> str:
    """The Deployment a pod belongs to: its ReplicaSet's name less the template hash."""
    meta = pod.get("metadata") or {}
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "ReplicaSet":
            template_hash = (meta.get("labels") or {}).get("pod-template-hash")
            name = str(owner.get("name"))
            if template_hash and name.endswith(f"-{template_hash}"):
                return name[: -len(template_hash) - 1]
            return name
        if owner.get("controller"):
            return str(owner.get("name"))
    return str(meta.get("name"))


def _ready(pod: JSON) -> bool:
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class ClusterView:
    """Pods, Services, VirtualServices, DestinationRules and Gateways (Istio's, and the
    Gateway API objects in :attr:`gateway_api`), and the namespaces' deletions, from
    watches.

    Lookups are cached and the caches dropped on any change, so a steady cluster costs
    nothing per request.
    """

    def __init__(self, client: KubeClient) -> None:
        self.pods = Reflector(client, r.PODS, on_event=self._changed)
        self.services = Reflector(client, r.SERVICES, on_event=self._changed)
        self.virtual_services = Reflector(client, r.VIRTUAL_SERVICES, on_event=self._changed)
        self.destination_rules = Reflector(client, r.DESTINATION_RULES, on_event=self._changed)
        self.gateways = Reflector(client, r.GATEWAYS, on_event=self._changed)
        self.gateway_api = GatewayApiView(client, self.services, self._changed)
        self.namespaces = Reflector(client, r.NAMESPACES, on_event=self._namespace_event)
        self.reflectors = [self.pods, self.services, self.virtual_services,
                           self.destination_rules, self.gateways, *self.gateway_api.reflectors,
                           self.namespaces]
        self._namespace_listeners: list[Callable[[str], None]] = []
        self._endpoints: dict[Destination, list[Endpoint] | None] = {}
        self._routes: dict[str, tuple[JSON | None, str]] = {}
        self._ingresses: dict[str, Ingress | None] = {}
        self._gateway_routes: dict[tuple[tuple[str, ...], str], tuple[JSON, str] | None] = {}
        self._behaviours: dict[tuple[str, str], behaviour.Behaviour] = {}
        self._listeners: list[Callable[[], None]] = []
        self._warned: set[str] = set()

    def synced(self) -> bool:
        return all(reflector.synced.is_set() for reflector in self.reflectors)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Have ``listener`` called on every change the watches see."""
        self._listeners.append(listener)

    def add_namespace_listener(self, listener: Callable[[str], None]) -> None:
        """Have ``listener`` called with the name of every namespace deleted."""
        self._namespace_listeners.append(listener)

    def _namespace_event(self, kind: str, obj: JSON) -> None:
        if kind == "DELETED":
            for listener in self._namespace_listeners:
                listener(str(obj["metadata"]["name"]))

    def _changed(self, _kind: str, _obj: JSON) -> None:
        self._endpoints.clear()
        self._routes.clear()
        self._ingresses.clear()
        self._gateway_routes.clear()
        self.gateway_api.clear()
        for listener in self._listeners:
            listener()

    def ingress_for(self, host: str) -> Ingress | None:
        """The ingress gateway a Service FQDN is, or None for a mesh Service."""
        if host in self._ingresses:
            return self._ingresses[host]
        key = split_service_host(host)
        service = self.services.get(key[1], key[0]) if key else None
        result = None
        if service is not None and key is not None:
            result = ingress_of(service, self.gateways.items(key[1]))
        self._ingresses[host] = result
        return result

    def gateway_route_for(self, through: tuple[str, ...], host: str) -> tuple[JSON, str] | None:
        """The VirtualService (spec, namespace) routing Host ``host`` at the Gateways
        ``through``; None when none does."""
        key = (through, host)
        if key not in self._gateway_routes:
            self._gateway_routes[key] = gateway_route(self.virtual_services.items(), through,
                                                      host)
        return self._gateway_routes[key]

    def virtual_service_for(self, host: str) -> tuple[JSON | None, str]:
        """The VirtualService (spec, namespace) that routes mesh traffic for ``host``.

        Istio merges several for one host in no defined order; the oldest one wins here.
        Without one the spec is None and the namespace is the host's own.
        """
        cached = self._routes.get(host)
        if cached is not None:
            return cached
        candidates = []
        for vs in self.virtual_services.items():
            meta, spec = vs.get("metadata") or {}, vs.get("spec") or {}
            namespace = str(meta.get("namespace"))
            if not bound_to(spec.get("gateways") or [], namespace, ()):
                continue
            if any(host_matches(qualify(h, namespace), host) for h in spec.get("hosts") or []):
                candidates.append((str(meta.get("creationTimestamp", "")), namespace,
                                   str(meta.get("name")), spec))
        if candidates:
            _, namespace, _, spec = min(candidates, key=lambda c: c[:3])
            result: tuple[JSON | None, str] = (spec, namespace)
        else:
            service = split_service_host(host)
            result = (None, service[1] if service else "default")
        self._routes[host] = result
        return result

    def _subset_labels(self, destination: Destination) -> dict[str, str] | None:
        if destination.subset is None:
            return {}
        for rule in self.destination_rules.items():
            namespace = str((rule.get("metadata") or {}).get("namespace"))
            spec = rule.get("spec") or {}
            if qualify(str(spec.get("host", "")), namespace) != destination.host:
                continue
            for subset in spec.get("subsets") or []:
                if subset.get("name") == destination.subset:
                    return dict(subset.get("labels") or {})
        return None

    def endpoints(self, destination: Destination) -> list[Endpoint] | None:
        """Ready endpoints of a destination; None when the host or subset does not exist."""
        if destination in self._endpoints:
            return self._endpoints[destination]
        result: list[Endpoint] | None = None
        service_key = split_service_host(destination.host)
        service = self.services.get(service_key[1], service_key[0]) if service_key else None
        subset = self._subset_labels(destination)
        if service is not None and subset is not None and service_key is not None:
            selector = dict((service.get("spec") or {}).get("selector") or {})
            result = []
            if selector:
                for pod in self.pods.items(service_key[1]):
                    labels = dict((pod.get("metadata") or {}).get("labels") or {})
                    if _labels_match(selector, labels) and _labels_match(subset, labels) \
                            and _ready(pod):
                        result.append(self._endpoint(pod, labels))
        self._endpoints[destination] = result
        return result

    def _endpoint(self, pod: JSON, labels: dict[str, str]) -> Endpoint:
        meta = pod.get("metadata") or {}
        workload = workload_of(pod)
        key = (str(meta.get("uid")), str(meta.get("resourceVersion")))
        found = self._behaviours.get(key)
        if found is None:
            found = self._behaviour(meta)
            self._behaviours[key] = found
        app = labels.get("app") or labels.get("app.kubernetes.io/name") or workload
        return Endpoint(
            pod=str(meta.get("name")), namespace=str(meta.get("namespace")), workload=workload,
            app=app, version=labels.get("version", "unknown"),
            canonical_service=labels.get("service.istio.io/canonical-name", app),
            behaviour=found, created=created_at(meta),
        )

    def _behaviour(self, meta: dict[str, Any]) -> behaviour.Behaviour:
        try:
            return behaviour.from_annotations(meta.get("annotations") or {})
        except ConfigError as exc:
            where = f"{meta.get('namespace')}/{meta.get('name')}"
            if where not in self._warned:
                self._warned.add(where)
                log.error("pod annotation invalid; the pod answers with defaults",
                          pod=where, error=str(exc))
            return behaviour.Behaviour()
