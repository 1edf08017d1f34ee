"""The limit on concurrent rollouts across a controller's Canaries: the slots the
rollouts under way hold, the queue's order, the race of workers woken together by one
change, a restart in the middle of the queue, and the wake-ups when a slot frees."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.controller.controller import Controller
from canary.controller.rollout_queue import RolloutQueue
from canary.core.queue import ROLLING
from canary.core.timefmt import format_time, parse_time
from canary.kube import KubeClient, Reflector
from canary.models.canary import Canary, Phase
from canary.observability import ControllerMetrics
from canary.settings import RolloutSettings, Settings
from tests.unit.controller.caches import Cache
from tests.unit.core.lifecycle import as_stored
from tests.unit.core.scenario import World, make_canary

JSON = dict[str, Any]
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def stored(name: str, phase: str | None = None, queued: float | None = None,
           namespace: str = "shop", **fields: Any) -> JSON:
    """A Canary as the cache holds it: ``queued`` seconds after NOW it joined the queue."""
    status: JSON = {"phase": phase} if phase else {}
    if queued is not None:
        status["queuedAt"] = format_time(NOW + timedelta(seconds=queued), precise=True)
    obj: JSON = {"metadata": {"name": name, "namespace": namespace}, "spec": {},
                 "status": status}
    for key, value in fields.items():
        obj[key] = {**obj.get(key, {}), **value}
    return obj


def released(name: str = "web", namespace: str = "shop") -> Canary:
    """A Succeeded Canary whose target has a new revision (rev-2) to roll out."""
    canary = make_canary()
    canary.metadata.update(name=name, namespace=namespace)
    canary.status.phase = Phase.SUCCEEDED
    canary.status.last_applied_spec = canary.status.last_promoted_spec = "rev-1"
    return canary


def rollouts(limit: int, *objects: JSON) -> RolloutQueue:
    return RolloutQueue(cast(Reflector, Cache(*objects)), limit)


class TestSlots:
    def test_the_rollouts_under_way_hold_the_slots(self) -> None:
        """Progressing, Promoting and Finalising hold a slot; a Canary at rest, held by a
        gate, queued or initializing does not."""
        queue = rollouts(2, stored("a", "Progressing"), stored("b", "Finalising"),
                         *(stored(f"rest-{p}", p) for p in
                           ("Initializing", "Initialized", "Waiting", "Succeeded", "Failed")))
        assert queue.slot(released(), "rev-2", NOW) == (
            "1st in the queue of 1; 2 of 2 rollouts running (--max-concurrent-rollouts 2)")
        queue = rollouts(2, stored("a", "Promoting"), stored("b", "Succeeded"))
        assert queue.slot(released(), "rev-2", NOW) is None

    def test_without_a_limit_every_revision_may_start_and_nothing_is_counted(self) -> None:
        queue = rollouts(0, stored("a", "Progressing"))
        assert queue.slot(released(), "rev-2", NOW) is None
        assert queue.due(NOW) == [] and not queue.limited

    def test_only_a_new_revision_at_rest_asks(self) -> None:
        queue = rollouts(1, stored("a", "Progressing"))
        rolling = released()
        rolling.status.phase = Phase.PROGRESSING
        assert queue.slot(rolling, "rev-2", NOW) is None
        assert queue.slot(released(), "rev-1", NOW) is None  # nothing new

    def test_a_negative_limit_is_refused(self) -> None:
        with pytest.raises(ValueError, match="0 \\(none\\) or more"):
            rollouts(-1)


class TestOrder:
    def test_the_queue_is_served_in_the_order_joined(self) -> None:
        """When the slot frees, the earliest to join goes first; equal times go by
        namespace, then name."""
        queue = rollouts(1, stored("a", "Succeeded"), stored("late", "Queued", 9),
                         stored("web", "Queued", 2, namespace="x"),
                         stored("api", "Queued", 2, namespace="x"))
        assert queue.due(NOW) == [("x", "api")]
        later = released("web", "x")
        later.status.phase, later.status.queued_at = Phase.QUEUED, format_time(
            NOW + timedelta(seconds=2), precise=True)
        assert queue.slot(later, "rev-2", NOW) == (
            "2nd in the queue of 3; 0 of 1 rollout running (--max-concurrent-rollouts 1)")

    def test_a_newcomer_joins_at_the_end(self) -> None:
        queue = rollouts(2, stored("a", "Progressing"), stored("b", "Queued", 5))
        assert queue.slot(released(), "rev-2", NOW + timedelta(seconds=10)) == (
            "2nd in the queue of 2; 1 of 2 rollouts running (--max-concurrent-rollouts 2)")

    @pytest.mark.parametrize("holding", [
        {"spec": {"suspend": True}},
        {"metadata": {"annotations": {"canary.dev/paused": "true"}}},
        {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}},
        {"status": {"conditions": [{"type": "Ready", "status": "False",
                                    "reason": "MissingReference"}]}}])
    def test_a_queued_canary_that_cannot_start_lets_the_next_go(self, holding: JSON) -> None:
        """It keeps its place (its queuedAt) but holds up no one meanwhile."""
        queue = rollouts(1, stored("first", "Queued", 0, **holding), stored("next", "Queued", 1))
        assert queue.due(NOW) == [("shop", "next")]

    def test_a_queued_canary_not_ready_only_because_it_is_queued_keeps_its_turn(self) -> None:
        ready: JSON = {"status": {"conditions": [{"type": "Ready", "status": "False",
                                                  "reason": "Queued"}]}}
        queue = rollouts(1, stored("first", "Queued", 0, **ready), stored("next", "Queued", 1))
        assert queue.due(NOW) == [("shop", "first")]

    def test_a_restart_in_the_middle_of_the_queue_finds_the_same_queue(self) -> None:
        """Nothing but the statuses is kept: a new controller over the same Canaries
        (listed in another order) gives the same answers."""
        objects = [stored("a", "Progressing"), stored("b", "Queued", 3),
                   stored("c", "Queued", 1), stored("d", "Queued", 2), stored("e", "Succeeded")]
        before = rollouts(2, *objects)
        after = rollouts(2, *reversed(objects))
        assert before.due(NOW) == after.due(NOW) == [("shop", "c")]
        assert before.slot(released("e"), "rev-2", NOW) == after.slot(
            released("e"), "rev-2", NOW)


class TestRace:
    def test_workers_woken_together_start_no_more_than_the_limit(self) -> None:
        """A ConfigMap shared by five targets: their workers decide one after the other
        before the cache shows any of their writes; two start, three queue."""
        worlds = fleet(5)
        queue = rollouts(2, *(as_stored(w) for w in worlds.values()))
        for world in worlds.values():
            world.target_revision = "rev-2"
            decide(queue, world)
        phases = [w.phase() for w in worlds.values()]
        assert phases.count(Phase.PROGRESSING) == 2 and phases.count(Phase.QUEUED) == 3

    def test_a_slot_given_back_is_free_before_the_cache_shows_it(self) -> None:
        worlds = fleet(2)
        first, second = worlds.values()
        queue = rollouts(1, *(as_stored(w) for w in worlds.values()))
        first.target_revision = second.target_revision = "rev-2"
        decide(queue, first)
        decide(queue, second)
        assert (first.phase(), second.phase()) == (Phase.PROGRESSING, Phase.QUEUED)
        while first.phase() != Phase.SUCCEEDED:
            advance(worlds, 5)
            decide(queue, first)
        decide(queue, second)
        assert second.phase() == Phase.PROGRESSING

    def test_a_deleted_canarys_rollout_no_longer_counts(self) -> None:
        worlds = fleet(2)
        first, second = worlds.values()
        cache = Cache(*(as_stored(w) for w in worlds.values()))
        queue = RolloutQueue(cast(Reflector, cache), 1)
        first.target_revision = second.target_revision = "rev-2"
        decide(queue, first)
        del cache.objects[("shop", first.canary.name)]
        queue.forget("shop", first.canary.name)
        cache.objects[("shop", first.canary.name)] = stored(first.canary.name)  # a new one
        decide(queue, second)
        assert second.phase() == Phase.PROGRESSING


def fleet(size: int) -> dict[str, World]:
    """Initialized Canaries c0, c1, ... of one namespace, on one clock."""
    worlds: dict[str, World] = {}
    for number in range(size):
        canary = make_canary()
        canary.metadata["name"] = f"c{number}"
        world = World(canary)
        world.run_until_quiet()
        worlds[canary.name] = world
    now = max(w.now for w in worlds.values())
    for world in worlds.values():
        world.now, world.decisions = now, []
    return worlds


def advance(worlds: dict[str, World], seconds: float) -> None:
    for world in worlds.values():
        world.advance(seconds)


def decide(queue: RolloutQueue, world: World) -> None:
    """What a worker does: ask the queue, decide, and count the decision at once."""
    world.rollout_slot = queue.slot(world.canary, world.target_revision, world.now)
    world.step()
    queue.decided("shop", world.canary.name, world.canary.status)


class Fleet:
    """Canaries of one controller whose status writes reach its cache late, in order,
    as a watch delivers them; a restart relists them all."""

    def __init__(self, size: int, limit: int) -> None:
        self.worlds = fleet(size)
        self.limit = limit
        self.cache = Cache(*(as_stored(w) for w in self.worlds.values()))
        self.queue = RolloutQueue(cast(Reflector, self.cache), limit)
        self.unseen: list[JSON] = []
        #: When each Canary waiting for a slot first had to (the test's own record).
        self.joined: dict[str, datetime] = {}

    def decide(self, name: str) -> None:
        world = self.worlds[name]
        before = world.phase()
        decide(self.queue, world)
        self.unseen.append(as_stored(world))
        if world.phase() == Phase.QUEUED:
            self.joined.setdefault(name, world.now)
            assert parse_time(world.canary.status.queued_at or "") == self.joined[name]
        if before not in ROLLING and world.phase() in ROLLING:
            self._check_nobody_overtaken(name)

    def _check_nobody_overtaken(self, name: str) -> None:
        """First come, first served: a rollout that starts leaves enough slots for every
        Canary that joined the queue before it."""
        mine = (self.joined.pop(name, self.worlds[name].now), name)
        ahead = [other for other, w in self.worlds.items() if w.phase() == Phase.QUEUED
                 and (self.joined[other], other) < mine]
        assert self.rolling() + len(ahead) <= self.limit, (name, ahead)

    def deliver(self, count: int) -> None:
        for obj in self.unseen[:count]:
            self.cache.objects[("shop", obj["metadata"]["name"])] = obj
        self.unseen = self.unseen[count:]

    def restart(self) -> None:
        self.deliver(len(self.unseen))
        self.queue = RolloutQueue(cast(Reflector, self.cache), self.limit)

    def rolling(self) -> int:
        return sum(w.phase() in ROLLING for w in self.worlds.values())


@settings(max_examples=25, deadline=None)
@given(size=st.integers(2, 5), limit=st.integers(1, 3),
       releases=st.lists(st.integers(0, 6), min_size=5, max_size=5),
       restart=st.one_of(st.none(), st.integers(1, 30)),
       shuffler=st.randoms(use_true_random=False))
def test_whatever_the_timing_the_limit_holds_first_come_first_served(
        size: int, limit: int, releases: list[int], restart: int | None,
        shuffler: random.Random) -> None:
    """Canaries released at once or apart, their workers deciding in any order, their
    writes reaching the cache late, the controller restarted at any point: never more
    than the limit roll out together, nobody is overtaken, and every rollout ends."""
    world = Fleet(size, limit)
    names = sorted(world.worlds)
    release_at = dict(zip(names, releases, strict=False))
    for moment in range(300):
        for name, release in release_at.items():
            if release == moment:
                world.worlds[name].target_revision = "rev-2"
        if moment == restart:
            world.restart()
        shuffler.shuffle(names)
        for name in names:
            world.decide(name)
            world.deliver(shuffler.randint(0, len(world.unseen)))
            assert world.rolling() <= limit
        if moment > max(release_at.values()) and all(
                w.canary.status.last_promoted_spec == "rev-2" for w in world.worlds.values()):
            return
        advance(world.worlds, 5)
    raise AssertionError(f"rollouts never ended: {[w.phase() for w in world.worlds.values()]}")


class TestWakeups:
    """A Canary that leaves a rollout (or the queue) wakes the queued Canaries that may
    start now, and only those."""

    def controller(self, limit: int, *objects: JSON) -> tuple[Controller, list[str]]:
        """A started controller whose cache holds ``objects``; the names it wakes."""
        controller = Controller(cast(KubeClient, object()),
                                Settings(rollouts=RolloutSettings(max_concurrent=limit)),
                                metrics=ControllerMetrics(process_metrics=False))
        controller._started = True
        woken: list[str] = []
        controller._wake = (  # type: ignore[method-assign]
            lambda namespace, name: woken.append(name))
        for obj in objects:
            controller.caches.canaries._put(("shop", obj["metadata"]["name"]), obj)
        return controller, woken

    async def events(self, controller: Controller, *events: tuple[str, JSON]) -> None:
        """The watch delivers ``events`` in one pass of the event loop."""
        for kind, obj in events:
            controller._canary_event(kind, obj)
        await asyncio.sleep(0)

    async def test_the_end_of_a_rollout_wakes_the_head_of_the_queue(self) -> None:
        done = stored("a", "Succeeded")
        controller, woken = self.controller(1, done, stored("b", "Queued", 2),
                                            stored("c", "Queued", 1))
        await self.events(controller, ("MODIFIED", done))
        assert woken == ["a", "c"]

    async def test_a_rollout_under_way_wakes_no_one_else(self) -> None:
        rolling = stored("a", "Progressing")
        controller, woken = self.controller(2, rolling, stored("b", "Queued", 1))
        await self.events(controller, ("MODIFIED", rolling))
        assert woken == ["a"]

    async def test_a_deleted_rollout_frees_its_slot(self) -> None:
        gone = stored("a", "Progressing")
        controller, woken = self.controller(1, stored("b", "Queued", 1))
        controller.rollouts.decided("shop", "a", released("a").status.model_copy(
            update={"phase": Phase.PROGRESSING}))
        await self.events(controller, ("DELETED", gone))
        assert woken == ["b"]

    async def test_a_relist_looks_at_the_queue_once(self) -> None:
        """Thousands of events at once (a re-list after 410 Gone) cost one look."""
        objects = [stored(f"rest-{n}", "Succeeded") for n in range(50)]
        controller, woken = self.controller(1, *objects, stored("b", "Queued", 1))
        looks = 0
        due = controller.rollouts.due

        def counted(now: datetime) -> list[tuple[str, str]]:
            nonlocal looks
            looks += 1
            return due(now)

        controller.rollouts.due = counted  # type: ignore[method-assign]
        await self.events(controller, *(("MODIFIED", obj) for obj in objects))
        assert looks == 1 and woken.count("b") == 1

    async def test_without_a_limit_no_queue_is_woken(self) -> None:
        done = stored("a", "Succeeded")
        controller, woken = self.controller(0, done, stored("b", "Queued", 1))
        await self.events(controller, ("MODIFIED", done))
        assert woken == ["a"]
