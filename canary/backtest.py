"""``canary backtest``: what the judge would have decided over a past time range.

It reads the same cumulative counters the controller reads (Istio's standard metrics for
the canary and the primary workloads) from a real Prometheus, with range queries evaluated
every ``--step``, and feeds them to the same code the controller runs at each analysis
step (:mod:`canary.core.evidence`). It prints each step's evidence and the verdict: when a
regression would have been found (the controller rolls back there), or when no
regression would have been proven (with ``promoteEarly`` the controller would begin its
bake at maxWeight there, and promote once the bake's own evidence proves it again).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import yaml
from pydantic import ValidationError

from canary.core import evidence
from canary.core.judge import Counts, Outcome
from canary.core.observation import JudgeReading
from canary.errors import ConfigError
from canary.metrics import counters
from canary.metrics.counters import Sample
from canary.metrics.judgequery import judge_query
from canary.metrics.prometheus import PrometheusQuerier
from canary.models.base import parse_duration
from canary.models.canary import Canary, CanaryJudge, JudgedMetricStatus, JudgeStatus

#: Range queries return at most 11,000 points per series.
MAX_STEPS = 10_000
_LATENCY = re.compile(r"^(?:p(?P<percentile>[0-9]+(?:\.[0-9]+)?)|(?P<bound>[0-9]+(?:\.[0-9]+)?))"
                      r"(?::(?P<effect>.+))?$")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "backtest", help="replay the statistical judge over a past time range of Prometheus",
        description="Replay a judge configuration over a past time range of a real "
        "Prometheus and print what it would have decided at each step, and when.")
    parser.add_argument("-f", "--filename", type=Path, help="a Canary manifest (YAML) whose "
                        "spec.analysis.judge, namespace, target and interval are used")
    parser.add_argument("--prometheus", default=os.environ.get("PROMETHEUS_URL"),
                        help="Prometheus URL (default: $PROMETHEUS_URL)")
    parser.add_argument("-n", "--namespace", help="the workloads' namespace (default: the "
                        "manifest's)")
    parser.add_argument("--target", help="the canary's Deployment (default: the manifest's "
                        "targetRef)")
    parser.add_argument("--primary", help="the primary's Deployment (default: TARGET-primary)")
    parser.add_argument("--start", required=True, help="RFC 3339 time, unix seconds, or a "
                        "duration before now such as 30m")
    parser.add_argument("--end", default="now", help="like --start; default now")
    parser.add_argument("--step", help="time between readings, e.g. 1m (default: the "
                        "manifest's judge checkInterval, else its analysis interval, "
                        "else 1m)")
    parser.add_argument("--error-rate", metavar="EFFECT", help="judge the 5xx rate with this "
                        "minimum effect (1.5x, +50%%, +0.5pp) as the metric error-rate: "
                        "added to the manifest's judged metrics, or replacing its "
                        "error-rate")
    parser.add_argument("--latency", metavar="BOUND[:EFFECT]", help="judge requests slower "
                        "than BOUND ms (a bucket bound), or than the primary's quantile "
                        "pNN (p99), e.g. 500:1.2x or p99:1.5x, as the metric latency: "
                        "added to the manifest's judged metrics, or replacing its latency")
    parser.add_argument("--alpha", type=float, help="false-rollback bound (default 0.05)")
    parser.add_argument("--beta", type=float, help="wrong-proof bound per metric "
                        "(default 0.2)")
    parser.add_argument("--promote-early", action="store_true", default=None,
                        help="stop at the first proof of no regression, as the controller "
                        "would with promoteEarly")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


@dataclass(frozen=True)
class Setup:
    judge: CanaryJudge
    namespace: str
    workloads: counters.Workloads
    start: float
    end: float
    step: float


@dataclass
class Row:
    """One metric at one step."""

    time: float
    step: int
    metric: str
    #: The step's counts (None: no evidence this step, see ``note``).
    counts: Counts | None
    status: JudgedMetricStatus
    note: str | None = None


@dataclass
class Result:
    setup: Setup
    rows: list[Row] = field(default_factory=list)
    outcome: Outcome = Outcome.CONTINUE
    decided_at: float | None = None
    decided_step: int | None = None
    metric: str | None = None
    detail: str = ""
    final: JudgeStatus | None = None


def parse_time(text: str, now: float) -> float:
    """Unix seconds from RFC 3339, unix seconds, ``now``, or a duration before now
    (``30m``, also written ``-30m``)."""
    text = text.strip()
    if text == "now":
        return now
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return now - parse_duration(text.removeprefix("-"))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is not a time: use RFC 3339, unix seconds or a "
                          "duration before now such as 30m"
                          ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _judge_from_flags(args: argparse.Namespace, base: CanaryJudge | None) -> CanaryJudge:
    metrics: list[dict[str, Any]] = []
    if args.error_rate:
        metrics.append({"name": "error-rate", "type": "errorRate",
                        "minimumEffect": args.error_rate})
    if args.latency:
        match = _LATENCY.match(args.latency)
        if not match:
            raise ConfigError(f"--latency {args.latency!r}: use BOUND[:EFFECT] or "
                              "pNN[:EFFECT], e.g. 500:1.2x or p99:1.5x")
        metric: dict[str, Any] = {"name": "latency", "type": "latency"}
        if match["percentile"]:
            metric["quantile"] = float(match["percentile"]) / 100
        else:
            metric["bound"] = float(match["bound"])
        if match["effect"]:
            metric["minimumEffect"] = match["effect"]
        metrics.append(metric)
    data: dict[str, Any] = base.model_dump(by_alias=True, exclude_none=True) if base else {}
    if metrics:
        # Added to the manifest's metrics, each replacing the one of its name if any.
        named = {m["name"] for m in metrics}
        data["metrics"] = [m for m in data.get("metrics", []) if m["name"] not in named] + \
            metrics
    for key, value in (("alpha", args.alpha), ("beta", args.beta),
                       ("promoteEarly", args.promote_early)):
        if value is not None:
            data[key] = value
    if not data.get("metrics"):
        raise ConfigError("nothing to judge: give a Canary manifest with spec.analysis.judge "
                          "(-f), or --error-rate and/or --latency")
    try:
        return CanaryJudge.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid judge settings: {exc}") from None


def setup(args: argparse.Namespace, now: float | None = None) -> Setup:
    """The judge, the workloads and the time range from a manifest and flags."""
    now = time.time() if now is None else now
    canary: Canary | None = None
    if args.filename:
        try:
            canary = Canary.model_validate(yaml.safe_load(args.filename.read_text()))
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{args.filename}: not a readable Canary: {exc}") from None
    judge = _judge_from_flags(args, canary.spec.analysis.judge if canary else None)
    namespace = args.namespace or (canary.namespace if canary else "") or "default"
    target = args.target or (canary.spec.target_ref.name if canary else None)
    if not target:
        raise ConfigError("name the canary's Deployment: --target, or a manifest (-f)")
    step_text = args.step or judge.check_interval or (
        canary.spec.analysis.interval if canary else "1m")
    try:
        step = parse_duration(step_text)
    except ValueError as exc:
        raise ConfigError(f"--step: {exc}") from None
    # Prometheus evaluates range queries at whole milliseconds.
    start, end = (math.floor(parse_time(t, now) * 1000) / 1000 for t in (args.start, args.end))
    if step <= 0 or end <= start:
        raise ConfigError("need --start before --end and a positive --step")
    if (end - start) / step > MAX_STEPS:
        raise ConfigError(f"{(end - start) / step:.0f} steps: at most {MAX_STEPS}; use a "
                          "longer --step or a shorter range")
    return Setup(judge=judge, namespace=namespace,
                 workloads=counters.Workloads(target, args.primary or f"{target}-primary"),
                 start=start, end=end, step=step)


def readings_by_time(setup: Setup, series: dict[str, list[Any]], queries: dict[str, str]
                     ) -> dict[float, tuple[JudgeReading, ...]]:
    """Per evaluation time, every metric's reading, from range-query results
    (``series[metric]`` as :meth:`PrometheusQuerier.series` returns them). Each reading
    after the first was checked against the one a step before it; a time at which
    Prometheus has no point is a reading without series (no data, never zeros)."""
    times = [setup.start + i * setup.step
             for i in range(int((setup.end - setup.start) / setup.step) + 1)]
    out: dict[float, list[JudgeReading]] = {t: [] for t in times}
    for metric in setup.judge.metrics:
        at: dict[float, list[Sample]] = defaultdict(list)
        for labels, points in series[metric.name]:
            for t, value in points:
                at[round(t, 3)].append((labels, value))
        for index, t in enumerate(times):
            out[t].append(counters.reading(
                metric.name, metric.type.value, at.get(round(t, 3), []), setup.workloads,
                queries[metric.name], at=t, since=times[index - 1] if index else None))
    return {t: tuple(readings) for t, readings in out.items()}


def replay(setup: Setup, readings: dict[float, tuple[JudgeReading, ...]]) -> Result:
    """Apply the judge as the controller does, over the readings in time order."""
    result = Result(setup)
    status = evidence.begin(setup.judge, "backtest")
    steps = len(readings) - 1
    plan = evidence.PowerPlan(shares=(None,) * max(steps, 1), interval=setup.step)
    for index, t in enumerate(sorted(readings)):
        before = {m.name: m.reading for m in status.metrics}
        status, verdict = evidence.advance(setup.judge, status, readings[t],
                                          datetime.fromtimestamp(t, UTC), plan)
        skipped = {note.metric: note.message for note in verdict.skipped}
        for metric in status.metrics:
            previous, current = before.get(metric.name), metric.reading
            counts = None
            if previous is not None and current is not None and metric.name not in skipped:
                counts = Counts.between(evidence.as_counts(previous),
                                        evidence.as_counts(current))
            note = skipped.get(metric.name) or (None if counts else metric.message)
            if index == 0 and note is None:
                note = "origin: counts start here"
            result.rows.append(Row(t, index, metric.name, counts, metric.model_copy(),
                                   note))
        result.final = status
        decided = verdict.outcome is Outcome.REGRESSION or (
            verdict.outcome is Outcome.NO_REGRESSION_PROVEN and result.decided_at is None)
        if decided:
            result.outcome, result.decided_at, result.decided_step = (
                verdict.outcome, t, index)
            result.metric = verdict.metric
            result.detail = (verdict.assessment.describe() if verdict.assessment
                             else verdict.summary)
            if verdict.outcome is Outcome.REGRESSION or setup.judge.promote_early:
                break
    return result


def queries_of(setup: Setup) -> dict[str, str]:
    """Each judged metric's query, checking every series against a step earlier."""
    return {m.name: judge_query(m.type.value, setup.namespace, setup.workloads,
                                since=setup.step,
                                exclude_sources=setup.judge.exclude_sources or ())
            for m in setup.judge.metrics}


async def fetch(setup: Setup, querier: PrometheusQuerier) -> dict[float, tuple[JudgeReading, ...]]:
    queries = queries_of(setup)
    end = setup.start + int((setup.end - setup.start) / setup.step) * setup.step
    series: dict[str, list[Any]] = {}
    for metric, promql in queries.items():
        series[metric] = await querier.series(promql, setup.start, end, setup.step)
    return readings_by_time(setup, series, queries)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(value: float | None, digits: int = 2) -> str:
    if value is None or math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"


def verdict_lines(result: Result) -> list[str]:
    setup = result.setup
    lines = []
    if result.outcome is Outcome.REGRESSION and result.decided_at is not None:
        lines.append(f"verdict: regression in {result.metric} at {_iso(result.decided_at)} "
                     f"(step {result.decided_step}, {result.decided_at - setup.start:.0f}s "
                     f"after the start): the controller would have rolled back here. "
                     f"{result.detail}")
    elif result.outcome is Outcome.NO_REGRESSION_PROVEN and result.decided_at is not None:
        then = ("the controller would have begun its bake at maxWeight here"
                if setup.judge.promote_early else
                "with promoteEarly the controller would have begun its bake at maxWeight here")
        lines.append(f"verdict: no regression proven at {_iso(result.decided_at)} (step "
                     f"{result.decided_step}, {result.decided_at - setup.start:.0f}s after "
                     f"the start): {then}")
    else:
        lines.append("verdict: no decision in the range: the analysis would have gone on by "
                     "its schedule (threshold metrics decide)")
    for metric in (result.final.metrics if result.final else []):
        if metric.power is not None:
            lines.append(f"power: {metric.power.message}")
    return lines


def print_table(result: Result, out: TextIO) -> None:
    s = result.setup
    print(f"judge: alpha {s.judge.alpha:g} (per metric "
          f"{s.judge.alpha / len(s.judge.metrics):g}), beta {s.judge.beta:g}, "
          f"promoteEarly {str(s.judge.promote_early).lower()}; canary {s.workloads.canary} vs "
          f"primary {s.workloads.primary} in {s.namespace}; {_iso(s.start)} to {_iso(s.end)} "
          f"every {s.step:g}s", file=out)
    header = ("time", "step", "metric", "canary", "primary", "ratio [conf. seq.]",
              "regression", "no-regression", "outcome")
    table = [header]
    for row in result.rows:
        e = row.status.evidence if row.counts else None
        counts = row.counts
        table.append((
            _iso(row.time), str(row.step), row.metric,
            f"{counts.canary_events}/{counts.canary_requests}" if counts else "-",
            f"{counts.primary_events}/{counts.primary_requests}" if counts else "-",
            (f"{_number(e.ratio)} [{_number(e.ratio_lower)}, {_number(e.ratio_upper)}]"
             if e else "-"),
            f"{e.log_regression:.2f}/{e.log_regression_bound:.2f}" if e else "-",
            f"{e.log_no_regression:.2f}/{e.log_no_regression_bound:.2f}" if e else "-",
            (("no_regression_proven" if row.status.proven_at_step is not None
              and e.outcome == "continue" else e.outcome) if e else (row.note or "-")),
        ))
    widths = [max(len(r[i]) for r in table[:]) for i in range(len(header) - 1)]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1],
              file=out)
    for line in verdict_lines(result):
        print(line, file=out)


def as_json(result: Result) -> dict[str, Any]:
    return {
        "namespace": result.setup.namespace, "canary": result.setup.workloads.canary,
        "primary": result.setup.workloads.primary, "start": _iso(result.setup.start),
        "end": _iso(result.setup.end), "stepSeconds": result.setup.step,
        "judge": result.setup.judge.to_api(),
        "steps": [{"time": _iso(r.time), "step": r.step, "metric": r.metric,
                   "counts": None if r.counts is None else {
                       "canaryRequests": r.counts.canary_requests,
                       "canaryEvents": r.counts.canary_events,
                       "primaryRequests": r.counts.primary_requests,
                       "primaryEvents": r.counts.primary_events},
                   "evidence": (r.status.evidence.to_api()
                                if r.status.evidence and r.counts else None),
                   "note": r.note} for r in result.rows],
        "verdict": {"outcome": result.outcome.value,
                    "time": _iso(result.decided_at) if result.decided_at else None,
                    "step": result.decided_step, "metric": result.metric,
                    "detail": result.detail},
        "final": result.final.to_api() if result.final else None,
        "summary": verdict_lines(result),
    }


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    chosen = setup(args)
    if not args.prometheus:
        raise ConfigError("no Prometheus: --prometheus URL or $PROMETHEUS_URL")
    querier = PrometheusQuerier(args.prometheus, timeout=30.0)
    result = replay(chosen, asyncio.run(fetch(chosen, querier)))
    if args.json:
        json.dump(as_json(result), out, indent=2)
        print(file=out)
    else:
        print_table(result, out)
    return 0
