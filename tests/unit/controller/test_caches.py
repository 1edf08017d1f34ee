"""The lookups the controller's services make in the watch caches, by kind."""

from __future__ import annotations

from typing import Any

from canary.kube import resources as r
from tests.unit.controller.caches import Cache, caches


def obj(kind: str, name: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "shop", "name": name}}


class TestLookups:
    async def test_the_analysis_reads_secrets_templates_and_configmaps_from_their_caches(
            self) -> None:
        held = caches(secrets=Cache(obj("Secret", "token")),
                      metric_templates=Cache(obj("MetricTemplate", "errors")),
                      configmaps=Cache(obj("ConfigMap", "settings")))
        assert await held.cached(r.SECRETS, "shop", "token") == obj("Secret", "token")
        assert await held.cached(r.METRIC_TEMPLATES, "shop", "errors") is not None
        assert await held.cached(r.CONFIG_MAPS, "shop", "settings") is not None
        assert await held.cached(r.SECRETS, "shop", "settings") is None

    async def test_other_kinds_are_not_read_from_the_caches(self) -> None:
        held = caches(deployments=Cache(obj("Deployment", "web")))
        assert await held.cached(r.DEPLOYMENTS, "shop", "web") is None

    def test_a_config_lookup_finds_configmaps_and_secrets_of_its_namespace(self) -> None:
        held = caches(configmaps=Cache(obj("ConfigMap", "a")), secrets=Cache(obj("Secret", "b")))
        lookup = held.config_lookup("shop")
        assert lookup("ConfigMap", "a") is not None and lookup("Secret", "b") is not None
        assert lookup("Secret", "a") is None and held.config_lookup("other")("ConfigMap", "a") \
            is None

    def test_each_generated_kind_is_found_in_its_own_cache(self) -> None:
        kinds = {"Deployment": "deployments", "Service": "services",
                 "VirtualService": "virtual_services", "DestinationRule": "destination_rules",
                 "HorizontalPodAutoscaler": "autoscalers", "HTTPRoute": "http_routes",
                 "GRPCRoute": "grpc_routes"}
        held = caches(**{cache: Cache(obj(kind, "web")) for kind, cache in kinds.items()})
        lookup = held.generated_lookup("shop")
        for kind in kinds:
            found = lookup(kind, "web")
            assert found is not None and found["kind"] == kind

    def test_every_cache_is_listed_once_the_canaries_first(self) -> None:
        held = caches()
        assert held.all()[0] is held.canaries and len({id(c) for c in held.all()}) == 12
