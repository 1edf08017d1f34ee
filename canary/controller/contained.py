"""Whether an object as the API server holds it already has what canary would write."""

from __future__ import annotations

from typing import Any

from canary.kube import JSON
from canary.kube.trim import CONTENT_FIELDS, DIGEST_FIELD, KEY_DIGESTS_FIELD, content_digests


def contains(actual: Any, desired: Any) -> bool:
    """Whether ``actual`` has every field of ``desired`` with the same value (lists must
    match item by item; fields the API server added are ignored)."""
    if isinstance(desired, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    return bool(actual == desired)



def holds(cached: JSON, desired: JSON) -> bool:
    """:func:`contains` for an object as a cache stores it: a config cached with a digest
    per key (``canary.kube.trim.config_trimmer``) holds ``desired``'s content when it
    has each of its keys with the same value's digest; keys someone else added are
    ignored, as they are for a whole object."""
    digests = cached.get(KEY_DIGESTS_FIELD)
    if digests is None:
        return DIGEST_FIELD not in cached and contains(cached, desired)
    rest = {k: v for k, v in desired.items() if k not in CONTENT_FIELDS}
    return contains(digests, content_digests(desired)) and contains(cached, rest)
