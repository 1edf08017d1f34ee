"""N Canaries initialized by one ``canary run`` process, then that process restarted:
its resident memory, and how long its event loop stood still, measured in the process.

    .venv/bin/python -m benchmarks.scale.restart                  # N = 1,000; ~20 min
    .venv/bin/python -m benchmarks.scale.restart --canaries 300
    .venv/bin/python -m benchmarks.scale.restart --restarts 2 --baseline /tmp/before
    .venv/bin/python -m benchmarks.scale.restart --background full  # ~45 min

Starts a local environment and fills it (``cluster.py``): N Canaries' targets over N/10
namespaces, each mounting a ConfigMap and a Secret of its own, among the background of
``run.py``: by default its ``--quick`` one (500 other Deployments, 2,000 ConfigMaps and
2,000 Secrets, some large, some Helm releases), with ``--background full`` its full one
(5,000, 20,000 and 20,000); waits for the pods, creates the N Canaries, then runs canary
under the chart's RBAC through ``looptimer.py`` twice:

1. the process that initializes them all (their primaries, Services and routes): seconds
   until all are Initialized, and for each Canary the seconds from its primary
   Deployment first seen Available to the Canary first seen Initialized (both from
   watches of this script); then, ``--settle`` seconds later, its resident set and the
   longest its event loop was held since it started, then what its heap holds (each
   watch cache's size, the most numerous objects: ``looptimer.py``);
2. a new process on the same cluster (a restart): seconds until ready, the longest its
   event loop was held in the first ``--settle`` seconds, its resident set then, the
   API requests it made until then by verb (its own counter), how long each cache's
   first lists took (from its log), the lists the API server served from its watch cache
   and from etcd between the process' start and its readiness (the API server's
   counters, by resource: paged lists come from etcd 5-10 minutes after a resource's
   last write, see ``list_pages.py``), and the minutes since the initializing process
   settled (the last writes of configs); with ``--relist``, then every cache listed
   again at once (as after 410 Gone): the seconds and the longest stall meanwhile (its
   requests then count among the process' API requests, its heap is read after it);
   ``--restarts`` times, each
   paired with the same for a process of the ``--baseline`` checkout when given, the
   order alternating (two revisions side by side on one cluster).

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, cast

import httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.running import cancel_on_sigterm, wait_http_ok
from benchmarks.scale import cluster
from benchmarks.scale.identities import identity
from benchmarks.scale.list_pages import served_between, served_lists
from benchmarks.scale.measure import (
    MIB,
    AvailableWatch,
    PhaseWatch,
    initialized_after_available,
)
from benchmarks.scale.run import FULL, QUICK, RESOURCES, Plan, latencies, manifest
from canary.devenv import EnvironmentSettings, LocalEnvironment, process
from canary.logging import configure_logging


async def start(env: LocalEnvironment, kubeconfig: Path, name: str, code: Path,
                profile: Path | None = None) -> tuple[
        process.ProcessRecord, Path, float, str]:
    """canary, imported from checkout ``code``, through the loop timer (and its profiler
    when ``profile`` names where its statistics go); its record, its report's path, the
    seconds until it was ready and its metrics' address."""
    profiling = {"LOOPTIMER_PROFILE": str(profile)} if profile is not None else {}
    probe, metrics = process.free_port(), process.free_port()
    report = env.run_dir / f"{name}-loop.json"
    began = time.monotonic()
    record = process.start(name, [
        sys.executable, str(Path(__file__).with_name("looptimer.py")), str(report),
        "run", "--kubeconfig", str(kubeconfig), "--metrics-server", env.prometheus_url,
        "--log-format", "console", "--metrics-bind-address", f"127.0.0.1:{metrics}",
        "--health-probe-bind-address", f"127.0.0.1:{probe}",
    ], env.logs_dir / f"{name}.log", cwd=code,
        env={**os.environ, "PYTHONPATH": str(code), **profiling})
    env.processes.append(record)
    env.save()
    await wait_http_ok(f"http://127.0.0.1:{probe}/readyz", record, 300)
    return record, report, time.monotonic() - began, f"http://127.0.0.1:{metrics}/metrics"


def requests_by_verb(exposition: str) -> dict[str, int]:
    """The API requests a canary process made, by verb, from its own counter
    (``canary_kube_requests_total``) in its metrics' text."""
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "canary_kube_requests_total":
                verb = sample.labels["verb"]
                counts[verb] = counts.get(verb, 0) + int(sample.value)
    return dict(sorted(counts.items()))


async def api_requests(metrics: str) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(metrics)
        response.raise_for_status()
    return requests_by_verb(response.text)


def _written(report: Path) -> dict[str, Any] | None:
    return dict(json.loads(report.read_text())) if report.exists() else None


async def loop_report(record: process.ProcessRecord, report: Path,
                      sig: signal.Signals = signal.SIGUSR1) -> dict[str, Any]:
    """What the loop timer in ``record`` has seen so far (``SIGUSR2``: what its heap
    holds, written next to ``report``)."""
    if sig is signal.SIGUSR2:
        report = report.with_suffix(".heap.json")
    report.unlink(missing_ok=True)
    os.kill(record.pid, sig)
    for _ in range(600):
        await asyncio.sleep(0.1)
        if (written := _written(report)) is not None:
            return written
    raise RuntimeError(f"{record.name} wrote no report")


def list_seconds(log: Path) -> dict[str, float]:
    """Per cache, the seconds its first lists took, as the process logged them (from
    when its lists began: a cache waits for those that say what it keeps)."""
    found: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        words = line.split()
        if "listed" not in words or "again" in words:
            continue
        fields = dict(word.split("=", 1) for word in words if "=" in word)
        if "resource" in fields and "seconds" in fields:
            found.setdefault(fields["resource"], float(fields["seconds"]))
    return found


def rss_mib(record: process.ProcessRecord) -> float:
    return round(psutil.Process(record.pid).memory_info().rss / MIB, 1)


def delays(seconds: dict[tuple[str, str], float], over: float = 2.0) -> dict[str, Any]:
    """Per Canary delays as :func:`~benchmarks.scale.run.latencies` gives them (count,
    p50, p99, the largest, every value), and the Canaries over ``over`` seconds, the
    slowest first: which ones missed the target, to be read in their logs."""
    late = sorted(((round(s, 3), f"{ns}/{name}") for (ns, name), s in seconds.items()
                   if s > over), reverse=True)
    return {**latencies(list(seconds.values())), f"over_{over:g}s": late}


async def relisted(record: process.ProcessRecord, report: Path) -> dict[str, Any]:
    """Every cache of the process listed again at once (SIGHUP, ``looptimer.py``): the
    seconds that took and the longest the event loop was held meanwhile."""
    await loop_report(record, report)  # the delays since, from here on
    done = report.with_suffix(".relist.json")
    done.unlink(missing_ok=True)
    os.kill(record.pid, signal.SIGHUP)
    for _ in range(1200):
        await asyncio.sleep(0.1)
        if (written := _written(done)) is not None:
            loop = await loop_report(record, report)
            return {**written, "longest_loop_stall_ms": loop["longest_since_last_report_ms"]}
    raise RuntimeError(f"{record.name} did not list again")


async def one_process(env: LocalEnvironment, kubeconfig: Path, watch: PhaseWatch,
                      name: str, canaries: int, settle: float, code: Path,
                      profile: Path | None = None, relist: bool = False
                      ) -> dict[str, Any]:
    """One canary process: ready, all Initialized (at once after a restart), ``settle``
    seconds more; what it holds and its longest stall then, and which of the API
    server's stores served the lists made until it was ready."""
    began = time.monotonic()
    lists_before = await served_lists(env.kubeconfig)
    record, report, ready, metrics = await start(env, kubeconfig, name, code, profile)
    try:
        lists = served_between(lists_before, await served_lists(env.kubeconfig))
        initialized = await watch.wait_for_count("Initialized", canaries, 1800)
        await asyncio.sleep(settle)
        loop = await loop_report(record, report)
        rss = rss_mib(record)
        again = {"relisted": await relisted(record, report)} if relist else {}
        return {**again, "ready_seconds": round(ready, 2), "lists_served_until_ready": lists,
                "api_requests_by_verb": await api_requests(metrics),
                "initialized_seconds": round(max(0.0, initialized - began), 1),
                "rss_mib": rss, "longest_loop_stall_ms": loop["longest_ms"],
                "loop_stalls_over_50_ms": loop["over_50_ms"],
                "list_seconds": list_seconds(env.logs_dir / f"{name}.log"),
                "heap": await loop_report(record, report, signal.SIGUSR2)}
    finally:
        await asyncio.to_thread(process.stop, record)


#: The objects no Canary refers to, by ``--background``: ``run.py``'s sizes.
BACKGROUNDS = {"quick": QUICK, "full": FULL}


async def measure(canaries: int, settle: float, restarts: int, baseline: Path | None,
                  background_size: str = "quick", logs: Path | None = None,
                  profile: Path | None = None, relist: bool = False) -> dict[str, Any]:
    """The initializing process, then ``restarts`` restarts, each paired with one of the
    ``baseline`` checkout's when given (in turns: this one first, then the baseline
    first): both revisions restarted on the same cluster. Every component's log is
    copied to ``logs`` when given, before the environment is removed. With ``profile``,
    one more restart of this checkout runs under cProfile (see looptimer.py), its
    statistics written there; its figures ("profiled") are not comparable."""
    cancel_on_sigterm()
    background = {k: cast(int, BACKGROUNDS[background_size][k])
                  for k in ("deployments", "configmaps", "secrets")}
    sizes = cluster.Sizes(canaries, max(1, canaries // 10), **background)
    plan = Plan(sizes, "1m", 0, 0, 0, 0, 32, 1, 0.0, 1800)
    env = await LocalEnvironment.start(settings=EnvironmentSettings(
        simulator=False, controller=False))
    try:
        async with await env.client() as kube:
            built = await cluster.build(kube, sizes, plan.seed, plan.parallel)
            await cluster.wait_for_pods(kube, sizes.deployments + 2 * canaries, timeout=3600)
            await cluster.create_all(kube, (manifest("canary", i, plan)
                                            for i in range(canaries)),
                                     plan.parallel, RESOURCES["canary"])
            watch, primaries = PhaseWatch(kube, RESOURCES["canary"]), AvailableWatch(kube)
            watching = [asyncio.create_task(watch.run()),
                        asyncio.create_task(primaries.run())]
            kubeconfig = await identity(kube, env, "canary")
            first = await one_process(env, kubeconfig, watch, "canary-first", canaries,
                                      settle, Path.cwd())
            first["initialized_after_primary_available"] = delays(
                initialized_after_available(watch.history, primaries.available))
            settled = time.monotonic()
            again: dict[str, list[dict[str, Any]]] = {"restarted": [], "baseline": []}
            for turn in range(1, restarts + 1):
                pair = [("restarted", Path.cwd()), ("baseline", baseline)]
                # ABBA: neither revision always comes right after the other.
                for kind, code in (pair if turn % 2 else pair[::-1]):
                    if code is None:
                        continue
                    after = round((time.monotonic() - settled) / 60, 1)
                    measured = await one_process(env, kubeconfig, watch,
                                                 f"canary-{kind}-{turn}", canaries, settle,
                                                 code, relist=relist)
                    again[kind].append({"minutes_after_first_settled": after, **measured})
            if profile is not None:
                again["profiled"] = [await one_process(
                    env, kubeconfig, watch, "canary-profiled", canaries, settle,
                    Path.cwd(), profile / "canary-profiled.prof")]
            for task in watching:
                task.cancel()
    finally:
        env.stop(remove=False)
        if logs is not None:
            shutil.copytree(env.logs_dir, logs, dirs_exist_ok=True)
        shutil.rmtree(env.run_dir, ignore_errors=True)
    return {"canaries": canaries, "background": background, "created": built["created"],
            "settle_seconds": settle, "initializing": first, **again}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--canaries", type=int, default=1000)
    parser.add_argument("--settle", type=float, default=120.0,
                        help="seconds after all are Initialized before measuring")
    parser.add_argument("--restarts", type=int, default=1,
                        help="restarts measured (each followed by the baseline's)")
    parser.add_argument("--baseline", type=Path, metavar="CHECKOUT",
                        help="a checkout of another revision, restarted after each restart")
    parser.add_argument("--background", choices=sorted(BACKGROUNDS), default="quick",
                        help="the objects no Canary refers to: run.py's --quick sizes or "
                             "its full ones")
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="where to keep every process' log (the Canaries over the "
                             "2 s target are named in the output)")
    parser.add_argument("--relist", action="store_true",
                        help="after each restart's measures, every cache of the process "
                             "lists again at once, as after 410 Gone: the seconds and the "
                             "longest the event loop was held meanwhile")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="restart this checkout once more, under cProfile for its "
                             "first 20 s, after the measured restarts; the statistics go "
                             "to DIR/canary-profiled.prof")
    args = parser.parse_args()
    configure_logging("warning")
    baseline = args.baseline.resolve() if args.baseline else None
    print(json.dumps(asyncio.run(measure(args.canaries, args.settle, args.restarts,
                                         baseline, args.background, args.logs,
                                         args.profile.resolve() if args.profile else None,
                                         args.relist))))


if __name__ == "__main__":
    main()
