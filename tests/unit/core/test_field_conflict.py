"""A GitOps controller that keeps setting the target's replicas back: said once, with the
manager and the fix, and never fought (no churn of pods), never a new revision."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from canary.core import ScaleCanary
from canary.core.decide.field_conflict import FIELD_CONFLICT
from canary.core.observation import FieldOwner
from canary.core.timefmt import parse_time
from canary.models.canary import Condition, Phase
from tests.unit.core.kstatus_model import compute
from tests.unit.core.lifecycle import as_stored
from tests.unit.core.scenario import World, initialized, present
from tests.unit.core.test_argocd_health import health

FLUX = "kustomize-controller"


def whole_seconds(moment: datetime) -> datetime:
    """A time as managedFields records it."""
    return moment.replace(microsecond=0)


def reapply(world: World, replicas: int = 2, manager: str = FLUX) -> bool:
    """The GitOps controller applies its manifest (with ``replicas``) now: the replicas
    and their ownership are its own again. True if that started pods (from zero)."""
    started = world.target_replicas == 0 and replicas > 0
    if world.target_replicas != replicas or world.replicas_owner is None:
        world.target_replicas = replicas
        world.replicas_owner = FieldOwner(manager, "Apply", whole_seconds(world.now))
    return started


def conflict(world: World) -> Condition | None:
    return next((c for c in world.canary.status.conditions or []
                 if c.type == FIELD_CONFLICT), None)


def scalings(world: World) -> list[ScaleCanary]:
    return [a for d in world.decisions for a in d.actions if isinstance(a, ScaleCanary)]


def fought_once() -> World:
    """An Initialized Canary whose target a GitOps controller set back to 2 replicas
    after canary scaled it to zero, and the decision that saw it."""
    world = initialized()
    world.advance(5)
    reapply(world)
    world.step()
    return world


def test_a_reset_after_the_scale_down_is_said_with_the_manager_and_the_fix() -> None:
    world = fought_once()
    found = conflict(world)
    assert found is not None and found.status == "True"
    assert found.reason == "ReplicasOwnedElsewhere"
    assert "Deployment shop/web: spec.replicas is set back to 2 by kustomize-controller" \
        in found.message
    assert "remove `replicas` from the manifest in Git" in found.message
    warnings = [e for d in world.decisions for e in d.events if e.type == "Warning"]
    assert [e.reason for e in warnings] == ["FieldConflict"]
    assert warnings[0].message == found.message


def test_canary_leaves_the_replicas_to_the_other_manager() -> None:
    world = fought_once()
    assert scalings(world) == []
    assert world.target_replicas == 2


def test_a_reset_is_no_new_revision_and_no_analysis() -> None:
    world = fought_once()
    assert world.phase() == Phase.INITIALIZED
    assert world.canary.status.last_applied_spec == "rev-1"
    assert not any(d.needs_metrics or d.needs_hooks for d in world.decisions)
    assert "NewRevision" not in world.reasons()


def test_kstatus_still_reads_the_canary_as_current() -> None:
    """Flux's wait and health checks are not held up by the conflict."""
    world = fought_once()
    obj = {"metadata": {"generation": 1}, "status": world.canary.status.to_api()}
    assert compute(obj)[0] == "Current"
    types = {c.type for c in world.canary.status.conditions or []}
    assert "Stalled" not in types and "Reconciling" not in types


def test_argo_cd_reads_the_canary_as_healthy() -> None:
    assert health(as_stored(fought_once()))[0] == "Healthy"


def test_the_replicas_the_target_had_before_canary_scaled_it_are_no_reset() -> None:
    """The cache may show the target as its creator left it until canary's scale-down
    arrives: written before the phase began, that is no reset."""
    world = initialized()
    world.target_replicas = 2
    world.replicas_owner = FieldOwner(FLUX, "Apply", whole_seconds(world.now))
    decision = world.step()
    assert conflict(world) is None
    assert ScaleCanary(0) in decision.actions


def test_an_owner_without_a_time_is_not_taken_for_a_reset() -> None:
    world = initialized()
    world.advance(5)
    world.target_replicas = 2
    world.replicas_owner = FieldOwner(FLUX, "Update", None)
    assert ScaleCanary(0) in world.step().actions
    assert conflict(world) is None


def test_nobody_else_owning_the_replicas_is_no_conflict() -> None:
    """A person's ``kubectl scale`` (the scale subresource, never an owner here) is put
    back to zero without a word."""
    world = initialized()
    world.advance(5)
    world.target_replicas = 3
    assert ScaleCanary(0) in world.step().actions
    assert conflict(world) is None


@given(st.lists(st.floats(min_value=0.5, max_value=120.0), min_size=1, max_size=30),
       st.integers(min_value=1, max_value=5))
def test_repeated_resets_start_pods_once_and_are_said_once(
        gaps: list[float], replicas: int) -> None:
    """However often the manager re-applies, pods are started from zero once, by its
    first reset, and one Warning event says so; a reset within the very second canary
    scaled down cannot be told from the replicas before it, and costs one more start."""
    world = initialized()
    began = parse_time(present(world.canary.status.last_transition_time))
    starts = later_starts = 0
    for gap in gaps:
        world.advance(gap)
        started = reapply(world, replicas)
        starts += started
        later_starts += started and whole_seconds(world.now) > began
        world.step()
    assert later_starts <= 1 and starts <= 2
    warnings = [e for d in world.decisions for e in d.events if e.type == "Warning"]
    assert len(warnings) == (1 if conflict(world) is not None else 0)
    assert conflict(world) is not None or starts == 0 or world.target_replicas == 0
    assert world.phase() == Phase.INITIALIZED


def test_the_condition_goes_once_nobody_else_owns_the_replicas() -> None:
    """The manifest lost its ``replicas``: the field is nobody's (defaulted), and canary
    scales the target to zero again."""
    world = fought_once()
    world.advance(10)
    world.replicas_owner = None
    world.target_replicas = 1
    decision = world.step()
    assert conflict(world) is None
    assert ScaleCanary(0) in decision.actions
    assert [e.reason for e in decision.events] == ["FieldConflictResolved"]
    world.advance(10)
    assert not world.step().events


def test_a_rollout_under_the_conflict_runs_on_the_other_managers_replicas() -> None:
    """A new revision is analysed and promoted as usual; the canary keeps the replicas
    the other manager gives it, before, during and after, and nothing is said twice."""
    world = fought_once()
    world.target_revision = "rev-2"
    for _ in range(200):
        world.advance(world.step().wake_after or 1)
        reapply(world)
        if world.phase() == Phase.SUCCEEDED:
            break
    assert world.phase() == Phase.SUCCEEDED
    assert world.canary.status.last_promoted_spec == "rev-2"
    assert scalings(world) == []
    assert world.reasons().count("FieldConflict") == 1
    assert conflict(world) is not None


def test_a_canary_with_no_pod_is_still_scaled_up_for_its_analysis() -> None:
    """A manager that owns the replicas at zero does not keep the analysis from pods."""
    world = fought_once()
    world.target_replicas = 0
    world.target_revision = "rev-2"
    decision = world.step()
    assert ScaleCanary(None) in decision.actions
