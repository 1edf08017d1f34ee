"""What canary knows of Helm's objects in the cluster."""

from __future__ import annotations

#: The type of Helm's release Secrets: whole releases, large, numerous and never referred
#: to by a pod template, so the controller leaves them out of its caches and revisions.
HELM_RELEASE_SECRET = "helm.sh/release.v1"
