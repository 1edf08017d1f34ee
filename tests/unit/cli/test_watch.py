"""`canary watch`: the frames a terminal shows and the lines a pipe gets."""

from __future__ import annotations

import io
from typing import Any

from canary.console.render import Style, strip_ansi, visible_len
from canary.console.view import CanaryView, events_in_order
from canary.console.watch import PlainLog, Screen, frame
from tests.unit.cli import objects
from tests.unit.cli.objects import NOW


def screen(obj: dict[str, Any], events: list[dict[str, Any]] | None = None, *, width: int = 100,
           height: int = 30, style: Style | None = None, waiting: bool = False) -> list[str]:
    return frame(CanaryView(obj), events_in_order(events or []), NOW, width=width,
                 height=height, style=style, waiting=waiting)


class TestFrame:
    def test_a_weighted_rollout_half_way(self) -> None:
        lines = screen(objects.progressing(weight=40, analysed_at=20),
                       objects.rollout_events(), width=100, height=30)
        assert lines[0].startswith("test/podinfo  Progressing")
        assert lines[1] == ("Canary · revision rev2 · failed checks 0/2 · next check in 20s")
        assert lines[3] == ("weight  40%  [" + "#" * 20 + "." * 10 + "]  steps 20 > 40 > (60) "
                            "> promote")
        checks = lines[lines.index("Checks at weight 20, 10s ago:") + 1:][:2]
        assert checks[0].split() == ["request-success-rate", "99.93", ">=", "99", "ok"]
        assert checks[1].split() == ["request-duration", "132.4", "<=", "500", "ok"]
        events = lines[lines.index("Events (3):") + 1:]
        assert [line.split()[1] for line in events] == [
            "NewRevision", "WeightIncreased", "WeightIncreased"]
        assert events[-1].endswith("Advance podinfo canary weight to 40")

    def test_a_failing_check_is_shown_first_with_its_bound(self) -> None:
        lines = screen(objects.progressing(weight=20, failed=1, success=81.5, analysed_at=20))
        assert "failed checks 1/2" in lines[1]
        first = lines[lines.index("Checks at weight 20, 10s ago:") + 1]
        assert first.split()[:5] == ["request-success-rate", "81.5", ">=", "99", "FAIL"]

    def test_a_rollback_shows_how_far_it_got_and_why(self) -> None:
        lines = screen(objects.failed())
        assert lines[0].startswith("test/podinfo  Failed")
        assert lines[3].startswith("weight   0%  [" + "#" * 10 + "." * 20 + "]")
        assert lines[4] == ("AnalysisFailed: Rolling back podinfo: request-success-rate 80.21 "
                            "(must be >= 99) (failed checks 2/2)")

    def test_a_promotion_fills_the_bar(self) -> None:
        lines = screen(objects.succeeded())
        assert lines[3].startswith("weight   0%  [" + "#" * 30 + "]")
        assert lines[4] == "Succeeded: Promotion of podinfo revision rev2 completed"

    def test_iterations_for_blue_green(self) -> None:
        obj = objects.canary(
            analysis={"interval": "1m", "threshold": 2, "iterations": 4},
            status={"phase": "Progressing", "strategy": "BlueGreen", "iterations": 1,
                    "canaryWeight": 0, "lastAppliedSpec": "r2"})
        lines = screen(obj)
        assert lines[3] == "iteration 1/4  [" + "#" * 8 + "." * 22 + "]  weight 0%"
        assert "No analysis of this revision yet." in lines

    def test_waiting_for_a_rollout(self) -> None:
        lines = screen(objects.succeeded(), waiting=True)
        assert "No rollout under way: waiting for a new revision of podinfo. Ctrl-C to " \
               "leave." in lines

    def test_fits_the_terminal_keeping_the_latest_events(self) -> None:
        events = [objects.event("WeightIncreased", f"step {i} " + "x" * 80, 100 - i)
                  for i in range(40)]
        lines = screen(objects.progressing(), events, width=60, height=20)
        assert len(lines) <= 20
        assert all(visible_len(line) <= 60 for line in lines)
        assert "step 39" in lines[-1] and lines[-1].endswith("…")
        assert not any("step 0 " in line for line in lines)

    def test_colour_changes_nothing_but_the_colour(self) -> None:
        plain = screen(objects.failed(), objects.rollout_events())
        coloured = screen(objects.failed(), objects.rollout_events(), style=Style(True))
        assert "\x1b[31m" in "".join(coloured)
        stripped = [strip_ansi(line) for line in coloured]
        # Blocks stand in for # and . when there is colour.
        assert [s.replace("█", "#").replace("░", ".") for s in stripped] == plain


class TestPlainLines:
    def test_events_once_and_a_state_line_only_when_the_rollout_moves(self) -> None:
        log = PlainLog()
        events = objects.rollout_events()
        first = log.update(CanaryView(objects.progressing(weight=40)),
                           events_in_order(events), NOW)
        assert [line.split(" ", 2)[1:] for line in first[:3]] == [
            ["event", "Normal NewRevision: New revision rev2 of podinfo detected; starting "
                      "canary analysis"],
            ["event", "Normal WeightIncreased: Advance podinfo canary weight to 20"],
            ["event", "Normal WeightIncreased: Advance podinfo canary weight to 40"]]
        assert first[3].split(" ", 1)[1] == (
            "test/podinfo Progressing weight 40 (step 2/3) failed checks 0/2 | "
            "request-success-rate 99.93 (>= 99) Passed; request-duration 132.4 (<= 500) Passed")
        assert log.update(CanaryView(objects.progressing(weight=40)),
                          events_in_order(events), NOW) == []
        events.append(objects.event("RolledBack", "Rolling back podinfo", 1, "Warning"))
        last = log.update(CanaryView(objects.failed()), events_in_order(events), NOW)
        assert last[0].endswith("event Warning RolledBack: Rolling back podinfo")
        assert "test/podinfo Failed weight 0 (step 1/3) failed checks 2/2" in last[1]
        assert last[1].endswith("| AnalysisFailed: Rolling back podinfo: request-success-rate "
                                "80.21 (must be >= 99) (failed checks 2/2)")


def test_the_screen_redraws_in_place_and_only_on_change() -> None:
    out = io.StringIO()
    terminal = Screen(out)
    terminal.show(["a", "b"])
    terminal.show(["a", "b"])
    terminal.show(["c"])
    terminal.close()
    assert out.getvalue() == ("\x1b[?25l\x1b[2J" "\x1b[Ha\x1b[K\nb\x1b[K\n\x1b[J"
                              "\x1b[Hc\x1b[K\n\x1b[J" "\x1b[?25h")
