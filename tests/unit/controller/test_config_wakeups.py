"""A config's watch event wakes exactly the Canaries whose target refers to it, answered
from an index that a change of a Canary or a Deployment of the namespace refreshes."""

from __future__ import annotations

from typing import Any, cast

from canary.controller.controller import Controller
from canary.kube import KubeClient
from canary.observability import ControllerMetrics
from canary.settings import Settings

JSON = dict[str, Any]


def canary(name: str, target: str) -> JSON:
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": "1"},
            "spec": {"targetRef": {"name": target}}}


def deployment(name: str, config: str) -> JSON:
    return {"metadata": {"name": name, "namespace": "shop", "resourceVersion": "1"},
            "spec": {"template": {"spec": {"volumes": [
                {"name": "c", "configMap": {"name": config}}], "containers": []}}}}


def config(name: str, namespace: str = "shop") -> JSON:
    return {"kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}}


class World:
    def __init__(self) -> None:
        self.controller = Controller(cast(KubeClient, object()), Settings(),
                                     metrics=ControllerMetrics(process_metrics=False))
        self.woken: list[str] = []
        self.controller._wake = (  # type: ignore[method-assign]
            lambda namespace, name: self.woken.append(name))

    def add(self, canary_obj: JSON, target: JSON) -> None:
        caches = self.controller.caches
        caches.canaries._put(("shop", canary_obj["metadata"]["name"]), canary_obj)
        self.controller._canary_event("ADDED", canary_obj)
        caches.deployments._put(("shop", target["metadata"]["name"]), target)
        self.controller._deployment_event("ADDED", target)

    def config_changed(self, obj: JSON) -> list[str]:
        self.woken.clear()
        self.controller._config_event("MODIFIED", obj)
        return sorted(self.woken)


def test_only_the_canaries_referring_to_the_config_are_woken() -> None:
    world = World()
    world.add(canary("web", "web"), deployment("web", "shared"))
    world.add(canary("api", "api"), deployment("api", "shared"))
    world.add(canary("cart", "cart"), deployment("cart", "cart-config"))
    assert world.config_changed(config("shared")) == ["api", "web"]
    assert world.config_changed(config("cart-config")) == ["cart"]
    assert world.config_changed(config("unrelated")) == []
    assert world.config_changed(config("shared", namespace="other")) == []


def test_the_index_is_built_once_for_many_config_events() -> None:
    world = World()
    world.add(canary("web", "web"), deployment("web", "shared"))
    for _ in range(100):
        world.config_changed(config("unrelated"))
    assert world.controller.config_references.builds == 1


def test_changes_of_deployments_other_than_targets_keep_the_index() -> None:
    """A thousand primaries' statuses change while they start: the index stays."""
    world = World()
    world.add(canary("web", "web"), deployment("web", "shared"))
    world.config_changed(config("shared"))
    for name in ("web-primary", "unrelated"):
        world.controller._deployment_event("MODIFIED", deployment(name, "other"))
        assert world.config_changed(config("shared")) == ["web"]
    assert world.controller.config_references.builds == 1


def test_a_target_that_now_refers_to_another_config_is_followed() -> None:
    world = World()
    world.add(canary("web", "web"), deployment("web", "old"))
    assert world.config_changed(config("old")) == ["web"]
    world.add(canary("web", "web"), deployment("web", "new"))
    assert world.config_changed(config("old")) == []
    assert world.config_changed(config("new")) == ["web"]
