"""A small PromQL tokenizer (pure), enough to say where a query template's placeholders sit
and to check that a rendered query keeps the template's structure.

It follows Prometheus's lexer where structure is decided: string literals and their
escapes (``"`` and ``'`` strings take ``\\a \\b \\f \\n \\r \\t \\v \\\\``, their own
quote, ``\\NNN`` octal, ``\\xHH``, ``\\uHHHH``, ``\\UHHHHHHHH``; backtick strings take
none), numbers and durations, identifiers and the keywords that act as operators or
modifiers, comments, operators and brackets. With ``placeholders``, ``{{ ... }}`` is read
as a placeholder wherever it stands: as a token of its own outside strings and comments,
as a :class:`Hole` inside them. It does not parse expressions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from canary.errors import CanaryError

#: ``{{ name }}``, ``{{ variables.NAME }}``, optionally with a filter: ``{{ variables.NAME
#: | regex }}``.
PLACEHOLDER = re.compile(
    r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)?)\s*"
    r"(?:\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*)?\}\}")
#: Words Prometheus reads as operators or modifiers (case-insensitively), not as names.
KEYWORDS = frozenset({"and", "or", "unless", "atan2", "by", "without", "on", "ignoring",
                      "group_left", "group_right", "bool", "offset"})
#: Words Prometheus reads as numbers.
NUMBER_WORDS = frozenset({"inf", "nan"})
_SPACE = " \t\n\r"
_DIGITS = "0123456789"
_IDENT_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_IDENT_PART = _IDENT_START + _DIGITS
_DURATION = re.compile(r"(?:[0-9]+(?:ms|[smhdwy]))+")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_OPERATORS = ("==", "!=", "=~", "!~", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%",
              "^", "(", ")", "{", "}", "[", "]", ",", ":", "@")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                   "v": "\v", "\\": "\\"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


class Kind(Enum):
    IDENT = "identifier"
    KEYWORD = "keyword"
    NUMBER = "number"
    DURATION = "duration"
    STRING = "string"
    OPERATOR = "operator"
    COMMENT = "comment"
    PLACEHOLDER = "placeholder"


class PromqlSyntaxError(CanaryError, ValueError):
    """The text is not PromQL this tokenizer can read; the message says where."""


@dataclass(frozen=True)
class Hole:
    """A placeholder: its span in the text, the name it holds and its filter, if any."""

    start: int
    end: int
    key: str
    filter: str | None = None


@dataclass(frozen=True)
class Token:
    kind: Kind
    start: int
    end: int
    text: str
    #: The placeholders inside a string or a comment, or the placeholder itself.
    holes: tuple[Hole, ...] = ()


def tokenize(text: str, placeholders: bool = False) -> list[Token]:
    """The tokens of ``text``; :class:`PromqlSyntaxError` where it cannot be read."""
    tokens: list[Token] = []
    at, brackets = 0, 0
    while at < len(text):
        char = text[at]
        if char in _SPACE:
            at += 1
            continue
        token = _next(text, at, placeholders, brackets > 0)
        if token.kind is Kind.OPERATOR and token.text in "[]":
            brackets += 1 if token.text == "[" else -1
        tokens.append(token)
        at = token.end
    return tokens


def _next(text: str, at: int, placeholders: bool, in_brackets: bool) -> Token:
    char = text[at]
    hole = PLACEHOLDER.match(text, at) if placeholders else None
    if hole is not None:
        return Token(Kind.PLACEHOLDER, at, hole.end(), hole.group(0),
                     (Hole(at, hole.end(), hole.group(1), hole.group(2)),))
    if char == "#":
        end = len(text)
        for stop in "\n\r":
            found = text.find(stop, at)
            end = min(end, found) if found >= 0 else end
        holes = _comment_holes(text, at, end) if placeholders else ()
        return Token(Kind.COMMENT, at, end, text[at:end], holes)
    if char in "\"'`":
        return _string(text, at, placeholders)
    if char in _DIGITS or (char == "." and text[at + 1:at + 2] in tuple(_DIGITS)):
        return _number(text, at)
    if char in _IDENT_START or (char == ":" and not in_brackets):
        return _word(text, at, in_brackets)
    for operator in _OPERATORS:
        if text.startswith(operator, at):
            return Token(Kind.OPERATOR, at, at + len(operator), operator)
    raise PromqlSyntaxError(f"unexpected character {char!r} at offset {at}")


def _comment_holes(text: str, start: int, end: int) -> tuple[Hole, ...]:
    return tuple(Hole(m.start(), m.end(), m.group(1), m.group(2))
                 for m in PLACEHOLDER.finditer(text, start, end))


def _number(text: str, at: int) -> Token:
    duration = _DURATION.match(text, at)
    number = _NUMBER.match(text, at)
    if duration is not None and (number is None or duration.end() >= number.end()):
        kind, end = Kind.DURATION, duration.end()
    elif number is not None:
        kind, end = Kind.NUMBER, number.end()
    else:
        raise PromqlSyntaxError(f"bad number at offset {at}")
    if end < len(text) and text[end] in _IDENT_PART + ".":
        raise PromqlSyntaxError(f"bad number or duration at offset {at}")
    return Token(kind, at, end, text[at:end])


def _word(text: str, at: int, in_brackets: bool) -> Token:
    end = at + 1
    part = _IDENT_PART if in_brackets else _IDENT_PART + ":"
    while end < len(text) and text[end] in part:
        end += 1
    word = text[at:end]
    kind = (Kind.KEYWORD if word.lower() in KEYWORDS
            else Kind.NUMBER if word.lower() in NUMBER_WORDS else Kind.IDENT)
    return Token(kind, at, end, word)


def _string(text: str, at: int, placeholders: bool) -> Token:
    """A string literal from its opening quote; in a template, with its placeholders."""
    quote, end, holes = text[at], at + 1, []
    while True:
        if end >= len(text):
            raise PromqlSyntaxError(f"unterminated string at offset {at}")
        char = text[end]
        hole = PLACEHOLDER.match(text, end) if placeholders and char == "{" else None
        if hole is not None:
            holes.append(Hole(end, hole.end(), hole.group(1), hole.group(2)))
            end = hole.end()
        elif char == quote:
            return Token(Kind.STRING, at, end + 1, text[at:end + 1], tuple(holes))
        elif quote == "`":
            end += 1
        elif char == "\n":
            raise PromqlSyntaxError(f"unterminated string at offset {at}")
        elif char == "\\":
            length = escape_length(text, end, quote)
            if placeholders and any(PLACEHOLDER.match(text, i)
                                    for i in range(end + 1, end + length)):
                raise PromqlSyntaxError(f"a placeholder inside the escape sequence at "
                                        f"offset {end}")
            end += length
        else:
            end += 1


def escape_length(text: str, at: int, quote: str) -> int:
    """How many characters the escape sequence at ``text[at]`` (a backslash) spans."""
    kind = text[at + 1:at + 2]
    if kind in _SIMPLE_ESCAPES or kind == quote:
        return 2
    if kind in _HEX_ESCAPES:
        return 2 + _HEX_ESCAPES[kind]
    if kind and kind in "01234567":
        return 4
    raise PromqlSyntaxError(f"unknown escape sequence at offset {at}")


def unquote(body: str, quote: str) -> str:
    """The value of a string literal's ``body`` (without its quotes)."""
    if quote == "`":
        return body
    out, at = [], 0
    while at < len(body):
        if body[at] != "\\":
            out.append(body[at])
            at += 1
            continue
        length = escape_length(body, at, quote)
        sequence = body[at + 1:at + length]
        if len(sequence) != length - 1:
            raise PromqlSyntaxError(f"truncated escape sequence at offset {at}")
        out.append(_escaped(sequence, quote))
        at += length
    return "".join(out)


def _escaped(sequence: str, quote: str) -> str:
    kind = sequence[0]
    if kind == quote:
        return quote
    if kind in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[kind]
    digits, base = (sequence[1:], 16) if kind in _HEX_ESCAPES else (sequence, 8)
    if not re.fullmatch(r"[0-9a-fA-F]+" if base == 16 else r"[0-7]+", digits):
        raise PromqlSyntaxError(f"bad escape sequence \\{sequence}")
    code = int(digits, base)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or (base == 8 and code > 255):
        raise PromqlSyntaxError(f"bad escape sequence \\{sequence}")
    return chr(code)


def string_value(token: Token) -> str:
    """The value of a string token."""
    return unquote(token.text[1:-1], token.text[0])


def quote_body(value: str, quote: str) -> str:
    """``value`` written inside a ``quote`` string literal so that it reads back as itself;
    :class:`ValueError` when a backtick string cannot hold it."""
    if quote == "`":
        bad = next((c for c in value if c == "`" or _control(c)), None)
        if bad is not None:
            raise ValueError(f"cannot hold {bad!r} in a backtick string")
        return value
    out = []
    for char in value:
        if char in ("\\", quote):
            out.append("\\" + char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif _control(char):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def _control(char: str) -> bool:
    return ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F
