"""Canaries in every phase and stop of their life, as the decision leaves them: the
statuses GitOps tools read, produced by driving a World (not written by hand)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from canary.models.canary import Phase
from tests.unit.core.scenario import World, initialized, make_canary, with_request

#: A name for the moment, and the Canary as the API server would hold it then.
Moment = tuple[str, dict[str, Any]]


def as_stored(world: World) -> dict[str, Any]:
    """The Canary in its wire form, with the generation the decision observed."""
    obj = world.canary.to_api()
    obj["metadata"]["generation"] = world.observe().generation
    return obj


def promotion() -> list[Moment]:
    """Initializing, Initialized, then rev-2 through Progressing, Promoting and
    Finalising to Succeeded: every phase a successful rollout passes."""
    world = World(make_canary())
    moments: list[Moment] = []
    world.step()
    moments.append(("created", as_stored(world)))
    world.run_until_quiet()
    moments.append(("initialized", as_stored(world)))
    world.target_revision = "rev-2"
    for _ in range(100):
        decision = world.step()
        moments.append((str(world.phase()), as_stored(world)))
        if decision.wake_after is None:
            break
        world.advance(decision.wake_after)
    assert world.phase() == Phase.SUCCEEDED, world.phase()
    return moments


def rollback() -> World:
    """rev-2 rolled back: its success rate failed the analysis twice."""
    world = initialized()
    world.target_revision = "rev-2"
    world.success_rate = 50.0
    world.run_until_quiet()
    assert world.phase() == Phase.FAILED
    return world


def paused() -> World:
    """rev-2's analysis paused with ``canary pause``."""
    world = initialized()
    world.target_revision = "rev-2"
    world.step()
    world.requests = replace(world.requests, paused=True)
    world.step()
    assert world.phase() == Phase.PROGRESSING
    return world


def suspended() -> World:
    """rev-2's analysis with spec.suspend set."""
    world = initialized()
    world.target_revision = "rev-2"
    world.step()
    world.canary.spec.suspend = True
    world.step()
    return world


def waiting() -> World:
    """rev-2 held by a closed confirm-rollout gate."""
    webhooks = [{"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}]
    world = World(make_canary(webhooks=webhooks))
    world.hooks = {"confirm-rollout": False}
    world.run_until_quiet()
    world.target_revision = "rev-2"
    world.step()
    assert world.phase() == Phase.WAITING
    return world


def queued() -> World:
    """rev-2 waiting for a rollout slot (the controller's limit on concurrent rollouts)."""
    world = initialized()
    world.rollout_slot = FULL
    world.target_revision = "rev-2"
    world.step()
    assert world.phase() == Phase.QUEUED
    return world


def conflicting() -> World:
    world = World(make_canary(), conflict="Canary older-web already claims Deployment web")
    world.step()
    return world


def missing_reference() -> World:
    """An Initialized Canary whose MetricTemplate went away: Ready=False
    MissingReference, and rev-2 held."""
    world = initialized()
    world.missing_references = ("MetricTemplate shop/errors not found",)
    world.target_revision = "rev-2"
    world.step()
    return world


def every_moment() -> list[Moment]:
    """A Canary at every phase, and at each stop (pause, suspension, gate, problem)."""
    moments = promotion()
    moments += [("Failed", as_stored(rollback())), ("paused", as_stored(paused())),
                ("suspended", as_stored(suspended())), ("Waiting", as_stored(waiting())),
                ("Queued", as_stored(queued())),
                ("conflict", as_stored(conflicting())),
                ("missing reference", as_stored(missing_reference()))]
    return moments


#: What can happen to a Canary between two decisions, for property tests.
HAPPENINGS = ("tick", "fail", "pass", "revision", "pause", "resume", "abort", "promote",
              "unready", "ready", "slots full", "slot free")

#: Why a new revision must wait, as the controller says when the rollout slots are full.
FULL = "1st in the queue of 1; 1 of 1 rollout running (--max-concurrent-rollouts 1)"


def happen(world: World, kind: str, revisions: Iterator[str]) -> None:
    """Let ``kind`` (one of HAPPENINGS) happen to ``world``; a new revision is the next of
    ``revisions``."""
    if kind in ("fail", "pass"):
        world.success_rate = 50.0 if kind == "fail" else 100.0
    elif kind == "revision":
        world.target_revision = next(revisions)
    elif kind in ("pause", "resume"):
        world.requests = replace(world.requests, paused=kind == "pause")
    elif kind in ("unready", "ready"):
        world.target_ready = kind == "ready"
    elif kind in ("abort", "promote"):
        world.requests = with_request(world.requests, kind, world.target_revision)
    elif kind in ("slots full", "slot free"):
        world.rollout_slot = FULL if kind == "slots full" else None
