"""ConfigMaps and Secrets a pod template references, tracked as part of its revision.

A change to a referenced config is a new revision: the revision hashes the template
together with the referenced configs' data. The primary's template refers to copies
(``<name>-primary``) made when the primary takes on a revision, so a config edited for the
canary never reaches the primary before promotion.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from canary.core.revision import template_hash

JSON = dict[str, Any]
#: (kind, name) -> the object, or None when it does not exist.
Lookup = Callable[[str, str], JSON | None]
CONFIG_MAP, SECRET = "ConfigMap", "Secret"


def _containers(spec: JSON) -> Iterator[JSON]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def _references(spec: JSON) -> Iterator[tuple[str, JSON, str]]:
    """(kind, the dict holding the name, the name's key) for every reference."""
    for volume in spec.get("volumes") or []:
        if "configMap" in volume:
            yield CONFIG_MAP, volume["configMap"], "name"
        if "secret" in volume:
            yield SECRET, volume["secret"], "secretName"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                yield CONFIG_MAP, source["configMap"], "name"
            if "secret" in source:
                yield SECRET, source["secret"], "name"
    for container in _containers(spec):
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                yield CONFIG_MAP, env_from["configMapRef"], "name"
            if "secretRef" in env_from:
                yield SECRET, env_from["secretRef"], "name"
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                yield CONFIG_MAP, source["configMapKeyRef"], "name"
            if "secretKeyRef" in source:
                yield SECRET, source["secretKeyRef"], "name"


def referenced(template: JSON) -> set[tuple[str, str]]:
    """Every (kind, name) the template's pod spec refers to."""
    return {(kind, holder[key]) for kind, holder, key in _references(template.get("spec") or {})
            if holder.get(key)}


def required(template: JSON) -> set[tuple[str, str]]:
    """Every (kind, name) the template's pod spec refers to without ``optional: true``:
    a pod cannot start while one of these is missing."""
    return {(kind, holder[key]) for kind, holder, key in _references(template.get("spec") or {})
            if holder.get(key) and not holder.get("optional")}


def _content(obj: JSON | None) -> JSON | None:
    if obj is None:
        return None
    return {k: obj.get(k) for k in ("data", "binaryData", "stringData", "type") if obj.get(k)}


def revision(template: JSON, lookup: Lookup) -> str:
    """The template's revision, including the data of the configs it references."""
    configs = sorted(referenced(template))
    if not configs:
        return template_hash(template)
    return template_hash({"template": template, "configs": [
        [kind, name, _content(lookup(kind, name))] for kind, name in configs]})


def primary_template(template: JSON, lookup: Lookup) -> JSON:
    """The template with references to existing configs renamed to their primary copies."""
    renamed = copy.deepcopy(template)
    for kind, holder, key in _references(renamed.get("spec") or {}):
        if holder.get(key) and lookup(kind, holder[key]) is not None:
            holder[key] = f"{holder[key]}-primary"
    return renamed


def primary_copies(template: JSON, lookup: Lookup) -> list[JSON]:
    """Copies (``<name>-primary``) of every existing config the template refers to."""
    copies = []
    for kind, name in sorted(referenced(template)):
        original = lookup(kind, name)
        if original is None:
            continue
        meta = original["metadata"]
        copies.append({"apiVersion": "v1", "kind": kind,
                       "metadata": {"name": f"{name}-primary", "namespace": meta["namespace"]},
                       **(_content(original) or {})})
    return copies
