"""The Argo CD health check (docs/argocd-health.lua), run in Lua 5.1 as Argo CD runs it,
on Canaries as the decision leaves them in every phase."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lupa.lua51 import LuaRuntime

from tests.unit.core import lifecycle
from tests.unit.core.kstatus_model import compute
from tests.unit.core.scenario import initialized

SCRIPT = (Path(__file__).parents[3] / "docs" / "argocd-health.lua").read_text()

#: Argo CD's verdict for each moment of lifecycle.every_moment().
EXPECTED = {
    "created": "Progressing", "initialized": "Healthy",
    "Progressing": "Progressing", "Promoting": "Progressing", "Finalising": "Progressing",
    "Succeeded": "Healthy", "Failed": "Degraded", "paused": "Suspended",
    "suspended": "Suspended", "Waiting": "Progressing", "Queued": "Progressing",
    "conflict": "Degraded",
    "missing reference": "Degraded",
}


def health(obj: dict[str, Any]) -> tuple[str, str]:
    """What the script returns for ``obj``: hs.status and hs.message."""
    lua = LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(SCRIPT)
    return str(hs["status"]), str(hs["message"])


class TestPhases:
    def test_every_phase_and_stop_has_its_health(self) -> None:
        moments = lifecycle.every_moment()
        assert {name for name, _ in moments} == set(EXPECTED)
        for name, obj in moments:
            assert health(obj)[0] == EXPECTED[name], name

    def test_a_rollback_is_degraded_naming_the_failed_check(self) -> None:
        status, message = health(lifecycle.as_stored(lifecycle.rollback()))
        assert status == "Degraded" and "request-success-rate" in message

    def test_a_rollout_says_what_it_is_doing(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.step()
        assert health(lifecycle.as_stored(world)) == ("Progressing", "analysing revision rev-2")

    def test_a_problem_says_its_reason(self) -> None:
        status, message = health(lifecycle.as_stored(lifecycle.missing_reference()))
        assert status == "Degraded" and message.startswith("MissingReference: ")

    def test_a_generation_not_yet_observed_is_progressing(self) -> None:
        obj = lifecycle.as_stored(initialized())
        assert health(obj)[0] == "Healthy"
        obj["metadata"]["generation"] = 2
        assert health(obj) == ("Progressing",
                               "generation 2 not yet observed by the controller")

    def test_a_canary_not_yet_seen_is_progressing(self) -> None:
        obj = lifecycle.as_stored(initialized())
        del obj["status"]
        assert health(obj)[0] == "Progressing"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(lifecycle.HAPPENINGS), max_size=25))
def test_argo_cd_and_kstatus_agree(events: list[str]) -> None:
    """Whatever happens, Healthy means kstatus Current, Progressing means InProgress, and
    kstatus Failed is Degraded (or Suspended, when a person stopped the Canary)."""
    world = initialized()
    revisions = iter(f"rev-{n}" for n in range(2, 100))
    for kind in events:
        lifecycle.happen(world, kind, revisions)
        world.advance(10)
        world.step()
        obj = lifecycle.as_stored(world)
        argo, kstatus = health(obj)[0], compute(obj)[0]
        assert {"Healthy": "Current", "Progressing": "InProgress"}.get(argo, kstatus) == \
            kstatus, (argo, kstatus)
        if kstatus == "Failed":
            assert argo in ("Degraded", "Suspended")
