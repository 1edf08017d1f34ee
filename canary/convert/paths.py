"""Field paths within one document, shared by the converter's modules."""

from __future__ import annotations

from canary.models.problems import field_path

#: A field path: mapping keys and list indexes, from the document's root.
Path = tuple[str | int, ...]


def pattern(path: Path) -> str:
    """``path`` with ``[]`` for every list index, as :mod:`.carrying` names fields."""
    return field_path(tuple(0 if isinstance(p, int) else p for p in path)).replace("[0]", "[]")


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, or of the nearest enclosing field written."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def moved_from(origin: dict[Path, Path], out: Path) -> Path:
    """Where the output field ``out`` was written in the input (``origin``: moves)."""
    for cut in range(len(out), -1, -1):
        if out[:cut] in origin:
            return origin[out[:cut]] + out[cut:]
    return out
