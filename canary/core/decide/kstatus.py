"""The conditions GitOps tools wait on: Ready, Reconciling and Stalled.

kstatus (sigs.k8s.io/cli-utils/pkg/kstatus, which Flux's ``wait`` and ``healthChecks``
use) computes a custom resource's status from, in order: a deletionTimestamp
(Terminating); ``status.observedGeneration`` behind ``metadata.generation``
(InProgress); ``Reconciling=True`` (InProgress); ``Stalled=True`` (Failed); and last
``Ready`` (True: Current; False or Unknown: InProgress). Reconciling and Stalled follow its
abnormal-true polarity: each is present only while True and removed otherwise, and a
stalled Canary is never also reconciling.

Ready answers the question of someone who released a revision: is it delivered? False
while a rollout is under way (reason: the phase) and after a rollback (RolledBack), as
well as for a problem the Canary has (MissingReference, Conflict, ...), which keeps its
reason; True (TargetFound) once the primary serves the released revision. So
``kubectl wait --for=condition=Ready`` returns after the promotion, not before.

A suspended or paused Canary keeps Ready and says why it does not move in Reconciling.
"""

from __future__ import annotations

from canary.core.conditions import ROLLOUT_REASONS, STALLING_REASONS, Status, condition
from canary.core.decide.draft import PAUSED, PROMOTED, READY, RECONCILING, STALLED
from canary.core.observation import Observation
from canary.models.canary import Canary, CanaryStatus, Condition, Phase

#: Phases in which a rollout is under way.
UNDER_WAY = (Phase.INITIALIZING, Phase.WAITING, Phase.QUEUED, Phase.PROGRESSING,
             Phase.PROMOTING, Phase.FINALISING)
#: Phases in which the Canary rests between rollouts.
AT_REST = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED)

Verdict = tuple[Status, str, str]


def summarise(canary: Canary, obs: Observation, status: CanaryStatus) -> CanaryStatus:
    """``status`` (just decided for ``canary``) with Ready, Reconciling and Stalled as
    kstatus reads them."""
    status = status.model_copy(deep=True)
    frozen = _frozen(canary, obs, status)
    if frozen is None:
        ready = _ready(status)
        if ready is not None:
            _put(status, READY, ready, _find(canary.status, READY), obs)
    stalled = _stalled(canary, obs, status)
    _put(status, STALLED, _true(stalled), _find(status, STALLED), obs)
    reconciling = None if stalled is not None else _reconciling(obs, status, frozen)
    _put(status, RECONCILING, _true(reconciling), _find(status, RECONCILING), obs)
    return status


def _frozen(canary: Canary, obs: Observation, status: CanaryStatus) -> tuple[str, str] | None:
    """Why the decision left the Canary where it was (its reason and message), or None
    when it moved as it should."""
    if canary.spec.suspend:
        return "Suspended", "spec.suspend is set: the rollout stays where it is until unset"
    paused = _find(status, PAUSED)
    if obs.requests.paused and paused is not None and paused.status == "True":
        return paused.reason, paused.message
    return None


def _ready(status: CanaryStatus) -> Verdict | None:
    """Ready as the phase says, when the decision found no problem; None to keep it."""
    if _problem(status):
        return None
    message = _promoted_message(status)
    if status.phase is None or status.phase in UNDER_WAY:
        return "False", str(status.phase or Phase.INITIALIZING), message
    if status.phase == Phase.FAILED:
        return "False", "RolledBack", message
    return None  # Initialized or Succeeded: the TargetFound the decision wrote


def _stalled(canary: Canary, obs: Observation, status: CanaryStatus) -> tuple[str, str] | None:
    """Why the Canary cannot move on without someone acting: a problem no wait fixes, a
    rollback (until a new revision comes), an initialization past its deadline."""
    ready, promoted = _find(status, READY), _find(status, PROMOTED)
    if ready is not None and ready.status == "False" and ready.reason in STALLING_REASONS:
        return ready.reason, ready.message
    if status.phase == Phase.FAILED and obs.target.revision == status.last_applied_spec:
        if promoted is not None and promoted.status == "False":
            return promoted.reason, promoted.message
        return "RolledBack", (f"revision {status.last_applied_spec} of "
                              f"{canary.spec.target_ref.name} was rolled back")
    if status.phase == Phase.INITIALIZING and promoted is not None and \
            promoted.status == "False":
        return promoted.reason, promoted.message
    return None


def _reconciling(obs: Observation, status: CanaryStatus,
                 frozen: tuple[str, str] | None) -> tuple[str, str] | None:
    """What the rollout under way is doing, or why it does not move: a phase of a
    rollout, a new revision held, or the pause or suspension."""
    held = status.phase in AT_REST and obs.target.exists and \
        obs.target.revision != status.last_applied_spec
    if not held and status.phase not in UNDER_WAY:
        return None
    if frozen is not None:
        return frozen
    if held:
        ready = _find(status, READY)
        return "RevisionHeld", (ready.message if ready is not None and ready.status == "False"
                                else f"new revision {obs.target.revision} detected")
    return str(status.phase), _promoted_message(status)


def _problem(status: CanaryStatus) -> bool:
    """Whether Ready is False for a problem of the Canary's (not for where its rollout
    stands)."""
    ready = _find(status, READY)
    return ready is not None and ready.status == "False" and \
        ready.reason not in ROLLOUT_REASONS


def _promoted_message(status: CanaryStatus) -> str:
    promoted = _find(status, PROMOTED)
    if promoted is not None and promoted.message:
        return promoted.message
    return f"phase {status.phase or Phase.INITIALIZING}"


def _find(status: CanaryStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions or [] if c.type == type_), None)


def _true(why: tuple[str, str] | None) -> Verdict | None:
    return None if why is None else ("True", *why)


def _put(status: CanaryStatus, type_: str, verdict: Verdict | None,
         previous: Condition | None, obs: Observation) -> None:
    """Set the condition ``type_``, or remove it for None (abnormal-true polarity);
    ``previous`` is how it stood when last written, for its transition time."""
    others = [c for c in status.conditions or [] if c.type != type_]
    if verdict is None:
        status.conditions = others or None
        return
    value, reason, message = verdict
    made = condition(type_, value, reason, message, previous=previous,
                     generation=obs.generation, now=obs.now)
    status.conditions = sorted([*others, made], key=lambda c: c.type)
