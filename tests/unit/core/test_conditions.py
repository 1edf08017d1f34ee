"""A condition's transition time follows its status, not its reason or message."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from canary.core.conditions import Status, condition
from canary.core.timefmt import format_time
from canary.models.canary import Condition

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SINCE = "2026-01-01T00:00:00Z"
statuses = st.sampled_from(["True", "False", "Unknown"])
reasons = st.sampled_from(["Ready", "InvalidSpec", "Conflict"])


class TestTransitionTime:
    @given(statuses, statuses, reasons, reasons)
    def test_it_is_kept_while_the_status_stays_and_now_when_it_changes(
            self, before: Status, after: Status, old_reason: str, new_reason: str) -> None:
        previous = Condition(type="Ready", status=before, reason=old_reason,
                             last_transition_time=SINCE)
        made = condition("Ready", after, new_reason, "why", previous=previous,
                         generation=3, now=NOW)
        expected = SINCE if before == after else format_time(NOW)
        assert made.last_transition_time == expected
        assert (made.status, made.reason, made.message) == (after, new_reason, "why")

    def test_a_new_condition_starts_now(self) -> None:
        made = condition("Paused", "True", "Paused", "", previous=None, generation=None,
                         now=NOW)
        assert made.last_transition_time == format_time(NOW)


class TestWireForm:
    def test_the_generation_is_recorded_when_known(self) -> None:
        made = condition("Ready", "False", "InvalidSpec", "bad", previous=None,
                         generation=4, now=NOW)
        assert made.to_api()["observedGeneration"] == 4

    def test_an_unknown_generation_is_left_out(self) -> None:
        made = condition("Ready", "False", "InvalidSpec", "bad", previous=None,
                         generation=None, now=NOW)
        assert "observedGeneration" not in made.to_api()
