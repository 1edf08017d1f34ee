"""The Grafana dashboards' queries against the environment's real Prometheus during real
rollouts: every PromQL expression of both dashboards, with the variables substituted as
Grafana does, parses and runs, and the panels show the test's canary."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests import grafana
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import ANALYSIS, APP, canary_object, deploy, phase, start
from tests.e2e.waiting import wait_until

#: What Grafana would fill in for a six-hour view; Prometheus scrapes every second here,
#: so a 30 s rate window holds plenty of samples.
BUILTINS = {"__rate_interval": "30s", "__rate_interval_ms": "30000", "__interval": "15s",
            "__interval_ms": "15000", "__range": "6h", "__range_s": "21600",
            "__range_ms": "21600000"}
#: Slower steps than the other rollout tests, so that the canary receives traffic for
#: long enough to be seen in rate windows.
SLOW_ANALYSIS = {**ANALYSIS, "interval": "5s"}
METRICS = ["request-success-rate", "request-duration"]
FAULTY = {"devenv.canary.dev/error-rate": "0.5"}

Result = list[dict[str, Any]]


async def instant(prometheus: str, expr: str) -> Result:
    """An instant query; any error (a parse error first of all) fails the test."""
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(f"{prometheus}/api/v1/query", data={"query": expr})
    body = response.json()
    if body.get("status") != "success":
        raise AssertionError(f"Prometheus refused the query: {body.get('errorType')}: "
                             f"{body.get('error')}\n{expr}")
    result: Result = body["data"]["result"]
    return result


def value(series: Mapping[str, Any]) -> float:
    return float(series["value"][1])


class Dashboard:
    """One dashboard with its variables set: its panels' queries, ready to run."""

    def __init__(self, file: str, prometheus: str, values: Mapping[str, grafana.Value]) -> None:
        self.board = grafana.load(grafana.DASHBOARDS / file)
        self.prometheus = prometheus
        self.values = dict(values)

    def expressions(self) -> list[tuple[grafana.Query, str, str]]:
        """Every query, interpolated: (query, PromQL, which copy of a repeated panel)."""
        out = []
        for query in grafana.queries(self.board):
            repeats: list[tuple[str, dict[str, grafana.Value]]] = [("", self.values)]
            if query.repeat:
                options = self.values[query.repeat]
                assert isinstance(options, list), query.repeat
                repeats = [(f" [{option}]", {**self.values, query.repeat: [option]})
                           for option in options]
            for copy, values in repeats:
                out.append((query, grafana.interpolate(query.expr, self.board, values,
                                                       BUILTINS), copy))
        return out

    async def panel(self, title: str, ref_id: str = "A", **values: grafana.Value) -> Result:
        query = grafana.panel_queries(self.board, title)[ref_id]
        expr = grafana.interpolate(query.expr, self.board, {**self.values, **values},
                                   BUILTINS)
        return await instant(self.prometheus, expr)

    async def options(self, name: str) -> list[str]:
        """The options Grafana would offer for a query variable, from the label values
        API as the Prometheus data source asks for them."""
        variable = grafana.variables(self.board)[name]
        selector, label = grafana.label_values(variable["definition"])
        assert selector is not None
        match = grafana.interpolate(selector, self.board, self.values, BUILTINS)
        async with httpx.AsyncClient(timeout=20) as http:
            response = await http.get(f"{self.prometheus}/api/v1/label/{label}/values",
                                      params={"match[]": match,
                                              "start": str(time.time() - 21600),
                                              "end": str(time.time())})
        body = response.json()
        assert body.get("status") == "success", (match, body)
        return grafana.apply_regex(variable.get("regex", ""), body["data"])

    def mapping(self, title: str) -> dict[str, float]:
        """A state timeline's value mappings: state name -> the number encoding it."""
        (panel,) = [p for p in grafana.panels(self.board) if p["title"] == title]
        (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
        return {v["text"]: float(k) for k, v in mapping["options"].items()}


def of_canary(namespace: str) -> Callable[[Result], list[float]]:
    """The values of the test's canary's series (canary_* labels)."""
    def pick(result: Result) -> list[float]:
        return [value(s) for s in result
                if s["metric"].get("namespace") == namespace and s["metric"].get("name") == APP]
    return pick


def by_workload(result: Result) -> dict[str, float]:
    return {s["metric"].get("destination_workload", ""): value(s) for s in result}


def only(values: list[float]) -> float:
    assert len(values) == 1, values
    return values[0]


@pytest.mark.usefixtures("running_controller")
async def test_every_dashboard_query_runs_and_the_panels_show_the_rollouts(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        controller: ControllerProcess) -> None:
    await environment.add_scrape_target("canary-controller",
                                        f"127.0.0.1:{controller.metrics_port}")
    prometheus = environment.prometheus_url
    rollouts = Dashboard("canary-rollouts.json", prometheus,
                         {"namespace": [namespace], "canary": [APP], "metric": METRICS})
    istio = Dashboard("istio-canary.json", prometheus,
                      {"reporter": "destination", "namespace": namespace, "canary": [APP]})
    ours = of_canary(namespace)
    await start(kube, environment, namespace, analysis=SLOW_ANALYSIS)

    # A healthy revision: while it progresses, weight and traffic show on both dashboards.
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: rollouts.panel("Canary weight"), lambda r: any(ours(r)),
                     "a weight above 0 on the weight panel")
    primary, canary = f"{APP}-primary", APP

    async def red() -> dict[str, dict[str, float]]:
        panels = {"rate": "Request rate", "errors": "Error rate", "p50": "P50 latency",
                  "p90": "P90 latency", "p99": "P99 latency"}
        out = {}
        for key, title in panels.items():
            out[key] = {**by_workload(await istio.panel(title, "A")),
                        **by_workload(await istio.panel(title, "B"))}
        share = await istio.panel("Traffic to the canary")
        out["share"] = {s["metric"].get("canary", ""): value(s) for s in share}
        return out

    def live(found: dict[str, dict[str, float]]) -> bool:
        return (found["rate"].get(primary, 0) > 0 and found["rate"].get(canary, 0) > 0
                and found["share"].get(APP, 0) > 0
                and all(set(found[k]) == {primary, canary} for k in ("errors", "p50", "p90",
                                                                     "p99"))
                and all(not math.isnan(v) for k in ("errors", "p50", "p90", "p99")
                        for v in found[k].values()))

    found = await wait_until(red, live, "primary and canary RED metrics on the Istio "
                             "dashboard")
    assert found["errors"] == {primary: 0.0, canary: 0.0}
    assert 0 < found["share"][APP] < 100
    assert found["p50"][canary] <= found["p90"][canary] <= found["p99"][canary]

    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Succeeded",
                     "the promotion of revision 2", timeout=120)
    states = rollouts.mapping("Phase")
    await wait_until(lambda: rollouts.panel("Phase"),
                     lambda r: ours(r) == [states["Succeeded"]], "Succeeded on the phase panel")
    await wait_until(lambda: rollouts.panel("Promotions"), lambda r: only(
        [value(s) for s in r]) == 1, "one promotion on the Promotions stat")
    await wait_until(lambda: rollouts.panel("Promotions per canary"),
                     lambda r: ours(r) == [1.0], "one promotion of the canary")
    # The duration histogram is the controller's, across Canaries (other tests' too).
    durations = {s["metric"]["outcome"]: value(s)
                 for s in await rollouts.panel("Rollout duration")}
    assert durations.get("promoted", 0) > 0, durations

    # A faulty revision: the canary's errors against the primary's, then the rollback.
    await deploy(kube, namespace, {"revision": "3", **FAULTY})
    errors = await wait_until(lambda: istio.panel("Error rate", "B"),
                              lambda r: by_workload(r).get(canary, 0) > 10,
                              "the faulty canary's errors on the error rate panel")
    assert 10 < by_workload(errors)[canary] < 90
    assert by_workload(await istio.panel("Error rate", "A")) == {primary: 0.0}
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Failed",
                     "the rollback of revision 3", timeout=120)
    await wait_until(lambda: rollouts.panel("Phase"),
                     lambda r: ours(r) == [states["Failed"]], "Failed on the phase panel")
    await wait_until(lambda: rollouts.panel("Rollbacks per canary"),
                     lambda r: ours(r) == [1.0], "one rollback of the canary")
    assert ours(await rollouts.panel("Promotions per canary")) == [1.0]
    durations = {s["metric"]["outcome"]: value(s)
                 for s in await rollouts.panel("Rollout duration", "B")}
    assert durations.get("promoted", 0) > 0 and durations.get("rolled_back", 0) > 0, durations

    # The analysis that failed, against its bounds: the value, the min and the max.
    success = {ref: ours(await rollouts.panel("Analysis: $metric", ref,
                                              metric=["request-success-rate"]))
               for ref in "ABC"}
    assert success["B"] == [99.0] and success["C"] == []
    assert only(success["A"]) < 99
    latency = {ref: ours(await rollouts.panel("Analysis: $metric", ref,
                                              metric=["request-duration"]))
               for ref in "ABC"}
    assert latency["B"] == [] and latency["C"] == [500.0] and 0 < only(latency["A"]) < 500
    verdicts = {s["metric"]["metric"]: value(s) for s in await rollouts.panel("Verdicts")
                if s["metric"].get("name") == APP}
    verdict_states = rollouts.mapping("Verdicts")
    assert verdicts == {"request-success-rate": verdict_states["Failed"],
                        "request-duration": verdict_states["Passed"]}

    # The variables offer what the test created.
    assert namespace in await rollouts.options("namespace")
    assert await rollouts.options("canary") == [APP]
    assert sorted(await rollouts.options("metric")) == sorted(METRICS)
    assert namespace in await istio.options("namespace")
    assert await istio.options("canary") == [APP]

    # Every query of both dashboards, as Grafana sends it for one selection, several
    # (multi-value regular expressions) and All.
    # Nothing in this test restarts a watch or sends an alert; an annotation marks a
    # transition only for one interval after it.
    may_be_empty = {"Watch restarts", "Alert deliveries", "annotation Promotions and rollbacks"}
    selections: dict[Dashboard, list[dict[str, grafana.Value]]] = {
        rollouts: [{}, {"namespace": [namespace, "no-such-namespace"],
                        "canary": [APP, "no-such-canary"]},
                   {"namespace": grafana.ALL, "canary": grafana.ALL}],
        istio: [{}, {"canary": [APP, "no-such-app"]},
                {"canary": await istio.options("canary")}],
    }
    # A panel shows data when any of its queries returns a series.
    shown: dict[str, bool] = {}
    for board, choices in selections.items():
        base = dict(board.values)
        for number, choice in enumerate(choices):
            board.values = {**base, **choice}
            for query, expr, repeat in board.expressions():
                result = await instant(prometheus, expr)
                if query.panel not in may_be_empty:
                    copy = f"{board.board['title']} / {query.panel}{repeat} / selection {number}"
                    shown[copy] = shown.get(copy, False) or bool(result)
        board.values = base
    empty = sorted(copy for copy, data in shown.items() if not data)
    assert not empty, "panels without data:\n" + "\n".join(empty)
    panels = {q.panel for b in (rollouts, istio) for q in grafana.queries(b.board)}
    assert len(shown) == 3 * (len(panels - may_be_empty) + len(METRICS) - 1)
