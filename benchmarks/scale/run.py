"""canary and Flagger side by side on a cluster of realistic size, one at a time.

Starts a local environment (real API server, kwok making pods Ready, Prometheus), fills
it (``cluster.py``): N Canaries' targets over many namespaces, each mounting a ConfigMap
and a Secret of its own, among unrelated Deployments, ConfigMaps and Secrets (some large,
some Helm release records), and fake Nodes enough for every pod. Then, for canary and
then for Flagger (v1.36.1, built from its Go module), each under a ServiceAccount bound
to the ClusterRole it is installed with, with N Canaries of its own API group:

- start-up: seconds until the process is ready, and until all N Canaries are Initialized;
- idle, once its start-up writes have stopped: resident memory (median and peak), CPU
  seconds per minute, API requests per minute by verb and resource as the API server's
  audit log records them, Prometheus queries per minute (Prometheus' own counter);
- detection: from the API server accepting a change to a target's pod template to the
  Canary's phase showing the new revision (canary: Progressing, or Waiting/Queued;
  Flagger: Progressing), one change at a time and many at once;
- while the rollouts of those changes are under way (their Services driven with
  traffic by the simulator), the same costs as at idle, how the rollouts ended and how
  late each step ran against the interval.

Prints Markdown tables, writes ``results.json`` (and ``results.png`` for several N).

Usage: python -m benchmarks.scale.run --quick            # N = 100, small background
       python -m benchmarks.scale.run                    # N = 1,000 over 100 namespaces
       python -m benchmarks.scale.run --canaries 100,300 # several N, each a fresh cluster
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.flagger import (
    FLAGGER_CANARIES,
    FLAGGER_VERSION,
    flagger_binary,
    flagger_crds,
    start_flagger,
    to_flagger,
)
from benchmarks.running import cancel_on_sigterm, wait_http_ok
from benchmarks.scale import cluster, report
from benchmarks.scale.identities import identity, user
from benchmarks.scale.measure import (
    MIB,
    AuditLog,
    PhaseWatch,
    ProcessSampler,
    Seen,
    ended_at,
    percentile,
    prometheus_queries,
    step_lateness,
)
from canary.devenv import EnvironmentSettings, LocalEnvironment, process
from canary.kube import KubeClient
from canary.kube import resources as r
from canary.logging import configure_logging
from tests.e2e.manifests import canary as canary_manifest

HERE = Path(__file__).resolve().parent
CONTROLLERS = ("canary", "flagger")
RESOURCES = {"canary": r.CANARIES, "flagger": FLAGGER_CANARIES}
#: The phases that show a new revision was seen.
DETECTED = {"canary": ("Progressing", "Waiting", "Queued"), "flagger": ("Progressing",)}
REVISION = "bench.canary.dev/revision"
#: The verbs of writes, as the audit log names them.
WRITES = ("create", "update", "patch", "delete", "deletecollection")
#: --quick, and the full run (the issue's sizes).
QUICK = {"canaries": "100", "namespaces": 10, "deployments": 500, "configmaps": 2000,
         "secrets": 2000, "idle": 120, "rollout_window": 480, "sequential": 6, "burst": 20,
         "interval": "30s"}
FULL = {"canaries": "1000", "namespaces": 0, "deployments": 5000, "configmaps": 20000,
        "secrets": 20000, "idle": 600, "rollout_window": 900, "sequential": 10,
        "burst": 100, "interval": "1m"}


@dataclass(frozen=True)
class Plan:
    sizes: cluster.Sizes
    interval: str
    idle_seconds: float
    #: At most the seconds measured after the burst of changes, while those rollouts run.
    rollout_window: float
    sequential: int
    burst: int
    parallel: int
    seed: int
    #: Requests per second sent to each changed Canary's Service (0: no traffic).
    traffic_rps: float
    #: At most the seconds a controller is given to initialize all N Canaries; one that
    #: does not is reported with how many it did, and measured no further.
    startup_timeout: float

    @property
    def interval_seconds(self) -> float:
        value, unit = float(self.interval[:-1]), self.interval[-1]
        return value * {"s": 1, "m": 60}[unit]


def manifest(controller: str, index: int, plan: Plan) -> dict[str, Any]:
    """The same Canary for both: 10% steps to 50% every interval, a success-rate check."""
    name = cluster.target_name(controller, index)
    analysis = {"interval": plan.interval, "threshold": 5, "maxWeight": 50, "stepWeight": 10,
                "metrics": [{"name": "request-success-rate", "thresholdRange": {"min": 99},
                             "interval": plan.interval}]}
    body = canary_manifest(name, plan.sizes.namespace(index), analysis=analysis)
    return to_flagger(body) if controller == "flagger" else body


async def start(env: LocalEnvironment, controller: str, kubeconfig: Path, flagger: Path,
                timeout: float = 300) -> process.ProcessRecord:
    """The controller's process; returns once it reports ready (canary: /readyz, its
    caches synced; Flagger: /healthz)."""
    if controller == "flagger":
        return await start_flagger(env, flagger, kubeconfig=kubeconfig, timeout=timeout)
    probe, metrics = process.free_port(), process.free_port()
    record = process.start("canary", [
        sys.executable, "-m", "canary", "run", "--kubeconfig", str(kubeconfig),
        "--metrics-server", env.prometheus_url, "--log-format", "console",
        "--metrics-bind-address", f"127.0.0.1:{metrics}",
        "--health-probe-bind-address", f"127.0.0.1:{probe}",
    ], env.logs_dir / "canary.log", cwd=env.run_dir)
    env.processes.append(record)
    env.save()
    await wait_http_ok(f"http://127.0.0.1:{probe}/readyz", record, timeout)
    return record


async def change(kube: KubeClient, controller: str, index: int, plan: Plan, mark: str) -> float:
    """A new pod template for the target; the moment the API server accepted it."""
    await kube.merge_patch(r.DEPLOYMENTS, cluster.target_name(controller, index), {
        "spec": {"template": {"metadata": {"annotations": {REVISION: mark}}}}},
        plan.sizes.namespace(index))
    return time.monotonic()


async def detect(kube: KubeClient, watch: PhaseWatch, controller: str, indexes: list[int],
                 plan: Plan, mark: str, changed: dict[int, float]) -> list[float | None]:
    """Change the targets of ``indexes`` at once (recording when in ``changed``); seconds
    until each Canary showed the new revision (None: not within three intervals)."""
    futures = [watch.arm(plan.sizes.namespace(i), cluster.target_name(controller, i),
                         DETECTED[controller]) for i in indexes]
    moments = await asyncio.gather(*(change(kube, controller, i, plan, mark) for i in indexes))
    changed.update(zip(indexes, moments, strict=True))
    timeout = 3 * plan.interval_seconds + 30
    done, _ = await asyncio.wait(futures, timeout=timeout)
    return [round(f.result() - at, 3) if f in done else None
            for f, at in zip(futures, moments, strict=True)]


def latencies(values: list[float | None]) -> dict[str, Any]:
    seen = [v for v in values if v is not None]
    return {"changes": len(values), "missed": len(values) - len(seen),
            "p50": percentile(seen, 0.5), "p99": percentile(seen, 0.99),
            "max": max(seen, default=None), "values": values}


async def startup(env: LocalEnvironment, kube: KubeClient, controller: str, plan: Plan,
                  flagger: Path, watch: PhaseWatch, audit: AuditLog) -> dict[str, Any]:
    """Start the controller on N waiting Canaries: time to ready, to all Initialized, and
    what it cost the API server until then."""
    kubeconfig = await identity(kube, env, controller)
    mark, began = audit.mark(), time.monotonic()
    record = await start(env, controller, kubeconfig, flagger)
    ready = time.monotonic() - began
    sampler = ProcessSampler(record.pid)
    sampling = asyncio.create_task(sampler.run())
    initialized: float | None = None
    with contextlib.suppress(TimeoutError):
        initialized = await watch.wait_for_count("Initialized", plan.sizes.canaries,
                                                 plan.startup_timeout)
    sampler.sample()  # the CPU time of the whole start-up, process start included
    requests = audit.requests(user(controller), mark)
    return {"record": record, "sampler": sampler, "sampling": sampling, "result": {
        "ready_seconds": round(ready, 2),
        "initialized_seconds": None if initialized is None else round(initialized - began, 1),
        "initialized_count": watch.count("Initialized"),
        "startup_seconds": round(time.monotonic() - began, 1),
        "startup_cpu_seconds": round(sampler.samples[-1].cpu_seconds, 2),
        "startup_api_requests": sum(requests.values()),
        "startup_api_requests_by_verb_resource": dict(requests.most_common())}}


async def quiet(audit: AuditLog, who: str, seconds: float, at_most: float) -> float:
    """Wait until ``who`` has written nothing for ``seconds`` (start-up's last writes:
    at a thousand Canaries, routes and scale-downs still arrive after every status says
    Initialized), at most ``at_most`` seconds; how long it kept writing."""
    began = last_write = time.monotonic()
    mark = audit.mark()
    while time.monotonic() - last_write < seconds and time.monotonic() - began < at_most:
        await asyncio.sleep(2)
        now = audit.mark()
        if any(request.split()[0] in WRITES for request in audit.requests(who, mark, now)):
            last_write = time.monotonic()
        mark = now
    return round(last_write - began, 1)


async def window(env: LocalEnvironment, controller: str, seconds: float,
                 sampler: ProcessSampler, audit: AuditLog,
                 until: Coroutine[Any, Any, object] | None = None) -> dict[str, Any]:
    """What the controller costs over the next ``seconds`` (or until ``until`` returns,
    if sooner): memory, CPU, API requests (the audit log's) and Prometheus queries, per
    minute."""
    mark, queries, began = audit.mark(), await prometheus_queries(env.prometheus_url), \
        time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until or asyncio.sleep(seconds), seconds)
    ended = time.monotonic()
    minutes = (ended - began) / 60
    requests = audit.requests(user(controller), mark)
    asked = await prometheus_queries(env.prometheus_url) - queries
    return {"seconds": round(ended - began, 1), **sampler.window(began, ended),
            "api_requests_per_minute": round(sum(requests.values()) / minutes, 1),
            "api_requests_per_minute_by_verb_resource": {
                k: round(v / minutes, 2) for k, v in requests.most_common()},
            "prometheus_queries_per_minute": round(asked / minutes, 2)}


async def changes(env: LocalEnvironment, kube: KubeClient, controller: str, plan: Plan,
                  watch: PhaseWatch, sampler: ProcessSampler, audit: AuditLog
                  ) -> dict[str, Any]:
    """Detection, one change at a time and many at once, of targets driven with traffic;
    then the costs while their rollouts run, until they end."""
    result: dict[str, Any] = {}
    burst = list(range(plan.sequential, min(plan.sizes.canaries,
                                            plan.sequential + plan.burst)))
    changed: dict[int, float] = {}
    hosts = await drive(env, controller, [*range(plan.sequential), *burst], plan)
    mark, queries = audit.mark(), await prometheus_queries(env.prometheus_url)
    # Changes come at random moments of the interval (the same for both controllers):
    # right after a Flagger tick, every change would wait a whole interval.
    moments = random.Random(plan.seed)
    one: list[float | None] = []
    for i in range(plan.sequential):
        await asyncio.sleep(moments.uniform(0, plan.interval_seconds))
        one += await detect(kube, watch, controller, [i], plan, f"seq-{i}", changed)
    await asyncio.sleep(moments.uniform(0, plan.interval_seconds))
    many = await detect(kube, watch, controller, burst, plan, "burst", changed)
    result["detection_one_at_a_time"] = latencies(one)
    result["detection_at_once"] = latencies(many)
    if plan.rollout_window:
        result["during_rollouts"] = await rollouts(env, controller, plan, watch, changed,
                                                   sampler, audit)
    result["detection_api_requests"] = sum(audit.requests(user(controller), mark).values())
    result["detection_prometheus_queries"] = round(
        await prometheus_queries(env.prometheus_url) - queries)
    for host in hosts:
        await env.set_traffic(host, rps=0)
    return result


async def drive(env: LocalEnvironment, controller: str, indexes: list[int],
                plan: Plan) -> list[str]:
    """Send ``plan.traffic_rps`` requests per second to each of these Canaries' Services."""
    if not plan.traffic_rps:
        return []
    hosts = [f"{cluster.target_name(controller, i)}.{plan.sizes.namespace(i)}"
             for i in indexes]
    for host in hosts:
        await env.set_traffic(host, rps=plan.traffic_rps)
    return hosts


async def rollouts(env: LocalEnvironment, controller: str, plan: Plan, watch: PhaseWatch,
                   changed: dict[int, float], sampler: ProcessSampler, audit: AuditLog
                   ) -> dict[str, Any]:
    """The costs while the changes' rollouts run, until all ended (at most
    ``plan.rollout_window`` seconds); how they ended, how long they took, and how late
    their steps ran against the interval."""
    keys = {i: (plan.sizes.namespace(i), cluster.target_name(controller, i)) for i in changed}

    def ends() -> dict[int, Seen | None]:
        return {i: ended_at(watch.history.get(key, []), changed[i]) for i, key in keys.items()}

    costs = await window(env, controller, plan.rollout_window, sampler, audit,
                         until=watch.wait_until(lambda: None not in ends().values(),
                                                plan.rollout_window))
    ended = ends()
    outcomes = Counter(e.phase if e else "still running" for e in ended.values())
    lateness = [late for i, key in keys.items()
                for late in step_lateness(watch.history.get(key, []), changed[i],
                                          plan.interval_seconds)]
    took = [e.at - changed[i] for i, e in ended.items() if e is not None]
    return {"rollouts": len(changed), "traffic_rps": plan.traffic_rps, **costs,
            "outcomes": dict(outcomes), "steps": len(lateness),
            "step_lateness_p50": percentile(lateness, 0.5),
            "step_lateness_p99": percentile(lateness, 0.99),
            "change_to_end_p50": percentile(took, 0.5),
            "change_to_end_p99": percentile(took, 0.99),
            "step_lateness_values": sorted(lateness)}


async def measure(env: LocalEnvironment, kube: KubeClient, controller: str, plan: Plan,
                  flagger: Path) -> dict[str, Any]:
    """One controller on the cluster: start-up, idle, detection; then it is stopped."""
    n = plan.sizes.canaries
    print(f"{controller}: {n} Canaries", flush=True)
    created = await cluster.create_all(kube, (manifest(controller, i, plan) for i in range(n)),
                                       plan.parallel, RESOURCES[controller])
    assert sum(created.values()) == n, created
    watch = PhaseWatch(kube, RESOURCES[controller])
    watching = asyncio.create_task(watch.run())
    audit = AuditLog(env.audit_log)
    started = await startup(env, kube, controller, plan, flagger, watch, audit)
    record, sampler, sampling = started["record"], started["sampler"], started["sampling"]
    result: dict[str, Any] = started["result"]
    try:
        if result["initialized_seconds"] is None:
            print(f"{controller}: only {result['initialized_count']} of {n} Initialized "
                  f"after {plan.startup_timeout:.0f} s; not measured further (log: "
                  f"{record.log})", flush=True)
            return result
        print(f"{controller}: ready in {result['ready_seconds']} s, {n} Initialized in "
              f"{result['initialized_seconds']} s; idle for {plan.idle_seconds:.0f} s",
              flush=True)
        result["writes_after_initialized_seconds"] = await quiet(
            audit, user(controller), min(30.0, plan.idle_seconds / 4), at_most=600.0)
        result.update(await window(env, controller, plan.idle_seconds, sampler, audit))
        result.update(await changes(env, kube, controller, plan, watch, sampler, audit))
        result["peak_rss_mib"] = round(sampler.peak_rss() / MIB, 1)
    finally:
        sampling.cancel()
        watching.cancel()
        await asyncio.to_thread(process.stop, record)
    print(f"{controller}: done ({report.summary_line(result)})", flush=True)
    return result


async def one_size(args: argparse.Namespace, plan: Plan, flagger: Path,
                   save: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A fresh environment and cluster for one N; both controllers on it in turn, the
    results so far handed to ``save`` after each."""
    sizes = plan.sizes
    env = await LocalEnvironment.start(settings=EnvironmentSettings(
        simulator=plan.traffic_rps > 0, controller=False,
        extra_crd_files=(flagger_crds(),)))
    failed = True
    try:
        async with await env.client() as kube:
            built = await cluster.build(kube, sizes, plan.seed, plan.parallel)
            print(f"created {built['created']} in {built['seconds']} s "
                  f"({built['objects_per_second']}/s)", flush=True)
            expected = sizes.deployments + 2 * sizes.canaries
            built["pods_ready_seconds"] = round(await cluster.wait_for_pods(
                kube, expected, timeout=1800), 1)
            extra = {"Canary (flagger.app)": FLAGGER_CANARIES}
            objects = await cluster.totals(kube, extra)
            print(f"pods ready after {built['pods_ready_seconds']} s more; the API server "
                  f"holds {objects}", flush=True)
            results: dict[str, Any] = {}
            for name in args.controllers:
                results[name] = await measure(env, kube, name, plan, flagger)
                save({"canaries": sizes.canaries, "sizes": asdict(sizes), "setup": built,
                      "objects": objects, "objects_after": {}, "controllers": results})
            after = await cluster.totals(kube, extra)
        failed = False
    finally:
        env.stop(remove=not (failed or args.keep))
        if failed or args.keep:
            print(f"run directory kept: {env.run_dir}")
    return {"canaries": sizes.canaries, "sizes": asdict(sizes), "setup": built,
            "objects": objects, "objects_after": after, "controllers": results}


def plans(args: argparse.Namespace) -> list[Plan]:
    counts = [int(n) for n in str(args.canaries).split(",") if n.strip()]
    return [Plan(cluster.Sizes(n, args.namespaces or max(1, n // 10), args.deployments,
                               args.configmaps, args.secrets),
                 args.interval, args.idle, args.rollout_window, min(args.sequential, n),
                 max(0, min(args.burst, n - args.sequential)), args.parallel, args.seed,
                 args.traffic_rps, args.startup_timeout or max(900.0, n * 1.5))
            for n in counts]


async def run(args: argparse.Namespace) -> None:
    configure_logging("warning")
    cancel_on_sigterm()
    flagger = flagger_binary(args.flagger)
    began = time.monotonic()
    loads: list[list[float]] = []
    sampler = asyncio.create_task(report.sample_load(loads))
    runs: list[dict[str, Any]] = []

    def results(current: list[dict[str, Any]]) -> dict[str, Any]:
        return {"date": datetime.now(UTC).strftime("%Y-%m-%d"),
                "command": " ".join(["python -m benchmarks.scale.run", *sys.argv[1:]]),
                "elapsed_seconds": round(time.monotonic() - began),
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(),
                            "load_average_every_30s": loads},
                "flagger": FLAGGER_VERSION, "interval": args.interval, "runs": current}

    def save(run_so_far: dict[str, Any]) -> None:
        """Each controller's figures are on disk once it is done: a run stopped later
        keeps them."""
        report.write(results([*runs, run_so_far]), args.out, plot_too=False)

    try:
        for plan in plans(args):
            runs.append(await one_size(args, plan, flagger, save))
    finally:
        sampler.cancel()
    data = results(runs)
    print()
    print(report.markdown(data))
    report.write(data, args.out)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="N = 100 over 10 namespaces, a small background, 2 min idle")
    parser.add_argument("--canaries", help="N, or several (comma-separated), each run on a "
                        "fresh cluster (default 1000; --quick 100)")
    parser.add_argument("--namespaces", type=int, help="namespaces the Canaries and the "
                        "background spread over (default N/10)")
    for name, what in (("deployments", "unreferenced Deployments"),
                       ("configmaps", "unreferenced ConfigMaps"),
                       ("secrets", "unreferenced Secrets (5%% Helm release records)")):
        parser.add_argument(f"--{name}", type=int, help=f"{what} (default {FULL[name]:,}; "
                            f"--quick {QUICK[name]:,})")
    parser.add_argument("--idle", type=float, help="seconds of the idle window (default 600; "
                        "--quick 120)")
    parser.add_argument("--sequential", type=int, help="changes one at a time (default 10; "
                        "--quick 6)")
    parser.add_argument("--burst", type=int, help="changes at once (default 100; --quick 20)")
    parser.add_argument("--rollout-window", type=float, help="at most the seconds measured "
                        "after them, until their rollouts end; 0: none (default 900; "
                        "--quick 480)")
    parser.add_argument("--interval", help="the Canaries' analysis interval (default 1m; "
                        "--quick 30s)")
    parser.add_argument("--traffic-rps", type=float, default=2.0, help="requests per second "
                        "to each changed Canary's Service, from the traffic simulator; 0: "
                        "no traffic (their checks find no data)")
    parser.add_argument("--startup-timeout", type=float, help="seconds a controller is "
                        "given to initialize all N Canaries; one that does not is reported "
                        "with how many it did (default max(900, 1.5 N))")
    parser.add_argument("--controllers", default=",".join(CONTROLLERS),
                        help="which to run, in order (default canary,flagger)")
    parser.add_argument("--parallel", type=int, default=32, help="creates in flight")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flagger", type=Path, help="a Flagger binary (default: built "
                        "from its module into ~/.cache/canary-benchmarks)")
    parser.add_argument("--out", type=Path, default=HERE, help="where results go")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    parser.add_argument("--plot-only", type=Path, metavar="RESULTS_JSON",
                        help="print the tables and redraw the plot from a results file")
    args = parser.parse_args()
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.controllers = [c for c in args.controllers.split(",") if c]
    if unknown := set(args.controllers) - set(CONTROLLERS):
        parser.error(f"unknown controllers {sorted(unknown)}")
    return args


def main() -> None:
    args = arguments()
    if args.plot_only:
        data = json.loads(args.plot_only.read_text())
        print(report.markdown(data))
        report.write(data, args.plot_only.parent, json_too=False)
        return
    with asyncio.Runner() as runner:  # Ctrl-C cancels the run, which stops everything
        runner.run(run(args))


if __name__ == "__main__":
    main()
