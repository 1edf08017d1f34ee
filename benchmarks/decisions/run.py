"""canary's judge, canary's thresholds and Flagger itself, side by side on the local environment.

Starts a local environment (real API server, Prometheus scraping every second, the traffic
simulator, canary's controller with ``--min-interval 1s``) and Flagger, built from its Go
module, against the same API server and Prometheus. Every rollout gets a namespace of its
own: a Deployment ``podinfo`` whose pods fail ``BASE_ERROR_RATE`` of their requests, a
Canary, simulated traffic; once the Canary is initialized and the primary has served for
a while, a new revision is released with the scenario's behaviour, and the harness follows
the Canary's status until it is promoted or rolled back. Four policies (``--policies``),
on the same scenarios, in the same run:

- judge: a ``canary.dev`` Canary with ``analysis.judge`` (alpha 0.05, error rate judged
  with minimum effect 1.5x, promoteEarly) and the request-duration threshold;
- judge-checks: the same with ``checkInterval: 2s``, the judge also checked between steps;
- threshold: a ``canary.dev`` Canary with Flagger-style thresholds (success rate >= 99%,
  P99 <= 500 ms, threshold 5);
- flagger: the threshold policy's Canary with its apiVersion changed to
  ``flagger.app/v1beta1``, run by Flagger.

All of them share the schedule (5% steps to 50%: ten steps) and the time compression: an
analysis interval (and metric window) of 10 s instead of 1 minute, with traffic six times
the real rate, so that every window sees as many requests as a 1-minute window would.

Measured per rollout, from the Canary's status (polled every 0.5 s) and from Prometheus
(the canary workload's raw request counters at the release and at the decision): the
outcome, the time from the release to the rollback or the promotion (and from the first
traffic to the canary), and the canary's failed requests beyond what the base error rate
explains. Prints a Markdown table, writes ``results.json`` and ``results.png``.

Usage: python benchmarks/decisions/run.py [--scenarios KIND@LEVEL,...|all] [--seeds 6]
           [--parallel 12] [--max-rate 7200] [--timeout 480] [--out benchmarks/decisions]
       python benchmarks/decisions/run.py --plot-only benchmarks/decisions/results.json
       python benchmarks/decisions/run.py --combine A/results.json B/results.json --out DIR
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks.flagger import (
    CACHE,
    FLAGGER_CANARIES,
    FLAGGER_VERSION,
    flagger_binary,
    flagger_crds,
    start_flagger,
    to_flagger,
)
from benchmarks.running import cancel_on_sigterm, pyplot
from canary.core.judge.simulation import binomial_upper_bound
from canary.devenv import EnvironmentSettings, LocalEnvironment
from canary.kube import KubeClient, KubeError, NotFound
from canary.kube import resources as r
from canary.logging import configure_logging

HERE = Path(__file__).resolve().parent

# -- the rollout all policies share ------------------------------------------------------

#: Time compression: a 1-minute interval becomes 10 s, and traffic is six times the real
#: rate, so that every 10-second window holds the requests of a 1-minute one.
COMPRESSION = 6
INTERVAL_SECONDS = 10
INTERVAL = f"{INTERVAL_SECONDS}s"
STEP_WEIGHT, MAX_WEIGHT, THRESHOLD = 5, 50, 5
ALPHA, MINIMUM_EFFECT = 0.05, "1.5x"
BASE_ERROR_RATE = 0.005
BASE_LATENCY = "p50=20,p99=200"
SLOW_LATENCY = "p50=40,p99=1000"
#: Spread (log-normal sigma) of the noisy baseline, drawn anew every interval.
NOISE_SIGMA = 1.0
#: How long the primary serves before the release (the judge reads its counters before the
#: first step; Flagger's and canary's rate() windows need a full window of samples).
WARM_UP_SECONDS = 15
APP = "podinfo"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.0"
ERROR_RATE = "devenv.canary.dev/error-rate"
LATENCY = "devenv.canary.dev/latency-ms"
#: Piecewise-linear error rate against the pod's age (the late degradation).
ERROR_RATE_RAMP = "devenv.canary.dev/error-rate-ramp"
LATE_AFTER_SECONDS, LATE_RAMP_SECONDS, LATE_RATIO = 30, 50, 10
#: The traffic gap: from 30 s after the release, for 20 s.
GAP_AFTER_SECONDS, GAP_SECONDS = 30, 20
REVISION = "bench.canary.dev/revision"
FIELD_MANAGER = "decisions-benchmark"
POLICIES = ("judge", "judge-checks", "threshold", "flagger")
#: judge-checks: how often its judge also reads the counters between steps (12 s real).
CHECK_INTERVAL = "2s"

#: Real requests per second to the canary at the first step (5%), by traffic level.
TRAFFIC = {"low": 1.0, "medium": 5.0, "high": 50.0}


@dataclass(frozen=True)
class Kind:
    """What the new revision does, relative to the old one."""

    error_ratio: float = 1.0
    slow: bool = False
    noisy: bool = False
    #: Healthy for its first 30 s (3 minutes at the benchmark's compression), then its
    #: error rate ramps to 10 times the base over 50 s (5 minutes).
    late: bool = False
    #: No requests at all for 20 s (2 minutes) from 30 s after the release.
    gap: bool = False

    @property
    def healthy(self) -> bool:
        return self.error_ratio == 1.0 and not self.slow and not self.late


KINDS = {
    "healthy": Kind(),
    "noisy": Kind(noisy=True),
    "x1.5": Kind(1.5),
    "x2": Kind(2.0),
    "x4": Kind(4.0),
    "x10": Kind(10.0),
    "latency": Kind(slow=True),
    "late": Kind(late=True),
    "gap": Kind(gap=True),
    "x1.2": Kind(1.2),
}


@dataclass(frozen=True)
class Scenario:
    kind: str
    level: str

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.level}"

    @property
    def behaviour(self) -> Kind:
        return KINDS[self.kind]

    @property
    def canary_rps(self) -> float:
        """Real requests per second to the canary at the first step."""
        return TRAFFIC[self.level]

    @property
    def host_rps(self) -> float:
        """What the simulator sends to the host: compressed, and divided by the first
        step's weight so that the canary gets ``COMPRESSION * canary_rps`` at 5%."""
        return self.canary_rps * COMPRESSION * 100 / STEP_WEIGHT


def parse_scenarios(text: str) -> list[Scenario]:
    """``healthy@medium,x4`` (a kind alone means every traffic level); ``all``."""
    found: list[Scenario] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item == "all":
            found += [Scenario(k, level) for k in KINDS for level in TRAFFIC]
            continue
        kind, _, level = item.partition("@")
        if kind not in KINDS:
            raise SystemExit(f"unknown scenario kind {kind!r} (one of {', '.join(KINDS)})")
        if level and level not in TRAFFIC:
            raise SystemExit(f"unknown traffic level {level!r} (one of {', '.join(TRAFFIC)})")
        found += [Scenario(kind, lv) for lv in ([level] if level else TRAFFIC)]
    return list(dict.fromkeys(found))


# -- manifests ---------------------------------------------------------------------------


def deployment(namespace: str, revision: str, error_rate: float, latency: str,
               late: bool = False) -> dict[str, Any]:
    annotations = {REVISION: revision, LATENCY: latency}
    if late:  # the ramp replaces the constant rate
        annotations[ERROR_RATE_RAMP] = (f"{LATE_AFTER_SECONDS}s={error_rate:g},"
                                        f"{LATE_AFTER_SECONDS + LATE_RAMP_SECONDS}s="
                                        f"{error_rate * LATE_RATIO:g}")
    else:
        annotations[ERROR_RATE] = f"{error_rate:g}"
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": APP}},
                 "template": {"metadata": {"labels": {"app": APP}, "annotations": annotations},
                              "spec": {"containers": [{"name": "app", "image": IMAGE,
                                                       "ports": [{"containerPort": 9898}]}]}}},
    }


def analysis(policy: str) -> dict[str, Any]:
    """The schedule all policies share, and each policy's checks."""
    success = {"name": "request-success-rate", "thresholdRange": {"min": 99},
               "interval": INTERVAL}
    duration = {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": INTERVAL}
    schedule = {"interval": INTERVAL, "threshold": THRESHOLD, "stepWeight": STEP_WEIGHT,
                "maxWeight": MAX_WEIGHT}
    if policy in ("judge", "judge-checks"):
        judge = {"alpha": ALPHA, "promoteEarly": True,
                 "metrics": [{"name": "error-rate", "type": "errorRate",
                              "minimumEffect": MINIMUM_EFFECT}]}
        if policy == "judge-checks":
            judge["checkInterval"] = CHECK_INTERVAL
        return {**schedule, "metrics": [duration], "judge": judge}
    return {**schedule, "metrics": [success, duration]}


def parse_policies(text: str) -> list[str]:
    chosen = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in POLICIES]
    if unknown or not chosen:
        raise SystemExit(f"unknown policies {unknown} (from {', '.join(POLICIES)})")
    return [p for p in POLICIES if p in chosen]


def canary_manifest(policy: str, namespace: str) -> dict[str, Any]:
    manifest = {
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": APP, "namespace": namespace},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
                 "progressDeadlineSeconds": 600, "service": {"port": 9898},
                 "analysis": analysis("threshold" if policy == "flagger" else policy)},
    }
    return to_flagger(manifest) if policy == "flagger" else manifest


# -- one rollout -------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    scenario: Scenario
    seed: int
    policy: str

    @property
    def namespace(self) -> str:
        kind = re.sub(r"[^a-z0-9]", "-", self.scenario.kind)
        return f"{self.policy}-{kind}-{self.scenario.level}-{self.seed}"


@dataclass
class Result:
    namespace: str
    policy: str
    scenario: str
    kind: str
    level: str
    seed: int
    #: promoted, rolled back, timeout or error
    outcome: str = "error"
    #: seconds from the release (the new template accepted by the API server) to the
    #: end: Succeeded or Failed
    decided_after: float | None = None
    #: ... to the decision to promote (the first of Promoting, Finalising, Succeeded)
    promotion_began_after: float | None = None
    first_traffic_after: float | None = None
    max_weight: int = 0
    failed_checks: int = 0
    canary_requests: float = 0.0
    canary_errors: float = 0.0
    primary_requests: float = 0.0
    primary_errors: float = 0.0
    excess_failures: float | None = None
    #: requests the workloads answered per second between the release and the decision
    #: (the simulator keeping up: the scenario's host_rps, less requests refused for lack
    #: of endpoints)
    answered_rps: float | None = None
    message: str = ""
    #: seconds from the namespace's creation to the release
    setup_seconds: float | None = None
    #: noisy baseline: (seconds from the release, factor) each time it changed
    baseline_factors: list[tuple[float | None, float]] = field(default_factory=list)
    judge_outcome: str | None = None
    judge_steps: int | None = None
    timeline: list[tuple[float, str, int, int]] = field(default_factory=list)

    @property
    def early(self) -> bool:
        """Promoted before the last step: below maxWeight, or (after a bake at maxWeight)
        with the promotion begun at least half an interval before the schedule's end."""
        if self.outcome != "promoted":
            return False
        if self.max_weight < MAX_WEIGHT:
            return True
        if self.promotion_began_after is None or self.first_traffic_after is None:
            return False
        schedule = MAX_WEIGHT // STEP_WEIGHT * INTERVAL_SECONDS
        analysed = self.promotion_began_after - self.first_traffic_after
        return analysed < schedule - INTERVAL_SECONDS / 2


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    async def by_workload(self, query: str, at: float) -> dict[str, float]:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.url}/api/v1/query",
                                      params={"query": query, "time": f"{at:.3f}"})
        response.raise_for_status()
        return {item["metric"].get("destination_workload", ""): float(item["value"][1])
                for item in response.json()["data"]["result"]}

    async def counters(self, namespace: str, at: float) -> dict[str, float]:
        """Raw cumulative requests and 5xx of the canary and the primary at ``at``."""
        selector = (f'reporter="destination",destination_workload_namespace="{namespace}",'
                    f'destination_workload=~"{APP}|{APP}-primary"')
        requests = await self.by_workload(
            f"sum by (destination_workload) (istio_requests_total{{{selector}}})", at)
        errors = await self.by_workload(
            f'sum by (destination_workload) (istio_requests_total{{{selector},'
            f'response_code=~"5.*"}})', at)
        return {"canary_requests": requests.get(APP, 0.0),
                "canary_errors": errors.get(APP, 0.0),
                "primary_requests": requests.get(f"{APP}-primary", 0.0),
                "primary_errors": errors.get(f"{APP}-primary", 0.0)}


class Bench:
    def __init__(self, env: LocalEnvironment, kube: KubeClient, timeout: float) -> None:
        self.env, self.kube, self.timeout = env, kube, timeout
        self.prometheus = Prometheus(env.prometheus_url)
        self.done = 0

    def resource(self, policy: str) -> r.Resource:
        return FLAGGER_CANARIES if policy == "flagger" else r.CANARIES

    async def status(self, trial: Trial) -> dict[str, Any]:
        obj = await self.kube.get(self.resource(trial.policy), APP, trial.namespace)
        status: dict[str, Any] = obj.get("status") or {}
        return status

    async def wait_for(self, what: str, check: Callable[[], Awaitable[bool]],
                       timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not await check():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.5)

    async def run(self, trial: Trial) -> Result:
        scenario, namespace = trial.scenario, trial.namespace
        result = Result(namespace, trial.policy, scenario.name, scenario.kind, scenario.level,
                        trial.seed)
        host = f"{APP}.{namespace}"
        noise: asyncio.Task[None] | None = None
        begun = time.monotonic()
        released = math.inf
        try:
            await self.kube.create(r.NAMESPACES, {"metadata": {"name": namespace}})
            await self.kube.apply(deployment(namespace, "1", BASE_ERROR_RATE, BASE_LATENCY),
                                  field_manager=FIELD_MANAGER)
            await self.kube.create(self.resource(trial.policy),
                                   canary_manifest(trial.policy, namespace))

            async def initialized() -> bool:
                return (await self.status(trial)).get("phase") == "Initialized"

            await self.wait_for("the Canary to be Initialized", initialized, 180)
            await self.env.set_traffic(host, rps=scenario.host_rps)
            if scenario.behaviour.noisy:
                rng = random.Random(f"{scenario.name}/{trial.seed}")
                noise = asyncio.create_task(self.vary_baseline(
                    namespace, scenario.behaviour.error_ratio, rng, result,
                    lambda: None if math.isinf(released) else time.monotonic() - released))
            primary_served = scenario.host_rps * WARM_UP_SECONDS

            async def warmed_up() -> bool:
                counts = await self.prometheus.counters(namespace, time.time())
                return counts["primary_requests"] >= primary_served

            await self.wait_for("the primary to serve traffic", warmed_up, 120)

            behaviour = scenario.behaviour
            new = deployment(namespace, "2", min(1.0, BASE_ERROR_RATE * behaviour.error_ratio),
                             SLOW_LATENCY if behaviour.slow else BASE_LATENCY, behaviour.late)
            await self.kube.apply(new, field_manager=FIELD_MANAGER)
            released, released_wall = time.monotonic(), time.time()
            if behaviour.gap:
                noise = asyncio.create_task(self.traffic_gap(host, scenario.host_rps))
            result.setup_seconds = round(released - begun, 1)
            # The counters as they were at the release (Prometheus's latest sample then).
            start_counts = await self.prometheus.counters(namespace, released_wall)
            await self.follow(trial, result, released)
            await asyncio.sleep(3)  # the last requests to the canary reach Prometheus
            ended_wall = time.time()
            end_counts = await self.prometheus.counters(namespace, ended_wall)
            for key, value in end_counts.items():
                setattr(result, key, value - start_counts[key])
            result.answered_rps = round((result.canary_requests + result.primary_requests)
                                        / (ended_wall - released_wall), 1)
            expected = BASE_ERROR_RATE * result.canary_requests
            result.excess_failures = result.canary_errors - expected
        except Exception as exc:  # one broken rollout must not end the run
            result.outcome = "error"
            result.message = f"{type(exc).__name__}: {exc}"
        finally:
            if noise is not None:
                noise.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await noise
            with contextlib.suppress(httpx.HTTPError):
                async with httpx.AsyncClient(timeout=10) as http:
                    await http.delete(f"{self.env.simulator_url}/traffic/{host}")
            with contextlib.suppress(KubeError):
                await self.kube.delete(r.NAMESPACES, namespace)
        self.done += 1
        after = "-" if result.decided_after is None else f"{result.decided_after:.0f}s"
        excess = "-" if result.excess_failures is None else f"{result.excess_failures:.1f}"
        why = f": {result.message[:160]}" if result.outcome != "promoted" else ""
        print(f"  [{self.done}] {namespace}: {result.outcome} after {after} (max weight "
              f"{result.max_weight}, excess failures {excess}){why}", flush=True)
        return result

    async def follow(self, trial: Trial, result: Result, released: float) -> None:
        """Poll the Canary's status until it is promoted or rolled back."""
        last: tuple[str, int, int] | None = None
        while True:
            status = await self.status(trial)
            now = time.monotonic() - released
            phase = str(status.get("phase"))
            weight = int(status.get("canaryWeight") or 0)
            failed = int(status.get("failedChecks") or 0)
            if (phase, weight, failed) != last:
                last = (phase, weight, failed)
                result.timeline.append((round(now, 2), phase, weight, failed))
            if weight > 0 and result.first_traffic_after is None:
                result.first_traffic_after = round(now, 2)
            if phase in ("Promoting", "Finalising", "Succeeded") and \
                    result.promotion_began_after is None:
                result.promotion_began_after = round(now, 2)
            result.max_weight = max(result.max_weight, weight)
            result.failed_checks = max(result.failed_checks, failed)
            if phase in ("Succeeded", "Failed"):
                result.outcome = "promoted" if phase == "Succeeded" else "rolled back"
                result.decided_after = round(now, 2)
                promoted = [c for c in status.get("conditions") or []
                            if c.get("type") == "Promoted"]
                result.message = str(promoted[0].get("message", "")) if promoted else ""
                judge = status.get("judge") or {}
                result.judge_outcome = judge.get("outcome")
                result.judge_steps = judge.get("steps")
                return
            if now > self.timeout:
                result.outcome = "timeout"
                result.message = f"still {phase} at weight {weight} after {self.timeout:.0f}s"
                return
            await asyncio.sleep(0.5)

    async def traffic_gap(self, host: str, rps: float) -> None:
        """Stop all traffic to the host for two intervals, from three intervals after the
        release: steps without canary requests mid-analysis."""
        await asyncio.sleep(GAP_AFTER_SECONDS)
        await self.env.set_traffic(host, rps=0)
        await asyncio.sleep(GAP_SECONDS)
        await self.env.set_traffic(host, rps=rps)

    async def vary_baseline(self, namespace: str, ratio: float, rng: random.Random,
                            result: Result, clock: Callable[[], float | None]) -> None:
        """Multiply every pod's error rate by one factor exp(N(0, sigma)), drawn anew every
        interval: the baseline moves, the ratio between the versions (1 in a healthy
        rollout) does not. Pods are annotated directly, so no new revision is made; new
        pods get the current factor within a second."""
        drawn_at = -math.inf
        factor = 1.0
        while True:
            if time.monotonic() - drawn_at >= INTERVAL_SECONDS:
                drawn_at = time.monotonic()
                factor = math.exp(rng.gauss(0.0, NOISE_SIGMA))
                since = clock()
                result.baseline_factors.append(
                    (None if since is None else round(since, 1), round(factor, 3)))
            rates = {"1": f"{min(1.0, BASE_ERROR_RATE * factor):.6f}",
                     "2": f"{min(1.0, BASE_ERROR_RATE * ratio * factor):.6f}"}
            with contextlib.suppress(KubeError):
                pods = await self.kube.list(r.PODS, namespace)
                for pod in pods["items"]:
                    annotations = pod["metadata"].get("annotations") or {}
                    rate = rates.get(annotations.get(REVISION, ""))
                    if rate is None or annotations.get(ERROR_RATE) == rate:
                        continue
                    with contextlib.suppress(NotFound):
                        await self.kube.merge_patch(
                            r.PODS, pod["metadata"]["name"],
                            {"metadata": {"annotations": {ERROR_RATE: rate}}}, namespace)
            await asyncio.sleep(1)


# -- summary -----------------------------------------------------------------------------


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def seconds(value: float | None) -> str:
    """Compressed seconds, with the real-time equivalent."""
    if value is None:
        return "-"
    return f"{value:.0f} s ({value * COMPRESSION / 60:.1f} min)"


def summarize(results: list[Result]) -> list[dict[str, Any]]:
    rows = []
    keys = list(dict.fromkeys((res.scenario, res.policy) for res in results))
    for scenario, policy in keys:
        group = [res for res in results if (res.scenario, res.policy) == (scenario, policy)]
        ran = [res for res in group if res.outcome in ("promoted", "rolled back", "timeout")]
        rolled = [res for res in ran if res.outcome == "rolled back"]
        promoted = [res for res in ran if res.outcome == "promoted"]
        kind = KINDS[group[0].kind]
        rows.append({
            "scenario": scenario, "policy": policy, "healthy": kind.healthy,
            "runs": len(ran), "errors": len(group) - len(ran),
            "rolled_back": len(rolled), "promoted": len(promoted),
            "promoted_early": sum(res.early for res in promoted),
            "timeouts": sum(res.outcome == "timeout" for res in ran),
            "rolled_back_upper_95": (binomial_upper_bound(len(rolled), len(ran))
                                     if ran else None),
            "median_seconds_to_roll_back": median(res.decided_after for res in rolled),
            "median_seconds_to_roll_back_from_first_traffic": median(
                None if res.decided_after is None or res.first_traffic_after is None
                else res.decided_after - res.first_traffic_after for res in rolled),
            "median_seconds_to_promote": median(res.decided_after for res in promoted),
            "median_seconds_to_promotion_decision": median(
                res.promotion_began_after for res in promoted),
            "median_seconds_to_first_traffic": median(res.first_traffic_after for res in ran),
            "median_excess_failures": median(res.excess_failures for res in ran),
            "median_canary_requests": median(res.canary_requests for res in ran),
            "median_answered_rps": median(res.answered_rps for res in ran),
        })
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| scenario | policy | runs | rolled back | promoted (early) | time to roll back "
             "| time to promote: decided, done | first traffic to the canary "
             "| excess failures | canary requests |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        runs = row["runs"]
        rolled = f"{row['rolled_back']}/{runs}"
        if row["healthy"] and runs:
            rolled += f" (≤ {row['rolled_back_upper_95']:.0%})"
        promoted = f"{row['promoted']} ({row['promoted_early']})"
        extra = []
        if row["timeouts"]:
            extra.append(f"{row['timeouts']} timed out")
        if row["errors"]:
            extra.append(f"{row['errors']} failed to run")
        if extra:
            promoted += "; " + ", ".join(extra)
        decided, done = (row["median_seconds_to_promotion_decision"],
                         row["median_seconds_to_promote"])
        promote = "-" if done is None else f"{seconds(decided)}, {done:.0f} s"
        excess = row["median_excess_failures"]
        requests = row["median_canary_requests"]
        first = row["median_seconds_to_first_traffic"]
        lines.append(
            f"| {row['scenario']} | {row['policy']} | {runs} | {rolled} | {promoted} "
            f"| {seconds(row['median_seconds_to_roll_back'])} | {promote} "
            f"| {'-' if first is None else f'{first:.1f} s'} "
            f"| {'-' if excess is None or row['healthy'] else f'{excess:.1f}'} "
            f"| {'-' if requests is None else f'{requests:.0f}'} |")
    return "\n".join(lines)


def plot(data: dict[str, Any], path: Path) -> bool:
    """One panel per scenario: each rollout's time from release to decision, by policy."""
    plt = pyplot()
    if plt is None:
        return False
    from matplotlib.lines import Line2D
    trials = data["trials"]
    scenarios = list(dict.fromkeys(t["scenario"] for t in trials))
    present = [p for p in POLICIES if any(t["policy"] == p for t in trials)]
    columns = min(4, len(scenarios))
    rows = math.ceil(len(scenarios) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.8 * rows),
                                squeeze=False, sharey=True)
    rng = random.Random(0)
    styles = {"promoted": ("o", "tab:green"), "rolled back": ("x", "tab:red"),
              "timeout": ("s", "tab:gray")}
    for index, scenario in enumerate(scenarios):
        ax = axes[index // columns][index % columns]
        level = scenario.split("@")[1]
        labels = []
        ran = [p for p in present if any(t["scenario"] == scenario and t["policy"] == p
                                         for t in trials)]
        for x, policy in enumerate(ran):
            group = [t for t in trials if t["scenario"] == scenario and t["policy"] == policy
                     and t["outcome"] in styles]
            for t in group:
                marker, colour = styles[t["outcome"]]
                y = t["decided_after"] if t["decided_after"] is not None else data["timeout"]
                ax.scatter(x + rng.uniform(-0.18, 0.18), y, marker=marker, color=colour, s=36)
            rolled = sum(t["outcome"] == "rolled back" for t in group)
            labels.append(f"{policy}\n{rolled}/{len(group)} rolled back")
        ax.set_xticks(range(len(ran)), labels, fontsize=8)
        ax.set_xlim(-0.5, len(present) - 0.5)
        ax.set_ylim(bottom=0)
        ax.set_title(f"{scenario}: {TRAFFIC[level]:g} req/s to the canary", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        if index % columns == 0:
            ax.set_ylabel("seconds from release to decision")
        if index % columns == columns - 1 or index == len(scenarios) - 1:
            real = ax.secondary_yaxis("right", functions=(lambda s: s * COMPRESSION / 60,
                                                          lambda m: m * 60 / COMPRESSION))
            real.set_ylabel("minutes, uncompressed")
    for index in range(len(scenarios), rows * columns):
        axes[index // columns][index % columns].axis("off")
    handles = [Line2D([], [], linestyle="", marker=m, color=c, label=label)
               for label, (m, c) in styles.items()]
    top = 1 - 0.6 / (3.8 * rows)
    figure.legend(handles=handles, loc="upper center", ncol=3, frameon=False,
                  bbox_to_anchor=(0.5, top + 0.01))
    figure.suptitle(f"Time from release to promotion or rollback, each rollout "
                    f"({data['date']}; 10 s intervals stand for 1 min, traffic x{COMPRESSION})",
                    y=0.995, fontsize=11)
    figure.tight_layout(rect=(0, 0, 1, top - 0.02))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# -- main --------------------------------------------------------------------------------


class Capacity:
    """At most ``limit`` units in use at once (units: the simulator's requests per
    second); a request larger than the limit runs alone. First come, first served, so a
    large rollout is not starved by smaller ones behind it."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.used = 0.0
        self._turn = asyncio.Lock()
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, amount: float) -> Any:
        async with self._turn, self._changed:
            await self._changed.wait_for(
                lambda: self.used == 0 or self.used + amount <= self.limit)
            self.used += amount
        try:
            yield
        finally:
            async with self._changed:
                self.used -= amount
                self._changed.notify_all()


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


async def run(args: argparse.Namespace) -> None:
    configure_logging("warning")
    cancel_on_sigterm()
    scenarios = parse_scenarios(args.scenarios)
    # Seed by seed, so that every scenario and policy runs throughout the run.
    policies = parse_policies(args.policies)
    trials = [Trial(s, seed, policy) for seed in range(1, args.seeds + 1) for s in scenarios
              for policy in policies]
    CACHE.mkdir(parents=True, exist_ok=True)
    binary = flagger_binary(args.flagger)
    crds = flagger_crds()
    started = time.monotonic()
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    print(f"{len(trials)} rollouts ({len(scenarios)} scenarios x {args.seeds} seeds x "
          f"{len(policies)} policies), {args.parallel} at once and at most "
          f"{args.max_rate:g} simulated req/s; Flagger {FLAGGER_VERSION} "
          f"({binary}); load average {load_average()}", flush=True)
    env = await LocalEnvironment.start(settings=EnvironmentSettings(
        scrape_interval_seconds=1.0, controller=True, seed=args.env_seed,
        extra_crd_files=(crds,)))
    failed = True
    results: list[Result] = []
    loads: list[list[float]] = []

    async def sample_load() -> None:
        while True:
            loads.append(load_average())
            await asyncio.sleep(30)

    sampler = asyncio.create_task(sample_load())
    try:
        await start_flagger(env, binary)
        print(f"environment and Flagger ready in {time.monotonic() - started:.0f}s "
              f"({env.run_dir})", flush=True)
        async with await env.client() as kube:
            bench = Bench(env, kube, args.timeout)
            slots = asyncio.Semaphore(args.parallel)
            capacity = Capacity(args.max_rate)

            async def one(trial: Trial) -> Result:
                async with capacity.hold(trial.scenario.host_rps), slots:
                    return await bench.run(trial)

            results = list(await asyncio.gather(*(one(t) for t in trials)))
        failed = False
    finally:
        sampler.cancel()
        env.stop(remove=not (failed or args.keep))
        if failed or args.keep:
            print(f"run directory kept: {env.run_dir}")
    elapsed = time.monotonic() - started
    data = {
        "date": date, "elapsed_seconds": round(elapsed),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_every_30s": loads},
        "flagger": FLAGGER_VERSION, "compression": COMPRESSION,
        "interval_seconds": INTERVAL_SECONDS, "step_weight": STEP_WEIGHT,
        "max_weight": MAX_WEIGHT, "threshold": THRESHOLD, "alpha": ALPHA,
        "minimum_effect": MINIMUM_EFFECT, "base_error_rate": BASE_ERROR_RATE,
        "base_latency": BASE_LATENCY, "slow_latency": SLOW_LATENCY,
        "noise_sigma": NOISE_SIGMA, "timeout": args.timeout, "seeds": args.seeds,
        "parallel": args.parallel, "max_rate": args.max_rate, "env_seed": args.env_seed,
        "traffic": {s.name: {"canary_rps_real": s.canary_rps,
                             "canary_rps_at_first_step": s.canary_rps * COMPRESSION,
                             "host_rps": s.host_rps} for s in scenarios},
        "policies": {p: canary_manifest(p, "NAMESPACE")["spec"]["analysis"] for p in policies},
        "summary": summarize(results),
        "trials": [asdict(res) for res in results],
    }
    print_report(data)
    write(data, args.out)


def combine(files: list[Path]) -> dict[str, Any]:
    """One results file from several runs with the same settings (e.g. high traffic run
    with fewer rollouts at once): their trials together, the summary made again, and
    each run's own command, date, duration and load kept under ``runs``."""
    runs = [json.loads(path.read_text()) for path in files]
    same = ("flagger", "compression", "interval_seconds", "step_weight", "max_weight",
            "threshold", "alpha", "minimum_effect", "base_error_rate", "base_latency",
            "slow_latency", "noise_sigma")
    for path, other in zip(files[1:], runs[1:], strict=True):
        differing = [key for key in same if other.get(key) != runs[0].get(key)]
        differing += [f"policy {p}" for p in set(other["policies"]) & set(runs[0]["policies"])
                      if other["policies"][p] != runs[0]["policies"][p]]
        if differing:
            raise SystemExit(f"{path} was run with other settings ({', '.join(differing)}) "
                             f"than {files[0]}")
    known = {f.name for f in dataclasses.fields(Result)}
    order = {f"{k}@{level}": i for i, (k, level) in enumerate(
        (k, level) for k in KINDS for level in TRAFFIC)}
    trials = sorted((t for run in runs for t in run["trials"]),
                    key=lambda t: (order.get(t["scenario"], len(order)),
                                   POLICIES.index(t["policy"]), t["seed"]))
    results = [Result(**{k: v for k, v in t.items() if k in known}) for t in trials]
    data = {key: runs[0][key] for key in (*same, "timeout")}
    data["policies"] = {p: a for run in runs for p, a in run["policies"].items()}
    data.update({
        "date": max(run["date"] for run in runs),
        "elapsed_seconds": sum(run["elapsed_seconds"] for run in runs),
        "seeds": "/".join(sorted({str(run["seeds"]) for run in runs})),
        "parallel": "/".join(sorted({str(run["parallel"]) for run in runs})),
        "traffic": {name: t for run in runs for name, t in run["traffic"].items()},
        "runs": [{key: run.get(key) for key in ("command", "date", "elapsed_seconds", "seeds",
                                                "parallel", "max_rate", "env_seed",
                                                "machine")} for run in runs],
        "summary": summarize(results),
        "trials": [asdict(res) for res in results],
    })
    return data


def print_report(data: dict[str, Any]) -> None:
    print(f"\n{len(data['trials'])} rollouts in {data['elapsed_seconds'] / 60:.1f} min; "
          f"{data['seeds']} seeds per scenario and policy, {data['parallel']} at once; "
          f"interval {data['interval_seconds']} s (1 min real), traffic x{data['compression']}; "
          f"base error rate {data['base_error_rate']:.1%}; Flagger {data['flagger']}.\n"
          "Times are medians, in seconds from the release (in brackets: the real time they "
          "stand for); excess failures: the canary's 5xx beyond the base rate until the "
          "decision (median); (early): promoted before the last step.\n")
    print(table(data["summary"]))


def write(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=1) + "\n")
    print(f"\nwrote {out / 'results.json'}")
    if plot(data, out / "results.png"):
        print(f"wrote {out / 'results.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios",
                        default="healthy@low,healthy@medium,noisy@medium,x2@medium,x4@low,"
                                "x4@medium,latency@medium",
                        help="comma-separated KIND@LEVEL (a KIND alone: every level; 'all': "
                             f"the whole matrix); kinds {', '.join(KINDS)}; levels "
                             + ", ".join(f"{k} ({v:g} req/s)" for k, v in TRAFFIC.items()))
    parser.add_argument("--policies", default=",".join(POLICIES),
                        help=f"comma-separated, from {', '.join(POLICIES)} (default: all)")
    parser.add_argument("--seeds", type=int, default=6, help="rollouts per scenario and policy")
    parser.add_argument("--parallel", type=int, default=12, help="rollouts at once")
    parser.add_argument("--max-rate", type=float, default=7200,
                        help="requests per second the traffic simulator sends at most, over "
                             "the rollouts running at once (a rollout above it runs alone)")
    parser.add_argument("--timeout", type=float, default=480,
                        help="seconds a rollout may take after its release")
    parser.add_argument("--env-seed", type=int, default=1, help="the traffic simulator's seed")
    parser.add_argument("--flagger", type=Path, help="a Flagger binary (default: built into "
                        f"{CACHE}/flagger-{FLAGGER_VERSION}/bin)")
    parser.add_argument("--out", type=Path, default=HERE, help="where results.json and "
                        "results.png go")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs)")
    parser.add_argument("--plot-only", type=Path, metavar="RESULTS_JSON",
                        help="print the table and redraw the plot from a results file")
    parser.add_argument("--combine", type=Path, nargs="+", metavar="RESULTS_JSON",
                        help="merge the results files of several runs into --out (the "
                             "table, results.json and results.png)")
    args = parser.parse_args()
    if args.combine:
        data = combine(args.combine)
        print_report(data)
        write(data, args.out)
        return
    if args.plot_only:
        data = json.loads(args.plot_only.read_text())
        print_report(data)
        plot(data, args.plot_only.parent / "results.png")
        return
    with asyncio.Runner() as runner:  # Ctrl-C cancels the run, which stops everything
        runner.run(run(args))


if __name__ == "__main__":
    main()
