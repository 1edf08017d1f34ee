"""Validation errors of canary's models, said as a manifest's author reads them (pure).

pydantic locates a problem by a tuple (``("spec", "analysis", "metrics", 0, "interval")``)
and words it for Python programmers. The controller, the notifier, the console and
``canary convert`` all tell people about manifests, so they name the field as the manifest
spells it (``spec.analysis.metrics[0].interval``) and share one wording.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from canary.models.base import DURATION_PATTERN

#: pydantic's error types that say a value is of the wrong type, and the type expected.
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "string_type": "a string", "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
}
#: How long a value shown in an explained message may be.
_SHOWN = 60


def field_path(loc: Iterable[str | int]) -> str:
    """``loc`` as a manifest spells it: keys joined by dots, list indexes in brackets."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def kind_of(value: Any) -> str:
    """What ``value`` is, in a YAML author's words (``a list``, ``a string``, ``a dict``)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


def describe(errors: ValidationError | Sequence[ErrorDetails], *, every: bool = False,
             explained: bool = False, named: bool = True) -> str:
    """The problems of ``errors`` in one line: ``spec.x[0].y: why``.

    The first problem, and how many more there are, unless ``every``: then all of them,
    one field after another, each field once. ``explained`` words them for a manifest's
    author and shows the value given (``expected an integer, got "x"``): for a tool reading
    the author's own file, not for messages that may reach other people. ``named=False``
    leaves the field out, for a caller that says where the problem is itself."""
    details = errors.errors() if isinstance(errors, ValidationError) else list(errors)
    if not details:
        return str(errors)
    chosen = details if every else details[:1]
    fields: dict[str, list[str]] = {}
    for problem in chosen:
        texts = fields.setdefault(field_path(problem["loc"]) if named else "", [])
        text = _explain(problem) if explained else problem["msg"]
        if text not in texts:
            texts.append(text)
    said = "; ".join(f"{path or 'the object'}: {_join(texts)}" if named else _join(texts)
                     for path, texts in fields.items())
    more = len(details) - len(chosen)
    return f"{said} (and {more} more)" if more else said


def _explain(problem: ErrorDetails) -> str:
    """One problem as ``expected ..., got ...`` where pydantic's words are Python's."""
    kind = problem["type"]
    given = problem.get("input")
    shown = json.dumps(given) if isinstance(given, str | int | float | bool) or given is None \
        else kind_of(given)
    if len(shown) > _SHOWN:
        shown = shown[:_SHOWN - 3] + "..."
    if kind == "missing":
        return "required"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {shown}"
    if kind == "string_pattern_mismatch" and \
            (problem.get("ctx") or {}).get("pattern") == DURATION_PATTERN:
        return f"expected a duration such as 30s, 1m or 1m30s, got {shown}"
    return f"{problem['msg']}, got {shown}"


def _join(texts: list[str]) -> str:
    """The problems of one field: ``expected a or b, got c`` when each expects a type of
    the same value (a field of several types), else each in turn."""
    expectations = [t.removeprefix("expected ").rsplit(", got ", 1) for t in texts]
    if len(texts) > 1 and all(t.startswith("expected ") for t in texts) and \
            len({e[1] for e in expectations if len(e) == 2}) == 1:
        return f"expected {' or '.join(e[0] for e in expectations)}, got {expectations[0][1]}"
    return "; ".join(texts)
