"""The judge: an always-valid sequential comparison of the canary with the primary.

Pure like the rest of ``canary.core``. ``counts`` turns counter and histogram readings
into :class:`Counts`; ``sequential`` holds the tests, their bounded state and the proof
that they may be checked at every step; ``power`` says whether the traffic can decide in
time; ``simulation`` replays rollouts for the tests and the benchmark.
"""

from canary.core.judge.counts import Counts, as_count, latency_counts, slow_requests
from canary.core.judge.power import (
    PowerCheck,
    Traffic,
    bernoulli_kl,
    detection_seconds,
    power_check,
    proof_seconds,
    rate_upper_bound,
    ratio_for_absolute_effect,
    scheduled_power_check,
    wald_asn,
)
from canary.core.judge.sequential import (
    DEFAULT_ALPHA,
    DEFAULT_BETA,
    Assessment,
    Design,
    Grid,
    JudgeState,
    Outcome,
    assess,
    confidence_sequence,
    no_regression_log_statistic,
    no_regression_log_statistic_since,
    rate_ratio,
    regression_evidence,
    regression_log_statistic,
    replay,
    split_alpha,
    update,
    verdict,
)

__all__ = [
    "DEFAULT_ALPHA", "DEFAULT_BETA", "Assessment", "Counts", "Design", "Grid", "JudgeState",
    "Outcome", "PowerCheck", "Traffic", "as_count", "assess", "bernoulli_kl",
    "confidence_sequence", "detection_seconds", "latency_counts", "no_regression_log_statistic",
    "no_regression_log_statistic_since", "power_check", "proof_seconds", "rate_ratio",
    "rate_upper_bound", "ratio_for_absolute_effect", "regression_evidence",
    "regression_log_statistic", "replay", "scheduled_power_check", "slow_requests",
    "split_alpha", "update", "verdict", "wald_asn",
]
