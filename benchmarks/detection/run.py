"""Detection latency and idle cost of the controller, with many Canaries.

Starts a local environment, runs the controller in this process (so its API requests can
be counted and the moment it decides "new revision" timed), creates N Deployments with a
Canary each, and measures:

1. idle cost: API requests the controller makes while nothing changes, per Canary per
   analysis interval;
2. detection latency: from the API server accepting a change to a Deployment's pod
   template to the controller deciding NewRevision for its Canary, one change at a time
   and all N at once.

Usage: python benchmarks/detection/run.py [--canaries 100] [--idle-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from canary.controller import Controller
from canary.devenv import EnvironmentSettings, LocalEnvironment
from canary.kube import resources as r
from canary.logging import configure_logging
from canary.settings import AnalysisSettings, KubeSettings, LogSettings, Settings

NAMESPACE = "bench"
INTERVAL_SECONDS = 60


def deployment(name: str, revision: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": {"revision": revision}},
                                  "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}


def canary(name: str) -> dict[str, Any]:
    return {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "service": {"port": 80},
                     "analysis": {"interval": f"{INTERVAL_SECONDS}s", "threshold": 5,
                                  "stepWeight": 10, "maxWeight": 50}}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(count: int, idle_seconds: float) -> None:
    configure_logging("warning")
    env = await LocalEnvironment.start(settings=EnvironmentSettings(simulator=False))
    try:
        async with await env.client() as admin, await env.client() as client:
            await admin.create(r.NAMESPACES, {"metadata": {"name": NAMESPACE}})
            names = [f"app-{i:03d}" for i in range(count)]
            for name in names:
                await admin.apply(deployment(name, "1"), field_manager="bench")
                await admin.create(r.CANARIES, canary(name))
            controller = Controller(client, Settings(
                kube=KubeSettings(namespaces=(NAMESPACE,)),
                analysis=AnalysisSettings(metrics_server=env.prometheus_url,
                                          min_interval_seconds=1),
                logging=LogSettings(level="warning")))
            detected: dict[str, float] = {}
            record = controller.events.record

            async def timed_record(regarding: dict[str, Any], type_: str, reason: str,
                                   note: str, action: str | None = None) -> None:
                if reason == "NewRevision":
                    detected.setdefault(regarding["metadata"]["name"], time.monotonic())
                await record(regarding, type_, reason, note, action)

            controller.events.record = timed_record  # type: ignore[method-assign]
            task = asyncio.create_task(controller.run())
            started = time.monotonic()
            while True:
                listing = await admin.list(r.CANARIES, NAMESPACE)
                phases = [(c.get("status") or {}).get("phase") for c in listing["items"]]
                if phases.count("Initialized") == count:
                    break
                await asyncio.sleep(0.5)
            print(f"{count} Canaries initialized in {time.monotonic() - started:.1f}s")
            await asyncio.sleep(5)  # let events and the last status writes settle

            before = dict(client.requests)
            await asyncio.sleep(idle_seconds)
            after = dict(client.requests)
            calls = {verb: after.get(verb, 0) - before.get(verb, 0) for verb in after}
            non_watch = sum(n for verb, n in calls.items() if verb != "WATCH")
            per = non_watch / count / (idle_seconds / INTERVAL_SECONDS)
            print(f"idle for {idle_seconds:.0f}s: requests by verb {calls or '{}'}; "
                  f"{per:.3f} requests per idle Canary per {INTERVAL_SECONDS}s interval "
                  f"(watch streams opened: {calls.get('WATCH', 0)})")

            async def change(name: str, revision: str) -> float:
                deployment_obj = deployment(name, revision)
                await admin.apply(deployment_obj, field_manager="bench")
                return time.monotonic()

            async def measure(label: str, revision: str, together: bool) -> None:
                detected.clear()
                sent: dict[str, float] = {}
                if together:
                    stamps = await asyncio.gather(*(change(n, revision) for n in names))
                    sent = dict(zip(names, stamps, strict=True))
                else:
                    for name in names:
                        sent[name] = await change(name, revision)
                        await asyncio.sleep(0.05)
                for _ in range(1200):  # up to 60 s
                    if len(detected) >= count:
                        break
                    await asyncio.sleep(0.05)
                latencies = [(detected[n] - sent[n]) * 1000 for n in names if n in detected]
                print(f"detection latency, {label}: n={len(latencies)}/{count} "
                      f"p50={statistics.median(latencies):.0f}ms "
                      f"p99={percentile(latencies, 0.99):.0f}ms "
                      f"max={max(latencies):.0f}ms")

            await measure("one change at a time", "2", together=False)
            await asyncio.sleep(3)
            await measure(f"{count} changes at once", "3", together=True)
            task.cancel()
            await controller.stop()
    finally:
        env.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--canaries", type=int, default=100)
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    asyncio.run(main(args.canaries, args.idle_seconds))
