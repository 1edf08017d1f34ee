"""Which data plane's metrics the built-in checks and the judge read (pure).

Built-in checks (``request-success-rate``, ``request-duration``) and the judge's counters
are only as good as the metrics of what carries the requests, so they follow the Canary's
routing: ``spec.provider: istio`` reads Istio's standard metrics; ``gatewayapi:v1`` reads
those of the Gateway API implementation ``spec.service.gatewayImplementation`` names
(``istio``, the default, or ``envoy-gateway``); any other implementation has no built-ins,
and a check naming one is refused with the field to change, never answered from another
data plane.

``kubernetes`` routes with plain Services, so no proxy on the path measures the requests;
what can is a sidecar beside the pods. Its built-ins are Istio's destination metrics, which
count each request at the pod that answered it (by ``destination_workload``, whatever
routed it): right when the pods run in an Istio mesh, and without one they have no values,
which fails the check (a step without values is never a pass). Flagger reads the
application's own ``http_request_duration_seconds`` there instead; that, or any metric the
application exports, is a MetricTemplate.

**Envoy Gateway** exposes its proxies' Envoy cluster stats: ``envoy_cluster_upstream_rq_xx``
(label ``envoy_response_code_class``) and ``envoy_cluster_upstream_rq_time`` (a histogram
in milliseconds), by ``envoy_cluster_name``. It names a route rule's cluster
``<kind>/<namespace>/<route>/rule/<i>`` and puts every backendRef of the rule in it, unless a
backendRef carries a filter: then each backendRef is a cluster of its own,
``<kind>/<namespace>/<route>/rule/<i>/backend/<j>`` (``j`` its index in the rule). Cluster
stats do not say which backend of a shared cluster answered, so with one cluster per rule
the canary's requests cannot be told from the primary's. canary's route for an Envoy
Gateway Canary therefore gives each backendRef a RequestHeaderModifier (see
:mod:`canary.router.gatewayapi.rules`), and its split always lists ``<svc>-primary`` first
and ``<svc>-canary`` second: the canary is ``backend/1`` and the primary ``backend/0`` of
every rule of canary's ``<svc>`` route. (The filter also keeps ``mergeBackends`` from
sharing these clusters with other routes: it merges only backendRefs without filters.)

Sources, in envoyproxy/gateway: the metric and label names are those of its own
dashboards (``charts/gateway-addons-helm/dashboards/envoy-clusters.json``); cluster names
come from ``irRouteDestinationName`` and ``irDestinationSettingName``
(``internal/gatewayapi/helpers.go``, ``j`` the backendRef's index in the rule), one per
backendRef when ``RouteDestination.NeedsClusterPerSetting`` (``HasFiltersInSettings``,
``internal/ir/xds.go``). An EnvoyProxy ``clusterStatName`` renames the stats; the
built-ins then find nothing, and MetricTemplates must say the names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from canary.errors import ConfigError
from canary.metrics.grpc import GRPC_SERVER_ERRORS
from canary.models.canary import BUILTIN_METRICS, GatewayImplementation, Provider

ISTIO = GatewayImplementation.ISTIO.value
ENVOY_GATEWAY = GatewayImplementation.ENVOY_GATEWAY.value
#: The Gateway API implementations whose metrics canary knows.
IMPLEMENTATIONS = tuple(i.value for i in GatewayImplementation)

#: Built-in metrics on Istio, with Flagger's semantics: the canary workload's percentage
#: of non-5xx responses, and its P99 latency in milliseconds. A gRPC call that failed on
#: the server (``grpc_response_status`` in :data:`GRPC_SERVER_ERRORS`, under HTTP 200) is
#: not a success either; Flagger counts it as one.
ISTIO_BUILTINS = {
    "request-success-rate": (
        'sum(rate(istio_requests_total{reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}",response_code!~"5.*",'
        f'grpc_response_status!~"{GRPC_SERVER_ERRORS}"}}[{{{{ interval }}}}])) '
        '/ sum(rate(istio_requests_total{reporter="destination",'
        'destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"}[{{ interval }}])) * 100'),
    "request-duration": (
        'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{'
        'reporter="destination",destination_workload_namespace="{{ namespace }}",'
        'destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))'),
}

#: The clusters of the canary's backendRef in every rule of canary's ``<svc>`` route, as
#: Envoy Gateway names them (module docstring).
_EG_CANARY_CLUSTERS = ('envoy_cluster_name=~"(httproute|grpcroute)/{{ namespace }}/'
                       '{{ service }}/rule/[0-9]+/backend/1"')

#: Built-in metrics on Envoy Gateway: the same meanings, from the canary's clusters.
#: Responses are counted by class (``upstream_rq_xx``), which Envoy charges for upstream
#: answers and for the 503s and 504s it makes itself for the backend (no healthy host,
#: timeouts).
ENVOY_GATEWAY_BUILTINS = {
    "request-success-rate": (
        f'sum(rate(envoy_cluster_upstream_rq_xx{{{_EG_CANARY_CLUSTERS},'
        'envoy_response_code_class!="5"}[{{ interval }}])) '
        f'/ sum(rate(envoy_cluster_upstream_rq_xx{{{_EG_CANARY_CLUSTERS}}}'
        '[{{ interval }}])) * 100'),
    "request-duration": (
        'histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{'
        f'{_EG_CANARY_CLUSTERS}}}[{{{{ interval }}}}])) by (le))'),
}

BUILTIN_NAMES = BUILTIN_METRICS


@dataclass(frozen=True)
class DataPlane:
    """Where a Canary's request metrics come from: ``implementation`` None when nothing
    canary knows measures them, ``why`` saying so (and naming the field to change)."""

    implementation: str | None
    why: str = ""
    #: Why failed gRPC calls are not seen as errors here (empty when they are): the
    #: built-in success rate and the judge's errorRate are then refused.
    grpc_errors_unseen: str = ""


#: Why Envoy Gateway's built-ins cannot judge a gRPC service's errors.
ENVOY_GRPC_UNSEEN = ("Envoy Gateway's cluster stats count HTTP statuses, and a failed gRPC "
                     "call is HTTP 200")


def data_plane(provider: str, gateway_implementation: str | None, *,
               grpc: bool = False) -> DataPlane:
    """The data plane measuring a Canary routed by ``provider`` (its ``spec.provider`` or
    the controller's default) with ``spec.service.gatewayImplementation``; ``grpc``: the
    service speaks gRPC (``spec.service.appProtocol``)."""
    if provider == Provider.ISTIO:
        return DataPlane(ISTIO)
    if provider == Provider.GATEWAY_API:
        implementation = gateway_implementation or ISTIO
        if implementation == ENVOY_GATEWAY and grpc:
            return DataPlane(implementation, grpc_errors_unseen=ENVOY_GRPC_UNSEEN)
        if implementation in IMPLEMENTATIONS:
            return DataPlane(implementation)
        return DataPlane(None, (
            f"spec.service.gatewayImplementation is {implementation!r}, whose metrics canary "
            f"does not know (it knows {' and '.join(IMPLEMENTATIONS)})"))
    if provider == Provider.KUBERNETES:
        return DataPlane(ISTIO)  # the pods' sidecars, if any (module docstring)
    return DataPlane(None, f"spec.provider {provider} has no metrics canary knows")


def builtin_query(plane: DataPlane, metric: str, field: str) -> str:
    """The query template of the built-in ``metric`` on ``plane``; a :class:`ConfigError`
    naming ``field`` (the metric's name in the Canary) when there is none."""
    if metric not in BUILTIN_NAMES:
        raise ConfigError(f"{field}: {metric!r} is not built in ({', '.join(BUILTIN_NAMES)} "
                          "are) and the metric has no templateRef")
    if plane.implementation is None:
        raise ConfigError(f"{field}: {metric} is not built in here: {plane.why}; give the "
                          "metric a templateRef to a MetricTemplate with your own query")
    if metric == "request-success-rate" and plane.grpc_errors_unseen:
        raise ConfigError(f"{field}: {metric} cannot see failed gRPC calls here: "
                          f"{plane.grpc_errors_unseen}; give the metric a templateRef to a "
                          "MetricTemplate on your gRPC status metrics")
    return _BUILTINS[plane.implementation][metric]


_BUILTINS: Mapping[str, Mapping[str, str]] = {ISTIO: ISTIO_BUILTINS,
                                               ENVOY_GATEWAY: ENVOY_GATEWAY_BUILTINS}
