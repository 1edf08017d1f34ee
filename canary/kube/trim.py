"""What a watch cache keeps of an object: only what canary's decisions read.

A large cluster holds tens of thousands of ConfigMaps and Secrets (some of hundreds of
KB) and thousands of Deployments, each with a ``managedFields`` history and often a
``kubectl.kubernetes.io/last-applied-configuration`` copy of itself. Canary reads none of
that, and the content of only the few configs a Canary's target, a MetricTemplate, an
AlertProvider or a webhook names. A :class:`~canary.kube.watch.Reflector` passes every
object through a transform from here before storing it (on lists and on watch events):

- :func:`lean` drops ``managedFields`` and the last-applied annotation (every kind);
- :func:`lean_deployment` keeps of ``managedFields`` only who wrote when, and whether
  they own ``spec.replicas`` (read with :func:`replica_managers`);
- :func:`config_trimmer` replaces a ConfigMap's or Secret's content by its digest unless
  asked to keep it, or by a digest per key (``canary.controller.contained.holds``
  compares such a config with what canary would write);
- :func:`deployment_trimmer` keeps of a Deployment no Canary refers to (thousands in a
  large cluster) only its metadata, as for a config listed as metadata only.

ConfigMaps and Secrets are listed and watched as metadata only (``PartialObjectMetadata``,
as client-go's metadata informers do): a cluster's configs of hundreds of KB never
travel, and an object marked with :data:`METADATA_ONLY_FIELD` holds no content and no
digest of it. What canary reads of a config comes from a GET (``Reflector.fetch``), which
stores what :func:`config_trimmer` keeps of the whole object until the config changes.

A trimmed object is known by :func:`is_trimmed`, and whoever needs what it lost reads it
again (``Reflector.fetch``).

Transforms never modify their argument: the caller may still hold the whole object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from canary.kube.compact import compact

JSON = dict[str, Any]
#: Takes the object as the API server sent it; returns what the cache stores.
Transform = Callable[[JSON], JSON]

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
#: The fields of a ConfigMap or Secret that are its content.
CONTENT_FIELDS = ("data", "binaryData", "stringData")
#: Where a trimmed config keeps the digest of its content (never a field of the API's).
DIGEST_FIELD = "canary.dev/content-sha256"
#: Marks an object cached as its metadata only: the API server sent only that
#: (``PartialObjectMetadata``), or the cache kept only that. Its spec, status or content
#: is unknown, not empty (never a field of the API's).
METADATA_ONLY_FIELD = "canary.dev/metadata-only"
#: What a Deployment's reduced managedFields entry keeps of fieldsV1 when its manager
#: owns ``spec.replicas``.
REPLICAS_FIELDS: Mapping[str, Any] = {"f:spec": {"f:replicas": {}}}
#: Where a config trimmed key by key keeps, per content field and key, the digest of
#: the value (never a field of the API's): see :func:`config_trimmer`.
KEY_DIGESTS_FIELD = "canary.dev/content-sha256-by-key"
#: The metadata a trimmed config keeps: enough to find it, tell versions apart, and
#: wake the Canary owning it.
_TRIMMED_METADATA = ("name", "namespace", "uid", "resourceVersion", "labels",
                     "ownerReferences", "deletionTimestamp")
#: Of that metadata, what recurs across objects and is worth sharing.
_SHARED_METADATA = frozenset({"namespace", "labels", "ownerReferences"})
#: The keys of a managedFields entry a Deployment keeps.
_ENTRY_KEYS = ("manager", "operation", "apiVersion", "time", "subresource")


def lean(obj: JSON) -> JSON:
    """``obj`` without ``managedFields`` and the last-applied annotation, which can double
    an object's size and which no decision reads."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        return obj
    annotations = meta.get("annotations")
    if "managedFields" not in meta and not (
            isinstance(annotations, dict) and LAST_APPLIED in annotations):
        return obj
    trimmed = {k: v for k, v in meta.items() if k != "managedFields"}
    if isinstance(annotations, dict) and LAST_APPLIED in annotations:
        trimmed["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return {**obj, "metadata": trimmed}


def lean_deployment(obj: JSON) -> JSON:
    """:func:`lean`, keeping a reduced ``managedFields``: each entry's manager, operation,
    apiVersion, time and subresource, and a ``fieldsV1`` of only ``spec.replicas`` when
    it owns it. That says which manager keeps resetting the replicas canary manages,
    and code reading managedFields the usual way still works."""
    entries = (obj.get("metadata") or {}).get("managedFields")
    result = lean(obj)
    if isinstance(entries, list) and entries:
        result["metadata"]["managedFields"] = [_reduced(e) for e in entries
                                               if isinstance(e, dict)]
    return result


def _reduced(entry: JSON) -> JSON:
    kept = {k: entry[k] for k in _ENTRY_KEYS if k in entry}
    if _owns_replicas(entry):
        kept["fieldsType"] = "FieldsV1"
        kept["fieldsV1"] = {"f:spec": {"f:replicas": {}}}
    return kept


def _owns_replicas(entry: JSON) -> bool:
    spec = (entry.get("fieldsV1") or {}).get("f:spec")
    return isinstance(spec, dict) and "f:replicas" in spec


@dataclass(frozen=True)
class FieldManager:
    """One entry of a Deployment's managedFields, as the cache keeps it."""

    manager: str
    #: ``Apply`` (server-side apply) or ``Update``.
    operation: str
    #: RFC 3339, as the API server wrote it; "" when absent.
    time: str
    #: ``scale`` for writes through the scale subresource (an autoscaler); "" otherwise.
    subresource: str
    owns_replicas: bool


def replica_managers(deployment: JSON) -> list[FieldManager]:
    """The field managers of a Deployment (whole or as cached), in the API's order."""
    entries = (deployment.get("metadata") or {}).get("managedFields") or []
    return [FieldManager(str(e.get("manager") or ""), str(e.get("operation") or ""),
                         str(e.get("time") or ""), str(e.get("subresource") or ""),
                         _owns_replicas(e))
            for e in entries if isinstance(e, dict)]


def content_digest(obj: JSON) -> str:
    """A digest of a config's content (its data, binaryData and stringData): each
    field's keys in order, every part prefixed by its length. Hashing the strings as
    they are costs a third of serializing them to JSON first."""
    digest = hashlib.sha256()
    for field in CONTENT_FIELDS:
        content = obj.get(field)
        if not content:
            continue
        digest.update(_part(field))
        if not isinstance(content, dict):
            digest.update(_part(json.dumps(content, sort_keys=True)))
            continue
        for key in sorted(content, key=str):
            value = content[key]
            digest.update(_part(str(key)))
            digest.update(_part(_text(value)))
    return digest.hexdigest()


def _text(value: object) -> str:
    """A content value as hashed: a string as it is, anything else as canonical JSON."""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _part(text: str) -> bytes:
    encoded = text.encode(errors="surrogatepass")
    return b"%d:" % len(encoded) + encoded


def is_trimmed(obj: JSON | None) -> bool:
    """Whether a cached object lost part of itself to :func:`config_trimmer` (a config's
    content) or is cached as its metadata only (:data:`METADATA_ONLY_FIELD`)."""
    return obj is not None and (DIGEST_FIELD in obj or KEY_DIGESTS_FIELD in obj
                                or METADATA_ONLY_FIELD in obj)


def metadata_only(obj: JSON) -> bool:
    """Whether ``obj`` is cached as metadata only: nothing else of it is known."""
    return METADATA_ONLY_FIELD in obj


def config_trimmer(keep: Callable[[JSON], bool],
                   by_key: Callable[[JSON], bool] = lambda _: False) -> Transform:
    """A transform for ConfigMaps or Secrets: the whole object (but :func:`lean`) when
    ``keep`` says canary reads its content, else its name, labels, owners,
    resourceVersion, type and the digest of its content; for the configs ``by_key``
    picks (canary's own copies), a digest per key and the annotations instead, so that
    whether one holds what canary writes is told as from the whole object. A config
    that came as metadata only keeps the same metadata and its mark, whatever ``keep``
    says: there is nothing to keep or to digest."""
    def transform(obj: JSON) -> JSON:
        if metadata_only(obj):
            return {**_identity(obj), METADATA_ONLY_FIELD: True}
        if keep(obj):
            return lean(obj)
        trimmed = _identity(obj)
        if not by_key(obj):
            trimmed[DIGEST_FIELD] = content_digest(obj)
            return trimmed
        annotations = lean(obj)["metadata"].get("annotations")
        if annotations:
            trimmed["metadata"]["annotations"] = annotations
        trimmed[KEY_DIGESTS_FIELD] = content_digests(obj)
        return trimmed
    return transform


def _identity(obj: JSON) -> JSON:
    """What an object cached without its content (a config) or spec (a Deployment) keeps:
    its kind and type, and enough of its metadata to find it, tell versions apart, and
    wake the Canary owning it. Built compact (:mod:`canary.kube.compact`): its keys are
    literals, and of its values those that recur across objects are shared (kind,
    namespace, labels, owners); a name, uid or resourceVersion is its object's own."""
    meta = obj.get("metadata") or {}
    kept: JSON = {k: compact(obj[k]) for k in ("apiVersion", "kind", "type") if k in obj}
    kept["metadata"] = {k: compact(meta[k]) if k in _SHARED_METADATA else meta[k]
                        for k in _TRIMMED_METADATA if k in meta}
    return kept


def content_digests(obj: JSON) -> dict[str, dict[str, str]]:
    """Per content field (data, binaryData, stringData) and key, a digest of the value:
    what a config holds can then be compared key by key, as a whole object would be."""
    digests: dict[str, dict[str, str]] = {}
    for field in CONTENT_FIELDS:
        content = obj.get(field)
        if not content:
            continue
        items = content.items() if isinstance(content, dict) else [("", content)]
        digests[field] = {str(key): hashlib.sha256(_part(_text(value))).hexdigest()
                          for key, value in items}
    return digests


def deployment_trimmer(keep: Callable[[JSON], bool]) -> Transform:
    """A transform for Deployments: :func:`lean_deployment` when ``keep`` says canary reads
    the Deployment, else its metadata only (:data:`METADATA_ONLY_FIELD`): enough to find
    it, tell versions apart and wake the Canaries referring to it by name, which is all
    canary does with a Deployment it neither rolls out nor generated."""
    def transform(obj: JSON) -> JSON:
        if keep(obj):
            return lean_deployment(obj)
        return {**_identity(obj), METADATA_ONLY_FIELD: True}
    return transform
