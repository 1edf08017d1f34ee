"""One document of the input: a Flagger object converted, a ``v1`` List's Flagger items
converted, an autoscaler of a removed version rewritten, anything else passed through as
written. A rewritten document keeps its comments (:mod:`.comments`)."""

from __future__ import annotations

from typing import Any

from canary.convert import autoscaling, objects
from canary.convert.comments import reattach
from canary.convert.context import Context, document_name
from canary.convert.dumping import dump
from canary.convert.paths import Path, line_of, moved_from
from canary.convert.reading import Chunk
from canary.convert.result import Note, Result
from canary.models.problems import field_path, kind_of

FLAGGER_GROUP = "flagger.app"


def convert_document(chunk: Chunk, source: str) -> Result:
    """What one document of ``source`` becomes, and what is said about it."""
    result = Result()
    data = chunk.data
    if data is None:
        return result
    if not isinstance(data, dict):
        result.errors.append(Note(source, chunk.line, "document", "",
                                  f"not a mapping but {kind_of(data)}: not a Kubernetes "
                                  "object"))
        return result
    api_version, kind = data.get("apiVersion"), data.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or \
            not api_version or not kind:
        result.errors.append(Note(source, chunk.line, "document", "",
                                  "not a Kubernetes object: apiVersion and kind are "
                                  "required"))
        return result
    if kind.endswith("List") and api_version == "v1" and isinstance(data.get("items"), list):
        converted = _convert_list(data, chunk, source, result)
        result.documents.append(chunk.text if converted is data and chunk.text is not None
                                else dump(converted))
        return result
    if autoscaling.is_old(data):
        converted, origin = _autoscaler(data, chunk.lines, (), source, result)
        result.documents.append(reattach(dump(converted), chunk.comments(),
                                         lambda path: moved_from(origin, path)))
        return result
    if _group(api_version) != FLAGGER_GROUP:
        result.documents.append(chunk.text if chunk.text is not None else dump(data))
        return result
    ctx = Context(source, chunk.lines, (), result)
    outputs = objects.convert(ctx, data)
    result.documents += [dump(obj) for obj in outputs[:-1]]  # a Secret it needs
    if outputs:  # the converted object itself, last, where its comments go
        result.documents.append(reattach(dump(outputs[-1]), chunk.comments(),
                                         ctx.input_path))
    return result


def _autoscaler(data: dict[str, Any], lines: dict[Path, int], base: Path, source: str,
                result: Result) -> tuple[dict[str, Any], dict[Path, Path]]:
    """An HPA of a removed version as ``autoscaling/v2``, noted; with its moved fields."""
    converted, said, origin = autoscaling.to_v2(data)
    name = document_name(str(data["kind"]), data.get("metadata"))
    result.notes += [Note(source, line_of(lines, base + path), name, field_path(path),
                          message, lost=False) for path, message in said]
    return converted, origin


def _convert_list(data: dict[str, Any], chunk: Chunk, source: str, result: Result
                  ) -> dict[str, Any]:
    """A ``v1`` List (``kubectl get -o yaml``): its Flagger items and old autoscalers are
    converted."""
    items: list[Any] = []
    changed = False
    for index, item in enumerate(data["items"]):
        base: Path = ("items", index)
        if isinstance(item, dict) and autoscaling.is_old(item):
            changed = True
            items.append(_autoscaler(item, chunk.lines, base, source, result)[0])
            continue
        if not isinstance(item, dict) or \
                _group(str(item.get("apiVersion", ""))) != FLAGGER_GROUP:
            items.append(item)
            continue
        changed = True
        items += objects.convert(Context(source, chunk.lines, base, result), item)
    if not changed:
        return data
    return {**data, "items": items}


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""
