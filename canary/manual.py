"""Manual gating: ``canary promote | abort | pause | resume NAME``.

Each command records a person's decision as an annotation on the Canary, so it survives a
controller restart and shows in ``kubectl describe``; the controller sees it through its
watch at once. Promote and abort name the revision they apply to, so a request left
behind never touches a later rollout.
"""

from __future__ import annotations

from pathlib import Path

from canary.core import template_hash
from canary.errors import CanaryError
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r

PROMOTE_ANNOTATION = "canary.dev/promote"
ABORT_ANNOTATION = "canary.dev/abort"
PAUSED_ANNOTATION = "canary.dev/paused"
ACTIONS = ("promote", "abort", "pause", "resume")


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
            if status.get("phase") == "Waiting":
                # A held rollout: the request is for the revision waiting to start.
                target = await client.get(r.DEPLOYMENTS, canary["spec"]["targetRef"]["name"],
                                          namespace)
                revision = template_hash(target["spec"]["template"])
            elif status.get("phase") not in ("Progressing", "Promoting"):
                raise CanaryError(f"Canary {namespace}/{name} is {status.get('phase')}: "
                                  f"there is no rollout to {action}")
            key = PROMOTE_ANNOTATION if action == "promote" else ABORT_ANNOTATION
            annotations = {key: str(revision)}
            said = f"{namespace}/{name}: {action} of revision {revision} requested"
        await client.merge_patch(r.CANARIES, name, {"metadata": {"annotations": annotations}},
                                 namespace)
        return said
