"""Where each placeholder of a query template sits (pure): the position decides which
values are safe there (see :mod:`canary.metrics.queries`).

A template is read with :func:`canary.metrics.promql.tokenize`; a placeholder is classed
by its token and the brackets around it. Positions where no value could be safe (a
matcher's value without quotes, a placeholder glued to a number or to another
placeholder, inside a regular expression's class, ...) refuse the template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from canary.errors import ConfigError
from canary.metrics import regex
from canary.metrics.promql import Hole, Kind, PromqlSyntaxError, Token, tokenize, unquote

MATCH_OPERATORS = frozenset({"=", "!=", "=~", "!~"})
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
#: Functions with a regular expression among their arguments, and its index.
_REGEX_ARGUMENTS = {"label_replace": 4}
_WORDS = (Kind.IDENT, Kind.KEYWORD)


class Position(Enum):
    """What a placeholder's value becomes in the query."""

    STRING = "a string"
    REGEX = "a regular expression"
    QUOTED_NAME = "a quoted metric or label name"
    NAME = "a metric, label or function name"
    DURATION = "a range or duration"
    NUMBER = "a number position"
    COMMENT = "a comment"


@dataclass(frozen=True)
class Slot:
    """One placeholder, its position and what the value must fit with there."""

    hole: Hole
    position: Position
    where: str
    quote: str = ""
    #: For a name glued to identifiers: the identifier text on each side.
    left: str = ""
    right: str = ""
    pattern: regex.RegexSlot | None = None


@dataclass
class _Frame:
    opener: str
    function: str | None = None
    grouping: bool = False
    argument: int = 0


@dataclass
class _Reader:
    template: str
    tokens: list[Token]
    stack: list[_Frame] = field(default_factory=list)

    def top(self) -> _Frame | None:
        return self.stack[-1] if self.stack else None

    def near(self, index: int) -> Token | None:
        return self.tokens[index] if 0 <= index < len(self.tokens) else None

    def refuse(self, hole: Hole, reason: str) -> ConfigError:
        return ConfigError(f"{{{{ {hole.key} }}}} at {excerpt(self.template, hole)}: {reason}")


def excerpt(template: str, hole: Hole, width: int = 40) -> str:
    """The template around ``hole``, on one line, to name the place in a message."""
    start, end = max(0, hole.start - width), min(len(template), hole.end + width // 2)
    text = " ".join(template[start:end].split())
    return f"`{'…' if start else ''}{text}{'…' if end < len(template) else ''}`"


def slots(template: str) -> list[Slot]:
    """Every placeholder of ``template`` with its position, in order; :class:`ConfigError`
    when the template cannot be read or puts a placeholder where no value is safe."""
    try:
        reader = _Reader(template, tokenize(template, placeholders=True))
    except PromqlSyntaxError as exc:
        raise ConfigError(f"the query does not parse as PromQL: {exc}") from exc
    found: list[Slot] = []
    for index, token in enumerate(reader.tokens):
        if token.kind is Kind.PLACEHOLDER:
            found.append(_bare(reader, index))
        elif token.kind is Kind.STRING and token.holes:
            found.extend(_quoted(reader, index))
        elif token.kind is Kind.COMMENT:
            found.extend(Slot(h, Position.COMMENT, "a comment") for h in token.holes)
        _track(reader, index)
    for slot in found:
        if slot.hole.filter is not None:
            _check_filter(reader, slot)
    return found


def _check_filter(reader: _Reader, slot: Slot) -> None:
    hole = slot.hole
    if hole.filter != "regex":
        raise reader.refuse(hole, f"unknown filter {hole.filter!r} (known: regex)")
    if not hole.key.startswith("variables."):
        raise reader.refuse(hole, "only a template variable can be marked | regex")
    if slot.position is not Position.REGEX:
        raise reader.refuse(hole, f"| regex belongs in a regex matcher's string; this "
                            f"placeholder is in {slot.where}")


def _track(reader: _Reader, index: int) -> None:
    """Follow the brackets, the function calls and their arguments."""
    token = reader.tokens[index]
    if token.kind is not Kind.OPERATOR:
        return
    if token.text in "{[(":
        frame, before = _Frame(token.text), reader.near(index - 1)
        if token.text == "(" and before is not None:
            frame.grouping = before.kind is Kind.KEYWORD and before.text.lower() in _GROUPING
            frame.function = before.text if before.kind is Kind.IDENT else None
        reader.stack.append(frame)
    elif token.text in "}])" and reader.stack:
        reader.stack.pop()
    elif token.text == "," and reader.stack:
        reader.stack[-1].argument += 1


def _bare(reader: _Reader, index: int) -> Slot:
    """A placeholder outside strings."""
    token, hole = reader.tokens[index], reader.tokens[index].holes[0]
    before, after = reader.near(index - 1), reader.near(index + 1)
    left = before if before is not None and before.end == token.start else None
    right = after if after is not None and after.start == token.end else None
    glued = [t for t in (left, right) if t is not None]
    if any(t.kind is Kind.PLACEHOLDER for t in glued):
        raise reader.refuse(hole, "two placeholders run together")
    if any(t.kind in (Kind.NUMBER, Kind.DURATION) for t in glued):
        raise reader.refuse(hole, "a placeholder glued to a number or duration")
    words = [t for t in glued if t.kind in _WORDS]
    top = reader.top()
    if (top is not None and top.opener == "[") or _after_offset(reader, index):
        if words:
            raise reader.refuse(hole, "a duration placeholder must stand alone, as in "
                                "[{{ interval }}]")
        return Slot(hole, Position.DURATION, "a range or duration")
    if words:
        return Slot(hole, Position.NAME, "a name", left=_text(left), right=_text(right))
    if top is not None and top.opener == "{":
        if _is_operator(before, MATCH_OPERATORS):
            raise reader.refuse(hole, f"a matcher's value must be quoted: write "
                                f'"{{{{ {hole.key} }}}}"')
        return Slot(hole, Position.NAME, "a label name")
    if top is not None and top.grouping:
        return Slot(hole, Position.NAME, "a grouping label")
    if _is_operator(after, {"{", "(", "["}):
        return Slot(hole, Position.NAME, "a metric or function name")
    return Slot(hole, Position.NUMBER, "a number position")


def _is_operator(token: Token | None, operators: set[str] | frozenset[str]) -> bool:
    return token is not None and token.kind is Kind.OPERATOR and token.text in operators


def _text(token: Token | None) -> str:
    return token.text if token is not None and token.kind in _WORDS else ""


def _after_offset(reader: _Reader, index: int) -> bool:
    def offset(token: Token | None) -> bool:
        return token is not None and token.kind is Kind.KEYWORD and \
            token.text.lower() == "offset"
    before = reader.near(index - 1)
    signed = _is_operator(before, {"+", "-"})
    return offset(before) or (signed and offset(reader.near(index - 2)))


def _quoted(reader: _Reader, index: int) -> list[Slot]:
    """The placeholders inside a string literal."""
    token, top, before = reader.tokens[index], reader.top(), reader.near(index - 1)
    quote, holes = token.text[0], token.holes
    in_braces = top is not None and top.opener == "{"
    if in_braces and before is not None and _is_operator(before, MATCH_OPERATORS):
        kind = Position.REGEX if before.text in ("=~", "!~") else Position.STRING
        where = f"a label matcher's string ({before.text})"
    elif in_braces or (top is not None and top.grouping):
        kind, where = Position.QUOTED_NAME, "a quoted name"
    elif top is not None and top.function in _REGEX_ARGUMENTS and \
            top.argument == _REGEX_ARGUMENTS[top.function]:
        kind, where = Position.REGEX, f"{top.function}'s regex argument"
    else:
        kind, where = Position.STRING, "a string"
    if kind is not Position.REGEX:
        return [Slot(h, kind, where, quote) for h in holes]
    try:
        patterns = regex.slots(_pieces(token, quote))
    except regex.SlotError as exc:
        raise reader.refuse(holes[exc.index], str(exc)) from exc
    except PromqlSyntaxError as exc:
        raise reader.refuse(holes[0], f"the string does not read as PromQL: {exc}") from exc
    return [Slot(h, kind, where, quote, pattern=p) for h, p in zip(holes, patterns, strict=True)]


def _pieces(token: Token, quote: str) -> list[str]:
    """The values of a string's text around its placeholders."""
    bounds = [token.start + 1, *(b for h in token.holes for b in (h.start, h.end)),
              token.end - 1]
    return [unquote(token.text[s - token.start:e - token.start], quote)
            for s, e in zip(bounds[::2], bounds[1::2], strict=True)]
