"""Cached objects share their repeated strings.

A watch cache holds tens of thousands of JSON trees decoded one response at a time, and
every tree spells out its own keys (``metadata``, ``name``, ``resourceVersion``...) and
its own copies of the values that recur across objects (kinds, API versions, namespaces,
label keys and values, condition types). The JSON decoder shares keys only within one
response: an object from a watch event, or from another page, has its own. Interning
keys and short strings makes every occurrence one string, a third less memory for a
Service or a Deployment in the cache (``benchmarks/scale``). Long strings (a config's
content, a digest) are left as they are: they seldom recur.
"""

from __future__ import annotations

import sys
from typing import Any

#: Strings up to this length are interned: names, label values, kinds, timestamps.
SHORT = 64


def compact(value: Any) -> Any:
    """``value`` rebuilt with its dict keys and short strings interned; ``value`` itself
    is not modified (a caller may still hold it)."""
    kind = type(value)
    if kind is dict:
        return {_key(key): _leaf(item) for key, item in value.items()}
    if kind is list:
        return [_leaf(item) for item in value]
    return _leaf(value)


def _key(key: Any) -> Any:
    return sys.intern(key) if type(key) is str else key


def _leaf(value: Any) -> Any:
    """A value inside a container: leaves inline (most of a tree), containers again."""
    kind = type(value)
    if kind is str:
        return sys.intern(value) if len(value) <= SHORT else value
    if kind is dict or kind is list:
        return compact(value)
    return value
