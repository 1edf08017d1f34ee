"""The watch caches the controller reads from, one typed attribute per resource.

Workers, the executor, the analyst and the webhooks read every object they follow from
here, never from the API, so an idle Canary costs no requests. The lookups the others
need (a namespace's configs, the objects a Canary writes, the kinds read while
analysing) are answered here, so no caller names a cache by a string.

The caches hold only what decisions read (:mod:`canary.kube.trim`): no managedFields
(a Deployment keeps who owns its replicas) or last-applied copies, and of a Deployment
that ``keep_deployment`` says canary does not read, its metadata only (see
``kept.py``). Configs are listed and watched as metadata only; a config's content is
read when a reader asks for it, and kept until the config changes only when
``keep_content`` says canary reads it. The methods that hand out content or a
Deployment fetch an object whose cached copy lacks it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from canary.controller.claims import Lookup
from canary.controller.kept import generated
from canary.kube import JSON, KubeClient, Reflector
from canary.kube import resources as r
from canary.kube.helm import HELM_RELEASE_SECRET
from canary.kube.trim import Transform, config_trimmer, deployment_trimmer, lean
from canary.settings import KubeSettings
from canary.targets import configs
from canary.targets.deployment import MANAGED_BY

#: The label selector of the objects canary generates.
MANAGED_SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


@dataclass(frozen=True)
class Caches:
    canaries: Reflector
    deployments: Reflector
    #: The generated routing objects only (labelled as managed by canary): Services and
    #: Istio's routes.
    services: Reflector
    virtual_services: Reflector
    destination_rules: Reflector
    #: Every HTTPRoute and GRPCRoute: canary's own and the users' it edits in place
    #: (``spec.service.routeRef``), which carry no label a selector could pick. One watch
    #: per kind serves both, and an idle Canary reads its user's route without a request.
    http_routes: Reflector
    grpc_routes: Reflector
    autoscalers: Reflector
    configmaps: Reflector
    #: All Secrets but Helm's releases.
    secrets: Reflector
    metric_templates: Reflector
    alert_providers: Reflector

    @classmethod
    def watching(cls, client: KubeClient, kube: KubeSettings,
                 keep_content: Callable[[JSON], bool] = lambda _: True,
                 keep_deployment: Callable[[JSON], bool] = lambda _: True,
                 on_listed: Callable[[], None] | None = None) -> Caches:
        """Caches that list and watch the namespaces ``kube`` names, once run; configs
        as metadata only, and once read whole, without their content when
        ``keep_content`` refuses them; the Deployments ``keep_deployment`` refuses as
        their metadata only; ``on_listed`` is called each time lists have filled one of
        them (see ``Reflector``)."""
        namespace = kube.namespaces
        # canary's own copies by a digest per key, so the executor can tell whether
        # one holds what it writes (``contained.holds``).
        trim_config = config_trimmer(keep_content, by_key=generated)

        def watch(resource: r.Resource, label_selector: str | None = None,
                  field_selector: str | None = None, transform: Transform = lean,
                  metadata_only: bool = False) -> Reflector:
            return Reflector(client, resource, namespace, label_selector=label_selector,
                             field_selector=field_selector, transform=transform,
                             on_listed=on_listed, metadata_only=metadata_only)

        return cls(
            canaries=watch(r.CANARIES, label_selector=kube.canary_selector),
            deployments=watch(r.DEPLOYMENTS, transform=deployment_trimmer(keep_deployment)),
            services=watch(r.SERVICES, MANAGED_SELECTOR),
            virtual_services=watch(r.VIRTUAL_SERVICES, MANAGED_SELECTOR),
            destination_rules=watch(r.DESTINATION_RULES, MANAGED_SELECTOR),
            http_routes=watch(r.HTTP_ROUTES),
            grpc_routes=watch(r.GRPC_ROUTES),
            autoscalers=watch(r.HORIZONTAL_POD_AUTOSCALERS),
            # A large cluster's configs hold hundreds of MB (some of hundreds of KB each):
            # listing them whole took most of a first start's 11.8 s at 44,000 configs.
            configmaps=watch(r.CONFIG_MAPS, transform=trim_config, metadata_only=True),
            # Helm keeps whole releases in Secrets: large, numerous and never referenced
            # by a pod template, so they stay out of the cache.
            secrets=watch(r.SECRETS, field_selector=f"type!={HELM_RELEASE_SECRET}",
                          transform=trim_config, metadata_only=True),
            metric_templates=watch(r.METRIC_TEMPLATES),
            alert_providers=watch(r.ALERT_PROVIDERS))

    def config_caches(self) -> Sequence[Reflector]:
        """The caches of configs (listed as metadata only)."""
        return (self.configmaps, self.secrets)

    def listed_after(self, cache: Reflector) -> Sequence[Reflector]:
        """The caches ``cache`` waits for before its first list, so that it knows what
        to keep whole (see ``kept.py``): Deployments the Canaries (which target them).
        No more: readiness waits for the longest of these chains. Configs wait for
        nothing: listed as metadata only, they have nothing to keep."""
        return (self.canaries,) if cache is self.deployments else ()

    def all(self) -> Sequence[Reflector]:
        """Every cache, the Canaries first."""
        return (self.canaries, self.deployments, self.services, self.virtual_services,
                self.destination_rules, self.http_routes, self.grpc_routes, self.autoscalers,
                self.configmaps, self.secrets, self.metric_templates, self.alert_providers)

    def stale(self) -> str | None:
        """Which cache may be out of date (its watch broke and has not caught up), and
        for how long; None when all are current."""
        for cache in self.all():
            seconds = cache.stale_seconds()
            if seconds is not None:
                return (f"the {cache.resource.plural} watch has been catching up for "
                        f"{seconds:.0f}s")
        return None

    async def cached(self, resource: r.Resource, namespace: str, name: str) -> JSON | None:
        """An object from the caches, whole, for the kinds canary reads while analysing
        and calling webhooks: a config cached without its content is read from the API
        (and kept whole while it does not change); None (read it from the API) for other
        kinds and objects the caches do not hold."""
        if resource == r.METRIC_TEMPLATES:
            return self.metric_templates.get(namespace, name)
        if resource not in (r.SECRETS, r.CONFIG_MAPS):
            return None
        cache = self.secrets if resource == r.SECRETS else self.configmaps
        return await cache.complete(namespace, name)

    async def whole_secret(self, namespace: str, name: str) -> JSON | None:
        """A cached Secret with its content (read from the API when the cache holds it
        without); None when the cache does not hold it."""
        return await self.secrets.complete(namespace, name)

    async def whole_deployment(self, namespace: str, name: str) -> JSON | None:
        """A cached Deployment, whole (read from the API when the cache holds its
        metadata only, e.g. just after a Canary came to target it); None when the cache
        does not hold it."""
        return await self.deployments.complete(namespace, name)

    async def config_contents(self, namespace: str, template: JSON) -> configs.Lookup:
        """Find the configs pod template ``template`` refers to, with their content (for
        its revision and the primary's copies): a config cached without it is read from
        the API, so the revision is the same as from whole objects."""
        found: dict[tuple[str, str], JSON | None] = {}
        for kind, name in configs.referenced(template):
            found[(kind, name)] = await self.config(kind).complete(namespace, name)
        cached = self.config_lookup(namespace)

        def lookup(kind: str, name: str) -> JSON | None:
            return found[(kind, name)] if (kind, name) in found else cached(kind, name)
        return lookup

    def config(self, kind: str) -> Reflector:
        """The cache of a config kind a pod template refers to (ConfigMap or Secret)."""
        return self.configmaps if kind == configs.CONFIG_MAP else self.secrets

    def config_lookup(self, namespace: str) -> configs.Lookup:
        """Find a namespace's ConfigMaps and Secrets in the caches."""
        def lookup(kind: str, name: str) -> JSON | None:
            return self.config(kind).get(namespace, name)
        return lookup

    def generated(self, kind: str) -> Reflector:
        """The cache of a kind canary writes for a Canary (see ``claims.claims``)."""
        match kind:
            case "Deployment":
                return self.deployments
            case "Service":
                return self.services
            case "VirtualService":
                return self.virtual_services
            case "DestinationRule":
                return self.destination_rules
            case "HTTPRoute":
                return self.http_routes
            case "GRPCRoute":
                return self.grpc_routes
            case "HorizontalPodAutoscaler":
                return self.autoscalers
        raise KeyError(kind)

    def generated_lookup(self, namespace: str) -> Lookup:
        """Find the objects canary writes in ``namespace``: (kind, name) -> object."""
        def lookup(kind: str, name: str) -> JSON | None:
            return self.generated(kind).get(namespace, name)
        return lookup
