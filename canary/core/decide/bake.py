"""Early promotion by way of a bake at the final weight.

A proof of no regression rests on every step so far, and most of them may come from
minutes in which the canary was healthy and had a small share of the traffic. A canary
that degrades later (a leak, a cache that fills, a dependency failing under the growing
share) would be promoted on those minutes. So ``promoteEarly`` does not promote at the
proof: the canary takes ``maxWeight`` at once (the iterative strategies already serve
their final routing) and bakes there. It is promoted once it has served at least
``bakeTime`` and the evidence gathered during the bake alone proves no regression again.
The judge keeps watching meanwhile: a regression rolls back as in any step. A bake never
takes longer than the steps it skipped: when they are used up, the schedule's own
promotion follows, as it would have without the proof.
"""

from __future__ import annotations

from enum import Enum

from canary.core import evidence
from canary.core.decide.draft import PROMOTED, Draft
from canary.core.decide.promotion import steps_after_this
from canary.core.timefmt import parse_time
from canary.models.canary import JudgeBake

#: The Promoted condition's reason while the canary bakes at its final weight.
BAKING = "Baking"


class BakeStep(Enum):
    """What a step at the end of which the canary is baking leads to."""

    PROVEN = "proven"  # bakeTime served and the bake's own evidence proves no regression
    SCHEDULE_OVER = "schedule_over"  # the skipped steps are used up: the ordinary promotion
    GOES_ON = "goes_on"


def schedule_steps(draft: Draft) -> int:
    """The analysis's steps: its iterations, or its weights (and a mirrored first step)."""
    analysis = draft.canary.spec.analysis
    if draft.strategy.iterative:
        return analysis.iterations or 1
    return len(analysis.weight_steps()) + (1 if analysis.mirror else 0)


def bake_seconds(draft: Draft) -> float:
    """``bakeTime``, or by default half of the analysis's schedule."""
    judge_spec = draft.canary.spec.analysis.judge
    chosen = judge_spec.bake_seconds() if judge_spec is not None else None
    return chosen if chosen is not None else schedule_steps(draft) * draft.interval() / 2


def baking(draft: Draft) -> JudgeBake | None:
    judge = draft.status.judge
    return judge.bake if judge is not None else None


def begin_bake(draft: Draft, summary: str) -> None:
    """Every metric proved no regression: start the bake (the caller moves the weight)."""
    judge = draft.status.judge
    assert judge is not None
    skipped = steps_after_this(draft)
    seconds = bake_seconds(draft)
    evidence.start_bake(judge, draft.now, seconds, skipped)
    where = ("at its final routing" if draft.strategy.iterative else
             f"at maxWeight {draft.canary.spec.analysis.weight_steps()[-1]}%")
    message = (f"The judge proved no regression ({summary}); {draft.target_name} bakes "
               f"{where} for at least {seconds:.0f}s and is promoted once the evidence "
               f"gathered there alone proves no regression, or after the {skipped} skipped "
               f"step{'s' if skipped != 1 else ''}")
    draft.event("Normal", BAKING, message)
    draft.condition(PROMOTED, "Unknown", BAKING, message)


def bake_step(draft: Draft, bake: JudgeBake) -> BakeStep:
    """A step of the bake ended: weigh its evidence, and count it against the skipped
    steps. With promoteEarly turned off meanwhile, the bake only runs out."""
    judge = draft.status.judge
    assert judge is not None
    evidence.bake_evidence(judge)
    served = (draft.now - parse_time(bake.started_at)).total_seconds()
    judge_spec = draft.canary.spec.analysis.judge
    early = judge_spec is not None and judge_spec.promote_early
    if early and served >= bake.seconds and evidence.bake_proven(judge):
        return BakeStep.PROVEN
    bake.steps_left = max(bake.steps_left - 1, 0)
    draft.condition(PROMOTED, "Unknown", BAKING, f"{draft.target_name} has baked "
                    f"{served:.0f}s of at least {bake.seconds:.0f}s; "
                    f"{evidence.describe_bake(judge)}; {bake.steps_left} skipped "
                    f"step{'s' if bake.steps_left != 1 else ''} left")
    return BakeStep.SCHEDULE_OVER if bake.steps_left == 0 else BakeStep.GOES_ON


def bake_summary(draft: Draft, bake: JudgeBake) -> str:
    """Why the bake ends in an early promotion, for its event."""
    judge = draft.status.judge
    assert judge is not None
    served = (draft.now - parse_time(bake.started_at)).total_seconds()
    return f"after a bake of {served:.0f}s, {evidence.describe_bake(judge)}"
