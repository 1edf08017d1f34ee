"""What a fault round is judged by: events per reason, the controller's counters, and
the Canaries' outcomes, each read before and after the round."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from canary.kube import KubeClient
from canary.targets.deployment import REVISION_ANNOTATION
from tests.e2e.rollout import events, occurrences, phase, primary
from tests.e2e.test_observability import samples

#: The events that are decisions: each must happen exactly as often as decided.
DECISIONS = ("NewRevision", "Promoting", "Promoted", "RolledBack")
#: The revision in a Promoted event's note.
PROMOTED_REVISION = re.compile(r"revision (\w+) completed")


async def reasons(kube: KubeClient, namespace: str, regarding: str | None = None
                  ) -> Counter[str]:
    """How many times each decision event happened in ``namespace`` (about the Canary
    ``regarding`` if given) so far; also
    ``Promoted@<revision>`` per revision, and ``Interrupted``: promotions ended by a new
    revision (a NewRevision "detected during promotion")."""
    out: Counter[str] = Counter()
    for event in await events(kube, namespace, regarding=regarding):
        reason, note = event.get("reason"), str(event.get("note") or "")
        if reason not in DECISIONS:
            continue
        times = occurrences([event])
        out[str(reason)] += times
        if reason == "Promoted" and (found := PROMOTED_REVISION.search(note)):
            out[f"Promoted@{found.group(1)}"] += times
        if reason == "NewRevision" and "during promotion" in note:
            out["Interrupted"] += times
    return out


async def totals(metrics_url: str) -> Counter[str]:
    """The controller's relists by resource (``relists:<resource>``), its API requests
    answered by status code (``answers:<code>``), its events by outcome
    (``events:<outcome>``), and its promotions and rollbacks, summed over Canaries."""
    found = await samples(metrics_url)
    out: Counter[str] = Counter()
    for labels, value in found.get("canary_watch_relists_total", []):
        out[f"relists:{labels['resource']}"] += int(value)
    for labels, value in found.get("canary_kube_requests_total", []):
        out[f"answers:{labels['code']}"] += int(value)
    for labels, value in found.get("canary_events_total", []):
        out[f"events:{labels['outcome']}"] += int(value)
    for name in ("canary_promotions_total", "canary_rollbacks_total"):
        out[name] = int(sum(value for _, value in found.get(name, [])))
    return out


@dataclass
class Expected:
    """What one Canary must end in this round."""

    namespace: str
    #: The revision (template hash) last applied; the one to promote if ``promoted``.
    revision: str
    promoted: bool
    #: How many NewRevision events and promotions the round may show: a revision
    #: superseded during the partition may or may not have been seen, even promoted,
    #: before its successor was.
    new_revisions: tuple[int, ...] = (1,)
    promotions: tuple[int, ...] = (1,)


def finished(canary: dict[str, Any], expected: Expected) -> bool:
    status = canary.get("status") or {}
    if expected.promoted:
        return phase(canary) == "Succeeded" and \
            status.get("lastPromotedSpec") == expected.revision
    return phase(canary) == "Failed" and status.get("lastAppliedSpec") == expected.revision


@dataclass
class Violations:
    found: list[str] = field(default_factory=list)

    def check(self, holds: bool, what: str) -> None:
        if not holds:
            self.found.append(what)


def judge_events(expected: Expected, delta: Counter[str], violations: Violations) -> None:
    """Each decision reported once: the healthy revision promoted once, a faulty one
    rolled back once, and every promotion begun ended once (promoted, or interrupted by
    a newer revision)."""
    name = expected.namespace
    violations.check(delta["NewRevision"] in expected.new_revisions,
                     f"{name}: NewRevision x{delta['NewRevision']}, "
                     f"expected {expected.new_revisions}")
    violations.check(delta["Promoting"] == delta["Promoted"] + delta["Interrupted"],
                     f"{name}: Promoting x{delta['Promoting']}, but Promoted "
                     f"x{delta['Promoted']} and interrupted x{delta['Interrupted']}")
    if expected.promoted:
        promoted = delta[f"Promoted@{expected.revision}"]
        violations.check(promoted == 1, f"{name}: revision {expected.revision} promoted "
                         f"x{promoted}, expected once")
        violations.check(delta["Promoted"] in expected.promotions,
                         f"{name}: Promoted x{delta['Promoted']}, expected "
                         f"{expected.promotions}")
    violations.check(delta["RolledBack"] == int(not expected.promoted),
                     f"{name}: RolledBack x{delta['RolledBack']}, "
                     f"expected {int(not expected.promoted)}")
    if not expected.promoted:
        violations.check(delta["Promoting"] == 0, f"{name}: a faulty revision promoting")


async def judge_primary(kube: KubeClient, expected: Expected, before: str,
                        violations: Violations) -> None:
    """The primary serves the promoted revision, or still the one before a rollback."""
    serving = (await primary(kube, expected.namespace))["metadata"]["annotations"].get(
        REVISION_ANNOTATION)
    want = expected.revision if expected.promoted else before
    violations.check(serving == want,
                     f"{expected.namespace}: primary serves {serving}, expected {want}")
