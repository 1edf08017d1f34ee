"""API Priority and Fairness set to starve one ServiceAccount (fault 6).

Its requests are given a priority level with the smallest share of the API server's
concurrency (one share: a seat or two), no borrowing, and no queue, so what it sends
beyond that at once is refused with 429 and ``Retry-After``, as on a cluster whose
operators squeezed a controller's share. The ServiceAccount may do anything RBAC
allows (``cluster-admin``): only the throttling differs from the administrator, whose
``system:masters`` group API Priority and Fairness never throttles.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from canary.kube import KubeClient, NotFound
from canary.kube.resources import Resource
from tests.e2e.identities import admin_account

NAME = "canary-faults-starved"
FIELD_MANAGER = "canary-faults"
PRIORITY_LEVELS = Resource("flowcontrol.apiserver.k8s.io", "v1",
                           "prioritylevelconfigurations", "PriorityLevelConfiguration",
                           namespaced=False)
FLOW_SCHEMAS = Resource("flowcontrol.apiserver.k8s.io", "v1", "flowschemas", "FlowSchema",
                        namespaced=False)


def priority_level() -> dict[str, object]:
    return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration", "metadata": {"name": NAME},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 1, "lendablePercent": 0,
                "limitResponse": {"type": "Reject"}}}}


def flow_schema(namespace: str, account: str) -> dict[str, object]:
    """Every request of the ServiceAccount, into the starved priority level; matched
    before the built-in schemas (lower precedence wins)."""
    return {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            "metadata": {"name": NAME},
            "spec": {"priorityLevelConfiguration": {"name": NAME}, "matchingPrecedence": 100,
                     "distinguisherMethod": {"type": "ByUser"},
                     "rules": [{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                         "name": account, "namespace": namespace}}],
                         "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                            "resources": ["*"], "clusterScope": True,
                                            "namespaces": ["*"]}],
                         "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}


@contextlib.asynccontextmanager
async def starved_account(kube: KubeClient, namespace: str, account: str = NAME
                          ) -> AsyncIterator[str]:
    """A ServiceAccount in ``namespace`` that may do anything and is throttled as above;
    yields its name. The cluster-wide objects go on leaving."""
    cluster_wide = [(PRIORITY_LEVELS, priority_level()),
                    (FLOW_SCHEMAS, flow_schema(namespace, account))]
    async with admin_account(kube, namespace, account):
        try:
            for resource, body in cluster_wide:
                await kube.apply(body, field_manager=FIELD_MANAGER, resource=resource)
            yield account
        finally:
            for resource, _ in reversed(cluster_wide):
                with contextlib.suppress(NotFound):
                    await kube.delete(resource, NAME)
