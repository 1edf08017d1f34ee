"""What a Canary's status and events mean to a reader (pure).

:class:`CanaryView` reads a Canary as the API returns it and answers what the screens
ask: where the rollout is (phase, weight or iteration, failed checks against the
threshold), the last decision and why (from the conditions and the last analysis), and
each metric's latest value against its bound. :class:`EventView` does the same for an
``events.k8s.io/v1`` Event about a Canary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from canary.console.render import bound, number
from canary.core.conditions import ROLLOUT_REASONS
from canary.core.strategy import Strategy, infer
from canary.core.timefmt import parse_time
from canary.models.canary import AnalysisRecord, Canary, Condition, MetricResult
from canary.models.problems import describe

#: Phases in which a rollout has ended.
DONE = ("Succeeded", "Failed")
#: Phases in which nothing is being delivered.
IDLE = ("Initialized", "Succeeded", "Failed")


@dataclass(frozen=True)
class Decision:
    """The controller's last decision about a Canary, and why."""

    reason: str
    message: str
    time: datetime | None = None


@dataclass(frozen=True)
class Progress:
    """How far a rollout is: ``done`` of ``total`` steps (weights or iterations)."""

    kind: str  # "weight" or "iteration"
    done: int
    total: int
    #: The weights of a weighted canary, in order (empty for iterations).
    steps: tuple[int, ...] = ()


def parse_moment(text: object) -> datetime | None:
    """An RFC 3339 time from the API, or None when absent or malformed."""
    if not text:
        return None
    try:
        return parse_time(str(text))
    except ValueError:
        return None


class CanaryView:
    """One Canary, as the API returned it."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.raw = obj
        meta = obj.get("metadata") or {}
        self.name = str(meta.get("name", ""))
        self.namespace = str(meta.get("namespace", ""))
        self.created = parse_moment(meta.get("creationTimestamp"))
        self.problem: str | None = None
        try:
            self.canary: Canary | None = Canary.model_validate(
                {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
        except ValidationError as exc:
            self.canary = None
            self.problem = f"cannot read this Canary: {describe(exc)}"

    # -- status --

    @property
    def status(self) -> Mapping[str, Any]:
        return self.raw.get("status") or {}

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "Pending")

    @property
    def weight(self) -> int:
        return int(self.status.get("canaryWeight") or 0)

    @property
    def failed_checks(self) -> int:
        return int(self.status.get("failedChecks") or 0)

    @property
    def threshold(self) -> int | None:
        return self.canary.spec.analysis.threshold if self.canary else None

    @property
    def strategy(self) -> str:
        if self.status.get("strategy"):
            return str(self.status["strategy"])
        return str(infer(self.canary.spec.analysis)) if self.canary else "-"

    @property
    def revision(self) -> str | None:
        value = self.status.get("lastAppliedSpec")
        return str(value) if value else None

    @property
    def promoted_revision(self) -> str | None:
        value = self.status.get("lastPromotedSpec")
        return str(value) if value else None

    @property
    def done(self) -> bool:
        return self.phase in DONE

    @property
    def interval_seconds(self) -> float | None:
        return self.canary.spec.analysis.interval_seconds() if self.canary else None

    @property
    def step_started(self) -> datetime | None:
        return parse_moment(self.status.get("stepStartedAt"))

    @property
    def conditions(self) -> list[Condition]:
        return list(self.canary.status.conditions or []) if self.canary else []

    def condition(self, kind: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == kind), None)

    @property
    def last_analysis(self) -> AnalysisRecord | None:
        return self.canary.status.last_analysis if self.canary else None

    def current_analysis(self) -> AnalysisRecord | None:
        """The last analysis, if it was of the revision being delivered now."""
        record = self.last_analysis
        if record is None or record.revision != self.revision:
            return None
        return record

    # -- meaning --

    def progress(self) -> Progress:
        """Steps done and to do: weights for a weighted canary, else iterations."""
        if self.canary is None:
            return Progress("weight", 0, 0)
        analysis = self.canary.spec.analysis
        promoted = self.phase == "Succeeded" or self.phase in ("Promoting", "Finalising")
        if analysis.iterations is not None and self.strategy != str(Strategy.CANARY):
            total = analysis.iterations
            done = total if promoted else min(total, int(self.status.get("iterations") or 0))
            return Progress("iteration", done, total)
        steps = tuple(analysis.weight_steps())
        reached = self.weight
        record = self.current_analysis()
        if self.phase == "Failed" and record is not None:
            reached = record.weight  # how far it got before traffic went back
        done = len(steps) if promoted else sum(1 for step in steps if step <= reached)
        return Progress("weight", done, len(steps), steps)

    def decision(self) -> Decision:
        """The last decision and why: from the conditions, with the evidence of the last
        analysis while a rollout is under way."""
        if self.problem:
            return Decision("Unreadable", self.problem)
        ready, paused = self.condition("Ready"), self.condition("Paused")
        if ready is not None and ready.status == "False" and \
                ready.reason not in ROLLOUT_REASONS:  # a problem, not the rollout itself
            return Decision(ready.reason, ready.message,
                            parse_moment(ready.last_transition_time))
        if paused is not None and paused.status == "True":
            return Decision(paused.reason, paused.message,
                            parse_moment(paused.last_transition_time))
        if self.canary is not None and self.canary.spec.suspend:
            return Decision("Suspended", "spec.suspend is set: the controller leaves this "
                            "Canary as it is")
        promoted = self.condition("Promoted")
        if promoted is None:
            return Decision("Pending", "not yet seen by the controller")
        decision = Decision(promoted.reason, promoted.message,
                            parse_moment(promoted.last_transition_time))
        record = self.current_analysis()
        if self.phase == "Progressing" and record is not None and record.results:
            evidence = "; ".join(evidence_of(r) for r in failed_first(record.results))
            where = f"at weight {record.weight}" if self.progress().kind == "weight" \
                else "last checks"
            return Decision(decision.reason, f"{where}: {evidence}", parse_moment(record.time))
        return decision


JUDGE_HEADERS = ("JUDGED", "OUTCOME", "CANARY/PRIMARY", "RATIO", "CONFIDENCE",
                 "REGRESSION", "NO REGRESSION")


def judge_rows(view: CanaryView) -> list[list[str]]:
    """The judge's evidence on the revision being delivered, one row per metric: counts,
    the rate ratio with its confidence sequence, and each test's log statistic against
    its bound."""
    judge = view.canary.status.judge if view.canary is not None else None
    if judge is None or judge.revision != view.revision:
        return []
    rows = []
    for metric in judge.metrics:
        evidence = metric.evidence
        if evidence is None:
            rows.append([metric.name, "no evidence yet", "-", "-", "-", "-",
                         metric.message or ""])
            continue
        upper = "inf" if evidence.ratio_upper is None else number(evidence.ratio_upper)
        outcome = str(evidence.outcome)
        if metric.proven_at_step is not None and outcome != "regression":
            # Proven once is proven: later steps may sit below the bound again.
            outcome = f"no regression proven (step {metric.proven_at_step})"
        rows.append([
            metric.name, outcome,
            f"{evidence.canary_events}/{evidence.canary_requests} vs "
            f"{evidence.primary_events}/{evidence.primary_requests}",
            number(evidence.ratio),
            f"{number(evidence.ratio_lower)}..{upper}",
            f"{evidence.log_regression:.2f} / {evidence.log_regression_bound:.2f}",
            f"{evidence.log_no_regression:.2f} / {evidence.log_no_regression_bound:.2f}"
            + ("" if metric.bake_log_no_regression is None else
               f" (bake {metric.bake_log_no_regression:.2f})")])
    return rows


def failed_first(results: Iterable[MetricResult]) -> list[MetricResult]:
    return sorted(results, key=lambda r: r.verdict == "Passed")


def evidence_of(result: MetricResult) -> str:
    """``request-success-rate 99.93 (>= 99) Passed``: what was measured against what."""
    if result.value is None:
        detail = result.message or ("no values" if result.verdict == "NoValues" else "")
        return f"{result.name} {result.verdict}" + (f" ({detail})" if detail else "")
    return f"{result.name} {number(result.value)} ({bound(result.min, result.max)}) " \
           f"{result.verdict}"


@dataclass(frozen=True)
class EventView:
    """One events.k8s.io/v1 Event about a Canary."""

    time: datetime | None
    type: str
    reason: str
    note: str
    uid: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> EventView:
        meta = obj.get("metadata") or {}
        # A repeated event is as recent as its last occurrence (eventTime is its first).
        moment = parse_moment((obj.get("series") or {}).get("lastObservedTime")) \
            or parse_moment(obj.get("eventTime")) \
            or parse_moment(obj.get("deprecatedLastTimestamp")) \
            or parse_moment(meta.get("creationTimestamp"))
        return cls(moment, str(obj.get("type") or ""), str(obj.get("reason") or ""),
                   str(obj.get("note") or ""), str(meta.get("uid") or meta.get("name") or ""))


def events_in_order(objects: Iterable[Mapping[str, Any]]) -> list[EventView]:
    """Oldest first (events without a time first)."""
    views = [EventView.of(obj) for obj in objects]
    return sorted(views, key=lambda e: (e.time is not None, e.time or datetime.min))
