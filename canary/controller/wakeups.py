"""Which Canaries a change of a ConfigMap or Secret concerns, answered from an index.

Every config of the watched namespaces sends an event at start-up and at each re-list
after 410 Gone: tens of thousands in a large cluster. Finding the Canaries whose target
refers to one by rendering every Canary's target template each time costs configs x
Canaries, on the event loop. The index holds, per namespace, the configs its Canaries'
targets refer to; a change of a Canary or a Deployment of the namespace drops it, and
the next config event of the namespace builds it again. A target cached without its pod
spec (a Canary came to target it since it was stored; its worker reads it whole at once)
refers to nothing yet, so an index that met one is used once and not kept.
"""

from __future__ import annotations

from canary.kube import Reflector
from canary.kube.trim import is_trimmed
from canary.targets import configs

#: (kind, name) of a config -> the names of the Canaries whose target refers to it.
Index = dict[tuple[str, str], list[str]]


class ConfigReferences:
    """The Canaries each config is referred to by, per namespace, built on demand."""

    def __init__(self, canaries: Reflector, deployments: Reflector) -> None:
        self.canaries = canaries
        self.deployments = deployments
        self._index: dict[str, Index] = {}
        #: How many times an index was built (for tests and instrumentation).
        self.builds = 0

    def forget(self, namespace: str) -> None:
        """A Canary or Deployment of ``namespace`` changed: its index is stale."""
        self._index.pop(namespace, None)

    def referring(self, namespace: str, kind: str, name: str) -> list[str]:
        """The Canaries of ``namespace`` whose target refers to config ``kind``/``name``."""
        index = self._index.get(namespace)
        if index is None:
            index, complete = self._build(namespace)
            if complete:
                self._index[namespace] = index
        return index.get((kind, name), [])

    def _build(self, namespace: str) -> tuple[Index, bool]:
        """The namespace's index, and whether every target's template was cached."""
        self.builds += 1
        index: Index = {}
        complete = True
        for canary in self.canaries.items(namespace):
            target_name = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
            target = self.deployments.get(namespace, str(target_name))
            complete = complete and not is_trimmed(target)
            template = ((target or {}).get("spec") or {}).get("template") or {}
            for key in configs.referenced(template):
                index.setdefault(key, []).append(str(canary["metadata"]["name"]))
        return index, complete
