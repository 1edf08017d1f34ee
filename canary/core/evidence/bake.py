"""The bake before an early promotion: the evidence gathered at the final weight alone.

When every judged metric has proven no regression, an early promotion first sends the
canary its final weight and asks the no-regression test again, on the steps from then on
only (:func:`~canary.core.judge.sequential.no_regression_log_statistic_since`). The status
keeps each metric's running log likelihood ratios at the bake's start; the difference is
the bake's own evidence, so a controller restarted during the bake resumes it exactly.
"""

from __future__ import annotations

import math
from datetime import datetime

from canary.core.evidence.records import state_of
from canary.core.judge import no_regression_log_statistic_since
from canary.core.timefmt import format_time
from canary.models.canary import JudgeBake, JudgeStatus


def start_bake(status: JudgeStatus, now: datetime, seconds: float, steps_left: int) -> None:
    """Remember where each metric's evidence stands as the bake begins."""
    status.bake = JudgeBake(started_at=format_time(now, precise=True), seconds=seconds,
                            steps_left=steps_left)
    for metric in status.metrics:
        state = state_of(metric)
        metric.bake_start = list(state.log_lr) if state is not None else None
        metric.bake_log_no_regression = None


def bake_evidence(status: JudgeStatus) -> None:
    """Each metric's no-regression statistic over the bake's steps, into the status. A
    metric whose evidence restarted during the bake (its setting changed) has only
    evidence from the bake: its start is the empty one."""
    for metric in status.metrics:
        state = state_of(metric)
        if state is None:
            metric.bake_log_no_regression = None
            continue
        start = metric.bake_start if metric.bake_start is not None else \
            [0.0] * len(state.log_lr)
        metric.bake_log_no_regression = no_regression_log_statistic_since(state, start)


def bake_proven(status: JudgeStatus) -> bool:
    """Whether every metric's bake evidence proves no regression at its ``beta``."""
    bound = math.log(1 / status.beta)
    return bool(status.metrics) and all(
        m.bake_log_no_regression is not None and m.bake_log_no_regression >= bound
        for m in status.metrics)


def describe_bake(status: JudgeStatus) -> str:
    """Each metric's bake evidence in a few words."""
    bound = math.log(1 / status.beta)
    return "; ".join(
        f"{m.name}: no-regression evidence at maxWeight "
        + ("none yet" if m.bake_log_no_regression is None
           else f"{m.bake_log_no_regression:.2f} of {bound:.2f}")
        for m in status.metrics)
