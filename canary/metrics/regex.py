"""Values inside a query's regular expressions (pure, RE2 syntax as Prometheus reads it).

A value put into a regex matcher must stay in its slot: neither end the template's
pattern early nor reach into it. Three kinds of value, from strictest:

- a Kubernetes name (``{{ target }}``, ...) is a literal, its metacharacters escaped;
- a variable is a *literal alternation*: literals, ``.`` for any one character,
  ``\\`` before punctuation, separated by ``|`` (``5..|4..``, ``GET|POST``);
- a variable the template marks ``| regex`` is any self-contained pattern: its groups,
  classes, escapes and ``\\Q...\\E`` quotes are all closed.

A value that is not alone in its pattern is grouped ``(?:...)`` where it could mix with
the text around it, so that ``a|b`` never splits the template's own pattern.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from canary.errors import CanaryError

#: What RE2 reads as syntax outside a character class.
METACHARACTERS = frozenset("\\.+*?()|[]{}^$")
_QUANTIFIERS = frozenset("*+?{")
#: The start of a group's flags or name, ``(?i`` or ``(?P<``, still open.
_GROUP_PREFIX = re.compile(r"\(\?[^():]*$")


@dataclass
class _State:
    """Where a left-to-right reading of a pattern stands."""

    escape: bool = False
    quote: bool = False
    klass: bool = False
    fresh: bool = False
    caret: bool = False
    repeat: bool = False
    depth: int = 0
    lowest: int = 0


def _read(state: _State, text: str) -> None:
    at = 0
    while at < len(text):
        char = text[at]
        if state.quote:
            state.quote = not text.startswith("\\E", at)
            at += 1 if state.quote else 2
            continue
        if state.escape:
            state.escape, state.fresh, state.caret = False, False, False
            state.quote = char == "Q" and not state.klass
        elif char == "\\":
            state.escape = True
        elif state.klass:
            at = _read_class(state, text, at)
            continue
        elif char == "[":
            state.klass, state.fresh, state.caret = True, True, True
        elif char in "{}":
            state.repeat = char == "{"
        elif char in "()":
            state.depth += 1 if char == "(" else -1
            state.lowest = min(state.lowest, state.depth)
        at += 1


def _read_class(state: _State, text: str, at: int) -> int:
    """One step inside a character class; the position after it."""
    char = text[at]
    if text.startswith("[:", at) and text.find(":]", at + 2) >= 0:
        state.fresh = state.caret = False
        return text.find(":]", at + 2) + 2
    if char == "^" and state.caret:
        state.caret = False
    elif char == "]" and not state.fresh:
        state.klass = False
    else:
        state.fresh = state.caret = False
    return at + 1


class SlotError(CanaryError, ValueError):
    """A placeholder (the ``index``-th of its pattern) sits where no value is safe."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index


@dataclass(frozen=True)
class RegexSlot:
    """Where a placeholder sits in the template's pattern: whether other pattern text is
    around it, and whether a quantifier follows it."""

    alone: bool
    quantified: bool


def slots(pieces: list[str]) -> list[RegexSlot]:
    """The slots between ``pieces``, the template's pattern text around its placeholders;
    :class:`SlotError` saying which and why when a placeholder sits where no value is
    safe."""
    state, found = _State(), []
    alone = not any(pieces) and len(pieces) == 2
    for index, piece in enumerate(pieces[:-1]):
        _read(state, piece)
        problem = ("right after a backslash" if state.escape
                   else "inside a [...] character class" if state.klass
                   else "inside \\Q...\\E" if state.quote
                   else "inside a {n,m} repetition" if state.repeat
                   else "inside a group's flags or name" if _GROUP_PREFIX.search(piece)
                   else None)
        if problem:
            raise SlotError(index, f"the placeholder sits {problem} of the pattern")
        following = pieces[index + 1]
        found.append(RegexSlot(alone, bool(following) and following[0] in _QUANTIFIERS))
    return found


def escape(value: str) -> str:
    """``value`` as a pattern matching exactly itself."""
    return "".join("\\" + c if c in METACHARACTERS else c for c in value)


def alternation_problem(value: str) -> str | None:
    """Why ``value`` is not a literal alternation, or None when it is."""
    at, alternatives = 0, [0]
    while at < len(value):
        char = value[at]
        if char == "\\":
            following = value[at + 1:at + 2]
            if not following or following.isalnum() or not following.isascii():
                return "holds a backslash that does not escape punctuation"
            at += 2
            alternatives[-1] += 1
            continue
        if char == "|":
            alternatives.append(0)
        elif char in METACHARACTERS - {"."}:
            return f"holds {char!r}"
        else:
            alternatives[-1] += 1
        at += 1
    if len(alternatives) > 1 and 0 in alternatives:
        return "has an empty alternative (it would match the empty string)"
    return None


def pattern_problem(value: str) -> str | None:
    """Why ``value`` is not a self-contained pattern, or None when it is."""
    state = _State()
    _read(state, value)
    if state.lowest < 0:
        return "closes a group it did not open"
    for unclosed, problem in ((state.escape, "ends with a lone backslash"),
                              (state.klass, "leaves a [ class open"),
                              (state.quote, "leaves a \\Q quote open"),
                              (state.repeat, "leaves a { open"),
                              (state.depth > 0, "leaves a group open")):
        if unclosed:
            return problem
    return None


def place(pattern: str, slot: RegexSlot, grouped: bool) -> str:
    """``pattern`` ready for its slot: grouped when other text could mix with it
    (``grouped`` says whether an alternation or a whole pattern is at stake)."""
    if slot.quantified or (grouped and not slot.alone):
        return f"(?:{pattern})"
    return pattern
