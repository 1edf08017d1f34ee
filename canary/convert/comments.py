"""The comments of a document that is rewritten, carried to the same fields of the output.

PyYAML reads no comments, so they are found in the text, placed by the nodes around them:
a comment on its own line belongs to the field of the next line, a comment after a value
to the field of that value, and comments after the last field to the document's end. The
output is dumped, composed again for the line of each of its fields, and each comment is
put back at the field it came from (``origin`` maps a field that moved, such as Flagger's
``spec.canaryAnalysis`` or a v2beta1 HPA target, to where it was written). A comment on a
field that is left out goes with it. Lines inside multi-line strings (a query, a script)
are content, never comments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from canary.convert.paths import Path


@dataclass
class Comments:
    """The comments of one document, by the field path they belong to."""

    #: Full-line comments written before a field (stripped of their indentation).
    before: dict[Path, list[str]] = field(default_factory=dict)
    #: The comment at the end of a field's line.
    after: dict[Path, str] = field(default_factory=dict)
    #: Comments after the document's last field.
    trailing: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.before or self.after or self.trailing)


def _walk(node: Node, path: Path = ()) -> Iterator[tuple[Path, Node, Node | None]]:
    """Each field of ``node``: its path, its value node and (in a mapping) its key node."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                yield (*path, str(key.value)), value, key
                yield from _walk(value, (*path, str(key.value)))
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item, None
            yield from _walk(item, (*path, index))


def field_lines(root: Node) -> dict[int, Path]:
    """The shallowest field that starts on each 0-based line of ``root``'s text."""
    starts: dict[int, Path] = {root.start_mark.line: ()}
    for path, value, key in _walk(root):
        line = (key or value).start_mark.line
        if line not in starts or len(path) < len(starts[line]):
            starts[line] = path
    return starts


def _inside_strings(root: Node, lines: list[str]) -> set[int]:
    """Lines that are the content of a multi-line string."""
    inside: set[int] = set()
    for _, value, _key in _walk(root):
        if not isinstance(value, ScalarNode) or value.end_mark.line == value.start_mark.line:
            continue
        start, end = value.start_mark.line, value.end_mark.line
        inside.update(range(start + 1, end))
        if end < len(lines):
            indent = len(lines[end]) - len(lines[end].lstrip())
            if value.end_mark.column > indent:
                inside.add(end)
    return inside


def _line_ends(root: Node) -> dict[int, list[tuple[int, Path]]]:
    """Where on each line a key or a value ends, with its field. Block collections and
    block strings (``|``, ``>``) are left out: they end where the next field starts."""
    ends: dict[int, list[tuple[int, Path]]] = {}
    for path, value, key in _walk(root):
        for node in (key, value):
            block = node.style in ("|", ">") if isinstance(node, ScalarNode) \
                else not getattr(node, "flow_style", False)
            if node is not None and not block:
                ends.setdefault(node.end_mark.line, []).append((node.end_mark.column, path))
    return ends


def _end_comment(text: str, ends: list[tuple[int, Path]]) -> tuple[Path, str] | None:
    for column, path in sorted(ends, reverse=True):
        rest = text[column:].lstrip()
        rest = rest[1:].lstrip() if rest.startswith(":") else rest
        if rest.startswith("#"):
            return path, rest.rstrip()
    return None


def collect(root: Node, text: str) -> Comments:
    """The comments of the one document ``root`` composed from ``text``."""
    lines = text.splitlines()
    starts = field_lines(root)
    inside = _inside_strings(root, lines)
    ends = _line_ends(root)
    found = Comments()
    pending: list[str] = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#") and number not in inside:
            pending.append(stripped)
            continue
        if pending and number in starts:
            found.before.setdefault(starts[number], []).extend(pending)
            pending = []
        end = _end_comment(line, ends.get(number, []))
        if end is not None:
            found.after.setdefault(*end)
    found.trailing = pending
    return found


def reattach(dumped: str, comments: Comments, origin: Callable[[Path], Path]) -> str:
    """``dumped`` (one document) with ``comments`` at the fields they came from."""
    if not comments:
        return dumped
    lines = dumped.splitlines()
    root = yaml.compose(dumped, Loader=yaml.SafeLoader)
    if root is None:
        return dumped
    placed: set[Path] = set()  # each comment once, at the first field written there
    before: dict[int, list[str]] = {}
    for number, path in sorted(field_lines(root).items()):
        written = origin(path)
        if written in comments.before and written not in placed:
            placed.add(written)
            line = lines[number]
            indent = " " * (len(line) - len(line.lstrip()))
            before[number] = [indent + comment for comment in comments.before[written]]
    placed.clear()
    commented: set[int] = set()
    for path, value, key in _walk(root):
        written = origin(path)
        number = (key or value).start_mark.line
        if written in comments.after and written not in placed and number not in commented:
            placed.add(written)
            commented.add(number)
            lines[number] += "  " + comments.after[written]
    out: list[str] = []
    for number, line in enumerate(lines):
        out += [*before.get(number, []), line]
    return "\n".join([*out, *comments.trailing]) + "\n"
