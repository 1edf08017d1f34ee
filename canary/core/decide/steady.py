"""Creating the primary, and waiting for (or refusing, or queueing) a new revision."""

from __future__ import annotations

import re

from canary.core.actions import EnsurePrimary, Route, ScaleCanary
from canary.core.decide.draft import PROMOTED, TRAFFIC_SUFFICIENT, Draft
from canary.core.decide.readiness import revision_held
from canary.core.decide.rollback import rollback
from canary.core.timefmt import format_time
from canary.models.canary import Phase, WebhookType


def initialize(draft: Draft) -> None:
    target, primary = draft.obs.target, draft.obs.primary
    assert target.revision is not None
    if draft.status.phase is None:
        draft.phase(Phase.INITIALIZING)
        draft.start_step()
        draft.condition(PROMOTED, "Unknown", "Initializing",
                       f"creating {draft.target_name}-primary")
        draft.event("Normal", "Initializing",
                   f"Creating {draft.target_name}-primary and routing all traffic to it")
    draft.actions.append(EnsurePrimary(target.revision))
    if primary.exists and primary.ready and primary.revision == target.revision:
        # Only now does the apex Service select the primary's pods: routing before the
        # primary is ready would leave the Service without endpoints.
        draft.actions += [Route(0), ScaleCanary(0)]
        draft.phase(Phase.INITIALIZED)
        draft.status.last_applied_spec = target.revision
        draft.status.last_promoted_spec = target.revision
        draft.status.canary_weight = 0
        draft.status.failed_checks = 0
        draft.status.iterations = 0
        draft.start_step()
        draft.condition(PROMOTED, "True", "Initialized",
                       f"{draft.target_name}-primary serves revision {target.revision}")
        draft.event("Normal", "Initialized", f"{draft.target_name}-primary is ready and takes "
                   f"all traffic; {draft.target_name} is scaled to zero")
        return
    remaining = draft.deadline() - draft.seconds_in_step()
    if remaining <= 0:
        message = (f"{draft.target_name}-primary not ready after {draft.deadline():.0f}s: "
                   f"{primary.detail or 'waiting for its rollout'}")
        if draft.condition(PROMOTED, "False", "ProgressDeadlineExceeded", message):
            draft.event("Warning", "ProgressDeadlineExceeded", message)
    else:
        draft.wake_in(remaining)


def steady(draft: Draft) -> None:
    settle_traffic(draft)
    revision = draft.obs.target.revision
    if revision == draft.status.last_applied_spec:
        if draft.status.phase in (Phase.WAITING, Phase.QUEUED):  # the change was withdrawn
            draft.phase(Phase.SUCCEEDED if revision == draft.status.last_promoted_spec
                       else Phase.FAILED)
        draft.status.queued_at = None
        return
    if draft.obs.requests.abort_revision == revision:
        # Refused before it started (typically while held by confirm-rollout or queued):
        # the revision is recorded as failed, so only a newer one starts a rollout.
        draft.status.last_applied_spec = revision
        draft.status.queued_at = None
        draft.status.failed_checks = 0
        draft.status.iterations = 0
        draft.start_step()
        rollback(draft, "AbortRequested", f"Revision {revision} of {draft.target_name} "
                  "refused with `canary abort` before its rollout started")
        return
    if revision_held(draft, str(revision)):
        return
    approved = draft.obs.requests.approve_revision == revision
    confirmed = True if approved else draft.gate("confirm-rollout")
    if confirmed is None:
        return
    if not confirmed:
        message = (f"New revision {revision} of {draft.target_name} waits for rollout "
                   f"approval: {draft.gate_failures('confirm-rollout')}")
        if draft.status.phase != Phase.WAITING:
            draft.event("Normal", "WaitingForApproval", message)
        draft.phase(Phase.WAITING)
        draft.condition(PROMOTED, "Unknown", "WaitingForApproval", message)
        draft.wake_in(draft.interval())
        return
    if draft.obs.rollout_slot is not None:
        queue(draft, str(revision), draft.obs.rollout_slot)
        return
    start_revision(draft, f"New revision {revision} of {draft.target_name} detected")


def queue(draft: Draft, revision: str, why: str) -> None:
    """No rollout slot is free for the revision (``why`` names its place in the queue):
    it waits its turn, said once. It joins the queue now, or keeps the place it has
    (``status.queuedAt``) when a newer revision replaces a queued one or a gate held it
    in between; the controller wakes it when a slot frees, and the analysis interval
    brings its place up to date meanwhile."""
    message = f"New revision {revision} of {draft.target_name} waits for a rollout slot: {why}"
    if draft.status.phase != Phase.QUEUED:
        draft.event("Normal", "Queued", message)
    draft.phase(Phase.QUEUED)
    if draft.status.queued_at is None:
        draft.status.queued_at = format_time(draft.now, precise=True)
    draft.condition(PROMOTED, "Unknown", "Queued", message)
    draft.wake_in(draft.interval())


def settle_traffic(draft: Draft) -> None:
    """All traffic on the primary and the canary scaled to zero, unless the primary has
    no pod to serve it: a rollback then waits, with the canary still serving its share.
    EnsurePrimary restores the primary (a deleted one is recreated while the target still
    has the promoted template; its replicas are put back in any case)."""
    draft.actions.append(EnsurePrimary(str(draft.status.last_promoted_spec)))
    if (draft.status.canary_weight or 0) > 0 and draft.primary_unavailable() is not None:
        return
    draft.status.canary_weight = 0
    draft.actions += [Route(0), ScaleCanary(0)]


def start_revision(draft: Draft, why: str) -> None:
    revision = draft.obs.target.revision
    draft.status.last_applied_spec = revision
    draft.status.queued_at = None
    draft.status.canary_weight = 0
    draft.status.failed_checks = 0
    draft.status.iterations = 0
    draft.status.canary_unready_since = None
    draft.status.no_requests_since = None
    draft.status.no_evidence_since = None
    draft.status.metrics_unavailable_since = None
    draft.status.analysis_started_at = None
    draft.status.judge = None
    draft.drop_condition(TRAFFIC_SUFFICIENT)
    draft.start_step()
    draft.actions = [a for a in draft.actions if not isinstance(a, Route | ScaleCanary)]
    if draft.canary.spec.skip_analysis:
        draft.phase(Phase.PROMOTING)
        draft.condition(PROMOTED, "Unknown", "Promoting", f"promoting revision {revision}")
        draft.event("Normal", "Promoting", f"{why}; skipAnalysis is set: promoting it")
        draft.actions += [Route(0), ScaleCanary(0), EnsurePrimary(str(revision))]
        draft.wake_in(draft.deadline())
        return
    draft.phase(Phase.PROGRESSING)
    draft.condition(PROMOTED, "Unknown", "Progressing", f"analysing revision {revision}")
    draft.event("Normal", "NewRevision", f"{why}; starting canary analysis")
    unexcluded = _load_sent_to_the_canary(draft)
    if unexcluded is not None:
        draft.event("Warning", "JudgedLoadNotExcluded", unexcluded)
    draft.actions += [Route(0), ScaleCanary(None)]
    draft.wake_in(draft.deadline())


#: The host of a webhook's URL.
_URL_HOST = re.compile(r"^https?://(?:[^@/?#]*@)?([^:/?#]+)")


def _load_sent_to_the_canary(draft: Draft) -> str | None:
    """Why the judge would see load that only the canary gets: a rollout or pre-rollout
    hook's command (a load tester's ``hey ... http://<service>-canary...``) targets the
    canary's Service, and the load tester (named after the hook's host) is not in
    ``excludeSources``. None when nothing suggests so."""
    analysis = draft.canary.spec.analysis
    if analysis.judge is None:
        return None
    service = draft.canary.spec.service.name or draft.target_name
    canary_host = re.compile(rf"(?<![-a-z0-9.]){re.escape(service)}-canary(?![-a-z0-9])")
    excluded = set(analysis.judge.exclude_sources or ())
    for hook in analysis.webhooks or ():
        if hook.type not in (WebhookType.ROLLOUT, WebhookType.PRE_ROLLOUT) or \
                not canary_host.search((hook.metadata or {}).get("cmd", "")):
            continue
        host = _URL_HOST.match(hook.url)
        source = host.group(1).split(".")[0] if host else None
        if source is not None and source in excluded:
            continue
        who = f"probably {source}, the workload behind {host.group(1)}" if host and source \
            else "the load tester's workload"
        return (f"The {hook.type} hook {hook.name} sends load straight to {service}-canary, "
                f"which only the canary serves, while the judge compares {draft.target_name} "
                f"with its primary on requests that reach either at random: add the load "
                f"tester ({who}) to analysis.judge.excludeSources, or its requests bias the "
                "comparison (docs/judge.md)")
    return None
