"""Reading YAML streams with the line of every field, so that what is said about a field
names the line it was written on. Comments are read from the text, too (:mod:`.comments`),
for a document that is rewritten."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canary.convert.comments import Comments, collect
from canary.convert.paths import Path
from canary.convert.result import Note, Result
from canary.models.problems import field_path

_DOCUMENT_MARKER = re.compile(r"^---[ \t]*(#.*)?$")


@dataclass
class Chunk:
    """One document of a stream, with where its fields were written."""

    data: Any
    #: The 1-based line of each field path of ``data``.
    lines: dict[Path, int]
    #: The document exactly as written, when it can be reproduced so.
    text: str | None
    line: int
    #: The composed document, when ``text`` is its own (for its comments).
    node: Node | None = None

    def comments(self) -> Comments:
        """The document's comments, for when it is rewritten."""
        if self.node is None or self.text is None:
            return Comments()
        return collect(self.node, self.text)


def documents(text: str, source: str, result: Result) -> Iterator[Chunk]:
    """Each document of ``text`` with its lines; a YAML error is recorded in ``result``."""
    pieces: list[tuple[int, list[str]]] = [(0, [])]
    for number, text_line in enumerate(text.splitlines(keepends=True)):
        if _DOCUMENT_MARKER.match(text_line.rstrip("\r\n")):
            pieces.append((number + 1, []))
        else:
            pieces[-1][1].append(text_line)
    for offset, lines in pieces:
        piece = "".join(lines)
        if not piece.strip():
            continue
        try:
            found = list(_compose(piece, offset, source, result))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
            line = offset + mark.line + 1 if mark is not None else offset + 1
            problem = getattr(exc, "problem", None) or str(exc)
            result.errors.append(Note(source, line, "YAML", "", f"cannot parse: {problem}"))
            continue
        for data, node_lines, node in found:
            alone = len(found) == 1
            yield Chunk(data, node_lines, piece if alone else None,
                        min(node_lines.values(), default=offset + 1), node)


def _compose(piece: str, offset: int, source: str, result: Result
             ) -> Iterator[tuple[Any, dict[Path, int], Node]]:
    loader = yaml.SafeLoader(piece)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            lines: dict[Path, int] = {(): offset + node.start_mark.line + 1}
            _record_lines(node, (), offset, lines, source, result, set())
            yield loader.construct_document(node), lines, node
    finally:
        loader.dispose()


def _record_lines(node: Node, path: Path, offset: int, lines: dict[Path, int], source: str,
                  result: Result, active: set[int]) -> None:
    if id(node) in active:  # a recursive alias
        return
    active = active | {id(node)}
    if isinstance(node, MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            line = offset + key_node.start_mark.line + 1
            if key in seen and key != "<<":
                result.errors.append(Note(source, line, "YAML", field_path((*path, key)),
                                          "duplicate key"))
            seen.add(key)
            lines[(*path, key)] = line
            _record_lines(value_node, (*path, key), offset, lines, source, result, active)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = offset + item.start_mark.line + 1
            _record_lines(item, (*path, index), offset, lines, source, result, active)
