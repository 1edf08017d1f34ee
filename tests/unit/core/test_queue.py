"""The rollout queue's order: first come, first served, never more than the limit, and
the same answer from the same statuses however they are listed (as after a restart)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from canary.core.queue import Entry, admitted, must_wait, ordered, ordinal, place

START = datetime(2026, 1, 1, tzinfo=UTC)

#: Canaries in a few namespaces, joining within a few seconds: equal times are common.
entries = st.builds(
    Entry, since=st.integers(0, 5).map(lambda s: START + timedelta(seconds=s)),
    namespace=st.sampled_from(["a", "b", "c"]), name=st.sampled_from(["web", "api", "db"]))
queues = st.lists(entries, max_size=12, unique=True)
limits = st.integers(1, 5)
running = st.integers(0, 6)


def entry(seconds: float, namespace: str = "shop", name: str = "web") -> Entry:
    return Entry(START + timedelta(seconds=seconds), namespace, name)


class TestLimit:
    @given(queues, running, limits)
    def test_never_more_start_than_the_limit_leaves(self, queue: list[Entry], busy: int,
                                                    limit: int) -> None:
        started = admitted(queue, busy, limit)
        assert len(started) == min(len(queue), max(0, limit - busy))

    def test_a_full_limit_starts_nothing(self) -> None:
        assert admitted([entry(0), entry(1, name="api")], running=2, limit=2) == []
        assert admitted([entry(0)], running=3, limit=2) == []  # lowered since

    @given(queues, entries, running, limits)
    def test_a_canary_may_start_exactly_when_it_is_admitted(
            self, others: list[Entry], candidate: Entry, busy: int, limit: int) -> None:
        """What a worker asks for its own Canary agrees with what the controller wakes."""
        may = must_wait(candidate, others, busy, limit) is None
        assert may == (candidate in admitted([*others, candidate], busy, limit))


class TestOrder:
    @given(queues, running, limits)
    def test_first_come_first_served(self, queue: list[Entry], busy: int, limit: int
                                     ) -> None:
        """Everyone started joined no later than everyone left waiting."""
        started = admitted(queue, busy, limit)
        waiting = [e for e in queue if e not in started]
        for first in started:
            for later in waiting:
                assert first.since <= later.since

    def test_equal_times_are_broken_by_namespace_then_name(self) -> None:
        queue = [entry(0, "b", "api"), entry(0, "a", "web"), entry(0, "a", "api")]
        assert ordered(queue) == [entry(0, "a", "api"), entry(0, "a", "web"),
                                  entry(0, "b", "api")]

    @given(queues, running, limits, st.randoms(use_true_random=False))
    def test_a_restart_listing_the_same_statuses_finds_the_same_queue(
            self, queue: list[Entry], busy: int, limit: int, shuffler: random.Random
            ) -> None:
        """A relist returns the Canaries in any order (and a cache may hold a Canary
        once per event seen): the answer depends on the statuses alone."""
        relisted = queue + queue[:3]
        shuffler.shuffle(relisted)
        assert ordered(relisted) == ordered(queue)
        assert admitted(relisted, busy, limit) == admitted(queue, busy, limit)


class TestPlace:
    def test_the_place_is_said_in_words(self) -> None:
        others = [entry(0, name="api"), entry(5, name="db")]
        where = place(entry(3), others, running=1, limit=1)
        assert (where.position, where.length, where.may_start) == (2, 3, False)
        assert str(where) == ("2nd in the queue of 3; 1 of 1 rollout running "
                              "(--max-concurrent-rollouts 1)")
        assert must_wait(entry(3), others, running=0, limit=3) is None

    def test_a_canary_already_in_the_queue_counts_once(self) -> None:
        assert place(entry(0), [entry(0), entry(1, name="api")], 0, 1).length == 2

    def test_ordinals(self) -> None:
        assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
            "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st",
            "111th"]
