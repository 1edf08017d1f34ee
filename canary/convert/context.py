"""One Flagger object being converted: where its fields were written, where they moved,
and what is said about them (notes and errors naming the input's field and line)."""

from __future__ import annotations

from typing import Any

from canary.convert.paths import Path, line_of, moved_from
from canary.convert.result import Note, Result
from canary.models.problems import field_path


class Context:
    """The converting of one Flagger object (``base`` is its path within the chunk, for
    lines); what is said goes to ``result``."""

    def __init__(self, source: str, lines: dict[Path, int], base: Path,
                 result: Result) -> None:
        self.source = source
        self.lines = lines
        self.base = base
        self.result = result
        self.name = "document"
        #: The input path each output path came from (the same unless a field moved).
        self.origin: dict[Path, Path] = {}
        #: Input paths of fields that moved: where they are now -> where they were written.
        self.moved: dict[Path, Path] = {}

    def line(self, path: Path) -> int | None:
        return line_of(self.lines, self.base + path)

    def note(self, path: Path, message: str, lost: bool = True) -> None:
        self.result.notes.append(Note(self.source, self.line(path), self.name,
                                      field_path(path), message, lost))

    def error(self, path: Path, message: str) -> None:
        self.result.errors.append(Note(self.source, self.line(path), self.name,
                                       field_path(path), message))

    def input_path(self, out: Path) -> Path:
        """Where the output field ``out`` was written in the Flagger object."""
        return moved_from(self.origin, out)


def document_name(kind: str, metadata: Any) -> str:
    """How notes name a document: its kind, and its namespace and name when it has them."""
    if not isinstance(metadata, dict) or not metadata.get("name"):
        return kind
    namespace = metadata.get("namespace")
    return f"{kind} {namespace}/{metadata['name']}" if namespace else \
        f"{kind} {metadata['name']}"
