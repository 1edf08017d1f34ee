"""Readiness after every first list; liveness lost when the loop stops beating or a
watch falls silent. Time is a clock the tests move."""

from __future__ import annotations

import asyncio

import pytest

from canary.observability import Health, HealthSettings
from tests.unit.observability.helpers import FakeClock

RESOURCES = ("canaries", "deployments")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(RESOURCES, clock=clock)


class TestReadiness:
    def test_ready_only_once_every_watch_has_listed(self, health: Health) -> None:
        assert str(health.readiness()) == "waiting for the first list of canaries, deployments"
        health.mark_listed("canaries")
        assert str(health.readiness()) == "waiting for the first list of deployments"
        health.mark_listed("deployments")
        assert health.readiness().ok
        assert str(health.readiness()) == "ok"

    def test_a_starting_process_is_not_ready_until_it_declares_its_watches(
            self, clock: FakeClock) -> None:
        """Probes answer from the moment the process serves them, before the controller
        has started a watch: that moment is not ready."""
        health = Health(clock=clock, starting=True)
        assert str(health.readiness()) == "starting: the watches are not started yet"
        health.declare(RESOURCES)
        assert str(health.readiness()) == "waiting for the first list of canaries, deployments"

    def test_an_undeclared_resource_is_refused(self, health: Health) -> None:
        """A typo would otherwise keep the controller unready forever."""
        with pytest.raises(ValueError, match="deploymnets"):
            health.mark_listed("deploymnets")
        with pytest.raises(ValueError):
            health.touch("pods")


class TestLoop:
    def test_alive_while_the_loop_beats(self, health: Health, clock: FakeClock) -> None:
        for _ in range(100):
            clock.advance(1)
            health.beat()
            health.touch("canaries")
            health.touch("deployments")
        assert health.liveness().ok

    def test_a_loop_without_beats_beyond_the_bound_is_stalled(
            self, health: Health, clock: FakeClock) -> None:
        clock.advance(30)
        assert health.liveness().ok, "at the bound, still alive"
        clock.advance(12)
        assert health.liveness().problems == ("event loop stalled for 42s",)

    async def test_the_heartbeat_task_beats_on_the_loop(self) -> None:
        health = Health(RESOURCES, HealthSettings(heartbeat_interval_seconds=0.01,
                                                  loop_stall_seconds=0.2))
        task = asyncio.create_task(health.heartbeat())
        try:
            await asyncio.sleep(0.1)
            assert health.liveness().ok
        finally:
            task.cancel()
        await asyncio.sleep(0.3)
        assert health.liveness().problems[0].startswith("event loop stalled for ")


class TestWatches:
    def test_a_silent_watch_fails_liveness_and_is_named(
            self, health: Health, clock: FakeClock) -> None:
        health.mark_listed("canaries")
        health.mark_listed("deployments")
        clock.advance(312)
        health.beat()
        health.touch("canaries")
        assert health.liveness().problems == ("watch deployments silent for 312s",)

    def test_any_event_or_bookmark_keeps_a_watch_alive(
            self, health: Health, clock: FakeClock) -> None:
        for _ in range(10):
            clock.advance(60)
            health.beat()
            health.touch("canaries")
            health.touch("deployments")
        assert health.liveness().ok

    def test_the_bound_is_configurable(self, clock: FakeClock) -> None:
        health = Health(RESOURCES, HealthSettings(watch_silence_seconds=60), clock=clock)
        clock.advance(61)
        health.beat()
        assert health.liveness().problems == ("watch canaries silent for 61s",
                                              "watch deployments silent for 61s")

    def test_a_watch_that_never_answers_counts_from_start_up(
            self, health: Health, clock: FakeClock) -> None:
        clock.advance(301)
        health.beat()
        assert len(health.liveness().problems) == 2

    def test_a_followed_source_is_read_at_each_probe(
            self, health: Health, clock: FakeClock) -> None:
        """e.g. a Reflector's last_activity, which bookmarks update without an event."""
        activity = {"deployments": clock.now}
        health.follow("deployments", lambda: activity["deployments"])
        health.touch("canaries")
        clock.advance(400)
        health.beat()
        health.touch("canaries")
        assert health.liveness().problems == ("watch deployments silent for 400s",)
        activity["deployments"] = clock.now
        assert health.liveness().ok

    def test_a_failing_source_is_reported_not_raised(
            self, health: Health, clock: FakeClock) -> None:
        def broken() -> float:
            raise RuntimeError("gone")
        health.follow("canaries", broken)
        assert health.liveness().problems == (
            "watch canaries: its activity cannot be read: gone",)


class TestStandby:
    def test_a_replica_without_watches_is_ready_and_alive(self, clock: FakeClock) -> None:
        """A standby waiting for the leader Lease must be neither restarted nor hidden."""
        health = Health(clock=clock)
        clock.advance(3600)
        health.beat()
        assert health.readiness().ok
        assert health.liveness().ok

    def test_a_starting_process_that_stands_by_is_ready(self, clock: FakeClock) -> None:
        health = Health(clock=clock, starting=True)
        health.standby()
        assert health.readiness().ok

    def test_watches_declared_later_count_from_their_declaration(
            self, clock: FakeClock) -> None:
        health = Health(clock=clock)
        clock.advance(3600)
        health.declare(RESOURCES)
        health.beat()
        assert str(health.readiness()) == "waiting for the first list of canaries, deployments"
        assert health.liveness().ok
        clock.advance(301)
        health.beat()
        health.mark_listed("canaries")
        assert health.liveness().problems == ("watch deployments silent for 301s",)
