"""``canary demo``: the whole story in one command, narrated.

It installs what the local environment needs (the first time), starts it with canary's
controller, deploys podinfo under a Canary with simulated users, then releases a healthy
version (promoted step by step) and a faulty one (rolled back), printing each decision
and the evidence behind it as it happens. With ``--gitops`` each version is a commit that
Flux applies, and Flux's verdict on each is shown too (:mod:`canary.demo_git`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

from canary.demo_git import Applier, GitOps, Publisher
from canary.devenv import LocalEnvironment
from canary.devenv.cli import refuse_if_running, remember
from canary.devenv.environment import EnvironmentSettings
from canary.devenv.errors import DevenvError
from canary.devenv.install import install
from canary.kube import Conflict, KubeClient, NotFound
from canary.kube import resources as r

NAMESPACE, APP = "demo", "podinfo"
FIELD_MANAGER = "canary-demo"
#: Units of the built-in metrics, for the narration.
UNITS = {"request-success-rate": "%", "request-duration": " ms"}
#: Seconds a release may take before the demo gives up on it.
RELEASE_TIMEOUT = 300.0


def add_parser(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="start a local cluster with canary and show a promotion and a rollback",
        description="Start the local environment (building it the first time), deploy "
        "podinfo under a Canary with simulated users, release a healthy version (promoted) "
        "and a faulty one (rolled back), narrating each step. The environment keeps running "
        "afterwards unless --down is given; stop it with `canary devenv down`.")
    demo.add_argument("--down", action="store_true",
                      help="stop the environment when the demo ends")
    demo.add_argument("--rps", type=float, default=50.0,
                      help="simulated requests per second (default 50)")
    demo.add_argument("--gitops", action="store_true",
                      help="release through Git: each version is a commit to a local Git "
                      "server, applied by Flux (also started), which reports the outcome")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_demo(args, sys.stdout))


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    refuse_if_running(" (the demo starts its own)")
    say = _Narrator(out)
    say.step("Installing the local environment (built from pinned Go modules the first time)")
    await asyncio.to_thread(install, sys.stderr)
    say.step("Starting kube-apiserver, etcd, controller manager, scheduler, kwok, "
             "Prometheus, the traffic simulator and canary's controller")
    if args.gitops:
        say.line("      with Flux's source-controller, kustomize-controller and a Git server")
    env = await LocalEnvironment.start(settings=EnvironmentSettings(controller=True,
                                                                    flux=args.gitops))
    remember(env)
    say.done(f"ready; KUBECONFIG={env.kubeconfig}")
    try:
        async with await env.client() as kube:
            publisher: Publisher = (GitOps(kube, env) if args.gitops
                                    else Applier(kube, FIELD_MANAGER))
            outcome = await _story(kube, env, say, args.rps, publisher)
    finally:
        if args.down:
            await asyncio.to_thread(env.stop)
            say.done("environment stopped")
    if outcome and not args.down:
        say.line("")
        say.line("Explore it (the environment keeps running):")
        for command, why in (
                ('source .venv/bin/activate; eval "$(canary devenv env)"', ""),
                (f"canary describe {APP} -n {NAMESPACE}", "the spec, the last analysis, "
                 "every decision"),
                (f"canary watch {APP} -n {NAMESPACE}", "follow the next rollout live"),
                (f"kubectl -n {NAMESPACE} get events", "the same decisions as events"),
                ("canary devenv down", "stop everything")):
            say.line(f"  {command:<40} {'# ' + why if why else ''}".rstrip())
    return 0 if outcome else 1


async def _story(kube: KubeClient, env: LocalEnvironment, say: _Narrator, rps: float,
                 publisher: Publisher) -> bool:
    say.step(f"Deploying {APP} in namespace {NAMESPACE} under a Canary "
             "(10% steps to 50%, 5 s apart; success rate >= 99%, P99 <= 500 ms)")
    with contextlib.suppress(Conflict):  # the namespace exists already
        await kube.create(r.NAMESPACES, {"metadata": {"name": NAMESPACE}})
    replicas = publisher.replicas
    published = await publisher.publish([_deployment("6.7.0", "0", replicas), _canary()],
                                        f"{APP} 6.7.0 under a Canary")
    say.line(f"      {published}")
    await env.set_traffic(f"{APP}.{NAMESPACE}", rps=rps)
    await _follow(kube, say, until={"Initialized"})
    say.done(f"{APP}-primary serves all traffic; {rps:g} simulated requests per second")
    await _report(publisher, say, promoted=True)

    say.step("Releasing 6.7.1, a healthy version")
    healthy = await _release(kube, say, publisher, _deployment("6.7.1", "0", replicas),
                             f"{APP} 6.7.1")
    say.step("Releasing 6.7.2, which fails 30% of its requests")
    faulty = await _release(kube, say, publisher, _deployment("6.7.2", "0.3", replicas),
                            f"{APP} 6.7.2")
    say.line("")
    if healthy == "Succeeded" and faulty == "Failed":
        say.done("one release promoted, one rolled back before most users saw it")
        return True
    say.fail(f"expected a promotion then a rollback; got {healthy} then {faulty}")
    return False


async def _release(kube: KubeClient, say: _Narrator, publisher: Publisher,
                   deployment: dict[str, Any], message: str) -> str:
    """Publish a new version and narrate its rollout to the end; the final phase."""
    status = (await kube.get(r.CANARIES, APP, NAMESPACE)).get("status") or {}
    say.line(f"      {await publisher.publish([deployment], message)}")
    phase = await _follow(kube, say, until={"Succeeded", "Failed"},
                          after=status.get("lastAppliedSpec"),
                          seen=(status.get("lastAnalysis") or {}).get("time"))
    await _report(publisher, say, promoted=phase == "Succeeded")
    return phase


async def _report(publisher: Publisher, say: _Narrator, promoted: bool) -> None:
    """What the GitOps controller says of the release, if one applies it."""
    expected, words = await publisher.reported(promoted)
    if words and expected:
        say.line(f"      {words}")
    elif words:
        say.fail(words)
        raise DevenvError(f"the GitOps controller did not report the release: {words}")


async def _follow(kube: KubeClient, say: _Narrator, until: set[str],
                  after: str | None = None, seen: str | None = None) -> str:
    """Narrate the Canary's progress until its phase is one of ``until`` (for a revision
    other than ``after``, when given; analyses up to ``seen`` were shown before); the
    phase."""
    started = time.monotonic()
    shown: tuple[Any, ...] = ()
    seen_analysis = seen
    while time.monotonic() - started < RELEASE_TIMEOUT:
        try:
            canary = await kube.get(r.CANARIES, APP, NAMESPACE)
        except NotFound:
            await asyncio.sleep(0.5)
            continue
        status = canary.get("status") or {}
        if after is not None and status.get("lastAppliedSpec") in (None, after):
            await asyncio.sleep(0.2)  # the controller has not picked the change up yet
            continue
        phase = status.get("phase")
        analysis = status.get("lastAnalysis") or {}
        if analysis.get("time") and analysis.get("time") != seen_analysis:
            seen_analysis = analysis["time"]
            if phase in ("Progressing", "Failed", "Promoting"):
                say.evidence(analysis)
        state = (phase, status.get("canaryWeight"), status.get("failedChecks"))
        if state != shown:
            shown = state
            say.progress(phase, status)
        if phase in until:
            took = time.monotonic() - started
            if phase == "Succeeded" and "Initialized" not in until:
                say.done(f"promoted in {took:.0f}s")
            elif phase == "Failed":
                promoted = {c["type"]: c for c in status.get("conditions") or []}.get(
                    "Promoted", {})
                say.fail(f"rolled back in {took:.0f}s: {promoted.get('message', '')}")
            return str(phase)
        await asyncio.sleep(0.5)
    raise DevenvError(f"the Canary did not reach {' or '.join(sorted(until))} "
                      f"in {RELEASE_TIMEOUT:.0f}s")


class _Narrator:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.count = 0
        self.started = time.monotonic()

    def line(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def stamp(self) -> str:
        return f"[{time.monotonic() - self.started:6.1f}s]"

    def step(self, text: str) -> None:
        self.count += 1
        self.line(f"{self.stamp()} {self.count}. {text}")

    def done(self, text: str) -> None:
        self.line(f"{self.stamp()}    ✔ {text}")

    def fail(self, text: str) -> None:
        self.line(f"{self.stamp()}    ✘ {text}")

    def progress(self, phase: str | None, status: dict[str, Any]) -> None:
        weight = status.get("canaryWeight") or 0
        checks = status.get("failedChecks") or 0
        bar = "█" * (weight // 5) + "·" * ((100 - weight) // 5)
        extra = f", failed checks {checks}" if checks else ""
        self.line(f"{self.stamp()}    {phase or 'Pending':<12} {bar} {weight:>3}% to the "
                  f"canary{extra}")

    def evidence(self, analysis: dict[str, Any]) -> None:
        parts = []
        for result in analysis.get("results") or []:
            value, verdict = result.get("value"), result.get("verdict")
            unit = UNITS.get(str(result.get("name")), "")
            bounds = [f"{word} {result[key]:g}{unit}" for word, key in
                      ((">=", "min"), ("<=", "max")) if result.get(key) is not None]
            shown = f"{value:.1f}{unit}" if isinstance(value, int | float) else "no value"
            must = f" (must be {' and '.join(bounds)})" if bounds else ""
            mark = "✔" if verdict == "Passed" else "✘"
            parts.append(f"{mark} {result.get('name')} {shown}{must}")
        if parts:
            self.line(f"{self.stamp()}      at {analysis.get('weight', 0)}%: "
                      + "; ".join(parts))


def _deployment(version: str, error_rate: str, replicas: int | None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            **({"replicas": replicas} if replicas is not None else {}),
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {"app": APP}, "annotations": {
                    # Read by the local traffic simulator: how this version behaves.
                    "devenv.canary.dev/error-rate": error_rate,
                    "devenv.canary.dev/latency-ms": "p50=20,p99=80"}},
                "spec": {"containers": [{
                    "name": APP, "image": f"ghcr.io/stefanprodan/podinfo:{version}",
                    "ports": [{"containerPort": 9898}]}]},
            },
        },
    }


def _canary() -> dict[str, Any]:
    return {
        "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "progressDeadlineSeconds": 60,
            "service": {"port": 9898},
            "analysis": {
                "interval": "5s", "threshold": 2, "maxWeight": 50, "stepWeight": 10,
                "metrics": [
                    {"name": "request-success-rate", "interval": "15s",
                     "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "15s",
                     "thresholdRange": {"max": 500}},
                ],
            },
        },
    }
