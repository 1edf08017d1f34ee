"""Whether the traffic can detect a metric's minimum effect within the analysis's schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from canary.core.evidence.readings import cumulative
from canary.core.evidence.records import design
from canary.core.judge import Counts, Design, JudgeState, Traffic, scheduled_power_check
from canary.core.observation import JudgeReading
from canary.models.canary import JudgedMetricStatus, JudgePower, JudgeStatus


@dataclass(frozen=True)
class PowerPlan:
    """The analysis's schedule, for the power check: the canary's share of the requests
    in each step (None: as measured in the last step, e.g. while mirroring) and the
    length of a step in seconds."""

    shares: tuple[float | None, ...]
    interval: float


def power_after_step(metric: JudgedMetricStatus, state: JudgeState, step: Counts, seconds: float,
           plan: PowerPlan, status: JudgeStatus) -> JudgePower | None:
    """Whether the traffic of the last step can detect the minimum effect within the
    analysis (its whole schedule, from its start)."""
    if seconds <= 0 or not plan.shares or step.requests == 0:
        return None
    baseline = metric.baseline
    requests = state.totals.primary_requests + (baseline.primary_requests if baseline else 0)
    events = state.totals.primary_events + (baseline.primary_events if baseline else 0)
    return _power_estimate(
        metric, state.design, step.canary_requests / seconds,
        step.primary_requests / seconds, events / requests if requests else 0.0, plan,
        status, "LastStep")


def power_before(metric: JudgedMetricStatus, counts: Counts, reading: JudgeReading,
                  plan: PowerPlan, status: JudgeStatus) -> JudgePower | None:
    """The power check before the first judged step, from the traffic of the interval
    before the reading (``reading.earlier``). Only for schedules whose canary share is
    known in advance (weighted steps): with matches or mirroring the canary's traffic is
    known once it flows."""
    earlier = reading.earlier
    known_shares = bool(plan.shares) and all(share is not None for share in plan.shares)
    if metric.state is not None or earlier is None or earlier.error is not None or \
            earlier.at is None or reading.at is None or not earlier.primary.present or \
            not known_shares or metric.minimum_effect is None:
        return None
    seconds = reading.at - earlier.at
    try:
        before = cumulative(earlier, metric)
    except ValueError:
        return None
    canary = max(counts.canary_requests - before.canary_requests, 0)
    primary = max(counts.primary_requests - before.primary_requests, 0)
    if seconds <= 0 or canary + primary == 0:
        return None
    base_rate = counts.primary_events / counts.primary_requests if counts.primary_requests \
        else 0.0
    return _power_estimate(metric, design(metric.minimum_effect), canary / seconds,
                           primary / seconds, base_rate, plan, status, "BeforeRollout")


def _power_estimate(metric: JudgedMetricStatus, plan_design: Design, canary_rps: float,
                    primary_rps: float, base_rate: float, plan: PowerPlan,
                    status: JudgeStatus, measured: Literal["BeforeRollout", "LastStep"]
                    ) -> JudgePower:
    """The power check of ``plan`` at these rates, with the status's message."""
    total = canary_rps + primary_rps
    schedule = []
    for share in plan.shares:
        if share is None:
            traffic = Traffic(canary_rps, primary_rps, base_rate)
        else:
            traffic = Traffic(total * share, total * (1 - share), base_rate)
        schedule.append((traffic, plan.interval))
    check = scheduled_power_check(plan_design, schedule, status.alpha, status.beta)
    effect = f"x{plan_design.minimum_effect:.3g}"
    when = " before the rollout" if measured == "BeforeRollout" else ""
    if base_rate == 0:
        message = (f"{metric.name}: the primary shows no events, so a regression of "
                   f"{effect} cannot be measured (a canary failing where the primary does "
                   "not is still detected)")
    elif check.detectable:
        message = (f"{metric.name}: a regression of {effect} would be detected in about "
                   f"{check.seconds_to_detect:.0f}s of the {check.remaining_seconds:.0f}s "
                   f"analysis at {total:.3g} req/s{when}")
    else:
        needed = ("never" if math.isinf(check.seconds_to_detect)
                  else f"about {check.seconds_to_detect:.0f}s")
        message = (f"{metric.name}: at {total:.3g} req/s{when} with {base_rate:.3%} events "
                   f"on the primary, a regression of {effect} would take {needed} to "
                   f"detect; the analysis lasts {check.remaining_seconds:.0f}s; "
                   f"{check.sparse_events()}")
    return JudgePower(
        measured=measured, detectable=check.detectable and base_rate > 0,
        seconds_to_detect=_finite(check.seconds_to_detect),
        seconds_to_prove=_finite(check.seconds_to_prove),
        analysis_seconds=check.remaining_seconds, canary_rps=canary_rps,
        primary_rps=primary_rps, base_rate=base_rate, message=message)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
