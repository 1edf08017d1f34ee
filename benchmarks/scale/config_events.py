"""What the controller spends on the watch events of a large cluster's configs at
start-up (and at every re-list after 410 Gone), with no API server: the caches are
filled as their first list would fill them and the controller's own handlers run.

    .venv/bin/python benchmarks/scale/config_events.py --canaries 1000 --configs 20000

prints the CPU seconds the ConfigMaps' and Secrets' first lists cost, and the Canaries
woken. Run it on two revisions (``--repeat`` takes the best of several) to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any, cast

from canary.controller.controller import Controller
from canary.kube import KubeClient
from canary.kube.resources import Resource
from canary.observability import ControllerMetrics
from canary.settings import Settings

JSON = dict[str, Any]


def cluster(canaries: int, configs: int, namespaces: int) -> dict[str, list[JSON]]:
    """Canaries spread over ``namespaces``, each target mounting one ConfigMap and one
    Secret of its own; ``configs`` ConfigMaps and as many Secrets in all (most referenced
    by nothing)."""
    objects: dict[str, list[JSON]] = {"canaries": [], "deployments": [], "configmaps": [],
                                      "secrets": []}
    for i in range(canaries):
        ns, name = f"ns-{i % namespaces}", f"app-{i}"
        objects["canaries"].append({"kind": "Canary", "metadata": {
            "namespace": ns, "name": name, "resourceVersion": "1"},
            "spec": {"targetRef": {"name": name}}})
        objects["deployments"].append({"kind": "Deployment", "metadata": {
            "namespace": ns, "name": name, "resourceVersion": "1"}, "spec": {"template": {
                "spec": {"volumes": [{"name": "c", "configMap": {"name": f"{name}-config"}},
                                     {"name": "s", "secret": {"secretName": f"{name}-secret"}}],
                         "containers": [{"name": "app", "image": "app:1"}]}}}})
    for i in range(configs):
        ns, name = f"ns-{i % namespaces}", f"app-{i}"
        for kind, plural, suffix in (("ConfigMap", "configmaps", "config"),
                                     ("Secret", "secrets", "secret")):
            objects[plural].append({"kind": kind, "metadata": {
                "namespace": ns, "name": f"{name}-{suffix}", "resourceVersion": "1"},
                "data": {"key": "x" * 64}})
    return objects


class Listing:
    """Answers the first list of each resource from ``objects``."""

    def __init__(self, objects: dict[str, list[JSON]]) -> None:
        self.objects = objects

    async def list(self, resource: Resource, namespace: str | None = None,
                   **_: Any) -> JSON:
        return {"items": self.objects.get(resource.plural, []),
                "metadata": {"resourceVersion": "1"}}


async def measure(objects: dict[str, list[JSON]]) -> tuple[float, int]:
    """CPU seconds of the configs' first lists, and how many wake-ups they caused."""
    controller = Controller(cast(KubeClient, Listing(objects)), Settings(),
                            metrics=ControllerMetrics(process_metrics=False))
    woken = 0

    def wake(namespace: str, name: str) -> None:
        nonlocal woken
        woken += 1

    controller._wake = wake  # type: ignore[method-assign]
    caches = controller.caches
    for reflector in (caches.canaries, caches.deployments):
        await reflector._relist(None)
    woken = 0
    started = time.process_time()
    for reflector in (caches.configmaps, caches.secrets):
        await reflector._relist(None)
    return time.process_time() - started, woken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--configs", type=int, default=20000,
                        help="ConfigMaps, and as many Secrets")
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    objects = cluster(args.canaries, args.configs, args.namespaces)
    runs = [asyncio.run(measure(objects)) for _ in range(args.repeat)]
    seconds, woken = min(runs)
    print(json.dumps({"canaries": args.canaries, "config_events": 2 * args.configs,
                      "namespaces": args.namespaces, "cpu_seconds": round(seconds, 3),
                      "woken": woken}))


if __name__ == "__main__":
    main()
