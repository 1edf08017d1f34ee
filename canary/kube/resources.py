"""The resource types canary reads and writes, and how their URLs are built."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Resource:
    """One API resource type: enough to build its collection and object URLs."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection (``name`` None) or of one object.

        ``namespace`` None on a namespaced resource means "across all namespaces".
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            base += f"/namespaces/{namespace}"
        elif not self.namespaced and namespace is not None:
            raise ValueError(f"{self.kind} is cluster-scoped; no namespace applies")
        base += f"/{self.plural}"
        if name is not None:
            if self.namespaced and namespace is None:
                raise ValueError(f"{self.kind} {name!r} needs a namespace")
            base += f"/{name}"
        return base


NAMESPACES = Resource("", "v1", "namespaces", "Namespace", namespaced=False)
NODES = Resource("", "v1", "nodes", "Node", namespaced=False)
PODS = Resource("", "v1", "pods", "Pod")
SERVICES = Resource("", "v1", "services", "Service")
SERVICE_ACCOUNTS = Resource("", "v1", "serviceaccounts", "ServiceAccount")
CONFIG_MAPS = Resource("", "v1", "configmaps", "ConfigMap")
SECRETS = Resource("", "v1", "secrets", "Secret")
EVENTS = Resource("events.k8s.io", "v1", "events", "Event")
#: The same Events through the core API: the one that accepts count and lastTimestamp.
CORE_EVENTS = Resource("", "v1", "events", "Event")
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
REPLICA_SETS = Resource("apps", "v1", "replicasets", "ReplicaSet")
LEASES = Resource("coordination.k8s.io", "v1", "leases", "Lease")
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles", "Role")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding")
CLUSTER_ROLES = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False
)
CLUSTER_ROLE_BINDINGS = Resource(
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False
)
CUSTOM_RESOURCE_DEFINITIONS = Resource(
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
    namespaced=False,
)
HORIZONTAL_POD_AUTOSCALERS = Resource(
    "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"
)
VIRTUAL_SERVICES = Resource("networking.istio.io", "v1", "virtualservices", "VirtualService")
DESTINATION_RULES = Resource("networking.istio.io", "v1", "destinationrules", "DestinationRule")
GATEWAYS = Resource("networking.istio.io", "v1", "gateways", "Gateway")
GATEWAY_CLASSES = Resource("gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass",
                           namespaced=False)
#: Gateway API Gateways (:data:`GATEWAYS` are Istio's).
API_GATEWAYS = Resource("gateway.networking.k8s.io", "v1", "gateways", "Gateway")
HTTP_ROUTES = Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute")
GRPC_ROUTES = Resource("gateway.networking.k8s.io", "v1", "grpcroutes", "GRPCRoute")
REFERENCE_GRANTS = Resource("gateway.networking.k8s.io", "v1", "referencegrants",
                            "ReferenceGrant")
CANARIES = Resource("canary.dev", "v1beta1", "canaries", "Canary")
METRIC_TEMPLATES = Resource("canary.dev", "v1beta1", "metrictemplates", "MetricTemplate")
ALERT_PROVIDERS = Resource("canary.dev", "v1beta1", "alertproviders", "AlertProvider")

_ALL = [
    NAMESPACES, NODES, PODS, SERVICES, SERVICE_ACCOUNTS, CONFIG_MAPS, SECRETS, EVENTS,
    CORE_EVENTS, DEPLOYMENTS, REPLICA_SETS, LEASES, ROLES, ROLE_BINDINGS, CLUSTER_ROLES,
    CLUSTER_ROLE_BINDINGS, CUSTOM_RESOURCE_DEFINITIONS, HORIZONTAL_POD_AUTOSCALERS,
    VIRTUAL_SERVICES, DESTINATION_RULES, GATEWAYS, GATEWAY_CLASSES, API_GATEWAYS, HTTP_ROUTES,
    GRPC_ROUTES, REFERENCE_GRANTS, CANARIES, METRIC_TEMPLATES, ALERT_PROVIDERS,
]
_BY_KIND = {(r.api_version, r.kind): r for r in _ALL}


def for_object(obj: dict[str, object]) -> Resource:
    """The :class:`Resource` of a manifest, from its ``apiVersion`` and ``kind``."""
    key = (str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    try:
        return _BY_KIND[key]
    except KeyError:
        raise ValueError(f"unknown resource type apiVersion={key[0]!r} kind={key[1]!r}") from None
