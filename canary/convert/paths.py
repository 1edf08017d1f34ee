"""Field paths within one document, shared by the converter's modules."""

from __future__ import annotations

#: A field path: mapping keys and list indexes, from the document's root.
Path = tuple[str | int, ...]
