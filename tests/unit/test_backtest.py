"""`canary backtest`: the judge replayed over range-query results."""

from __future__ import annotations

import argparse
import copy
import io
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary import backtest
from canary.cli import build_parser
from canary.core.judge import Outcome
from canary.errors import ConfigError

NOW = 1_800_000_000.0
MANIFEST = {
    "apiVersion": "canary.dev/v1beta1", "kind": "Canary",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"targetRef": {"kind": "Deployment", "name": "web"}, "service": {"port": 80},
             "analysis": {"interval": "30s", "threshold": 5, "stepWeight": 10, "judge": {
                 "alpha": 0.05, "metrics": [{"name": "errors", "type": "errorRate",
                                             "minimumEffect": "2x"}]}}},
}


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["backtest", *argv])


def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "canary.yaml"
    path.write_text(yaml.safe_dump(MANIFEST))
    return path


class TestSetup:
    def test_everything_comes_from_the_manifest(self, tmp_path: Path) -> None:
        chosen = backtest.setup(args("-f", str(manifest(tmp_path)), "--start", "10m"), NOW)
        assert chosen.namespace == "shop"
        assert tuple(chosen.workloads) == ("web", "web-primary")
        assert chosen.step == 30 and chosen.end == NOW and chosen.start == NOW - 600
        assert [m.minimum_effect for m in chosen.judge.metrics] == ["2x"]

    def test_the_judge_s_check_interval_is_the_default_step(self, tmp_path: Path) -> None:
        path = tmp_path / "canary.yaml"
        checked: Any = copy.deepcopy(MANIFEST)
        checked["spec"]["analysis"]["judge"]["checkInterval"] = "5s"
        path.write_text(yaml.safe_dump(checked))
        assert backtest.setup(args("-f", str(path), "--start", "10m"), NOW).step == 5
        assert backtest.setup(args("-f", str(path), "--start", "10m", "--step", "1m"),
                              NOW).step == 60

    def test_flags_override_the_manifest(self, tmp_path: Path) -> None:
        chosen = backtest.setup(args(
            "-f", str(manifest(tmp_path)), "--start", "2027-01-15T08:00:00Z",
            "--end", "2027-01-15T09:00:00Z", "--step", "1m", "--latency", "p99:1.2x",
            "--alpha", "0.01", "--promote-early", "-n", "prod", "--target", "api"), NOW)
        assert chosen.namespace == "prod" and chosen.workloads.canary == "api"
        assert chosen.judge.alpha == 0.01 and chosen.judge.promote_early
        # The flag adds its metric to the manifest's (whose errors metric stays).
        errors, metric = chosen.judge.metrics
        assert (errors.name, errors.minimum_effect) == ("errors", "2x")
        assert (metric.type, metric.quantile, metric.minimum_effect) == ("latency", 0.99, "1.2x")
        assert chosen.end - chosen.start == 3600 and chosen.step == 60

    def test_a_flag_replaces_the_manifests_metric_of_its_name(self, tmp_path: Path) -> None:
        path = tmp_path / "canary.yaml"
        data = json.loads(json.dumps(MANIFEST))
        data["spec"]["analysis"]["judge"]["metrics"] = [
            {"name": "error-rate", "type": "errorRate", "minimumEffect": "2x"},
            {"name": "latency", "type": "latency", "bound": 500},
            {"name": "tail", "type": "latency", "quantile": 0.99}]
        data["spec"]["analysis"]["judge"]["excludeSources"] = ["loadtester"]
        path.write_text(yaml.safe_dump(data))
        chosen = backtest.setup(args("-f", str(path), "--start", "1h",
                                     "--error-rate", "1.2x"), NOW)
        assert [(m.name, m.minimum_effect) for m in chosen.judge.metrics] == [
            ("latency", "1.5x"), ("tail", "1.5x"), ("error-rate", "1.2x")]
        assert chosen.judge.exclude_sources == ["loadtester"]
        assert all('source_workload!~"loadtester"' in q
                   for q in backtest.queries_of(chosen).values())

    def test_flags_alone(self) -> None:
        chosen = backtest.setup(args("--target", "web", "--start", "1799999000",
                                     "--error-rate", "+0.5pp", "--latency", "500"), NOW)
        assert [m.name for m in chosen.judge.metrics] == ["error-rate", "latency"]
        assert chosen.judge.metrics[1].bound == 500 and chosen.namespace == "default"

    @pytest.mark.parametrize(("text", "seconds"), [
        ("now", NOW), ("10m", NOW - 600), ("-10m", NOW - 600), ("1799999000", 1799999000),
        ("2027-01-15T08:00:00Z", datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()),
        ("2027-01-15T08:00:00", datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp())])
    def test_times(self, text: str, seconds: float) -> None:
        assert backtest.parse_time(text, NOW) == seconds

    @pytest.mark.parametrize(("argv", "message"), [
        (("--target", "web", "--start", "1h"), "nothing to judge"),
        (("--error-rate", "1.5x", "--start", "1h"), "--target"),
        (("--target", "web", "--error-rate", "0.5x", "--start", "1h"), "invalid judge"),
        (("--target", "web", "--error-rate", "2x", "--start", "yesterday"), "not a time"),
        (("--target", "web", "--error-rate", "2x", "--start", "1h", "--end", "2h"),
         "before --end"),
        (("--target", "web", "--error-rate", "2x", "--start", "720h", "--step", "1s"),
         "at most"),
        (("--target", "web", "--latency", "slow", "--start", "1h"), "--latency"),
    ])
    def test_bad_input_is_a_config_error(self, argv: tuple[str, ...], message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            backtest.setup(args(*argv), NOW)


def series(points: list[tuple[float, dict[str, float]]], what: str = "requests"
           ) -> list[Any]:
    """Range-query results from per-time values by workload, as the ``what`` part of a
    judge query's answer."""
    by_workload: dict[str, list[tuple[float, float]]] = {}
    for t, values in points:
        for workload, value in values.items():
            by_workload.setdefault(workload, []).append((t, value))
    return [({"canary_judge": what, "destination_workload": w}, p)
            for w, p in by_workload.items()]


def answer(points: list[tuple[float, dict[str, float]]], step: float = 10) -> list[Any]:
    """The requests part, and the ``previous`` part Prometheus derives from it: each
    evaluation's requests as of a step earlier (where it had a point then)."""
    at = dict(points)
    return series(points) + series([(t + step, values) for t, values in points
                                    if t + step in at], "previous")


class FakeRangeQuerier:
    """Prometheus range queries over simulated cumulative counters: 100 req/s, 20% of
    them to the canary, 2% errors on the primary and ``ratio`` times that on the canary."""

    def __init__(self, ratio: float, seed: int = 1) -> None:
        self.ratio, self.seed = ratio, seed
        self.calls: list[tuple[str, float, float, float]] = []

    async def series(self, promql: str, start: float, end: float, step: float) -> list[Any]:
        self.calls.append((promql, start, end, step))
        rng = random.Random(self.seed)
        canary, primary = [1000, 20], [50000, 1000]  # counted before the range
        requests: list[tuple[float, dict[str, float]]] = []
        errors: list[tuple[float, dict[str, float]]] = []
        t = start
        while t <= end + 1e-9:
            requests.append((t, {"web": canary[0], "web-primary": primary[0]}))
            errors.append((t, {"web": canary[1], "web-primary": primary[1]}))
            for _ in range(int(100 * step)):
                to_canary = rng.random() < 0.2
                counters = canary if to_canary else primary
                counters[0] += 1
                counters[1] += rng.random() < 0.02 * (self.ratio if to_canary else 1)
            t += step
        return answer(requests, step) + series(errors, "errors")


async def run(ratio: float, *extra: str) -> backtest.Result:
    chosen = backtest.setup(args("--target", "web", "-n", "shop", "--error-rate", "1.5x",
                                 "--start", str(NOW - 600), "--end", str(NOW), "--step",
                                 "10s", *extra), NOW)
    fake = FakeRangeQuerier(ratio)
    readings = await backtest.fetch(chosen, fake)  # type: ignore[arg-type]
    # One range query per metric, each reading checked against the one a step before.
    [(promql, start, end, step)] = fake.calls
    assert (start, end, step) == (NOW - 600, NOW, 10.0)
    assert 'offset 10000ms' in promql and '"lost"' in promql
    return backtest.replay(chosen, readings)


class TestReplay:
    async def test_a_regression_is_found_and_the_replay_stops_there(self) -> None:
        result = await run(4.0)
        assert result.outcome is Outcome.REGRESSION and result.metric == "error-rate"
        assert result.decided_step is not None and 1 <= result.decided_step < 60
        assert result.rows[-1].step == result.decided_step
        assert result.rows[0].note == "origin: counts start here"
        assert result.rows[0].counts is None
        # Each step counts only what happened in it: 10 s at 100 req/s.
        assert all(r.counts is not None and r.counts.requests == 1000 for r in result.rows[1:])

    async def test_a_healthy_canary_is_proven_and_the_replay_goes_on_without_promote_early(
            self) -> None:
        result = await run(1.0)
        assert result.outcome is Outcome.NO_REGRESSION_PROVEN
        assert result.rows[-1].step == 60  # went on to the end of the range
        early = await run(1.0, "--promote-early")
        assert early.rows[-1].step == early.decided_step == result.decided_step

    async def test_the_table_and_the_verdict(self) -> None:
        out = io.StringIO()
        backtest.print_table(await run(4.0), out)
        text = out.getvalue()
        assert "judge: alpha 0.05" in text and "canary web vs primary web-primary" in text
        assert "ratio [conf. seq.]" in text
        assert "verdict: regression in error-rate at " in text
        assert "the controller would have rolled back here" in text
        assert "power: error-rate:" in text

    async def test_json(self) -> None:
        result = await run(1.0, "--promote-early")
        data = json.loads(json.dumps(backtest.as_json(result)))
        assert data["verdict"]["outcome"] == "no_regression_proven"
        assert data["final"]["metrics"][0]["provenAtStep"] is not None
        assert data["steps"][1]["counts"]["canaryRequests"] > 0

    def test_a_drop_is_a_reset_and_lost_series_are_no_evidence(self) -> None:
        chosen = backtest.setup(args("--target", "web", "--error-rate", "2x", "--start",
                                     str(NOW - 40), "--end", str(NOW), "--step", "10s"), NOW)
        queries = {"error-rate": "q"}
        found = answer([(NOW - 40, {"web": 0, "web-primary": 100}),
                        (NOW - 30, {"web": 50, "web-primary": 200}),
                        (NOW - 20, {"web": 10, "web-primary": 300}),
                        (NOW - 10, {"web": 60, "web-primary": 400}),
                        (NOW, {"web": 70, "web-primary": 500})])
        found += series([(NOW, {"web": 1})], "lost")
        readings = backtest.readings_by_time(chosen, {"error-rate": found}, queries)
        assert [r[0].since for t, r in sorted(readings.items())] == [
            None, NOW - 40, NOW - 30, NOW - 20, NOW - 10]
        result = backtest.replay(chosen, readings)
        notes = [r.note for r in result.rows]
        assert notes[0] == "origin: counts start here" and notes[1] is None
        assert notes[2] is not None and "went down" in notes[2]
        assert result.rows[3].counts is not None and result.rows[3].counts.canary_requests == 50
        assert notes[4] is not None and "1 of the canary's series vanished" in notes[4]
        assert result.rows[4].counts is None

    def test_a_step_where_prometheus_has_no_point_is_no_data_not_zeros(self) -> None:
        chosen = backtest.setup(args("--target", "web", "--error-rate", "2x", "--start",
                                     str(NOW - 40), "--end", str(NOW), "--step", "10s"), NOW)
        # A gap at NOW - 20 (Prometheus down): no point for either workload.
        found = answer([(NOW - 40, {"web": 0, "web-primary": 100}),
                        (NOW - 30, {"web": 50, "web-primary": 200}),
                        (NOW - 10, {"web": 150, "web-primary": 400}),
                        (NOW, {"web": 200, "web-primary": 500})])
        result = backtest.replay(chosen, backtest.readings_by_time(
            chosen, {"error-rate": found}, {"error-rate": "q"}))
        rows = result.rows
        assert rows[2].counts is None and rows[2].note is not None
        assert rows[2].note.startswith("no data: Prometheus has no series")
        # After the gap, a new origin: never a difference from zeros (all history).
        assert rows[3].counts is None and rows[4].counts is not None
        assert rows[4].counts.canary_requests == 50 and rows[4].counts.primary_requests == 100
