"""Fuzzed Canaries, MetricTemplates and AlertProviders sent to the real API server.

Each object is a valid one mutated (``fuzzing.py``): fields of the wrong type, numbers out
of range, unknown fields, oversized strings, unusual Unicode, missing fields, odd
durations, inverted thresholds, references to nothing, odd template placeholders. Each is
either refused at apply with a message naming the field, or accepted and then handled:
delivered as usual (the template's query run; the alert sent; the Canary initialised and
then, given a new revision, taken through an analysis: its first webhook is a pre-rollout
gate, and the judge is among the fuzzed fields), or held with a condition and a Warning
event that name the field. Meanwhile the controller keeps running and answering its
liveness probe, nothing it reconciles fails unexpectedly, and a rollout in another
namespace is promoted.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from canary.devenv import LocalEnvironment
from canary.devenv.process import free_port
from canary.kube import ApiError, KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e import manifests
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import canary_object, deploy, phase, start, target_revision
from tests.e2e.waiting import wait_until
from tests.faults import fuzzing
from tests.faults.conftest import SEED_VARIABLE
from tests.faults.fuzzing import GOOD_PROVIDER, GOOD_TEMPLATE, JSON, Fuzzed
from tests.faults.health import still_alive, unexpected_failures

#: Objects tried: few by default (the smoke `make test` runs), 500 in `make faults`.
EXAMPLES_VARIABLE = "CANARY_FUZZ_EXAMPLES"
#: Objects applied together, then waited for together.
BATCH = 20
#: Seconds an accepted object has to be handled.
SETTLE_SECONDS = 75.0
#: Phases of a Canary handled as usual.
DELIVERED = {"Initialized", "Waiting", "Progressing", "Promoting", "Finalising", "Succeeded"}
#: Phases that say a new revision was taken up.
TAKEN_UP = {"Progressing", "Waiting", "Promoting", "Finalising", "Succeeded", "Failed"}
#: Ready=False reasons that say a wait is under way, not a problem.
PASSING = {"Initializing", "Progressing", "Promoting", "Finalising", "Waiting"}
#: Verdicts that are no failure: a fuzzed name taken by an earlier object of the run is
#: refused for that, whatever else the object holds.
PASSED = {"refused", "delivered", "held", "name taken"}
KINDS = {"Canary": r.CANARIES, "MetricTemplate": r.METRIC_TEMPLATES,
         "AlertProvider": r.ALERT_PROVIDERS}


@dataclass
class Receiver:
    """Where every alert and webhook goes: a loopback server noting the paths posted to."""

    url: str
    paths: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    got = Receiver(f"http://127.0.0.1:{port}")

    async def post(request: web.Request) -> web.Response:
        got.paths.append(request.path)
        await request.read()
        return web.Response(text="ok")

    app = web.Application(client_max_size=2**22)
    app.router.add_post("/{path:.*}", post)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield got
    finally:
        await runner.cleanup()


@dataclass
class Outcome:
    """How one object ended: refused, delivered, held (a condition and an event naming
    the field) or, for a failure, something else; and what was seen."""

    kind: str
    verdict: str
    detail: str = ""
    #: For a Canary given a new revision: the phase it reached, and whether it analysed.
    rollout: str = ""

    @property
    def failed(self) -> bool:
        return self.verdict not in PASSED


#: A 100 kB string of NULs is 600 kB of JSON, which aiohttp warns about sending at once.
pytestmark = pytest.mark.filterwarnings("ignore:Sending a large body:ResourceWarning")


async def test_fuzzed_objects_are_refused_or_handled_and_harm_nothing(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        two_more_namespaces: list[str], other_namespace: str,
        running_controller: ControllerProcess) -> None:
    count = int(os.environ.get(EXAMPLES_VARIABLE) or 40)
    run_seed = int(os.environ.get(SEED_VARIABLE) or random.randrange(2**32))
    print(f"\n{count} objects, seed {run_seed} ({SEED_VARIABLE}={run_seed} replays them)")
    examples = fuzzing.generate(count, run_seed)
    spaces = [namespace, *two_more_namespaces]
    log_start = running_controller.log.stat().st_size
    async with receiver() as sink:
        await asyncio.gather(start(kube, environment, other_namespace),
                             *(_furnish(kube, space, sink) for space in spaces))
        await deploy(kube, other_namespace, {"revision": "2"})
        sentinel = await target_revision(kube, other_namespace)
        outcomes: list[Outcome] = []
        for first in range(0, len(examples), BATCH):
            batch = examples[first:first + BATCH]
            outcomes += await asyncio.gather(*(
                _try(kube, spaces[(first + i) % len(spaces)], first + i, kind, changes, sink)
                for i, (kind, changes) in enumerate(batch)))
            await still_alive(running_controller)
            await _clear(kube, spaces)
        await wait_until(lambda: canary_object(kube, other_namespace),
                         lambda c: phase(c) == "Succeeded"
                         and c["status"].get("lastPromotedSpec") == sentinel,
                         "the sentinel's rollout to be promoted", timeout=120)
    unexpected = unexpected_failures(running_controller, log_start, spaces)
    _report(outcomes, unexpected)
    failures = [o for o in outcomes if o.failed]
    assert not failures and not unexpected, "\n".join(
        [f"{o.kind} {o.verdict}: {o.detail}" for o in failures] + unexpected)


async def _furnish(kube: KubeClient, namespace: str, sink: Receiver) -> None:
    """The namespace's valid MetricTemplate and AlertProvider (with its address Secret),
    which the base Canary names."""
    await kube.create(r.METRIC_TEMPLATES, fuzzing.base(
        "MetricTemplate", GOOD_TEMPLATE, namespace, ""))
    await _provider_secret(kube, namespace, GOOD_PROVIDER, sink)
    await kube.create(r.ALERT_PROVIDERS, fuzzing.base(
        "AlertProvider", GOOD_PROVIDER, namespace, ""))


async def _provider_secret(kube: KubeClient, namespace: str, name: str,
                           sink: Receiver) -> None:
    address = f"{sink.url}/{namespace}/{name}"
    await kube.create(r.SECRETS, {
        "metadata": {"name": f"{name}-address", "namespace": namespace},
        "data": {"address": base64.b64encode(address.encode()).decode()}})


async def _try(kube: KubeClient, namespace: str, index: int, kind: str,
               changes: list[fuzzing.Mutation], sink: Receiver) -> Outcome:
    """Apply one fuzzed object and see how it ends."""
    short = {"Canary": "cn", "MetricTemplate": "mt", "AlertProvider": "ap"}[kind]
    name, target = f"{short}-{index}", f"app-{index}"
    original = fuzzing.base(kind, name, namespace, target)
    if kind == "Canary":  # its first webhook a gate the receiver opens, fuzzed as it is
        original["spec"]["analysis"]["webhooks"][0] = {
            "name": "gate", "type": "pre-rollout", "url": f"{sink.url}/gates/{namespace}/{name}"}
    manifest, made = fuzzing.mutated(original, changes)
    fuzzed = Fuzzed(kind, manifest, made)
    said = "; ".join(str(m) for m in made) or "(no change could be made)"
    try:
        await kube.create(r.DEPLOYMENTS, manifests.deployment(target, namespace))
        if kind == "AlertProvider":
            await _provider_secret(kube, namespace, name, sink)
        try:
            await kube.create(KINDS[kind], manifest, namespace)
        except ApiError as exc:
            return _refused(fuzzed, exc, said)
        if kind == "Canary":
            return await _canary_handled(kube, namespace, fuzzed, target, said, sink)
        return await _reference_handled(kube, namespace, fuzzed, target, said, sink,
                                        f"/{namespace}/{name}")
    except AssertionError as exc:
        return Outcome(kind, "stalled", f"{said}: {exc}"[:1500])
    except Exception as exc:  # one object's surprise must not hide the others' outcomes
        return Outcome(kind, "broke the test", f"{said}: {exc!r}"[:1500])


def _refused(fuzzed: Fuzzed, exc: ApiError, said: str) -> Outcome:
    """A refusal must name a changed field (a change the schema prunes, such as an
    unknown field, is not why an object is refused, so some other change is named)."""
    if exc.status == 409 and exc.reason == "AlreadyExists":
        return Outcome(fuzzed.kind, "name taken", said)
    if exc.status not in (400, 422):
        return Outcome(fuzzed.kind, f"refused with {exc.status}", f"{said}: {exc}"[:800])
    if fuzzing.names_a_field(exc.message, fuzzed.mutations):
        return Outcome(fuzzed.kind, "refused", said)
    return Outcome(fuzzed.kind, "refused without naming the field",
                   f"{said}: {exc.message}"[:800])


@dataclass
class Seen:
    """What a Canary showed last: its phase, its Ready condition, its Warning events."""

    phase: str | None
    ready: JSON
    warnings: list[JSON]
    since: float
    #: Whether an analysis step has run (status.lastAnalysis).
    analysed: bool = False


async def _seen(kube: KubeClient, namespace: str, name: str, last: Seen | None) -> Seen:
    obj = await kube.get(r.CANARIES, name, namespace)
    ready: JSON = next((c for c in (obj.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), {})
    listing = await kube.list(r.EVENTS, namespace)
    warnings = [e for e in listing["items"] if e.get("type") == "Warning"
                and (e.get("regarding") or {}).get("name") == name]
    same = last is not None and (last.phase, last.ready.get("reason")) == (
        phase(obj), ready.get("reason"))
    return Seen(phase(obj), ready, warnings, last.since if same and last else time.monotonic(),
                analysed=bool((obj.get("status") or {}).get("lastAnalysis")))


def _settled(seen: Seen) -> bool:
    """Delivered, or held."""
    return seen.phase in DELIVERED or _held_still(seen)


def _held_still(seen: Seen) -> bool:
    """Held for a reason (not a wait under way) for 5 s, with its event."""
    reason = seen.ready.get("reason")
    return seen.ready.get("status") == "False" and reason not in PASSING and \
        any(e.get("reason") == reason for e in seen.warnings) and \
        time.monotonic() - seen.since >= 5


def _taken_up(seen: Seen) -> bool:
    """After a new revision: an analysis step ran, the rollout ended, or it has stood in
    one phase of a rollout for 15 s (a fuzzed interval may be long); or it is held."""
    if seen.phase in ("Succeeded", "Failed") or (seen.phase in TAKEN_UP and seen.analysed):
        return True
    if seen.phase in TAKEN_UP:
        return time.monotonic() - seen.since >= 15
    return _held_still(seen)


async def _settle(kube: KubeClient, namespace: str, name: str,
                  settled: Callable[[Seen], bool] = _settled) -> Seen:
    last: list[Seen] = []

    async def fetch() -> Seen:
        last[:] = [await _seen(kube, namespace, name, last[0] if last else None)]
        return last[0]

    return await wait_until(fetch, settled, f"Canary {namespace}/{name} to be delivered "
                            "or held", timeout=SETTLE_SECONDS, interval=1.0)


async def _canary_handled(kube: KubeClient, namespace: str, fuzzed: Fuzzed, target: str,
                          said: str, sink: Receiver) -> Outcome:
    seen = await _settle(kube, namespace, fuzzed.name)
    if seen.phase == "Initialized":
        return await _through_analysis(kube, namespace, fuzzed, target, said, sink)
    if seen.phase in DELIVERED:
        return Outcome("Canary", "delivered", said)
    return _held(fuzzed, seen, said, ())


async def _through_analysis(kube: KubeClient, namespace: str, fuzzed: Fuzzed, target: str,
                            said: str, sink: Receiver) -> Outcome:
    """An initialised fuzzed Canary given a new revision: its analysis runs (its gate
    called, its checks and judge read) and ends or goes on, or it is held with a
    condition and an event naming the field."""
    await kube.apply(manifests.deployment(target, namespace, annotations={"revision": "2"}),
                     field_manager="fuzz")
    seen = await _settle(kube, namespace, fuzzed.name, _taken_up)
    if seen.phase not in TAKEN_UP:
        return _held(fuzzed, seen, said, ())
    how = f"{seen.phase}, {'analysed' if seen.analysed else 'not analysed yet'}"
    if (path := _gate_path(fuzzed, sink)) is not None and path in sink.paths:
        how += ", gate called"
    return Outcome("Canary", "delivered", f"{said}: {how}", rollout=how)


def _gate_path(fuzzed: Fuzzed, sink: Receiver) -> str | None:
    """Where the fuzzed Canary's gate calls the receiver, if it still does."""
    analysis = (fuzzed.manifest.get("spec") or {}).get("analysis")
    hooks = analysis.get("webhooks") if isinstance(analysis, dict) else None
    first = hooks[0] if isinstance(hooks, list) and hooks else None
    url = first.get("url") if isinstance(first, dict) else None
    return url[len(sink.url):] if isinstance(url, str) and url.startswith(sink.url) else None


def _held(fuzzed: Fuzzed, seen: Seen, said: str, extra: tuple[str, ...]) -> Outcome:
    """A held Canary's condition and event must name a changed field (or ``extra``)."""
    reason, message = seen.ready.get("reason"), str(seen.ready.get("message") or "")
    if reason == "InvalidSpec":  # the API server should have refused what canary cannot read
        return Outcome(fuzzed.kind, "accepted but unreadable (a hole in the schema)",
                       f"{said}: {message[:300]}")
    notes = " ".join(str(e.get("note")) for e in seen.warnings if e.get("reason") == reason)
    if fuzzing.names_a_field(message, fuzzed.mutations, extra) and \
            fuzzing.names_a_field(notes, fuzzed.mutations, extra):
        return Outcome(fuzzed.kind, "held", f"{said}: {reason}")
    return Outcome(fuzzed.kind, "held without naming the field",
                   f"{said}: {reason}: {message[:300]} / {notes[:300]}")


async def _reference_handled(kube: KubeClient, namespace: str, fuzzed: Fuzzed, target: str,
                             said: str, sink: Receiver, path: str) -> Outcome:
    """An accepted MetricTemplate or AlertProvider is handled when a Canary uses it: the
    template's query runs in an analysis (or its problem is said), the alert is sent (or
    its failure is said)."""
    name = f"user-of-{fuzzed.name}"
    spec = fuzzing.base("Canary", name, namespace, target)
    analysis = spec["spec"]["analysis"]
    if fuzzed.kind == "MetricTemplate":  # its check alone, so nothing else fails first
        analysis["metrics"] = analysis["metrics"][1:]
        analysis["metrics"][0]["templateRef"]["name"] = fuzzed.name
    else:
        analysis["alerts"][0] = {"name": "fuzzed", "severity": "info",
                                 "providerRef": {"name": fuzzed.name}}
    await kube.create(r.CANARIES, spec, namespace)
    extra = (f"{fuzzed.kind} {namespace}/{fuzzed.name}",)
    seen = await _settle(kube, namespace, name)
    if seen.phase not in DELIVERED:
        return _held(fuzzed, seen, said, extra)
    if fuzzed.kind == "AlertProvider":
        return await _alerted(kube, namespace, fuzzed, name, said, sink, path)
    return await _analysed(kube, namespace, fuzzed, target, name, said)


async def _alerted(kube: KubeClient, namespace: str, fuzzed: Fuzzed, user: str, said: str,
                   sink: Receiver, path: str) -> Outcome:
    """The Initialized alert reached the provider's address (``path`` on the receiver: its
    Secret was made for the object's name before fuzzing, which may have changed it), or
    a Warning event on the Canary names the provider."""
    about = f"AlertProvider {namespace}/{fuzzed.name}"

    async def fetch() -> tuple[bool, list[str]]:
        listing = await kube.list(r.EVENTS, namespace)
        notes = [str(e.get("note")) for e in listing["items"] if e.get("type") == "Warning"
                 and (e.get("regarding") or {}).get("name") == user]
        return path in sink.paths, notes

    sent, notes = await wait_until(fetch, lambda got: got[0] or any(about in n for n in got[1]),
                                   f"the alert of {about} or a Warning event naming it",
                                   timeout=SETTLE_SECONDS, interval=1.0)
    if sent:
        return Outcome(fuzzed.kind, "delivered", said)
    return Outcome(fuzzed.kind, "held", f"{said}: {next(n for n in notes if about in n)[:200]}")


async def _analysed(kube: KubeClient, namespace: str, fuzzed: Fuzzed, target: str,
                    user: str, said: str) -> Outcome:
    """A new revision's analysis runs the template's query: its result is a value, or an
    error naming the MetricTemplate."""
    await kube.apply(manifests.deployment(target, namespace, annotations={"revision": "2"}),
                     field_manager="fuzz")
    about = f"MetricTemplate {namespace}/{fuzzed.name}"

    def result(obj: JSON) -> JSON | None:
        results = ((obj.get("status") or {}).get("lastAnalysis") or {}).get("results") or []
        return next((m for m in results if m.get("name") == "fuzzed"), None)

    obj = await wait_until(lambda: canary_object(kube, namespace, user),
                           lambda c: result(c) is not None,
                           f"the analysis to run the query of {about}",
                           timeout=SETTLE_SECONDS, interval=1.0)
    measured = result(obj) or {}
    if measured.get("verdict") != "Error":
        return Outcome(fuzzed.kind, "delivered", f"{said}: {measured.get('verdict')}")
    message = str(measured.get("message") or "")
    if about in message or fuzzing.names_a_field(message, fuzzed.mutations):
        return Outcome(fuzzed.kind, "held", f"{said}: {message[:200]}")
    return Outcome(fuzzed.kind, "held without naming the field", f"{said}: {message[:300]}")


async def _clear(kube: KubeClient, spaces: list[str]) -> None:
    """Delete the batch's objects (the namespaces' own template and provider stay), so
    that a long run keeps the cluster small."""
    for space in spaces:
        for resource in (r.CANARIES, r.METRIC_TEMPLATES, r.ALERT_PROVIDERS, r.DEPLOYMENTS):
            for item in (await kube.list(resource, space))["items"]:
                name = item["metadata"]["name"]
                if name in (GOOD_TEMPLATE, GOOD_PROVIDER) or name.endswith("-primary"):
                    continue
                with contextlib.suppress(NotFound):
                    await kube.delete(resource, name, space)


def _report(outcomes: list[Outcome], unexpected: list[str]) -> None:
    """One line per kind: tried, refused, delivered, held, and anything else."""
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for outcome in outcomes:
        by_kind[outcome.kind][outcome.verdict] += 1
    for kind in KINDS:
        tally = by_kind[kind]
        other = {v: n for v, n in tally.items() if v not in ("refused", "delivered", "held")}
        print(f"{kind}: {sum(tally.values())} tried, {tally['refused']} refused at apply, "
              f"{tally['delivered']} accepted and handled as usual, {tally['held']} accepted "
              f"and held with a condition, otherwise: {other or 0}")
    rollouts = collections.Counter(o.rollout for o in outcomes if o.rollout)
    print(f"Canaries given a new revision after initialising: {sum(rollouts.values())} "
          f"taken up ({dict(sorted(rollouts.items())) or 'none'})")
    print(f"unexpected reconcile failures: {len(unexpected)}")
    for outcome in outcomes:
        if outcome.verdict != "refused":
            print(f"  {outcome.kind} {outcome.verdict}: {outcome.detail[:300]!r}")

