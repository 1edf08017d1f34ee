"""The life of a weighted canary, decided without any I/O."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.core import DecisionSettings, Route, ScaleCanary, decide
from canary.core.observation import ManualRequests
from canary.models.canary import Phase
from tests.unit.core.scenario import (
    SETTINGS,
    World,
    initialized,
    make_canary,
    promoting_on_an_unready_primary,
    with_request,
)


class TestInitialization:
    def test_the_primary_takes_over_and_the_target_scales_to_zero(self) -> None:
        world = World(make_canary())
        first = world.step()
        assert first.status.phase == Phase.INITIALIZING
        world.run_until_quiet()
        status = world.canary.status
        assert status.phase == Phase.INITIALIZED
        assert status.last_applied_spec == status.last_promoted_spec == "rev-1"
        assert world.primary_revision == "rev-1"
        assert world.target_replicas == 0 and world.weight == 0
        assert world.reasons() == ["Initializing", "Initialized"]

    def test_a_missing_target_is_a_condition_and_one_event_not_an_error(self) -> None:
        world = World(make_canary())
        decision = decide(world.canary, world.observe().__class__(
            now=world.now, target=world.observe().target.__class__(False),
            primary=world.observe().primary, generation=1), SETTINGS)
        ready = next(c for c in decision.status.conditions or [] if c.type == "Ready")
        assert (ready.status, ready.reason) == ("False", "TargetNotFound")
        assert "shop/web not found" in ready.message
        assert [e.reason for e in decision.events] == ["TargetNotFound"]
        assert decision.actions == ()
        again = decide(world.canary.model_copy(update={"status": decision.status}),
                       world.observe().__class__(now=world.now,
                                                 target=world.observe().target.__class__(False),
                                                 primary=world.observe().primary, generation=1),
                       SETTINGS)
        assert again.events == ()


class TestPromotion:
    def test_a_healthy_revision_walks_the_steps_and_is_promoted(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        weights = []
        for _ in range(50):
            decision = world.step()
            weights.append(world.weight)
            if decision.wake_after is None:
                break
            world.advance(decision.wake_after)
        status = world.canary.status
        assert status.phase == Phase.SUCCEEDED
        assert status.last_promoted_spec == "rev-2"
        assert world.primary_revision == "rev-2"
        assert world.target_replicas == 0 and world.weight == 0
        assert [w for i, w in enumerate(weights) if i == 0 or w != weights[i - 1]] == \
            [0, 10, 20, 30, 0]
        assert world.reasons() == ["NewRevision", "WeightIncreased", "WeightIncreased",
                                   "WeightIncreased", "Promoting", "Promoted"]

    def test_skip_analysis_promotes_without_moving_traffic(self) -> None:
        world = initialized(**{})
        world.canary.spec.skip_analysis = True
        world.target_revision = "rev-2"
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert world.primary_revision == "rev-2"
        assert max(d.actions[0].canary_weight if isinstance(d.actions[0], Route) else 0
                   for d in world.decisions) == 0


class TestRollback:
    def test_failing_checks_roll_back_at_the_threshold_naming_metric_value_and_bound(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.success_rate = 80.0
        world.run_until_quiet()
        status = world.canary.status
        assert status.phase == Phase.FAILED
        assert status.failed_checks == 2
        assert world.weight == 0 and world.target_replicas == 0
        assert world.primary_revision == "rev-1"
        rolled_back = [e for d in world.decisions for e in d.events if e.reason == "RolledBack"]
        assert len(rolled_back) == 1
        assert "request-success-rate 80 (must be >= 99)" in rolled_back[0].message
        assert "failed checks 2/2" in rolled_back[0].message
        promoted = next(c for c in status.conditions or [] if c.type == "Promoted")
        assert (promoted.status, promoted.reason) == ("False", "AnalysisFailed")
        assert status.last_analysis is not None
        assert status.last_analysis.results[0].value == 80.0
        assert status.last_analysis.results[0].min == 99

    def test_no_values_is_its_own_failure(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.success_rate = None
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.FAILED
        assert world.canary.status.last_analysis is not None
        assert world.canary.status.last_analysis.results[0].verdict == "NoValues"
        assert any("request-success-rate: no values for workload web" in e.message
                   for d in world.decisions for e in d.events)

    def test_a_canary_that_never_becomes_ready_fails_at_the_deadline(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.target_ready = False
        world.run_until_quiet()
        status = world.canary.status
        assert status.phase == Phase.FAILED
        assert next(c for c in status.conditions or []
                    if c.type == "Promoted").reason == "ProgressDeadlineExceeded"
        assert world.weight == 0

    def test_a_primary_that_never_becomes_ready_is_reported_at_the_deadline(self) -> None:
        world = World(make_canary())
        world.primary_rolls_out = False
        first = world.step()
        assert world.canary.status.phase == Phase.INITIALIZING
        assert first.wake_after == pytest.approx(60)  # the progress deadline
        world.advance(30)
        world.step()
        assert "ProgressDeadlineExceeded" not in world.reasons()
        world.advance(30)
        world.step()
        world.advance(60)
        world.step()
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded" and "web-primary" in \
            promoted.message
        assert world.reasons().count("ProgressDeadlineExceeded") == 1  # said once
        assert world.weight is None or world.weight == 0  # no traffic moved to nothing
        world.primary_ready = True
        world.run_until_quiet()
        assert world.phase() == Phase.INITIALIZED

    def test_a_promotion_the_primary_never_finishes_is_rolled_back_at_the_deadline(
            self) -> None:
        world = promoting_on_an_unready_primary()
        promoting_since = world.now
        world.advance(world.decisions[-1].wake_after or 1)
        while world.canary.status.phase == Phase.PROMOTING:
            decision = world.step()
            assert decision.wake_after is None or decision.wake_after <= 60
            world.advance(decision.wake_after or 1)
        assert world.canary.status.phase == Phase.FAILED
        assert (world.now - promoting_since).total_seconds() >= 60
        promoted = next(c for c in world.canary.status.conditions or []
                        if c.type == "Promoted")
        assert promoted.reason == "ProgressDeadlineExceeded"
        assert "did not finish rolling out revision rev-2" in promoted.message
        assert world.weight == 0

    def test_a_failed_revision_stays_failed_until_a_newer_one_arrives(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.success_rate = 50.0
        world.run_until_quiet()
        world.decisions.clear()
        world.step()
        assert world.canary.status.phase == Phase.FAILED and world.reasons() == []
        world.target_revision, world.success_rate = "rev-3", 100.0
        world.run_until_quiet()
        assert world.phase() == Phase.SUCCEEDED
        assert world.primary_revision == "rev-3"


class TestNewRevisionDuringAnalysis:
    def test_the_analysis_restarts_on_the_newest_revision(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        for _ in range(3):
            decision = world.step()
            world.advance(decision.wake_after or 0)
        assert world.weight > 0
        world.target_revision = "rev-3"
        restarted = world.step()
        assert restarted.status.canary_weight == 0
        assert restarted.status.last_applied_spec == "rev-3"
        assert "restarting the analysis" in restarted.events[0].message
        world.run_until_quiet()
        assert world.canary.status.phase == Phase.SUCCEEDED
        assert world.primary_revision == "rev-3"


class TestTiming:
    def test_analysis_waits_for_the_interval(self) -> None:
        world = initialized()
        world.target_revision = "rev-2"
        world.step()  # new revision
        first_weight = world.step()  # canary ready: first weight immediately
        assert world.weight == 10 and first_weight.wake_after == 10
        world.advance(4)
        early = world.step()
        assert not early.needs_metrics and world.weight == 10
        assert early.wake_after is not None and abs(early.wake_after - 6) < 1e-6

    def test_intervals_below_the_floor_are_raised_to_it(self) -> None:
        world = initialized(interval="1s")
        world.target_revision = "rev-2"
        world.step()
        decision = decide(world.canary, world.observe(),
                          DecisionSettings(min_interval=10, default_progress_deadline=60))
        assert decision.wake_after == 10

    def test_suspended_canaries_do_nothing(self) -> None:
        world = initialized()
        world.canary.spec.suspend = True
        world.target_revision = "rev-2"
        decision = world.step()
        assert decision.actions == () and decision.events == ()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["tick", "fail", "pass", "revision", "unready",
                                           "ready", "crash", "promote", "abort",
                                           "approve"]),
                          st.floats(min_value=0, max_value=30)), max_size=40))
def test_invariants_hold_whatever_happens(events: list[tuple[str, float]]) -> None:
    """Traffic never exceeds maxWeight; a scaled-down canary gets no traffic; a rollback
    leaves all traffic on the primary; each revision is promoted or rolled back at most
    once; a person's promote, abort or approval never outlives its rollout; and a crash
    that loses the actions of a decision (status written, nothing done) is repaired by
    the next decision."""
    world = initialized()
    revisions = iter(f"rev-{n}" for n in range(2, 100))
    for kind, seconds in events:
        if kind == "fail":
            world.success_rate = 50.0
        elif kind == "pass":
            world.success_rate = 100.0
        elif kind == "revision":
            world.target_revision = next(revisions)
        elif kind == "unready":
            world.target_ready = False
        elif kind == "ready":
            world.target_ready = True
        elif kind in ("promote", "abort", "approve"):
            world.requests = with_request(world.requests, kind, world.target_revision)
        world.advance(seconds)
        if kind == "crash":
            lost = decide(world.canary, world.observe(metrics=True), SETTINGS)
            world.canary = world.canary.model_copy(update={"status": lost.status})
            world.decisions.append(lost)
        decision = world.step()
        status = decision.status
        assert world.weight == (status.canary_weight or 0)
        assert 0 <= world.weight <= 30
        if any(isinstance(a, ScaleCanary) and a.replicas == 0 for a in decision.actions):
            assert world.weight == 0
        if status.phase == Phase.FAILED:
            assert world.weight == 0 and world.target_replicas == 0
        if status.phase not in (Phase.WAITING, Phase.PROGRESSING):
            assert world.requests == ManualRequests(), world.requests
    finals = [(e.reason, d.status.last_applied_spec) for d in world.decisions
              for e in d.events if e.reason in ("Promoted", "RolledBack")]
    assert len(finals) == len(set(finals))


def test_deciding_is_deterministic() -> None:
    world = initialized()
    world.target_revision = "rev-2"
    observation = world.observe()
    assert decide(world.canary, observation, SETTINGS) == decide(world.canary, observation,
                                                                  SETTINGS)


class TestReviewedEdges:
    def test_no_traffic_is_routed_before_the_primary_is_ready(self) -> None:
        world = World(make_canary())
        first = decide(world.canary, world.observe(), SETTINGS)
        assert first.status.phase == Phase.INITIALIZING
        assert not any(isinstance(a, Route) for a in first.actions)

    def test_a_brief_unreadiness_late_in_a_long_step_is_not_a_missed_deadline(self) -> None:
        world = initialized(interval="15m")
        world.target_revision = "rev-2"
        world.step()
        world.step()  # ready: weight 10, step started
        assert world.weight == 10
        world.advance(11 * 60)  # well past the 60 s deadline, but ready all along
        world.target_ready = False
        decision = world.step()
        assert decision.status.phase == Phase.PROGRESSING
        assert decision.wake_after == 60
        world.advance(30)
        world.target_ready = True
        assert world.step().status.canary_unready_since is None
        world.target_ready = False
        world.advance(1)
        assert world.step().status.phase == Phase.PROGRESSING

    def test_a_deleted_primary_is_recreated_from_the_promoted_revision(self) -> None:
        world = initialized()
        world.primary_revision, world.primary_ready = None, False
        world.step()
        assert world.primary_revision == "rev-1"
