"""Which store serves canary's paginated config lists, minute by minute after the last
config write: the API server's watch cache, or etcd.

Where the API server refuses a watch-list, a restart of canary lists every ConfigMap and
Secret as metadata only, in pages of 500 (``canary/kube/watch.py``). The API server
answers the first page of a list from its watch cache and encodes the cache's
resourceVersion in the continue token; each next page must then come from a snapshot of
the cache at or before that resourceVersion (Kubernetes' ListFromCacheSnapshot).
Snapshots are taken at each write of the resource and dropped once etcd's compaction
passes them (the API server compacts every 5 minutes, to the revision of the compaction
before), so some 5-10 minutes after the last write of a resource nothing is left to
serve its continuations from, and every page after the first is read from etcd, whole
objects decoded to be cut down to their metadata.

This script starts a local environment, creates ConfigMaps of the sizes of ``run.py``'s
background (most 1-4 KB, 2% 100-500 KB), then once a minute lists them as canary's
caches do where watch-lists are refused and as one streaming watch (``sendInitialEvents``,
a watch-list, as they list otherwise), and reports for each the seconds taken and, from
the API server's own counters, how many lists the watch cache and etcd served.

    .venv/bin/python -m benchmarks.scale.list_pages --configmaps 20000 --minutes 13
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.scale import cluster
from canary.devenv import EnvironmentSettings, LocalEnvironment
from canary.devenv.install import locate
from canary.kube import KubeClient
from canary.kube import resources as r

#: The page size canary's caches list with (``WatchSettings.list_page_size``).
PAGE = 500
#: The API server's counters of lists served, by store.
SERVED = {"apiserver_cache_list_total": "watch cache",
          "apiserver_storage_list_total": "etcd"}


@dataclass
class Listing:
    seconds: float
    objects: int
    pages: int


def lists_served(exposition: str) -> dict[str, dict[str, float]]:
    """From the API server's metrics text, the lists it has served since it started, by
    store (:data:`SERVED`), then resource."""
    counts: dict[str, dict[str, float]] = {store: {} for store in SERVED.values()}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if (store := SERVED.get(sample.name)) is not None:
                resource = sample.labels.get("resource", "")
                counts[store][resource] = counts[store].get(resource, 0.0) + sample.value
    return counts


async def served_lists(kubeconfig: Path) -> dict[str, dict[str, float]]:
    """The lists the API server has served so far, by store, then resource."""
    kubectl = locate()["kubectl"]
    run = await asyncio.create_subprocess_exec(
        str(kubectl), "--kubeconfig", str(kubeconfig), "get", "--raw", "/metrics",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await run.communicate()
    if run.returncode != 0:
        raise RuntimeError("kubectl get --raw /metrics failed")
    return lists_served(out.decode())


def served_between(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
          ) -> dict[str, dict[str, float]]:
    """The lists served between two readings, by store, then resource (those with any)."""
    return {store: {resource: count - before[store].get(resource, 0.0)
                    for resource, count in sorted(after[store].items())
                    if count > before[store].get(resource, 0.0)}
            for store in after}


async def served(kubeconfig: Path) -> dict[str, float]:
    """The API server's counts of ConfigMap lists served, by store."""
    counts = await served_lists(kubeconfig)
    return {store: by_resource.get("configmaps", 0.0)
            for store, by_resource in counts.items()}


async def paged(kube: KubeClient) -> Listing:
    """Every ConfigMap's metadata, page by page, as canary's caches list them."""
    token: str | None = None
    objects = pages = 0
    began = time.monotonic()
    while True:
        page = await kube.list(r.CONFIG_MAPS, None, limit=PAGE, continue_token=token,
                               metadata_only=True)
        objects, pages = objects + len(page["items"]), pages + 1
        token = page["metadata"].get("continue") or None
        if token is None:
            return Listing(time.monotonic() - began, objects, pages)


async def streamed(kube: KubeClient) -> Listing:
    """Every ConfigMap's metadata as one watch's initial events, up to the bookmark that
    ends them."""
    began, objects = time.monotonic(), 0
    async for event in kube.watch(r.CONFIG_MAPS, None, "", timeout_seconds=300,
                                  metadata_only=True, initial_events=True):
        if event["type"] == "BOOKMARK":
            notes = event["object"]["metadata"].get("annotations") or {}
            if notes.get("k8s.io/initial-events-end") == "true":
                return Listing(time.monotonic() - began, objects, 1)
            continue
        objects += 1
    raise RuntimeError("the stream ended before its initial events did")


async def round_(kube: KubeClient, kubeconfig: Path, since: float) -> dict[str, Any]:
    """One list of each kind, and which store served the pages of the first."""
    before = await served(kubeconfig)
    pages = await paged(kube)
    after = await served(kubeconfig)
    stream = await streamed(kube)
    return {"minutes_since_last_write": round((time.monotonic() - since) / 60, 1),
            "paged_seconds": round(pages.seconds, 3), "pages": pages.pages,
            "objects": pages.objects,
            "pages_served_by": {k: after[k] - before[k] for k in after},
            "watch_list_seconds": round(stream.seconds, 3),
            "watch_list_objects": stream.objects}


async def run(configmaps: int, minutes: int, seed: int) -> list[dict[str, Any]]:
    env = await LocalEnvironment.start(settings=EnvironmentSettings(simulator=False))
    try:
        async with await env.client() as kube:
            namespaces = [f"pages-{i}" for i in range(10)]
            await cluster.create_all(kube, ({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": n}} for n in namespaces), 8)
            rng = random.Random(seed)
            await cluster.create_all(kube, (cluster.config_map(
                f"config-{i}", namespaces[i % len(namespaces)], rng)
                for i in range(configmaps)), 32)
            last_write = time.monotonic()
            rounds = []
            for minute in range(minutes):
                rounds.append(await round_(kube, env.kubeconfig, last_write))
                print(json.dumps(rounds[-1]), flush=True)
                if minute + 1 < minutes:
                    await asyncio.sleep(max(0.0, last_write + 60 * (minute + 1)
                                            - time.monotonic()))
            return rounds
    finally:
        env.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configmaps", type=int, default=20000)
    parser.add_argument("--minutes", type=int, default=13,
                        help="rounds, one a minute after the last write (default 13)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(run(args.configmaps, args.minutes, args.seed))


if __name__ == "__main__":
    main()
