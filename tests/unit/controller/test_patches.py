"""Status writes and applied objects: the small pure helpers the controller relies on."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from canary.controller.contained import contains
from canary.controller.worker import merge_patch

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=3), children, max_size=3), max_leaves=10)
documents = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies it."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply_merge_patch(result.get(key), value)
    return result


def _no_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _no_nulls(v) for k, v in value.items() if v is not None}
    return value


@given(documents, documents)
def test_a_status_patch_turns_the_old_status_into_the_new_one(old: Any, new: Any) -> None:
    old, new = _no_nulls(old), _no_nulls(new)
    assert apply_merge_patch(old, merge_patch(old, new)) == new


def test_a_cleared_field_is_sent_as_null() -> None:
    assert merge_patch({"phase": "Progressing", "canaryUnreadySince": "t"},
                       {"phase": "Progressing"}) == {"canaryUnreadySince": None}


def test_applied_fields_must_all_be_present_with_their_values() -> None:
    actual = {"spec": {"http": [{"route": [{"weight": 100}, {"weight": 0}]}], "extra": 1},
              "status": {}}
    assert contains(actual, {"spec": {"http": [{"route": [{"weight": 100}, {"weight": 0}]}]}})
    assert not contains(actual, {"spec": {"http": [{"route": [{"weight": 50},
                                                               {"weight": 50}]}]}})
    assert not contains(actual, {"spec": {"http": [{"route": [{"weight": 100}]}]}})
    assert not contains(actual, {"metadata": {"labels": {"a": "b"}}})
