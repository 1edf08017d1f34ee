"""A step whose end gave the judge no usable reading: no evidence, so the weight holds.

A judged metric whose reading failed (a query Prometheus refused, counters that are not
counts: NaN, +Inf, a series of no known part), or whose counters cannot be differenced
with the last reading (a reset, a vanished series), judges no step; nor does the next
reading, which only starts the counts again. Moving the weight on such a step would let
a canary reach its final weight, or be promoted, on no evidence at all. Instead the
weight (or the iteration count) stays where it is and the Promoted condition says why;
the analysis moves on at the first step the judge takes in, and the rollout is rolled
back if none comes within the progress deadline. Steps without requests to the canary
and an unreachable metrics server have holds of their own (``no_requests``,
``metrics_outage``).
"""

from __future__ import annotations

from canary.core import evidence
from canary.core.decide.draft import Draft
from canary.core.decide.holding import Lack, continue_hold, end_hold

#: The Promoted condition's reason while the weight holds for want of the judge's evidence.
WAITING_FOR_EVIDENCE = "WaitingForEvidence"

#: What a step without a usable reading lacks.
NO_EVIDENCE = Lack(
    reason=WAITING_FOR_EVIDENCE, event="WeightHeld",
    lasting="the judge has had no usable reading",
    now="the judge had no usable reading of the last step",
    until="when its readings are usable again, and is rolled back if they are not by")


def without_evidence(verdict: evidence.Verdict | None) -> bool:
    """Whether a judged metric took no step's evidence at the reading that ends it."""
    return verdict is not None and bool(verdict.unjudged)


def hold_for_evidence(draft: Draft, verdict: evidence.Verdict, step_began: str | None) -> None:
    """Keep the weight (or the iteration count), say why, and roll back once the judge
    has had no usable reading for the progress deadline."""
    why = "; ".join(f"{n.metric}: {n.message}" for n in verdict.unjudged)
    draft.status.no_evidence_since = continue_hold(draft, draft.status.no_evidence_since,
                                                   step_began, NO_EVIDENCE, why)


def evidence_returned(draft: Draft) -> None:
    """A judged step after held ones: the analysis moves on again."""
    if draft.status.no_evidence_since is not None:
        draft.status.no_evidence_since = None
        end_hold(draft, "EvidenceReturned", f"The judge reads {draft.target_name} again: "
                 "the analysis moves on")
