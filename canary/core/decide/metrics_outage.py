"""A step whose end finds the metrics server unreachable: no evidence, so the weight holds.

When Prometheus cannot answer (refused connection, timeout, HTTP 5xx or 429), the step's
metrics say nothing about the canary: counting them as failed checks would roll a
healthy canary back for an outage of the evidence, and passing them would promote it
unseen. Instead the weight (or the iteration count) stays where it is, the step counts
neither way, and the Promoted condition says why, with one Warning event when the outage
begins. When the server answers again the analysis continues from where it held (a
Normal event). If it does not answer within the progress deadline of the first step it
missed, the rollout is rolled back, as for any rollout that cannot progress.

A query the server refuses (HTTP 400, a bad query) or that answers with no values stays a
failed check: that is evidence, or a mistake to fix, not an outage. Only just after an
outage is a query without values part of it: the server has a gap in its data until it
has scraped again, and the hold lasts until values return.
"""

from __future__ import annotations

from canary.core.decide.draft import Draft
from canary.core.decide.holding import Lack, continue_hold, end_hold
from canary.models.canary import MetricResult

#: The Promoted condition's reason while the weight holds for want of the metrics server.
METRICS_UNAVAILABLE = "MetricsUnavailable"


def metrics_outage(draft: Draft, results: list[MetricResult]
                   ) -> tuple[list[MetricResult], list[str]]:
    """The step's checks, and what could not be measured at its end for the metrics
    server's outage (each ``metric: error``; empty when every query was answered).

    While a hold for an outage lasts, a query answered without values is the server's
    gap in data (it scrapes again only from its return on), not a failed check: the hold
    lasts until values return, within the same deadline. A step answered with values
    after held ones ends the hold: the analysis moves on again."""
    if draft.status.metrics_unavailable_since is not None:
        results = [_gap(r) if r.verdict == "NoValues" else r for r in results]
        if draft.status.last_analysis is not None:
            draft.status.last_analysis.results = results
    outage = [f"{r.name}: {r.message}" for r in results if r.verdict == "Unavailable"]
    outage += [f"{r.name}: {r.error}" for r in draft.obs.judge or () if r.unavailable]
    if not outage and draft.status.metrics_unavailable_since is not None:
        draft.status.metrics_unavailable_since = None
        end_hold(draft, "MetricsAvailable", f"The metrics server answers again: the "
                 f"analysis of {draft.target_name} moves on")
    return results, outage


def _gap(result: MetricResult) -> MetricResult:
    """A check without values while the server recovers from its outage."""
    return result.model_copy(update={
        "verdict": "Unavailable",
        "message": f"no values yet since the metrics server's outage ({result.message})"})


#: What a step the metrics server did not answer lacks.
NO_METRICS = Lack(
    reason=METRICS_UNAVAILABLE, event=METRICS_UNAVAILABLE,
    lasting="the metrics server has not answered",
    now="the metrics server could not answer",
    until="when it answers, and is rolled back if it has not by")


def hold_for_metrics(draft: Draft, outage: list[str]) -> None:
    """The metrics server did not answer at the step's end: keep the weight (or the
    iteration count), say so once, and roll back once the outage has lasted the progress
    deadline."""
    draft.status.metrics_unavailable_since = continue_hold(
        draft, draft.status.metrics_unavailable_since, None, NO_METRICS, "; ".join(outage))
