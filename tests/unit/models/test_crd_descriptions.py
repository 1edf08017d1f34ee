"""Every field of every generated CRD carries a description, so `kubectl explain` tells
users what it does; a new field without one fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import create_model

from canary.models import crds
from canary.models.base import ApiModel

#: The root's metadata is ObjectMeta: the API server documents it and refuses a CRD that
#: says more about it than its type.
DOCUMENTED_BY_THE_API_SERVER = {"metadata"}


def undocumented(node: dict[str, Any], path: str, root: bool = False) -> Iterator[str]:
    """The paths of the properties below ``node`` that have no description."""
    for name, sub in (node.get("properties") or {}).items():
        if root and name in DOCUMENTED_BY_THE_API_SERVER:
            continue
        if not sub.get("description"):
            yield f"{path}.{name}"
        yield from undocumented(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from undocumented(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from undocumented(node["additionalProperties"], f"{path}{{}}")


def schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, manifest in crds.definitions().items():
        for version in manifest["spec"]["versions"]:
            yield f"{name} {version['name']}", version["schema"]["openAPIV3Schema"]


def descriptions(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield value
            else:
                yield from descriptions(value)
    elif isinstance(node, list):
        for item in node:
            yield from descriptions(item)


class TestEveryFieldIsDescribed:
    @pytest.mark.parametrize(("name", "schema"), list(schemas()),
                             ids=[name for name, _ in schemas()])
    def test_no_property_lacks_a_description(self, name: str, schema: dict[str, Any]) -> None:
        missing = list(undocumented(schema, name.split("_", 1)[1].split(".")[0], root=True))
        assert missing == [], "give these model fields Field(description=...): " + \
            ", ".join(missing)

    @pytest.mark.parametrize(("name", "schema"), list(schemas()),
                             ids=[name for name, _ in schemas()])
    def test_the_root_metadata_is_only_typed(self, name: str, schema: dict[str, Any]) -> None:
        assert schema["properties"]["metadata"] == {"type": "object"}

    def test_the_walk_reaches_nested_objects_lists_and_maps(self) -> None:
        schema = {"properties": {
            "a": {"description": "x", "properties": {"b": {"type": "string"}}},
            "c": {"description": "x", "items": {"properties": {"d": {"type": "string"}}}},
            "e": {"description": "x", "additionalProperties": {
                "properties": {"f": {"type": "string"}}}}}}
        assert list(undocumented(schema, "s")) == ["s.a.b", "s.c[].d", "s.e{}.f"]


class TestDescriptionsReadWell:
    def test_generated_descriptions_are_single_lines(self) -> None:
        for _, schema in schemas():
            for text in descriptions(schema):
                assert "\n" not in text and "  " not in text, text

    @given(st.lists(st.text(alphabet="abc .", min_size=1), min_size=1, max_size=5))
    def test_a_docstring_is_reflowed_onto_one_line(self, lines: list[str]) -> None:
        doc = "\n".join(lines)
        model = create_model("Documented", __base__=ApiModel, __doc__=doc, x=(int, 0))
        description = crds.structural(model).get("description", "")
        assert description == " ".join(doc.split())
