"""Whether an object as the API server holds it already has what canary would write."""

from __future__ import annotations

from typing import Any


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
