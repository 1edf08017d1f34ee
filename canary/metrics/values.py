"""What a value may be at each position of a query template, and how it is written there
(pure). :func:`write` returns the text to put in place of the placeholder, or raises
:class:`ValueError` saying why the value does not fit its position.
"""

from __future__ import annotations

import re

from canary.metrics import regex
from canary.metrics.positions import Position, Slot
from canary.metrics.promql import KEYWORDS, NUMBER_WORDS, quote_body

NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: A Prometheus duration: units from the largest down, each at most once.
DURATION = re.compile(r"(?=.)(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?"
                      r"(?:[0-9]+s)?(?:[0-9]+ms)?")
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER_PART = re.compile(r"[A-Za-z0-9_]+")
QUOTED_NAME = re.compile(r"[A-Za-z0-9_.:/-]+")


def write(slot: Slot, value: str, variable: bool) -> str:
    """``value`` as written at ``slot``; ``variable`` says whether it is a template
    variable (a Kubernetes name otherwise: always a literal in a pattern)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode") from None
    position = slot.position
    if position is Position.STRING:
        return quote_body(value, slot.quote)
    if position is Position.REGEX:
        return quote_body(_pattern(slot, value, variable), slot.quote)
    if position is Position.QUOTED_NAME:
        _expect(QUOTED_NAME, value, "only a name: letters, digits and _ . : / -")
        return quote_body(value, slot.quote)
    if position is Position.NAME:
        return _name(slot, value)
    if position is Position.DURATION:
        _expect(DURATION, value, "only a duration such as 30s, 5m or 1h30m")
    elif position is Position.NUMBER:
        _expect(NUMBER, value, "only a number such as 5, 0.95 or 1e3 (a sign belongs in "
                "the template)")
    elif "\n" in value or "\r" in value:
        raise ValueError("may not hold a line break")
    return value


def _expect(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise ValueError(f"may be {what}")


def _name(slot: Slot, value: str) -> str:
    if slot.left:
        _expect(_IDENTIFIER_PART, value, "only letters, digits and _ (it continues the "
                f"name {slot.left!r})")
    else:
        _expect(IDENTIFIER, value, "only an identifier: letters, digits and _, not "
                "starting with a digit")
    word = f"{slot.left}{value}{slot.right}"
    if word.lower() in KEYWORDS | NUMBER_WORDS:
        raise ValueError(f"would make {word!r}, which PromQL reads as a keyword")
    return value


def _pattern(slot: Slot, value: str, variable: bool) -> str:
    where = slot.pattern or regex.RegexSlot(alone=True, quantified=False)
    if not variable:
        return regex.place(regex.escape(value), where, grouped=False)
    if slot.hole.filter == "regex":
        problem = regex.pattern_problem(value)
        if problem:
            raise ValueError(f"{problem}: a value marked | regex must be a whole pattern")
        return regex.place(value, where, grouped=True)
    problem = regex.alternation_problem(value)
    if problem:
        raise ValueError(
            f"{problem}: in a regular expression a variable is a literal, or literals "
            "separated by | where . stands for any one character; mark the placeholder "
            "{{ variables.NAME | regex }} in the MetricTemplate to accept any pattern")
    return regex.place(value, where, grouped="|" in value)
