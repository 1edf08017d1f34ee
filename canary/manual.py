"""Manual gating: ``canary promote | abort | pause | resume NAME``.

Each command records a person's decision as an annotation on the Canary, so it survives a
controller restart and shows in ``kubectl describe``; the controller sees it through its
watch at once. Promote (``canary.dev/approve`` while the rollout is held,
``canary.dev/promote`` while it is analysed) and abort name the revision they apply to,
and the controller removes them once they can no longer be served, so a request never
touches a later rollout.
"""

from __future__ import annotations

from pathlib import Path

from canary.errors import CanaryError
from canary.kube import JSON, KubeClient, NotFound
from canary.kube import resources as r
from canary.kube.helm import HELM_RELEASE_SECRET
from canary.models.annotations import (
    ABORT_ANNOTATION,
    APPROVE_ANNOTATION,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
)
from canary.targets import configs

ACTIONS = ("promote", "abort", "pause", "resume")


def refused(action: str, phase: str | None) -> str | None:
    """Why ``promote`` or ``abort`` cannot apply in ``phase``, or None when it can.

    Both act on a rollout that is held or under analysis. Once promotion has begun the
    primary already runs the new revision: there is nothing left to promote, and nothing
    an abort could restore (reverting the target's change starts a new rollout). A
    revision queued for a rollout slot can be refused, not promoted: it has no analysis
    yet to cut short, and the limit on concurrent rollouts is the controller's."""
    if phase in ("Waiting", "Progressing") or (phase == "Queued" and action == "abort"):
        return None
    if phase == "Queued":
        return ("its rollout waits for a slot (the controller's --max-concurrent-rollouts); "
                "promote it once it is Progressing")
    if phase in ("Promoting", "Finalising"):
        if action == "promote":
            return "its promotion is already under way"
        return ("its promotion is already under way and the primary runs the new "
                "revision; revert the change to the target to roll back")
    return f"there is no rollout to {action}"


async def target_revision(client: KubeClient, target: JSON, namespace: str) -> str:
    """The target's revision as the controller computes it: its pod template with the
    data of the ConfigMaps and Secrets it refers to (the controller does not watch Helm's
    release Secrets, so neither counts here)."""
    template = (target.get("spec") or {}).get("template") or {}
    found: dict[tuple[str, str], JSON | None] = {}
    for kind, config in configs.referenced(template):
        resource = r.CONFIG_MAPS if kind == configs.CONFIG_MAP else r.SECRETS
        try:
            obj: JSON | None = await client.get(resource, config, namespace)
        except NotFound:
            obj = None
        if obj is not None and obj.get("type") == HELM_RELEASE_SECRET:
            obj = None
        found[(kind, config)] = obj
    return configs.revision(template, lambda kind, config: found.get((kind, config)))


async def request(action: str, name: str, namespace: str,
                  kubeconfig: Path | None = None) -> str:
    """Record ``action`` on Canary ``namespace/name``; return what was recorded."""
    async with await KubeClient.connect(kubeconfig) as client:
        try:
            canary = await client.get(r.CANARIES, name, namespace)
        except NotFound:
            raise CanaryError(f"Canary {namespace}/{name} not found") from None
        status = canary.get("status") or {}
        if action == "pause":
            annotations: dict[str, str | None] = {PAUSED_ANNOTATION: "true"}
            said = f"{namespace}/{name}: paused (phase {status.get('phase')}, weight " \
                   f"{status.get('canaryWeight', 0)})"
        elif action == "resume":
            annotations = {PAUSED_ANNOTATION: None}
            said = f"{namespace}/{name}: resumed"
        else:
            revision = status.get("lastAppliedSpec")
            refusal = refused(action, status.get("phase"))
            if refusal is not None:
                raise CanaryError(f"Canary {namespace}/{name} is {status.get('phase')}: "
                                  f"{refusal}")
            if status.get("phase") in ("Waiting", "Queued"):
                # A held rollout: the request is for the revision waiting to start.
                target = await client.get(r.DEPLOYMENTS, canary["spec"]["targetRef"]["name"],
                                          namespace)
                revision = await target_revision(client, target, namespace)
            if action == "abort":
                key, what = ABORT_ANNOTATION, "abort"
            elif status.get("phase") == "Waiting":
                # Promoting a held rollout approves it: its analysis runs as usual.
                key, what = APPROVE_ANNOTATION, "approval"
            else:
                key, what = PROMOTE_ANNOTATION, "promote"
            annotations = {key: str(revision)}
            said = f"{namespace}/{name}: {what} of revision {revision} requested"
        await client.merge_patch(r.CANARIES, name, {"metadata": {"annotations": annotations}},
                                 namespace)
        return said
