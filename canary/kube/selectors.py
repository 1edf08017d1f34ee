"""Label keys, values and selectors as the API server reads them, checked before use.

A bad ``--canary-selector`` or ``--selector-labels`` is refused when the controller
starts, with a message saying what is wrong, not later by every list and watch.
"""

from __future__ import annotations

import re

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def check_label_key(key: str) -> str:
    """``key`` if it is a valid label key (``[prefix/]name``), else ValueError."""
    prefix, _, name = key.rpartition("/")
    if (len(name) > 63 or not _LABEL_NAME.fullmatch(name)
            or ("/" in key and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)))):
        raise ValueError(f"{key!r} is not a label key ([prefix/]name, the name at most 63 "
                         "letters, digits, '-', '_' and '.')")
    return key


def _check_label_value(value: str) -> None:
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        raise ValueError(f"{value!r} is not a label value (at most 63 letters, digits, "
                         "'-', '_' and '.', starting and ending with a letter or digit)")


_SELECTOR_TOKEN = re.compile(r"\s*(?:(!=|==|=|!|,|\(|\)|<|>)|([^\s!=,()<>]+))")


def check_label_selector(selector: str) -> str:
    """``selector`` if the API server would accept it as a label selector, else
    ValueError: requirements separated by commas, each ``key``, ``!key``, ``key=value``
    (or ``==``), ``key!=value``, ``key in (v1,v2)``, ``key notin (v1,v2)``, ``key>1`` or
    ``key<1``, as Kubernetes' own parser reads them. As there, an empty item in a value list
    is the empty value: ``key in ()`` means ``key in ("")``, and ``(a,)`` is ``(a, "")``."""
    tokens: list[str] = []
    position = 0
    while position < len(selector):
        match = _SELECTOR_TOKEN.match(selector, position)
        if match is None:  # only trailing whitespace is left
            break
        tokens.append(match.group(1) or match.group(2))
        position = match.end()
    try:
        _parse_selector(tokens)
    except ValueError as exc:
        raise ValueError(f"{selector!r} is not a label selector: {exc}") from None
    return selector


_OPERATORS = frozenset(["!=", "==", "=", "!", ",", "(", ")", "<", ">"])


def _parse_selector(tokens: list[str]) -> None:
    def at(i: int) -> str | None:
        return tokens[i] if i < len(tokens) else None

    def key_at(i: int) -> str:
        token = at(i)
        if token is None or token in _OPERATORS:
            raise ValueError("expected a label key, found "
                             + (repr(token) if token is not None else "the end"))
        check_label_key(token)
        return token

    if not tokens:
        return
    i = 0
    while True:
        if at(i) == "!":
            key_at(i + 1)
            i += 2
        else:
            key = key_at(i)
            i += 1
            operator = at(i)
            if operator in ("=", "==", "!="):
                i += 1
                value = at(i)
                if value is not None and value not in _OPERATORS:
                    _check_label_value(value)
                    i += 1
            elif operator in ("<", ">"):
                value = at(i + 1)
                if value is None or not re.fullmatch(r"-?[0-9]+", value):
                    raise ValueError(f"'{key}{operator}' needs an integer")
                i += 2
            elif operator in ("in", "notin"):
                i = _parse_values(tokens, i + 1, f"'{key} {operator}'")
            elif operator not in (None, ","):
                raise ValueError(f"unexpected {operator!r} after {key!r}")
        if at(i) is None:
            return
        if at(i) != ",":
            raise ValueError(f"expected ',' before {at(i)!r}")
        i += 1


def _parse_values(tokens: list[str], i: int, what: str) -> int:
    """Parse ``(v1, v2)`` from ``tokens[i]``; the index after it. Empty values (``()``,
    ``(a,)``, ``(,a)``) are allowed, as the API server allows them."""
    if i >= len(tokens) or tokens[i] != "(":
        raise ValueError(f"{what} needs values in parentheses")
    i += 1
    expect_value = True
    while i < len(tokens) and tokens[i] != ")":
        token = tokens[i]
        if token == ",":
            expect_value = True
        elif expect_value and token not in _OPERATORS:
            _check_label_value(token)
            expect_value = False
        else:
            raise ValueError(f"unexpected {token!r} in the values of {what}")
        i += 1
    if i >= len(tokens):
        raise ValueError(f"{what} misses its ')'")
    return i + 1
