"""The analysis's checks at the end of a step (metrics against their bounds, the rollout
hooks' answers) and how they read in events."""

from __future__ import annotations

from canary.core import evidence
from canary.core.decide.draft import Draft
from canary.core.decide.rollback import rollback
from canary.core.thresholds import NO_VALUES_CAUSES, check_threshold, scope
from canary.core.timefmt import format_time
from canary.models.base import format_duration
from canary.models.canary import AnalysisRecord, MetricResult

#: The longest evidence a WeightIncreased event carries (characters).
EVIDENCE_LENGTH = 300


def analyse(draft: Draft) -> list[MetricResult]:
    measured = {m.name: m for m in draft.obs.metrics or ()}
    results = [MetricResult(name=f"webhook/{hook.name}",
                            verdict="Passed" if hook.passed else "Failed",
                            message=hook.message or None)
               for hook in (draft.obs.hooks or {}).get("rollout", ())]
    for metric in draft.canary.spec.analysis.metrics or []:
        value = measured.get(metric.name)
        if value is None:
            results.append(MetricResult(name=metric.name, verdict="Error",
                                        message="the metric was not measured"))
        else:
            interval = metric.interval or format_duration(draft.interval())
            results.append(check_threshold(metric, value, scope(draft.canary.namespace,
                                                      draft.target_name, interval)))
    draft.status.last_analysis = AnalysisRecord(
        time=format_time(draft.now, precise=True), revision=str(draft.status.last_applied_spec),
        weight=draft.status.canary_weight or 0, results=results)
    return results


def failed_check(draft: Draft, summary: str) -> None:
    checks = (draft.status.failed_checks or 0) + 1
    draft.status.failed_checks = checks
    threshold = draft.canary.spec.analysis.threshold
    draft.start_step()
    draft.wake_in(draft.interval())
    if checks >= threshold:
        rollback(draft, "AnalysisFailed", f"Rolling back {draft.target_name}: {summary} "
                  f"(failed checks {checks}/{threshold})")
    else:
        draft.event("Warning", "AnalysisFailed", f"Halt advancement of {draft.target_name}: "
                   f"{summary} (failed checks {checks}/{threshold})")


def summarise_failures(failed: list[MetricResult]) -> str:
    """The failed checks in a line. Metrics without values are named together by what
    they selected (no traffic usually empties them all), then the usual causes, once."""
    parts = [_describe_failure(r) for r in failed if r.verdict != "NoValues"]
    empty: dict[str, list[str]] = {}
    for result in failed:
        if result.verdict == "NoValues":
            empty.setdefault(result.message or "no values", []).append(result.name)
    parts += [f"{', '.join(names)}: {message}" for message, names in empty.items()]
    text = "; ".join(parts)
    return f"{text} ({NO_VALUES_CAUSES})" if empty else text


def _describe_failure(result: MetricResult) -> str:
    if result.verdict in ("NoValues", "Error") or result.value is None:
        return f"{result.name}: {result.message}"
    bound = (f">= {result.min:g}" if result.min is not None and result.value is not None
             and result.value < result.min else f"<= {result.max:g}")
    return f"{result.name} {result.value:g} (must be {bound})"


def findings(draft: Draft) -> str:
    """What the analysis of this decision found (each check against its bound, then the
    judge's summary), cut at EVIDENCE_LENGTH; empty when none ran in it (the first step)."""
    record = draft.status.last_analysis
    if record is None or record.revision != draft.status.last_applied_spec or \
            record.time != format_time(draft.now, precise=True):
        return ""
    parts = [_describe_passed(r) for r in record.results]
    if draft.status.judge is not None:
        parts += [evidence.describe(m) for m in draft.status.judge.metrics]
    text = "; ".join(parts)
    return text if len(text) <= EVIDENCE_LENGTH else text[:EVIDENCE_LENGTH] + "..."


def _describe_passed(result: MetricResult) -> str:
    """A passed check: its value against its bounds."""
    if result.value is None:
        return f"{result.name} {result.verdict.lower()}"
    bounds = [f">= {result.min:g}" if result.min is not None else "",
              f"<= {result.max:g}" if result.max is not None else ""]
    shown = ", ".join(b for b in bounds if b)
    return f"{result.name} {result.value:g}" + (f" ({shown})" if shown else "")
