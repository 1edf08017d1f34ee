"""Simulated rollouts: the sequential judge against Flagger-style thresholds and Wald.

Every rollout lasts 10 minutes; the primary gets 20 times the canary's traffic; 0.5% of
the primary's requests fail, and the canary's rate is the scenario's multiple of that.
The same simulated counts are shown to every policy:

- judge: canary's sequential judge (alpha 0.05, beta 0.2, minimum effect x1.5), asked
  after every step;
- threshold-0 / threshold-2: Flagger's analysis, success rate >= 99% over each 1-minute
  window, rolled back at the first failed window beyond 0 (resp. 2) tolerated;
- for regressions, two references that know what the judge must work out: Wald's SPRT
  (the baseline and the effect known, checked after every step; and its average sample
  number from Wald's formula) and the always-valid likelihood-ratio test told the true
  effect (the judge's statistic with that single alternative).

Prints four Markdown tables: healthy canaries (false rollbacks, early proofs),
regressions (time to roll back, failed requests beyond the baseline before it),
canaries that change during the analysis (the judge before and after its evidence of a
change and its bake before an early promotion, beside the thresholds): late degradation
(healthy for 3 minutes, then ramping from 0.5% to 5% errors over 5 minutes), a two-minute
gap in the canary's traffic, sparse errors, a regression below the minimum effect at
growing traffic, a latency tail that moves P99 but not P50, and healthy canaries at every
traffic level and check interval; and early promotions for several bake times.

Usage: python benchmarks/decisions/simulate.py [--runs 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from canary.core.judge import Counts, Design, Outcome, Traffic, power_check, wald_asn
from canary.core.judge.simulation import (
    Scenario,
    binomial,
    binomial_upper_bound,
    run_judge,
    run_judge_with_bake,
    run_likelihood_ratio,
    run_sprt,
    run_threshold,
)

ALPHA, BETA, BASE = 0.05, 0.2, 0.005
DESIGN = Design(minimum_effect=1.5)
TRAFFIC = (1, 5, 50)
EFFECTS = (1.5, 2.0, 4.0, 10.0)


@dataclass
class Tally:
    """When each policy acted in each rollout (None: never)."""

    judge: list[float | None]
    proven: list[float | None]
    threshold_0: list[float | None]
    threshold_2: list[float | None]
    sprt: list[float | None]
    told: list[float | None]
    excess: dict[str, list[float]]


def excess_failures(steps: Sequence[Counts], step_seconds: float, until: float | None,
                    base: float) -> float:
    """Failed canary requests beyond the baseline's share, up to the rollback."""
    last = len(steps) if until is None else round(until / step_seconds)
    served = steps[:last]
    return sum(s.canary_events - base * s.canary_requests for s in served)


def simulate(scenario: Scenario, runs: int, rng: random.Random) -> Tally:
    tally = Tally([], [], [], [], [], [], {"judge": [], "threshold-0": [], "threshold-2": [],
                                           "sprt": []})
    step = scenario.step_seconds
    for _ in range(runs):
        steps = scenario.simulate(rng)
        judged = run_judge(steps, step, DESIGN, ALPHA, BETA)
        tally.judge.append(judged.regression_at)
        tally.proven.append(judged.proven_at)
        tally.threshold_0.append(run_threshold(steps, step, tolerated=0))
        tally.threshold_2.append(run_threshold(steps, step, tolerated=2))
        if scenario.ratio > 1:
            stopped = run_sprt(steps, step, BASE, scenario.ratio * BASE, ALPHA, BETA)
            found = stopped is not None and stopped[0] is Outcome.REGRESSION
            tally.sprt.append(stopped[1] if found and stopped else None)
            tally.told.append(run_likelihood_ratio(steps, step, scenario.ratio, ALPHA))
            for name, at in (("judge", judged.regression_at),
                             ("threshold-0", tally.threshold_0[-1]),
                             ("threshold-2", tally.threshold_2[-1]),
                             ("sprt", tally.sprt[-1])):
                tally.excess[name].append(excess_failures(steps, step, at, BASE))
    return tally


def rate(times: list[float | None]) -> tuple[int, int]:
    return sum(t is not None for t in times), len(times)


def share(times: list[float | None]) -> str:
    hits, total = rate(times)
    return f"{hits / total:.1%}"


def share_with_bound(times: list[float | None]) -> str:
    hits, total = rate(times)
    return f"{hits / total:.1%} (≤ {binomial_upper_bound(hits, total, 0.95):.1%})"


def median(times: list[float | None]) -> float:
    return statistics.median(math.inf if t is None else t for t in times)


def seconds(value: float) -> str:
    return "> 600 s" if math.isinf(value) else f"{value:.0f} s"


def ratio(a: float, b: float) -> str:
    return "-" if math.isinf(a) or math.isinf(b) else f"{a / b:.2f}"


def healthy_table(runs: int, rng: random.Random) -> list[str]:
    rows = ["| scenario | canary req/s | check every | judge false rollbacks (95% bound) "
            "| threshold-0 | threshold-2 | judge proves no regression | median time to proof |",
            "|---|---|---|---|---|---|---|---|"]
    cases = [("healthy", Scenario(rps, 20 * rps, BASE)) for rps in TRAFFIC]
    cases += [("healthy, noisy baseline", Scenario(5, 100, BASE, baseline_spread=1.0)),
              ("healthy", Scenario(5, 100, BASE, step_seconds=60)),
              ("healthy", Scenario(5, 100, BASE, step_seconds=1))]
    for name, scenario in cases:
        count = runs if scenario.step_seconds >= 10 else max(runs // 4, 100)
        tally = simulate(scenario, count, rng)
        rows.append(f"| {name} | {scenario.canary_rps:g} | {scenario.step_seconds:g} s "
                    f"| {share_with_bound(tally.judge)} | {share(tally.threshold_0)} "
                    f"| {share(tally.threshold_2)} | {share(tally.proven)} "
                    f"| {seconds(median(tally.proven))} |")
    return rows


def regression_table(runs: int, rng: random.Random) -> list[str]:
    rows = ["| regression | canary req/s | check every | judge: rolled back, median time "
            "| threshold-0 | threshold-2 | SPRT, same checks | LR test told the effect "
            "| Wald ASN | judge / ASN | judge / SPRT "
            "| excess failures: judge, thr-0, thr-2, SPRT |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cases = [Scenario(rps, 20 * rps, BASE, ratio=effect) for effect in EFFECTS
             for rps in TRAFFIC]
    # How often the judge is checked: x4 at 5 req/s, every second and every minute.
    cases += [Scenario(5, 100, BASE, ratio=4.0, step_seconds=1),
              Scenario(5, 100, BASE, ratio=4.0, step_seconds=60)]
    for scenario in cases:
        effect, rps = scenario.ratio, scenario.canary_rps
        count = runs if scenario.step_seconds >= 10 else max(runs // 4, 100)
        tally = simulate(scenario, count, rng)
        asn = wald_asn(BASE, effect * BASE, ALPHA, BETA) / rps
        judged, sprt = median(tally.judge), median(tally.sprt)
        excess = ", ".join(f"{statistics.median(tally.excess[name]):.1f}"
                           for name in ("judge", "threshold-0", "threshold-2", "sprt"))
        rows.append(
            f"| x{effect:g} | {rps:g} | {scenario.step_seconds:g} s "
            f"| {share(tally.judge)}, {seconds(judged)} "
            f"| {share(tally.threshold_0)}, {seconds(median(tally.threshold_0))} "
            f"| {share(tally.threshold_2)}, {seconds(median(tally.threshold_2))} "
            f"| {share(tally.sprt)}, {seconds(sprt)} | {seconds(median(tally.told))} "
            f"| {asn:.0f} s | {ratio(judged, asn)} | {ratio(judged, sprt)} | {excess} |")
    return rows


# -- canaries that change during the analysis ------------------------------------------

BEFORE = Design(minimum_effect=1.5, change_share=0.0)
AFTER = Design(minimum_effect=1.5)
CHANGING_SECONDS = 600.0


@dataclass(frozen=True)
class Case:
    """A rollout: the canary's requests per second and error ratio at each instant."""

    name: str
    canary_rps: Callable[[float], float]
    ratio: Callable[[float], float]
    base: float = 0.005
    step: float = 10.0
    #: When the change starts (times to rollback are counted from it), if any.
    change_at: float = 0.0

    @property
    def steps(self) -> int:
        return round(CHANGING_SECONDS / self.step)

    def simulate(self, rng: random.Random) -> list[Counts]:
        return [self.counts(rng, index) for index in range(self.steps)]

    def counts(self, rng: random.Random, index: int, canary_share: float | None = None
               ) -> Counts:
        """One step's counts; ``canary_share``: the canary's share of all requests
        (default: the primary gets 20 times the canary's)."""
        at = index * self.step
        rps, primary_rps = self.canary_rps(at), 20 * self.canary_rps(0.0)
        if canary_share is not None and rps:
            total = rps + primary_rps
            rps, primary_rps = total * canary_share, total * (1 - canary_share)
        canary, primary = round(rps * self.step), round(primary_rps * self.step)
        rate = min(1.0, self.base * self.ratio(at))
        return Counts(canary, binomial(rng, canary, rate), primary,
                      binomial(rng, primary, self.base))


def ramp(start: float, length: float, top: float) -> Callable[[float], float]:
    return lambda at: 1 + (top - 1) * min(max(at - start, 0.0) / length, 1.0)


def constant(value: float) -> Callable[[float], float]:
    return lambda _at: value


def gap(rps: float, start: float, length: float) -> Callable[[float], float]:
    return lambda at: 0.0 if start <= at < start + length else rps


@dataclass
class Outcomes:
    """Per policy: rolled back at (None: never) and, for the judge, proven at."""

    rolled: dict[str, list[float | None]]
    proven: dict[str, list[float | None]]


#: The controller's default bake: half of the 10-minute schedule.
BAKE_SECONDS = CHANGING_SECONDS / 2


def run_changing(case: Case, runs: int, rng: random.Random) -> Outcomes:
    """Before: the cumulative evidence alone, promoting at the first proof. After: with
    the evidence of a change, and the bake before an early promotion."""
    rolled: dict[str, list[float | None]] = {k: [] for k in ("before", "after", "thr-0",
                                                             "thr-2")}
    proven: dict[str, list[float | None]] = {"before": [], "after": []}
    for _ in range(runs):
        steps = case.simulate(rng)
        judged = run_judge(steps, case.step, BEFORE, ALPHA, BETA)
        rolled["before"].append(judged.regression_at)
        early = judged.proven_at is not None and (
            judged.regression_at is None or judged.proven_at < judged.regression_at)
        proven["before"].append(judged.proven_at if early else None)
        baked = run_judge_with_bake(steps, case.step, BAKE_SECONDS, AFTER, ALPHA, BETA)
        rolled["after"].append(baked.regression_at)
        proven["after"].append(baked.promoted_at)
        rolled["thr-0"].append(run_threshold(steps, case.step, tolerated=0))
        rolled["thr-2"].append(run_threshold(steps, case.step, tolerated=2))
    return Outcomes(rolled, proven)


def median_after(times: list[float | None], origin: float) -> str:
    value = statistics.median(math.inf if t is None else t - origin for t in times)
    return "never" if math.isinf(value) else f"{value:.0f} s"


def changing_cases() -> list[tuple[Case, str]]:
    """Each case with what its row is about."""
    rows: list[tuple[Case, str]] = []
    for rps in (5.0, 50.0):
        rows.append((Case(f"late degradation, {rps:g} req/s", constant(rps),
                          ramp(180, 300, 10.0), change_at=180), "late"))
    rows.append((Case("gap 240-360 s, healthy, 5 req/s", gap(5, 240, 120), constant(1.0)),
                 "healthy"))
    rows.append((Case("gap 240-360 s, x4 from 360 s, 5 req/s", gap(5, 240, 120),
                      ramp(360, 1, 4.0), change_at=360), "late"))
    rows.append((Case("sparse: x3, 2 req/s, 0.2% base", constant(2), constant(3.0),
                      base=0.002), "regression"))
    for rps in (5.0, 50.0, 500.0):
        rows.append((Case(f"x1.2 (below the minimum), {rps:g} req/s", constant(rps),
                          constant(1.2)), "regression"))
    # Latency judged as the share of requests slower than the primary's P99 bucket
    # (1% of the primary's): a tail three times as heavy leaves the median alone.
    rows.append((Case("latency tail: P99 moves, P50 not (x3 over the P99 bound), 5 req/s",
                      constant(5), constant(3.0), base=0.01), "regression"))
    rows.append((Case("latency, healthy (1% over the P99 bound), 5 req/s", constant(5),
                      constant(1.0), base=0.01), "healthy"))
    for rps, step in ((1.0, 10.0), (5.0, 10.0), (50.0, 10.0), (500.0, 10.0), (5.0, 1.0),
                      (5.0, 60.0)):
        rows.append((Case(f"healthy, {rps:g} req/s, every {step:g} s", constant(rps),
                          constant(1.0), step=step), "healthy"))
    return rows


def changing_cell(times: list[float | None], origin: float, healthy: bool) -> str:
    """How often a policy rolled back, and its median time from ``origin``."""
    shown = share_with_bound(times) if healthy else share(times)
    return f"{shown}, {median_after(times, origin)}"


def changing_table(runs: int, rng: random.Random) -> list[str]:
    lines = ["| scenario | judge before: rolled back, median from change | judge after "
             "| judge before: promoted early, median | judge after "
             "| threshold-0: rolled back, median | threshold-2 |",
             "|---|---|---|---|---|---|---|"]
    for case, kind in changing_cases():
        heavy = case.canary_rps(0.0) >= 500 or case.step < 10
        outcomes = run_changing(case, max(runs // 4, 50) if heavy else runs, rng)
        rolled, proven = outcomes.rolled, outcomes.proven
        cells = [changing_cell(rolled[name], case.change_at, kind == "healthy")
                 for name in ("before", "after", "thr-0", "thr-2")]
        lines.append(f"| {case.name} | {cells[0]} | {cells[1]} "
                     f"| {share(proven['before'])}, {median_after(proven['before'], 0)} "
                     f"| {share(proven['after'])}, {median_after(proven['after'], 0)} "
                     f"| {cells[2]} | {cells[3]} |")
    return lines


BAKES = (0.0, 60.0, 120.0, 180.0, 300.0)


def bake_cases() -> list[Case]:
    cases = [Case(f"late degradation, {rps:g} req/s", constant(rps), ramp(180, 300, 10.0),
                  change_at=180) for rps in (5.0, 50.0)]
    return cases + [Case(f"healthy, {rps:g} req/s", constant(rps), constant(1.0))
                    for rps in (5.0, 50.0, 500.0)]


def bake_table(runs: int, rng: random.Random, at_max_weight: bool) -> list[str]:
    """Promoted early (share, median time from the start) for each bake time. With
    ``at_max_weight`` the canary serves half of the requests while it bakes (maxWeight
    50), ten times what it served before; else the same counts as the other tables."""
    lines = ["| scenario | " + " | ".join(f"bake {b:g} s" for b in BAKES) + " |",
             "|---|" + "---|" * len(BAKES)]
    for case in bake_cases():
        count = max(runs // 4, 50) if case.canary_rps(0.0) >= 500 else runs
        cells = []
        for bake in BAKES:
            promoted = [_baked(case, rng, bake, at_max_weight) for _ in range(count)]
            cells.append(f"{share(promoted)}, {median_after(promoted, 0)}")
        lines.append(f"| {case.name} | " + " | ".join(cells) + " |")
    return lines


def _baked(case: Case, rng: random.Random, bake: float, at_max_weight: bool) -> float | None:
    def counts(index: int, baking: bool) -> Counts:
        return case.counts(rng, index, 0.5 if baking and at_max_weight else None)

    return run_judge_with_bake(counts, case.step, bake, AFTER, ALPHA, BETA,
                               count=case.steps).promoted_at


def proof_limit_line() -> str:
    """The fewest requests any test needs, on average, to prove a healthy canary."""
    requests = wald_asn(BASE, BASE * DESIGN.minimum_effect, ALPHA, BETA, under="null")
    return (f"Wald's SPRT told the baseline needs on average {requests:.0f} canary requests "
            f"to prove a healthy canary (x1 against x{DESIGN.minimum_effect:g}, "
            f"{BASE:.1%} errors, alpha {ALPHA}, beta {BETA}): {requests / 5:.0f} s at "
            f"5 req/s, {requests / 50:.0f} s at 50 req/s.")


def sparse_power_line() -> str:
    """What the power check says of the sparse case, for comparison with its row."""
    check = power_check(AFTER, Traffic(2, 40, 0.002), CHANGING_SECONDS, ALPHA, BETA, effect=3.0)
    assert check.chance is not None
    return (f"Power check for the sparse row (x3, 2 req/s, 0.2%): detected by the end with "
            f"probability {check.chance.probability:.0%} (about "
            f"{check.chance.canary_events:.1f} canary events expected, "
            f"{check.chance.needed} needed); at the minimum effect x1.5: "
            f"{power_check(AFTER, Traffic(2, 40, 0.002), CHANGING_SECONDS, ALPHA, BETA).warning()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000, help="rollouts per scenario")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    started = time.monotonic()
    print(f"{args.runs} rollouts per scenario (1-second checks: a quarter), seed {args.seed}; "
          f"alpha {ALPHA}, beta {BETA}, minimum effect x{DESIGN.minimum_effect:g}, "
          f"base error rate {BASE:.1%}, primary at 20x the canary, 10 minutes.\n")
    print("\n".join(healthy_table(args.runs, rng)))
    print()
    print("\n".join(regression_table(max(args.runs // 2, 1), rng)))
    print()
    print("\n".join(changing_table(max(args.runs // 2, 1), rng)))
    print()
    print(sparse_power_line())
    print()
    print("\n".join(bake_table(max(args.runs // 2, 1), rng, at_max_weight=False)))
    print()
    print("\n".join(bake_table(max(args.runs // 2, 1), rng, at_max_weight=True)))
    print()
    print(proof_limit_line())
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
