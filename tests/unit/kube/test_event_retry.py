"""An event the API server refuses for now (429, 5xx, unreachable) is kept and sent
again until written; one refused for good is dropped and counted; memory stays bounded;
a repeat of a waiting event rides on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.backoff import Backoff
from canary.kube import resources as r
from canary.kube.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    TooManyRequests,
    TransportError,
)
from canary.kube.event_retry import EventRetry, PendingEvents
from canary.kube.events import EventRecorder

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
CANARY = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
          "metadata": {"name": "web", "namespace": "shop", "uid": "u-1"}}
QUICK = Backoff(initial=0.001, cap=0.001)


def throttled() -> TooManyRequests:
    return TooManyRequests(429, "TooManyRequests", "too many requests, retry after 1s")


class RefusingEvents:
    """Core/v1 events in memory; each call first takes the next refusal from
    ``refusals`` (None lets it through) until they run out."""

    def __init__(self, refusals: list[Exception | None] | None = None) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.refusals = list(refusals or [])
        self.calls = 0

    def _refuse(self) -> None:
        self.calls += 1
        if self.refusals and (refusal := self.refusals.pop(0)) is not None:
            raise refusal

    async def create(self, resource: Any, body: dict[str, Any]) -> dict[str, Any]:
        assert resource == r.CORE_EVENTS
        self._refuse()
        name = body["metadata"]["name"]
        if name in self.objects:
            raise Conflict(409, "AlreadyExists", f"events {name!r} already exists")
        self.objects[name] = body
        return body

    async def merge_patch(self, resource: Any, name: str, patch: dict[str, Any],
                          namespace: str | None = None) -> dict[str, Any]:
        assert resource == r.CORE_EVENTS and namespace == "shop"
        self._refuse()
        if name not in self.objects:
            raise NotFound(404, "NotFound", f"events {name!r} not found")
        self.objects[name] |= patch
        return self.objects[name]

    def counts(self) -> dict[str, int]:
        return {event["reason"]: event["count"] for event in self.objects.values()}


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def moments() -> Iterator[datetime]:
    second = 0
    while True:
        yield T0 + timedelta(seconds=second)
        second += 1


def recorder(api: RefusingEvents, retry: EventRetry | None = None,
             clock: Callable[[], float] = time.monotonic) -> EventRecorder:
    pending = PendingEvents(retry or EventRetry(backoff=QUICK), clock=clock)
    times = moments()
    return EventRecorder(api, "pod-1", clock=lambda: next(times),  # type: ignore[arg-type]
                         pending=pending)


async def resent(events: EventRecorder) -> None:
    """Run the recorder's resending until nothing waits."""
    task = asyncio.create_task(events.resend())
    try:
        for _ in range(1000):
            if not len(events.pending):
                return
            await asyncio.sleep(0.002)
        raise AssertionError("events still waiting")
    finally:
        task.cancel()


class TestRefusedForNow:
    @pytest.mark.parametrize("refusal", [
        throttled(), ServerError(503, "ServiceUnavailable", "etcd leader changed"),
        TransportError("connection refused")], ids=["429", "503", "unreachable"])
    async def test_is_written_when_sent_again(self, refusal: Exception) -> None:
        api = RefusingEvents([refusal, refusal])
        events = recorder(api)
        await events.record(CANARY, "Normal", "Promoted", "revision abc completed")
        assert api.objects == {} and len(events.pending) == 1
        await resent(events)
        assert api.counts() == {"Promoted": 1}
        assert (events.stats.written, events.stats.resent, events.stats.dropped) == (1, 1, 0)

    async def test_a_repeat_while_waiting_rides_on_it(self) -> None:
        api = RefusingEvents([throttled()])
        events = recorder(api)
        for _ in range(3):
            await events.record(CANARY, "Normal", "WaitingForApproval", "waits")
        assert api.calls == 1, "repeats of a waiting event send nothing of their own"
        await resent(events)
        assert api.counts() == {"WaitingForApproval": 3}

    async def test_a_repeat_refused_is_counted_when_sent_again(self) -> None:
        api = RefusingEvents([None, throttled()])
        events = recorder(api)
        await events.record(CANARY, "Normal", "WaitingForApproval", "waits")
        await events.record(CANARY, "Normal", "WaitingForApproval", "waits")
        await resent(events)
        assert api.counts() == {"WaitingForApproval": 2} and len(api.objects) == 1

    async def test_a_create_whose_answer_was_lost_is_not_written_twice(self) -> None:
        """The first create reached etcd but its answer did not come back: sent again,
        it is AlreadyExists, and the series' count is patched instead."""
        api = RefusingEvents()
        events = recorder(api)
        real_create = api.create

        async def written_then_cut(resource: Any, body: dict[str, Any]) -> dict[str, Any]:
            await real_create(resource, body)
            api.create = real_create  # type: ignore[method-assign]
            raise TransportError("connection reset")

        api.create = written_then_cut  # type: ignore[method-assign]
        await events.record(CANARY, "Normal", "Promoted", "revision abc completed")
        await resent(events)
        assert api.counts() == {"Promoted": 1} and len(api.objects) == 1


class TestGivenUp:
    @pytest.mark.parametrize("refusal", [
        Forbidden(403, "Forbidden", "cannot create events"),
        Invalid(422, "Invalid", "message: Too long")], ids=["403", "422"])
    async def test_a_refusal_for_good_drops_at_once(self, refusal: ApiError) -> None:
        api = RefusingEvents([refusal])
        events = recorder(api)
        await events.record(CANARY, "Normal", "Promoted", "revision abc completed")
        assert len(events.pending) == 0
        assert (events.stats.refused, events.stats.dropped) == (1, 0)

    async def test_after_waiting_too_long(self) -> None:
        clock = Clock()
        api = RefusingEvents([throttled()] * 100)
        events = recorder(api, EventRetry(backoff=QUICK, give_up_after=60.0), clock)
        await events.record(CANARY, "Normal", "Promoted", "revision abc completed")
        clock.now = 61.0
        await resent(events)
        assert api.objects == {} and events.stats.dropped == 1

    async def test_the_oldest_when_too_many_wait(self) -> None:
        api = RefusingEvents([throttled()] * 3)
        events = recorder(api, EventRetry(backoff=Backoff(60.0, 60.0), capacity=2))
        for step in range(3):
            await events.record(CANARY, "Normal", "Step", f"step {step}")
        assert len(events.pending) == 2 and events.stats.dropped == 1

    async def test_a_flush_tries_each_once_more(self) -> None:
        api = RefusingEvents([throttled(), throttled(), None, throttled()])
        events = recorder(api, EventRetry(backoff=Backoff(60.0, 60.0)))
        await events.record(CANARY, "Normal", "Promoted", "revision abc completed")
        await events.record(CANARY, "Normal", "Step", "step 1")
        await events.flush()
        assert api.counts() == {"Promoted": 1}
        assert len(events.pending) == 0 and events.stats.dropped == 1


REFUSALS = st.one_of(st.none(), st.just(throttled()),
                     st.just(TransportError("connection refused")))


class TestNothingLost:
    @settings(max_examples=60, deadline=None)
    @given(recorded=st.lists(st.sampled_from(["Promoting", "Promoted", "Waiting"]),
                             min_size=1, max_size=12),
           refusals=st.lists(REFUSALS, max_size=30))
    def test_every_occurrence_is_counted_once_the_server_lets_it(
            self, recorded: list[str], refusals: list[Exception | None]) -> None:
        """Whatever the API server refuses for a while, each event ends with the count
        of times it was recorded: none lost, none written twice."""
        async def scenario() -> dict[str, int]:
            api = RefusingEvents(refusals)
            events = recorder(api)
            for reason in recorded:
                await events.record(CANARY, "Normal", reason, f"{reason} of web")
            await resent(events)
            assert events.stats.dropped == 0
            return api.counts()

        counts = asyncio.run(scenario())
        assert counts == {reason: recorded.count(reason) for reason in set(recorded)}
