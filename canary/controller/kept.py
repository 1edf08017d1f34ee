"""Which ConfigMaps, Secrets and Deployments the caches keep whole: the configs whose
content canary reads, and the Deployments it rolls out or generated.

Configs are listed and watched as metadata only, so the tens of thousands no Canary
refers to cost little, and their content never travels. A config's content is read with
a GET when a reader needs it, and what the cache keeps of that read until the config
changes is decided here: the whole object for the configs canary reads, a digest of the
content for the others (:func:`canary.kube.trim.config_trimmer`). The content is read
from:

- the configs a Canary's target refers to: the revision hashes their content, and the
  primary gets copies of them (``-primary``, labelled as canary's). No decision reads
  the copies: they are kept with a digest per key and their annotations, from which the
  executor tells whether one holds what it writes (``canary.controller.contained.holds``);
- the Secrets a MetricTemplate (``provider.secretRef``), an AlertProvider (``secretRef``)
  or a Canary's webhook (``secretRef``) names, in the namespace of that object.

A Deployment is kept whole when a Canary of its namespace targets it, when its name is
that of a target's primary, or when canary generated it; the thousands of others are
kept as their metadata only (:func:`canary.kube.trim.deployment_trimmer`).

A reader never trusts this guess: one that finds a trimmed object fetches it whole
(``Caches.config_contents``, ``Caches.whole_secret``, ``Caches.cached``,
``Caches.whole_deployment``, the executor's reads of a target or primary and of a copy,
the worker's of a primary), so a reference added since the object was stored costs a
GET, never a wrong revision. After a restart, or a change of a config, each config
canary reads costs one GET at its next read.
"""

from __future__ import annotations

from canary.controller.wakeups import ConfigReferences
from canary.kube import JSON, Reflector
from canary.targets import configs
from canary.targets.deployment import MANAGED_BY, primary_name


def generated(obj: JSON) -> bool:
    """Whether canary generated ``obj`` (labelled as managed by canary)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(k) == v for k, v in MANAGED_BY.items())


class ContentReaders:
    """Answers, per config, whether canary reads its content; a per-namespace index of
    the Secrets named by MetricTemplates, AlertProviders and webhooks, built on demand
    and dropped (:meth:`forget`) when one of those changes in the namespace."""

    def __init__(self, references: ConfigReferences, canaries: Reflector,
                 metric_templates: Reflector, alert_providers: Reflector) -> None:
        self.references = references
        self.canaries = canaries
        self.metric_templates = metric_templates
        self.alert_providers = alert_providers
        self._secrets: dict[str, set[str]] = {}

    def forget(self, namespace: str) -> None:
        """A Canary, MetricTemplate or AlertProvider of ``namespace`` changed."""
        self._secrets.pop(namespace, None)

    def reads(self, obj: JSON) -> bool:
        """Whether canary reads the content of config ``obj``."""
        meta = obj.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
        kind = str(obj.get("kind") or "")
        if self.references.referring(namespace, kind, name):
            return True
        return kind == configs.SECRET and name in self._named_secrets(namespace)

    def _named_secrets(self, namespace: str) -> set[str]:
        named = self._secrets.get(namespace)
        if named is None:
            named = self._secrets[namespace] = self._build(namespace)
        return named

    def _build(self, namespace: str) -> set[str]:
        named: set[str] = set()
        for template in self.metric_templates.items(namespace):
            provider = (template.get("spec") or {}).get("provider") or {}
            named.add(_ref_name(provider.get("secretRef")))
        for provider in self.alert_providers.items(namespace):
            named.add(_ref_name((provider.get("spec") or {}).get("secretRef")))
        for canary in self.canaries.items(namespace):
            for hook in ((canary.get("spec") or {}).get("analysis") or {}).get("webhooks") \
                    or []:
                if isinstance(hook, dict):
                    named.add(_ref_name(hook.get("secretRef")))
        named.discard("")
        return named


class DeploymentReaders:
    """Answers, per Deployment, whether canary reads it: a Canary's target, a target's
    primary, or one canary generated; a per-namespace index of the targets' and their
    primaries' names, built on demand and dropped (:meth:`forget`) when a Canary of the
    namespace changes."""

    def __init__(self, canaries: Reflector) -> None:
        self.canaries = canaries
        self._names: dict[str, set[str]] = {}

    def forget(self, namespace: str) -> None:
        """A Canary of ``namespace`` changed (its target may have)."""
        self._names.pop(namespace, None)

    def reads(self, obj: JSON) -> bool:
        """Whether canary reads Deployment ``obj`` (its template, replicas or status)."""
        if generated(obj):
            return True
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "")
        names = self._names.get(namespace)
        if names is None:
            names = self._names[namespace] = self._build(namespace)
        return str(meta.get("name") or "") in names

    def _build(self, namespace: str) -> set[str]:
        names: set[str] = set()
        for canary in self.canaries.items(namespace):
            target = _ref_name((canary.get("spec") or {}).get("targetRef"))
            if target:
                names |= {target, primary_name(target)}
        return names


def _ref_name(ref: object) -> str:
    return str(ref.get("name") or "") if isinstance(ref, dict) else ""
