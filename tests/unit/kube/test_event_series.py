"""Repeated events become one Event with a count; different events, late repeats and
events long forgotten become new ones; memory stays bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.kube import Invalid, NotFound
from canary.kube import resources as r
from canary.kube.event_series import (
    NOTE_LIMIT,
    REPEAT_WINDOW,
    EventKey,
    Occurrence,
    RecentEvents,
    core_event,
    event_name,
    repeat_patch,
)
from canary.kube.events import EventRecorder

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
CANARY = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
          "metadata": {"name": "web", "namespace": "shop", "uid": "u-1",
                       "resourceVersion": "7"}}


def key(note: str = "waits for approval", **changes: str) -> EventKey:
    fields = {"namespace": "shop", "kind": "Canary", "name": "web", "uid": "u-1",
              "type": "Normal", "reason": "WaitingForApproval", "note": note} | changes
    return EventKey(**fields)


class TestRepeats:
    def test_the_same_event_again_is_the_next_of_its_series(self) -> None:
        recent = RecentEvents()
        first = recent.observe(key(), T0, "a")
        again = recent.observe(key(), T0 + timedelta(seconds=30), "b")
        assert (first.name, first.count, first.repeated) == ("a", 1, False)
        assert again == Occurrence("a", T0, T0 + timedelta(seconds=30), 2)

    @pytest.mark.parametrize("field", ["namespace", "kind", "name", "uid", "type", "reason",
                                       "note"])
    def test_any_difference_makes_another_event(self, field: str) -> None:
        recent = RecentEvents()
        recent.observe(key(), T0, "a")
        other = recent.observe(key(**{field: "other"}), T0, "b")
        assert (other.name, other.count) == ("b", 1)

    def test_a_repeat_after_the_window_starts_a_new_series(self) -> None:
        recent = RecentEvents()
        recent.observe(key(), T0, "a")
        late = recent.observe(key(), T0 + REPEAT_WINDOW + timedelta(seconds=1), "b")
        assert (late.name, late.count) == ("b", 1)

    def test_the_window_runs_from_the_last_occurrence(self) -> None:
        recent, step = RecentEvents(), REPEAT_WINDOW - timedelta(seconds=1)
        for n in range(5):
            seen = recent.observe(key(), T0 + n * step, f"e{n}")
        assert (seen.name, seen.count, seen.first) == ("e0", 5, T0)

    def test_a_restart_replaces_the_series(self) -> None:
        recent = RecentEvents()
        recent.observe(key(), T0, "a")
        recent.observe(key(), T0, "a")
        assert recent.restart(key(), T0, "b") == Occurrence("b", T0, T0, 1)
        assert recent.observe(key(), T0, "c").name == "b"

    def test_notes_differing_only_past_the_limit_are_the_same_event(self) -> None:
        long = "x" * 1024
        assert EventKey.of(CANARY, "Normal", "R", long + "a") == \
            EventKey.of(CANARY, "Normal", "R", long + "b")


class TestNotes:
    def test_a_note_within_the_limit_in_characters_is_cut_by_its_bytes(self) -> None:
        # 600 characters are 1200 bytes: the API server counts the bytes
        assert EventKey.of(CANARY, "Warning", "R", "é" * 600).note == "é" * 512

    def test_a_cut_never_splits_a_character(self) -> None:
        # a fifth-to-last emoji would end at byte 1025
        note = EventKey.of(CANARY, "Warning", "R", "a" + "😀" * 300).note
        assert note == "a" + "😀" * 255

    @given(st.text(min_size=1, max_size=6), st.integers(0, 1100))
    def test_a_note_is_the_longest_start_that_fits(self, piece: str, times: int) -> None:
        text = piece * times
        note = EventKey.of(CANARY, "Warning", "R", text).note
        assert text.startswith(note) and len(note.encode()) <= NOTE_LIMIT
        assert note == text or len(text[:len(note) + 1].encode()) > NOTE_LIMIT


class TestMemory:
    @given(st.lists(st.integers(0, 50), max_size=300), st.integers(1, 20))
    def test_never_more_than_its_size_and_the_latest_kept(self, notes: list[int],
                                                         size: int) -> None:
        recent = RecentEvents(size=size)
        for n, note in enumerate(notes):
            recent.observe(key(str(note)), T0 + timedelta(seconds=n), f"e{n}")
        assert len(recent) == min(size, len(set(notes)))
        if notes:  # the most recent one is remembered: its next is a repeat
            assert recent.observe(key(str(notes[-1])), T0 + timedelta(seconds=len(notes)),
                                  "new").count > 1

    def test_the_least_recently_seen_is_forgotten_first(self) -> None:
        recent = RecentEvents(size=2)
        recent.observe(key("a"), T0, "a")
        recent.observe(key("b"), T0, "b")
        recent.observe(key("a"), T0, "a2")  # a seen again: b is now the oldest
        recent.observe(key("c"), T0, "c")
        assert recent.observe(key("a"), T0, "x").name == "a"
        assert recent.observe(key("b"), T0, "y").name == "y"


class TestObjects:
    @given(st.lists(st.datetimes(min_value=datetime(2000, 1, 1),
                                 max_value=datetime(2200, 1, 1)), min_size=2))
    def test_names_sort_as_their_times(self, moments: list[datetime]) -> None:
        stamps = sorted(int(m.replace(tzinfo=UTC).timestamp() * 1e6) * 1000
                        for m in moments)
        names = [event_name("web", stamp) for stamp in stamps]
        assert names == sorted(names)

    def test_a_long_object_name_leaves_room_for_the_suffix(self) -> None:
        assert len(event_name("a" * 253, 2**63 - 1)) == 253

    def test_a_first_occurrence_carries_what_kubectl_sorts_and_counts_by(self) -> None:
        event = core_event(key(), CANARY, Occurrence("web.1", T0, T0), action="Wait",
                           controller="canary.dev/controller", instance="pod-1")
        assert event["metadata"] == {"name": "web.1", "namespace": "shop"}
        assert (event["firstTimestamp"], event["lastTimestamp"], event["count"]) == \
            ("2026-03-01T12:00:00Z", "2026-03-01T12:00:00Z", 1)
        assert event["eventTime"] == "2026-03-01T12:00:00.250000Z"
        assert event["source"] == {"component": "canary.dev/controller"}
        assert event["involvedObject"] == {
            "apiVersion": "canary.dev/v1beta1", "kind": "Canary", "name": "web",
            "namespace": "shop", "uid": "u-1", "resourceVersion": "7"}
        assert (event["reportingComponent"], event["reportingInstance"], event["action"]) \
            == ("canary.dev/controller", "pod-1", "Wait")

    def test_a_repeat_moves_the_count_the_last_time_and_the_series(self) -> None:
        later = T0 + timedelta(minutes=2)
        assert repeat_patch(Occurrence("web.1", T0, later, 3)) == {
            "count": 3, "lastTimestamp": "2026-03-01T12:02:00Z",
            "series": {"count": 3, "lastObservedTime": "2026-03-01T12:02:00.250000Z"}}


class FakeEvents:
    """Core/v1 events in memory, with the verbs the recorder uses."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    async def create(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        assert resource == r.CORE_EVENTS
        self.calls.append("create")
        if len(body["message"].encode()) > NOTE_LIMIT:  # as the API server counts
            raise Invalid(422, "Invalid", "message: can have at most 1024 characters")
        self.objects[body["metadata"]["name"]] = body
        return body

    async def merge_patch(self, resource: Any, name: str, patch: dict[str, Any],
                          namespace: str | None = None) -> dict[str, Any]:
        assert resource == r.CORE_EVENTS and namespace == "shop"
        self.calls.append("patch")
        if name not in self.objects:
            raise NotFound(404, "NotFound", f"events {name!r} not found")
        self.objects[name] |= patch
        return self.objects[name]


class TestRecorder:
    async def test_a_repeat_patches_the_event_and_a_new_event_is_created(self) -> None:
        api, moments = FakeEvents(), iter(T0 + timedelta(seconds=s) for s in range(10))
        recorder = EventRecorder(api, "pod-1", clock=lambda: next(moments))  # type: ignore[arg-type]
        await recorder.record(CANARY, "Normal", "WaitingForApproval", "waits")
        await recorder.record(CANARY, "Normal", "WaitingForApproval", "waits")
        await recorder.record(CANARY, "Warning", "AnalysisFailed", "halted")
        assert api.calls == ["create", "patch", "create"]
        first, second = (api.objects[name] for name in sorted(api.objects))
        assert (first["reason"], first["count"], first["lastTimestamp"]) == \
            ("WaitingForApproval", 2, "2026-03-01T12:00:01Z")
        assert (second["reason"], second["count"]) == ("AnalysisFailed", 1)

    async def test_a_repeat_of_an_expired_event_creates_it_anew(self) -> None:
        api = FakeEvents()
        recorder = EventRecorder(api, "pod-1", clock=lambda: T0)  # type: ignore[arg-type]
        await recorder.record(CANARY, "Normal", "WaitingForApproval", "waits")
        api.objects.clear()  # the API server's TTL
        await recorder.record(CANARY, "Normal", "WaitingForApproval", "waits")
        await recorder.record(CANARY, "Normal", "WaitingForApproval", "waits")
        assert api.calls == ["create", "patch", "create", "patch"]
        [event] = api.objects.values()
        assert event["count"] == 2

    async def test_a_note_naming_something_in_many_bytes_is_written(self) -> None:
        api = FakeEvents()
        recorder = EventRecorder(api, "pod-1", clock=lambda: T0)  # type: ignore[arg-type]
        await recorder.record(CANARY, "Warning", "AlertAddressUnavailable",
                              f"Secret shop/{'é' * 514} not found")
        [event] = api.objects.values()
        assert event["message"].startswith("Secret shop/é")
        assert (recorder.stats.written, recorder.stats.refused) == (1, 0)

    async def test_names_never_repeat_within_one_instant(self) -> None:
        api = FakeEvents()
        recorder = EventRecorder(api, "pod-1", clock=lambda: T0)  # type: ignore[arg-type]
        for n in range(3):
            await recorder.record(CANARY, "Normal", "Step", f"step {n}")
        assert len(api.objects) == 3
