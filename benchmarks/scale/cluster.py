"""The cluster of the scale benchmark: Canaries' targets among a background of unrelated
Deployments, ConfigMaps and Secrets, created fast and in parallel, and fake Nodes enough
for every pod.

Every namespace holds both controllers' targets (``c-app-K`` for canary's Canary K,
``f-app-K`` for Flagger's), each mounting a ConfigMap and a Secret of its own, and a
share of the background, so both controllers watch the same objects; neither touches
the other's targets.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from canary.kube import Conflict, KubeClient
from canary.kube import resources as r

JSON = dict[str, Any]
IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"
#: The pods one fake node takes (kwok's node stage, canary/devenv/kwok-stages.yaml).
PODS_PER_NODE = 1000
#: Share of the background configs of 100-500 KB (the rest: 1-4 KB).
LARGE_SHARE = 0.03
#: Share of the background Secrets that are Helm release records.
HELM_SHARE = 0.05
PREFIXES = {"canary": "c-app", "flagger": "f-app"}


@dataclass(frozen=True)
class Sizes:
    canaries: int
    namespaces: int
    deployments: int
    configmaps: int
    secrets: int

    def namespace(self, index: int) -> str:
        return f"scale-{index % self.namespaces:03d}"

    @property
    def pods(self) -> int:
        """Pods at most: the background, both controllers' targets and their primaries."""
        return self.deployments + 4 * self.canaries


def target_name(controller: str, index: int) -> str:
    return f"{PREFIXES[controller]}-{index}"


def deployment(name: str, namespace: str, configs: bool) -> JSON:
    """One replica; a target mounts its ConfigMap and Secret, as most real apps do."""
    pod: JSON = {"containers": [{"name": "app", "image": IMAGE,
                                 "ports": [{"containerPort": 9898}]}]}
    if configs:
        pod["volumes"] = [{"name": "config", "configMap": {"name": f"{name}-config"}},
                          {"name": "secret", "secret": {"secretName": f"{name}-secret"}}]
        pod["containers"][0]["volumeMounts"] = [
            {"name": "config", "mountPath": "/etc/config"},
            {"name": "secret", "mountPath": "/etc/secret"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}}


def size(rng: random.Random) -> int:
    """A realistic size in bytes: mostly 1-4 KB, a few 100-500 KB."""
    return (rng.randint(100_000, 500_000) if rng.random() < LARGE_SHARE
            else rng.randint(1_000, 4_000))


def config_map(name: str, namespace: str, rng: random.Random) -> JSON:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace},
            "data": {"config.yaml": base64.b64encode(rng.randbytes(size(rng) * 3 // 4)).decode()}}


def secret(name: str, namespace: str, rng: random.Random, helm_share: float = HELM_SHARE
           ) -> JSON:
    """Opaque, or (``helm_share`` of them) a Helm release record as Helm 3 stores it."""
    data = base64.b64encode(rng.randbytes(size(rng))).decode()
    if rng.random() < helm_share:
        release, version = f"release-{name}", rng.randint(1, 10)
        return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                "metadata": {"name": f"sh.helm.release.v1.{release}.v{version}",
                             "namespace": namespace,
                             "labels": {"owner": "helm", "name": release, "status": "deployed",
                                        "version": str(version)}},
                "data": {"release": data}}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace}, "data": {"token": data}}


def targets(sizes: Sizes, seed: int) -> Iterator[JSON]:
    """Both controllers' targets with their own ConfigMap and Secret."""
    rng = random.Random(seed)
    for index in range(sizes.canaries):
        namespace = sizes.namespace(index)
        for controller in PREFIXES:
            name = target_name(controller, index)
            yield config_map(f"{name}-config", namespace, rng)
            yield secret(f"{name}-secret", namespace, rng, helm_share=0)
            yield deployment(name, namespace, configs=True)


def background(sizes: Sizes, seed: int) -> Iterator[JSON]:
    """Deployments, ConfigMaps and Secrets no Canary refers to, interleaved so that the
    large ones do not all come at once."""
    rng = random.Random(seed + 1)
    most = max(sizes.deployments, sizes.configmaps, sizes.secrets)
    for index in range(most):
        namespace = sizes.namespace(index)
        if index < sizes.configmaps:
            yield config_map(f"bg-config-{index}", namespace, rng)
        if index < sizes.secrets:
            yield secret(f"bg-secret-{index}", namespace, rng)
        if index < sizes.deployments:
            yield deployment(f"bg-app-{index}", namespace, configs=False)


def node(name: str) -> JSON:
    """A plain Node like the environment's own: kwok manages every node and gives it
    ``PODS_PER_NODE`` pods of capacity."""
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {
                "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64", "type": "kwok"},
                "annotations": {"kwok.x-k8s.io/node": "fake"}},
            "spec": {}}


def nodes_needed(sizes: Sizes) -> int:
    """Nodes for every pod with a fifth of headroom."""
    return max(1, math.ceil(sizes.pods * 1.2 / PODS_PER_NODE))


async def create_all(kube: KubeClient, objects: Iterable[JSON], parallel: int,
                     resource: r.Resource | None = None) -> Counter[str]:
    """Create ``objects`` (of ``resource``, by default found from each object's kind) with
    ``parallel`` requests in flight, generated as they are sent, so that tens of thousands
    of payloads are never held at once; counts by kind."""
    created: Counter[str] = Counter()
    source = iter(objects)

    async def worker() -> None:
        for body in source:  # the iterator is shared: each worker takes the next object
            try:
                await kube.create(resource or r.for_object(body), body)
            except Conflict:  # the same Helm release name drawn twice
                continue
            created[body["kind"]] += 1

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return created


async def build(kube: KubeClient, sizes: Sizes, seed: int, parallel: int) -> dict[str, Any]:
    """Namespaces, Nodes, targets and background; returns what was created and how
    fast."""
    started = time.monotonic()
    namespaces = ({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"scale-{i:03d}"}}
                  for i in range(sizes.namespaces))
    created = await create_all(kube, namespaces, parallel)
    existing = {n["metadata"]["name"] for n in (await kube.list(r.NODES))["items"]}
    wanted = (f"kwok-node-{i}" for i in range(nodes_needed(sizes)))
    created += await create_all(kube, (node(n) for n in wanted if n not in existing), parallel)
    created += await create_all(kube, targets(sizes, seed), parallel)
    created += await create_all(kube, background(sizes, seed), parallel)
    seconds = time.monotonic() - started
    total = sum(created.values())
    return {"created": dict(created), "seconds": round(seconds, 1),
            "objects_per_second": round(total / seconds, 1)}


async def wait_for_pods(kube: KubeClient, expected: int, timeout: float) -> float:
    """Until ``expected`` Deployments have all their replicas ready (kwok's pods); the
    seconds it took."""
    started = time.monotonic()
    while True:
        items = (await kube.list(r.DEPLOYMENTS))["items"]
        ready = sum((d.get("status") or {}).get("readyReplicas", 0) >= d["spec"]["replicas"]
                    for d in items)
        if ready >= expected:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{ready} of {expected} Deployments ready after {timeout:.0f}s")
        await asyncio.sleep(5)


#: What the API server holds, counted after set-up and after each controller.
COUNTED = {
    "Namespace": r.NAMESPACES, "Node": r.NODES, "Pod": r.PODS, "Deployment": r.DEPLOYMENTS,
    "ReplicaSet": r.REPLICA_SETS, "ConfigMap": r.CONFIG_MAPS, "Secret": r.SECRETS,
    "Service": r.SERVICES, "Event": r.CORE_EVENTS, "VirtualService": r.VIRTUAL_SERVICES,
    "DestinationRule": r.DESTINATION_RULES, "Canary (canary.dev)": r.CANARIES,
}


async def count(kube: KubeClient, resource: r.Resource, **query: str) -> int:
    """Objects of ``resource`` in the API server. Without a selector, a list of one and
    the server's count of the rest, so that counting 20,000 Secrets does not fetch them;
    with one (the server then gives no count), page by page."""
    total, token = 0, None
    while True:
        data = await kube.request("GET", resource.path(None), query={
            "limit": 1 if not query else 500, "continue": token, **query})
        total += len(data.get("items") or [])
        meta = data["metadata"]
        if meta.get("remainingItemCount") is not None:
            return total + int(meta["remainingItemCount"])
        token = meta.get("continue")
        if not token:
            return total


async def totals(kube: KubeClient, extra: dict[str, r.Resource]) -> dict[str, int]:
    """Counts per kind, with Helm release Secrets apart."""
    kinds = {**COUNTED, **extra}
    counted = await asyncio.gather(*(count(kube, res) for res in kinds.values()))
    result = dict(zip(kinds, counted, strict=True))
    result["Secret of type helm.sh/release.v1"] = await count(
        kube, r.SECRETS, fieldSelector="type=helm.sh/release.v1")
    return result
