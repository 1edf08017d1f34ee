"""Cached objects share their keys and short strings, and are otherwise unchanged."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.kube.compact import SHORT, compact

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30)


@given(JSON_VALUES)
def test_a_compacted_value_equals_the_original(value: Any) -> None:
    original = json.dumps(value, sort_keys=True)
    assert compact(value) == value
    assert json.dumps(value, sort_keys=True) == original  # the argument is untouched


def test_keys_and_short_strings_are_shared_between_objects_decoded_apart() -> None:
    text = json.dumps({"metadata": {"namespace": "team-a", "note": "x" * (SHORT + 1)}})
    first, second = compact(json.loads(text)), compact(json.loads(text))
    (key_1,), (key_2,) = first.keys(), second.keys()
    assert key_1 is key_2
    assert first["metadata"]["namespace"] is second["metadata"]["namespace"]
    assert first["metadata"]["note"] is not second["metadata"]["note"]  # long: as it is
