"""What the controller's watch caches cost in memory once a large cluster is listed, and
the CPU seconds of those first lists, with no API server: each list is answered
in-process from JSON, as the API server would send it (a watch-list's events, one JSON
line each, or with ``--lists pages``, where watch-lists are refused, pages when asked
for a limit; Helm's release Secrets left out by the field selector), and decoded as the
client does.

    .venv/bin/python benchmarks/scale/cache_memory.py

prints one JSON line: the JSON listed, the memory the caches hold after the lists
(tracemalloc, after a garbage collection), the peak while listing, the resident set's
growth and the CPU seconds of the lists, and the longest the event loop was held during
the first lists and during a second round of lists as after 410 Gone (these three
measured in a run without tracemalloc, which slows Python down). The garbage collector
is treated as ``canary run`` treats it (``canary.heap.FirstLists``), or as revisions
before did (``--gc freeze``: a freeze after each list; ``--gc default``: left as it is).
Run it with PYTHONPATH pointing at two revisions to compare (``--gc freeze`` for a
revision before ``FirstLists``, ``--gc default`` for one before ``canary.heap``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from canary.controller.controller import Controller
from canary.kube import Invalid, KubeClient
from canary.kube.client import as_resource
from canary.kube.resources import Resource
from canary.observability import ControllerMetrics
from canary.settings import Settings

JSON = dict[str, Any]
HELM = "helm.sh/release.v1"


def _meta(rng: random.Random, ns: str, name: str, manager_bytes: int, **extra: Any) -> JSON:
    """Metadata as kubectl apply leaves it: managedFields and a last-applied copy."""
    return {"name": name, "namespace": ns, "uid": f"{rng.getrandbits(64):016x}",
            "resourceVersion": str(rng.randint(1, 10**7)),
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                            "x" * manager_bytes},
            "managedFields": [
                {"manager": "kubectl-client-side-apply", "operation": "Update",
                 "apiVersion": "v1", "time": "2026-11-01T00:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:annotations": {".": {}}},
                              "f:data": {f"f:key{i}": {} for i in range(manager_bytes // 200)}}}],
            **extra}


def _size(rng: random.Random, large_share: float) -> int:
    """Mostly 1-4 KB, a few 100-500 KB."""
    if rng.random() < large_share:
        return rng.randint(100_000, 500_000)
    return rng.randint(1_000, 4_000)


def _config(rng: random.Random, kind: str, ns: str, name: str, large_share: float,
            **extra: Any) -> JSON:
    size = _size(rng, large_share)
    body = "x" * (size * 3 // 4 if kind == "Secret" else size)
    obj: JSON = {"apiVersion": "v1", "kind": kind,
                 "metadata": _meta(rng, ns, name, min(size, 4_000), **extra),
                 "data": {"app.yaml": body}}
    if kind == "Secret":
        obj["data"] = {"app.yaml": "eHh4" * (len(body) // 4)}
        obj["type"] = "Opaque"
    return obj


def _deployment(rng: random.Random, ns: str, name: str, mounts: bool, **labels: str) -> JSON:
    spec: JSON = {"containers": [{"name": "app", "image": f"registry/app:{rng.randint(1, 99)}",
                                  "env": [{"name": f"VAR_{i}", "value": "v" * 40}
                                          for i in range(20)],
                                  "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}
    if mounts:
        base = name.removesuffix("-primary")
        suffix = "-primary" if name.endswith("-primary") else ""
        spec["volumes"] = [{"name": "c", "configMap": {"name": f"{base}-config{suffix}"}},
                           {"name": "s", "secret": {"secretName": f"{base}-secret{suffix}"}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": _meta(rng, ns, name, 3_000, labels={"app": name, **labels}),
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
            "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2}}


def cluster(canaries: int, others: int, configs: int, namespaces: int,
            large_share: float, helm_share: float, seed: int = 1) -> dict[str, list[JSON]]:
    """The issue's cluster: Canaries whose target and primary mount a ConfigMap and a
    Secret (and their -primary copies), Deployments no Canary refers to, and as many
    ConfigMaps and Secrets in all as ``configs`` each (a share of the Secrets Helm's)."""
    rng = random.Random(seed)
    managed = {"app.kubernetes.io/managed-by": "canary"}
    objects: dict[str, list[JSON]] = {"canaries": [], "deployments": [], "configmaps": [],
                                      "secrets": []}
    for i in range(canaries):
        ns, name = f"ns-{i % namespaces}", f"app-{i}"
        objects["canaries"].append({
            "apiVersion": "canary.dev/v1", "kind": "Canary",
            "metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                   "name": name},
                     "service": {"port": 80}, "analysis": {"interval": "1m"}}})
        objects["deployments"].append(_deployment(rng, ns, name, True))
        objects["deployments"].append(_deployment(rng, ns, f"{name}-primary", True, **managed))
        for kind, plural, suffix in (("ConfigMap", "configmaps", "config"),
                                     ("Secret", "secrets", "secret")):
            objects[plural].append(_config(rng, kind, ns, f"{name}-{suffix}", large_share))
            objects[plural].append(_config(rng, kind, ns, f"{name}-{suffix}-primary",
                                           large_share, labels=managed))
    for i in range(others):
        objects["deployments"].append(_deployment(rng, f"ns-{i % namespaces}", f"other-{i}",
                                                  False))
    for kind, plural in (("ConfigMap", "configmaps"), ("Secret", "secrets")):
        for i in range(configs - 2 * canaries):
            obj = _config(rng, kind, f"ns-{i % namespaces}", f"unused-{i}", large_share)
            if kind == "Secret" and rng.random() < helm_share:
                obj["type"] = HELM
                obj["metadata"]["labels"] = {"owner": "helm", "name": f"release-{i}"}
            objects[plural].append(obj)
    return objects


class Listing:
    """Answers lists from serialized objects, a page at a time when asked for a limit,
    and watch-lists, an event a line, unless it ``refuses`` them (as an API server with
    the WatchList feature gate off does); as ``PartialObjectMetadata`` (the metadata
    alone) when asked for metadata only, as the API server does; the objects as the
    client hands them on (``as_resource``)."""

    def __init__(self, objects: dict[str, list[JSON]], refuses: bool = False) -> None:
        self.refuses = refuses
        self.items = {plural: [json.dumps(o).encode() for o in items]
                      for plural, items in objects.items()}
        self.metadata = {plural: [json.dumps(_partial(o)).encode() for o in items]
                         for plural, items in objects.items()}
        #: The kinds the controller lists as metadata only.
        self.listed_as_metadata: set[str] = set()
        self.types = {plural: [o.get("type") for o in items]
                      for plural, items in objects.items()}

    def listed_bytes(self) -> int:
        """The JSON the controller is sent (Helm's releases are left out)."""
        return sum(len(item) for plural, items in self.items.items()
                   for item, type_ in zip(self.metadata[plural] if plural in
                                          self.listed_as_metadata else items,
                                          self.types[plural], strict=True)
                   if type_ != HELM)

    def _selected(self, resource: Resource, field_selector: str | None,
                  metadata_only: bool) -> list[bytes]:
        if metadata_only:
            self.listed_as_metadata.add(resource.plural)
        items = (self.metadata if metadata_only else self.items).get(resource.plural, [])
        if field_selector == f"type!={HELM}":
            items = [i for i, t in zip(items, self.types[resource.plural], strict=True)
                     if t != HELM]
        return items

    async def watch(self, resource: Resource, namespace: str | None, resource_version: str,
                    *, field_selector: str | None = None, metadata_only: bool = False,
                    initial_events: bool = False, **_: Any) -> AsyncIterator[JSON]:
        """A watch-list: each object an ADDED event, a JSON line decoded as the client
        decodes it, the loop given a turn every 64 KiB (a read from the socket), then
        the bookmark that ends them."""
        if not initial_events or self.refuses:
            raise Invalid(422, "Invalid", "sendInitialEvents: Forbidden")
        unread = 0
        for item in self._selected(resource, field_selector, metadata_only):
            event = cast(JSON, json.loads(b'{"type":"ADDED","object":' + item + b"}"))
            event["object"] = as_resource(resource, event["object"])
            yield event
            unread += len(item)
            if unread >= 65536:
                unread = 0
                await asyncio.sleep(0)
        yield {"type": "BOOKMARK", "object": {"metadata": {
            "resourceVersion": "1", "annotations": {"k8s.io/initial-events-end": "true"}}}}

    async def list(self, resource: Resource, namespace: str | None = None, *,
                   field_selector: str | None = None, limit: int | None = None,
                   continue_token: str | None = None, metadata_only: bool = False,
                   **_: Any) -> JSON:
        items = self._selected(resource, field_selector, metadata_only)
        start = int(continue_token or 0)
        end = len(items) if not limit else min(len(items), start + limit)
        meta = {"resourceVersion": "1"} | ({"continue": str(end)} if end < len(items) else {})
        body = b'{"items":[' + b",".join(items[start:end]) + b'],"metadata":' + \
            json.dumps(meta).encode() + b"}"
        await asyncio.sleep(0)
        listed = cast(JSON, json.loads(body))
        listed["items"] = [as_resource(resource, item) for item in listed["items"]]
        return listed


def _partial(obj: JSON) -> JSON:
    """``obj`` as a list of metadata only carries it."""
    return {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
            "metadata": obj["metadata"]}


@dataclass
class Rounds:
    """For each round of lists: the longest the event loop was held, and the process'
    CPU clock at its end."""

    stalls: list[float] = field(default_factory=list)
    cpu_clock: list[float] = field(default_factory=list)


async def fill(listing: Listing, by_kind: dict[str, float], rounds: Rounds,
               collector: str) -> Controller:
    """The first lists, the configs last (as the controller orders them), then every
    list again (as after 410 Gone); with tracemalloc on, ``by_kind`` gets the MiB each
    first list left behind. ``collector`` says what is done with the garbage collector
    (see ``--gc``)."""
    hooks: dict[str, Any] = {}
    first_lists = None
    if collector == "first-lists":
        from canary import heap  # not in revisions before it: --gc freeze or default
        first_lists = heap.FirstLists()
        first_lists.hold()
        hooks["on_listed"] = first_lists.listed
    elif collector == "freeze":
        from canary import heap
        hooks["on_listed"] = heap.freeze_survivors
    controller = Controller(cast(KubeClient, listing), Settings(),
                            metrics=ControllerMetrics(process_metrics=False), **hooks)
    controller._wake = lambda namespace, name: None  # type: ignore[method-assign]
    caches = controller.caches
    configs = (caches.configmaps, caches.secrets)
    order = [*(c for c in caches.all() if c not in configs), *configs]
    for _ in ("first", "again"):
        watching = asyncio.Event()
        monitor = asyncio.create_task(longest_stall(watching))
        for reflector in order:
            before = tracemalloc.get_traced_memory()[0]
            await reflector._relist(None)
            if tracemalloc.is_tracing() and len(reflector) and not rounds.stalls:
                gc.collect()
                by_kind[reflector.resource.plural] = round(
                    (tracemalloc.get_traced_memory()[0] - before) / 2**20, 1)
        if first_lists is not None:
            first_lists.synced()  # every cache has listed: the controller's on_synced
        watching.set()
        rounds.stalls.append(await monitor)
        rounds.cpu_clock.append(time.process_time())
    return controller


async def longest_stall(done: asyncio.Event, every: float = 0.005) -> float:
    """Until ``done``: the longest the event loop was held beyond a ``every`` sleep."""
    loop, longest = asyncio.get_running_loop(), 0.0
    while not done.is_set():
        before = loop.time()
        await asyncio.sleep(every)
        longest = max(longest, loop.time() - before - every)
    return longest


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def measure(listing: Listing, traced: bool, collector: str) -> JSON:
    gc.collect()
    if collector != "default":
        from canary import heap  # not in revisions before it, measured with --gc default
        heap.freeze_survivors()  # as ``canary run`` does once it has imported
    if traced:
        tracemalloc.start()
    before, started = rss_bytes(), time.process_time()
    by_kind: dict[str, float] = {}
    rounds = Rounds()
    controller = asyncio.run(fill(listing, by_kind, rounds, collector))
    cpu = rounds.cpu_clock[0] - started  # the first lists only
    gc.collect()
    result: JSON = {"cached_objects": sum(len(c) for c in controller.caches.all())}
    if traced:
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result |= {"cache_mib": round(current / 2**20, 1), "peak_mib": round(peak / 2**20, 1),
                   "cache_mib_by_kind": by_kind}
    else:
        result |= {"cpu_seconds": round(cpu, 2), "rss_growth_mib": round(
            (rss_bytes() - before) / 2**20, 1),
            "longest_loop_stall_ms": {"first_lists": round(rounds.stalls[0] * 1000, 1),
                                      "lists_again": round(rounds.stalls[1] * 1000, 1)}}
    del controller
    gc.unfreeze()
    gc.collect()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--other-deployments", type=int, default=5000)
    parser.add_argument("--configs", type=int, default=20000,
                        help="ConfigMaps, and as many Secrets")
    parser.add_argument("--namespaces", type=int, default=100)
    parser.add_argument("--large-share", type=float, default=0.02,
                        help="share of configs of 100-500 KB (the others 1-4 KB)")
    parser.add_argument("--helm-share", type=float, default=0.05,
                        help="share of the Secrets that are Helm releases")
    parser.add_argument("--gc", choices=("first-lists", "freeze", "default"),
                        default="first-lists",
                        help="first-lists: what canary run does (canary.heap.FirstLists: "
                        "the collector off until every cache has listed, then a freeze); "
                        "freeze: a freeze after each list, with the collector on (revisions "
                        "before FirstLists); default: "
                        "CPython's collector left as it is, to compare")
    parser.add_argument("--lists", choices=("watch-list", "pages"), default="watch-list",
                        help="pages: watch-lists refused, as by an API server with the "
                        "WatchList feature gate off (and by revisions before a30e2c3)")
    args = parser.parse_args()
    listing = Listing(cluster(args.canaries, args.other_deployments, args.configs,
                              args.namespaces, args.large_share, args.helm_share),
                      refuses=args.lists == "pages")
    untraced = measure(listing, traced=False, collector=args.gc)
    traced = measure(listing, traced=True, collector=args.gc)
    print(json.dumps({"listed_json_mib": round(listing.listed_bytes() / 2**20, 1),
                      **traced, **untraced}))


if __name__ == "__main__":
    main()
