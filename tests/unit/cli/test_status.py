"""`canary status`: one line per Canary, with its last decision and why."""

from __future__ import annotations

import json
from typing import Any

import yaml

from canary.console.render import Style, strip_ansi, visible_len
from canary.console.status import render_data, render_table
from canary.console.view import CanaryView
from tests.unit.cli import objects
from tests.unit.cli.objects import NOW


def table(*canaries: dict[str, Any], width: int | None = None,
          style: Style | None = None) -> list[str]:
    views = [CanaryView(c) for c in canaries]
    return render_table(views, NOW, width, style).splitlines()


def cells(line: str) -> list[str]:
    return line.split()


class TestTable:
    def test_the_columns(self) -> None:
        header, *_ = table(objects.succeeded())
        assert cells(header) == ["NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "STRATEGY",
                                 "AGE", "LAST", "DECISION"]

    def test_a_rollout_under_way_shows_the_evidence_of_its_last_analysis(self) -> None:
        _, line = table(objects.progressing(weight=40, analysed_at=20))
        assert cells(line)[:7] == ["test", "podinfo", "Progressing", "40", "0/2", "Canary",
                                   "60m"]
        assert line.endswith("Progressing: at weight 20: request-success-rate 99.93 (>= 99) "
                             "Passed; request-duration 132.4 (<= 500) Passed")

    def test_a_failing_check_comes_first(self) -> None:
        _, line = table(objects.progressing(weight=20, failed=1, success=80.5))
        assert cells(line)[4] == "1/2"
        why = line.split("Progressing: ", 1)[1]
        assert why.startswith("at weight 20: request-success-rate 80.5 (>= 99) Failed; "
                              "request-duration")

    def test_a_rollback_says_which_metric_value_and_bound(self) -> None:
        _, line = table(objects.failed())
        assert cells(line)[:5] == ["test", "podinfo", "Failed", "0", "2/2"]
        assert "AnalysisFailed: Rolling back podinfo: request-success-rate 80.21 (must be " \
               ">= 99) (failed checks 2/2)" in line

    def test_paused_and_missing_targets_override_the_rollout(self) -> None:
        paused = objects.progressing()
        paused["status"]["conditions"].append(objects.condition(
            "Paused", "True", "PausedByUser", "paused with `canary pause`"))
        lost = objects.progressing()
        lost["status"]["conditions"][1] = objects.condition(
            "Ready", "False", "TargetNotFound", "Deployment test/podinfo not found")
        _, paused_line = table(paused)
        _, lost_line = table(lost)
        assert "PausedByUser: paused with `canary pause`" in paused_line
        assert "TargetNotFound: Deployment test/podinfo not found" in lost_line

    def test_a_queued_revision_says_its_place_in_the_queue(self) -> None:
        """Not the previous revision's analysis: the queue is what holds it."""
        why = ("New revision rev3 of podinfo waits for a rollout slot: 2nd in the queue of "
               "3; 1 of 1 rollout running (--max-concurrent-rollouts 1)")
        queued = objects.succeeded()
        queued["status"].update(phase="Queued", queuedAt=objects.at(40), conditions=[
            objects.condition("Promoted", "Unknown", "Queued", why, 40),
            objects.condition("Ready", "False", "Queued", why, 40)])
        _, line = table(queued)
        assert cells(line)[2] == "Queued" and line.endswith(f"Queued: {why}")
        coloured = table(queued, style=Style(True))
        assert "\x1b[35mQueued\x1b[0m" in coloured[1]

    def test_a_new_canary_is_pending(self) -> None:
        _, line = table(objects.canary(age=5))
        assert cells(line)[2:7] == ["Pending", "0", "0/2", "Canary", "5s"]
        assert "Pending: not yet seen by the controller" in line

    def test_iterative_strategies_show_their_iteration(self) -> None:
        blue_green = objects.canary(
            name="api", analysis={"interval": "1m", "threshold": 2, "iterations": 10},
            status={"phase": "Progressing", "strategy": "BlueGreen", "iterations": 3,
                    "canaryWeight": 0, "lastAppliedSpec": "r"})
        _, line = table(blue_green)
        assert cells(line)[2:7] == ["Progressing", "0", "0/2", "BlueGreen", "3/10"]

    def test_rows_are_cut_to_the_terminal_and_aligned(self) -> None:
        lines = table(objects.progressing(), objects.failed(), width=90)
        assert all(visible_len(line) <= 90 for line in lines)
        assert lines[1].endswith("…")
        phase_column = lines[0].index("PHASE")
        assert lines[1][phase_column:].startswith("Progressing")
        assert lines[2][phase_column:].startswith("Failed")

    def test_colour_only_when_asked_and_the_text_is_the_same(self) -> None:
        plain = table(objects.failed())
        coloured = table(objects.failed(), style=Style(True))
        assert "\x1b[" not in "".join(plain)
        assert "\x1b[31;1mFailed\x1b[0m" in coloured[1]
        assert [strip_ansi(line) for line in coloured] == plain

    def test_no_canaries(self) -> None:
        assert render_table([], NOW) == "No canaries found.\n"

    def test_an_unreadable_canary_names_the_field_as_the_controller_does(self) -> None:
        broken = objects.canary(analysis={"interval": "soon", "threshold": 2})
        decision = CanaryView(broken).decision()
        assert decision.reason == "Unreadable"
        assert decision.message.startswith(
            "cannot read this Canary: spec.analysis.interval: String should match pattern")


class TestData:
    def test_json_and_yaml_carry_the_summary_and_the_evidence(self) -> None:
        views = [CanaryView(objects.failed()), CanaryView(objects.progressing())]
        for data in (json.loads(render_data(views, "json")),
                     yaml.safe_load(render_data(views, "yaml"))):
            failed, running = data["canaries"]
            assert failed["phase"] == "Failed" and failed["failedChecks"] == 2
            assert failed["threshold"] == 2
            assert failed["lastDecision"]["reason"] == "AnalysisFailed"
            assert "request-success-rate 80.21" in failed["lastDecision"]["message"]
            assert failed["lastAnalysis"]["results"][0]["value"] == 80.21
            assert failed["revision"] == "rev2" and failed["promotedRevision"] == "rev1"
            assert running["progress"] == {"kind": "weight", "done": 2, "total": 3}
