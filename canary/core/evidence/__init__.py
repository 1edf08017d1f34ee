"""The judge inside an analysis: counter readings in, verdicts and evidence out (pure).

At the analysis start, and then at every step, the controller reads the cumulative
counters of each judged metric for the canary and the primary (:class:`JudgeReading`).
:func:`advance` differences each reading with the previous one, which the status keeps,
adds the step's counts to the metric's :class:`~canary.core.judge.JudgeState` (also kept
in the status) and assesses it. Everything the next step needs is in the returned
:class:`~canary.models.canary.JudgeStatus`, so a controller restarted between two steps
continues with exactly the same evidence.

A step gives no evidence for a metric when its counters could not be read, when
Prometheus has no series where it had some, when any series of either version vanished,
went down or came back after an absence since the previous reading (a pod went away,
restarted or missed a scrape: the difference of the sums would be biased), or when no
requests were seen (none on the canary while traffic was routed to it, or none at all).
The metric's next difference then starts from a reading that can be trusted. Such a step
is never a pass.
"""

from canary.core.evidence.bake import bake_evidence, bake_proven, describe_bake, start_bake
from canary.core.evidence.power_plan import PowerPlan
from canary.core.evidence.readings import cumulative, quantile_bound
from canary.core.evidence.records import (
    as_counts,
    as_record,
    begin,
    describe,
    design,
    has_judged,
    previous_reading,
    setting,
)
from canary.core.evidence.steps import Note, Verdict, advance

__all__ = [
    "Note", "PowerPlan", "Verdict", "advance", "as_counts", "as_record", "bake_evidence",
    "bake_proven", "begin", "cumulative", "describe", "describe_bake", "design", "has_judged",
    "previous_reading", "quantile_bound", "setting", "start_bake",
]
