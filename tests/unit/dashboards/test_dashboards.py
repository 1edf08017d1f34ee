"""The Grafana dashboards in dashboards/, checked without Grafana or Prometheus: current
schema and panel types, the datasource variable everywhere, every variable defined and
used, and every PromQL selector naming a metric (and labels) that exists: canary_* and
process metrics as registered by ControllerMetrics, istio_* as the traffic simulator
emits them. tests/e2e/test_dashboards.py runs the same queries against Prometheus."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from canary.devenv.traffic.metrics import IstioMetrics, Labels
from canary.models.canary import Phase
from canary.observability import ControllerMetrics
from canary.observability.metrics import VERDICTS
from tests import grafana
from tests.unit.observability.helpers import DURATION, SUCCESS_RATE, make_canary

#: The classic dashboard model's schema as Grafana 12.0 and 12.1 write it; later releases
#: migrate it on load.
MIN_SCHEMA_VERSION = 41
#: Current visualisations; graph, singlestat, table-old and the Angular plugins are gone.
PANEL_TYPES = {"row", "timeseries", "stat", "state-timeline", "table", "bargauge", "text"}
#: Labels every scraped series gets from its target.
TARGET_LABELS = frozenset({"job", "instance"})
#: The sample names each metric family type produces (for families nothing exercised).
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "info": ("_info",),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "summary": ("", "_count", "_sum", "_created"), "stateset": ("",),
            "unknown": ("",)}

FILES = grafana.dashboard_files()
IDS = [path.name for path in FILES]
#: Series name -> its label names (None: the name exists, its labels were not seen).
Series = dict[str, frozenset[str] | None]


@pytest.fixture(params=FILES, ids=IDS)
def board(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    return grafana.load(path)


def _exposed(text: str, into: dict[str, set[str]]) -> None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            into.setdefault(sample.name, set()).update(sample.labels)


@cache
def controller_series() -> Series:
    """What ControllerMetrics registers: every family, exercised so its labels show."""
    metrics = ControllerMetrics()
    metrics.observe(make_canary(results=[SUCCESS_RATE, DURATION]))
    metrics.record_transition("shop", "web", Phase.PROGRESSING, Phase.SUCCEEDED, 90.0)
    metrics.record_transition("shop", "web", Phase.PROGRESSING, Phase.FAILED, 45.0)
    metrics.record_reconcile(0.02, "shop", "web")
    metrics.record_watch_restart("deployments")
    metrics.record_watch_relist("deployments")
    metrics.record_kube_request("PATCH", 200)
    metrics.set_queue_depth(1)
    metrics.record_alert("shop/slack", "delivered")
    seen: dict[str, set[str]] = {}
    _exposed(metrics.exposition()[0].decode(), seen)
    series: Series = {name: frozenset(labels) for name, labels in seen.items()}
    for family in metrics.registry.collect():
        if not family.samples:
            for suffix in SUFFIXES[family.type]:
                series.setdefault(family.name + suffix, None)
    return series


@cache
def simulator_series() -> Series:
    """What the traffic simulator exposes for Istio's standard metrics."""
    istio = IstioMetrics()
    istio.record(Labels(*(["x"] * len(Labels._fields))), 12.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(istio)
    seen: dict[str, set[str]] = {}
    _exposed(generate_latest(registry).decode(), seen)
    return {name: frozenset(labels) for name, labels in seen.items()}


def known_series() -> Series:
    return {**controller_series(), **simulator_series()}


def non_rows(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in grafana.panels(board) if p["type"] != "row"]


class TestTheDashboards:
    def test_there_are_the_two_dashboards(self) -> None:
        assert IDS == ["canary-rollouts.json", "istio-canary.json"]

    def test_each_parses_with_a_uid_a_title_and_a_current_schema(
            self, board: dict[str, Any]) -> None:
        assert board["title"] and board["uid"]
        assert len(board["uid"]) <= 40 and re.fullmatch(r"[A-Za-z0-9_-]+", board["uid"])
        assert board["schemaVersion"] >= MIN_SCHEMA_VERSION
        assert board.get("id") is None, "an exported id would clash on import"
        assert "canary" in board["tags"]

    def test_uids_and_titles_are_distinct(self) -> None:
        boards = [grafana.load(path) for path in FILES]
        assert len({b["uid"] for b in boards}) == len({b["title"] for b in boards}) == 2

    def test_only_current_panel_types(self, board: dict[str, Any]) -> None:
        types = {p["type"] for p in grafana.panels(board)}
        assert types <= PANEL_TYPES, types - PANEL_TYPES

    def test_every_panel_and_target_uses_the_datasource_variable(
            self, board: dict[str, Any]) -> None:
        for panel in non_rows(board):
            assert panel.get("datasource") == grafana.DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
            for target in panel["targets"]:
                assert target.get("datasource") == grafana.DATASOURCE, (panel["title"], target)
                assert target.get("expr"), (panel["title"], target)

    def test_no_datasource_is_named_by_a_fixed_uid(self, board: dict[str, Any]) -> None:
        """Anything that names a data source names the variable; the one exception is
        Grafana's own built-in annotation."""

        def walk(node: Any, builtin: bool = False) -> None:
            if isinstance(node, dict):
                builtin = builtin or node.get("builtIn") == 1
                if "datasource" in node:
                    reference = node["datasource"]
                    allowed = [grafana.DATASOURCE]
                    if builtin:
                        allowed.append({"type": "grafana", "uid": "-- Grafana --"})
                    assert reference in allowed, reference
                for value in node.values():
                    walk(value, builtin)
            elif isinstance(node, list):
                for value in node:
                    walk(value, builtin)

        walk(board)

    def test_panel_ids_and_titles_are_unique_and_the_layout_fits(
            self, board: dict[str, Any]) -> None:
        every = list(grafana.panels(board))
        assert len({p["id"] for p in every}) == len(every)
        assert len({p["title"] for p in every}) == len(every)
        cells: dict[tuple[int, int], str] = {}
        for panel in every:
            grid = panel["gridPos"]
            assert grid["w"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel
            for x in range(grid["x"], grid["x"] + grid["w"]):
                for y in range(grid["y"], grid["y"] + grid["h"]):
                    assert (x, y) not in cells, (panel["title"], cells[(x, y)])
                    cells[(x, y)] = panel["title"]

    def test_every_panel_has_a_description_and_a_unit(self, board: dict[str, Any]) -> None:
        for panel in non_rows(board):
            assert len(panel.get("description", "")) > 20, panel["title"]
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


class TestVariables:
    def test_the_datasource_variable_picks_a_prometheus(self, board: dict[str, Any]) -> None:
        variable = grafana.variables(board)["datasource"]
        assert (variable["type"], variable["query"]) == ("datasource", "prometheus")
        assert not variable.get("multi") and not variable.get("includeAll")

    def test_namespace_and_canary_are_label_values_queries(
            self, board: dict[str, Any]) -> None:
        defined = grafana.variables(board)
        for name in ("namespace", "canary"):
            variable = defined[name]
            assert variable["type"] == "query", name
            assert variable["datasource"] == grafana.DATASOURCE, name
            assert variable["query"]["query"] == variable["definition"], name
            grafana.label_values(variable["definition"])
            assert variable["refresh"] == 2, "options follow the time range"
        assert "namespace" in grafana.references(defined["canary"]["definition"])
        assert defined["canary"]["multi"] and defined["canary"]["includeAll"]

    def test_variable_queries_name_existing_metrics_and_labels(
            self, board: dict[str, Any]) -> None:
        known = known_series()
        for variable in grafana.variables(board).values():
            if variable["type"] != "query":
                continue
            selector, label = grafana.label_values(variable["definition"])
            assert selector is not None, variable["name"]
            (found,) = grafana.selectors(selector)
            assert found.metric in known, (variable["name"], found.metric)
            labels = known[found.metric]
            if labels is not None:
                assert label in labels, (variable["name"], label, sorted(labels))
                assert found.labels <= labels | TARGET_LABELS, (variable["name"], found)

    def test_every_variable_used_is_defined(self, board: dict[str, Any]) -> None:
        defined = set(grafana.variables(board)) | grafana.BUILTINS
        for text in grafana.strings(board):
            assert grafana.references(text) <= defined, text

    def test_every_variable_defined_is_used(self, board: dict[str, Any]) -> None:
        used: set[str] = set()
        for text in grafana.strings(board):
            used |= grafana.references(text)
        used |= {p["repeat"] for p in grafana.panels(board) if p.get("repeat")}
        assert set(grafana.variables(board)) <= used


class TestQueries:
    def test_every_selector_names_a_metric_that_exists_with_labels_it_has(
            self, board: dict[str, Any]) -> None:
        known = known_series()
        for query in grafana.queries(board):
            found = grafana.selectors(query.expr)
            assert found, str(query)
            for selector in found:
                assert selector.metric in known, f"{query}: {selector.metric} does not exist"
                labels = known[selector.metric]
                if labels is not None:
                    unknown = selector.labels - labels - TARGET_LABELS
                    assert not unknown, f"{query}: {selector.metric} has no label {unknown}"

    def test_canary_metrics_are_filtered_by_the_variables_where_they_can_be(
            self, board: dict[str, Any]) -> None:
        """Every per-Canary series is selected by namespace and name, so the variables
        filter every panel that can be filtered."""
        known = controller_series()
        for query in grafana.queries(board):
            for selector in grafana.selectors(query.expr):
                labels = known.get(selector.metric)
                if labels and {"name", "namespace"} <= labels:
                    assert {"name", "namespace"} <= selector.labels, f"{query}: {selector}"

    def test_istio_queries_select_one_reporter_and_the_namespace(self) -> None:
        board = grafana.load(grafana.DASHBOARDS / "istio-canary.json")
        for query in grafana.queries(board):
            for selector in grafana.selectors(query.expr):
                assert {"reporter", "destination_workload_namespace",
                        "destination_workload"} <= selector.labels, f"{query}: {selector}"

    def test_every_query_interpolates_into_balanced_promql(
            self, board: dict[str, Any]) -> None:
        values: dict[str, grafana.Value] = {
            "namespace": "shop", "canary": ["web", "api"], "metric": ["request-duration"],
            "reporter": "destination"}
        builtins = {"__rate_interval": "1m", "__interval": "15s", "__range": "6h",
                    "__range_s": "21600"}
        for query in grafana.queries(board):
            expr = grafana.interpolate(query.expr, board, values, builtins)
            assert "$" not in expr.replace('"$1"', ""), f"{query}: {expr}"
            grafana.tokens(expr)


class TestEncodedStates:
    """The state timelines encode a state set as numbers; the value mappings turn them
    back into names. Both must agree with each other and with the controller."""

    @staticmethod
    def encoding(panel: dict[str, Any], label: str) -> tuple[dict[int, str], dict[int, str]]:
        (target,) = panel["targets"]
        in_expr = {int(n): s for s, n in re.findall(label + r'="(\w+)"\} \* (\d+)',
                                                    target["expr"])}
        (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
        in_mapping = {int(k): v["text"] for k, v in mapping["options"].items() if k != "0"}
        return in_expr, in_mapping

    def test_the_phase_timeline_names_every_phase(self) -> None:
        board = grafana.load(grafana.DASHBOARDS / "canary-rollouts.json")
        (panel,) = [p for p in grafana.panels(board) if p["title"] == "Phase"]
        in_expr, in_mapping = self.encoding(panel, "phase")
        assert in_expr == in_mapping
        assert sorted(in_expr.values()) == sorted(str(phase) for phase in Phase)

    def test_the_verdict_timeline_names_every_verdict(self) -> None:
        board = grafana.load(grafana.DASHBOARDS / "canary-rollouts.json")
        (panel,) = [p for p in grafana.panels(board) if p["title"] == "Verdicts"]
        in_expr, in_mapping = self.encoding(panel, "verdict")
        assert in_expr == in_mapping
        assert sorted(in_expr.values()) == sorted(VERDICTS)


class TestTheReader:
    """tests/grafana.py, which the checks above and the e2e test rely on."""

    def test_selectors_skip_functions_grouping_strings_and_ranges(self) -> None:
        expr = ('histogram_quantile(0.9, sum by (le, outcome) (rate(a_bucket{x=~"$v",'
                'y!="}{"}[$__rate_interval]))) / on (job) group_left(target) b offset 5m '
                'or label_replace(c, "d", "$1", "e", "(.*)") and {__name__="f", g="h"} '
                '> bool 1e3')
        found = grafana.selectors(expr)
        assert [(s.metric, sorted(s.labels)) for s in found] == [
            ("a_bucket", ["x", "y"]), ("b", []), ("c", []), ("f", ["g"])]

    def test_aggregations_before_their_grouping_are_not_metrics(self) -> None:
        assert [s.metric for s in grafana.selectors("sum without (a) (m) + max(n) by (b)")] \
            == ["m", "n"]

    def test_unbalanced_brackets_are_refused(self) -> None:
        with pytest.raises(ValueError, match="unclosed"):
            grafana.tokens("sum(rate(m[5m])")
        with pytest.raises(ValueError, match="unbalanced"):
            grafana.tokens("m{a='b')")

    def test_references_are_grafanas_three_syntaxes_but_not_regex_groups(self) -> None:
        text = 'x{a="$one", b="${two}", c="[[three]]", d="${four:raw}"} "$1"'
        assert grafana.references(text) == {"one", "two", "three", "four"}

    def test_interpolation_escapes_as_grafana_does(self) -> None:
        board = {"title": "t", "templating": {"list": [
            {"name": "single", "multi": False, "includeAll": False},
            {"name": "many", "multi": True, "includeAll": True},
            {"name": "any", "multi": True, "includeAll": True, "allValue": ".*"}]}}
        expr = 'm{a="$single", b=~"$many", c=~"${any}"}[$__range]'
        values: dict[str, grafana.Value] = {"single": "a.b", "many": ["x.y", "z"],
                                            "any": grafana.ALL}
        assert grafana.interpolate(expr, board, values, {"__range": "1h"}) == (
            'm{a="a.b", b=~"(x\\\\.y|z)", c=~".*"}[1h]')
        assert grafana.interpolate('m{b=~"$many"}', board, {"many": ["x.y"]}) == (
            'm{b=~"x\\\\.y"}')

    def test_interpolation_refuses_what_it_cannot_fill(self) -> None:
        board = {"title": "t", "templating": {"list": [{"name": "many", "multi": True}]}}
        with pytest.raises(KeyError, match="not a variable"):
            grafana.interpolate("$other", board, {})
        with pytest.raises(KeyError, match="no value"):
            grafana.interpolate("$many", board, {})
        with pytest.raises(ValueError, match="allValue"):
            grafana.interpolate("$many", board, {"many": grafana.ALL})

    def test_a_variable_regex_extracts_its_capture_group(self) -> None:
        assert grafana.apply_regex("/^(.+)-primary$/", ["web-primary", "web", "api-primary"]) \
            == ["web", "api"]
        assert grafana.apply_regex("", ["a"]) == ["a"]
