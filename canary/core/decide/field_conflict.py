"""Another field manager that keeps setting the target's replicas: said once, never fought.

Between rollouts canary scales the target to zero. When a GitOps controller re-applies
a manifest with ``replicas`` (Flux's kustomize-controller, Argo CD), it sets them back at
every reconcile; scaling down again each time would start and kill the target's pods
forever, for nothing: Git wins at the next reconcile anyway. So after the first time
another manager sets the replicas back, canary leaves them to it: ``FieldConflict=True``
and one Warning event name that manager and the fix, and no ScaleCanary action is carried
out while the target runs pods and that manager owns its replicas (the idle pods are
the price, and the message says so). Once nobody else owns the replicas (the manifest
lost its ``replicas``), the condition goes and canary scales the target down again.

A reset is told from the replicas the target had before canary first scaled it down by
time: the other manager's entry changed after the phase that wants zero began (both in
whole seconds), so the cache's view of the target just before canary's own write, which
shows the creator owning the replicas, is no reset.

The condition is not one kstatus reads: Ready, Reconciling and Stalled stay what the
rollout makes them, so ``kubectl wait`` and Flux's health checks are unaffected
(docs/gitops.md).
"""

from __future__ import annotations

from dataclasses import replace

from canary.core.actions import Action, ScaleCanary
from canary.core.conditions import condition
from canary.core.decide.draft import Decision, Event
from canary.core.observation import FieldOwner, Observation
from canary.core.timefmt import parse_time
from canary.models.canary import Canary, CanaryStatus, Condition

FIELD_CONFLICT = "FieldConflict"
#: The condition's reason while another manager owns the target's replicas.
REPLICAS_OWNED = "ReplicasOwnedElsewhere"


def settle_field_conflict(canary: Canary, obs: Observation, decision: Decision) -> Decision:
    """``decision`` with the replicas left to another manager that set them back after
    canary scaled the target to zero: said once, and from then on not scaled by canary
    while that manager owns them and the target runs pods. Clears once nobody else owns
    them."""
    if not obs.target.exists:
        return decision
    owner = obs.replicas_owner
    current = _find(decision.status, FIELD_CONFLICT)
    if current is not None and owner is None:
        return _resolved(canary, obs, decision)
    if owner is None or (current is None and not _reset(obs, owner, decision)):
        return decision
    status = decision.status.model_copy(deep=True)
    made = condition(FIELD_CONFLICT, "True", REPLICAS_OWNED, _message(canary, obs, owner),
                     previous=current, generation=obs.generation, now=obs.now)
    _put(status, made)
    events = decision.events
    if current is None:
        events = (*events, Event("Warning", "FieldConflict", made.message))
    return replace(decision, status=status, events=events,
                   actions=_yielded(decision.actions, obs.target.replicas))


def _reset(obs: Observation, owner: FieldOwner, decision: Decision) -> bool:
    """Whether ``owner`` set the target's replicas back after canary began to scale it to
    zero: this decision scales it to zero, it runs pods, and the owner wrote them after
    the phase began."""
    if ScaleCanary(0) not in decision.actions or obs.target.replicas <= 0:
        return False
    began = decision.status.last_transition_time
    if owner.time is None or not began:
        return False
    return owner.time > parse_time(began)


def _yielded(actions: tuple[Action, ...], replicas: int) -> tuple[Action, ...]:
    """The actions without the scaling of a target that runs pods: its replicas are
    another manager's. A canary with no pod is still scaled up for its analysis."""
    return tuple(a for a in actions if not isinstance(a, ScaleCanary)
                 or (a.replicas is None and replicas <= 0))


def _message(canary: Canary, obs: Observation, owner: FieldOwner) -> str:
    target = f"Deployment {canary.namespace}/{canary.spec.target_ref.name}"
    replicas = obs.target.replicas
    return (f"{target}: spec.replicas is set back to {replicas} by {owner.manager} after "
            "canary scaled it to zero; canary leaves it to "
            f"{owner.manager} ({replicas} idle pod{'s' if replicas != 1 else ''} between "
            "rollouts) instead of fighting it: remove `replicas` from the manifest in Git "
            "(or let a HorizontalPodAutoscaler own it), see docs/gitops.md")


def _resolved(canary: Canary, obs: Observation, decision: Decision) -> Decision:
    """Nobody else owns the replicas any more: the condition goes, said once."""
    status = decision.status.model_copy(deep=True)
    status.conditions = [c for c in status.conditions or []
                         if c.type != FIELD_CONFLICT] or None
    message = (f"Deployment {canary.namespace}/{canary.spec.target_ref.name}: no other "
               "field manager sets spec.replicas any more; canary scales it to zero "
               "between rollouts again")
    return replace(decision, status=status,
                   events=(*decision.events, Event("Normal", "FieldConflictResolved",
                                                   message)))


def _find(status: CanaryStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions or [] if c.type == type_), None)


def _put(status: CanaryStatus, made: Condition) -> None:
    others = [c for c in status.conditions or [] if c.type != made.type]
    status.conditions = sorted([*others, made], key=lambda c: c.type)
