"""Replacing secrets in text canary shows: in a Canary's status, events, logs and alerts.

Both the webhooks (header values from a Secret, shown as ``***``) and the notifier
(alert addresses, shown as ``<redacted>``) use these two functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def redact(text: str, secrets: Iterable[str], marker: str) -> str:
    """``text`` with every one of ``secrets`` replaced by ``marker``, the longest first, so
    a secret that contains another is replaced whole rather than leaving a piece of it."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            text = text.replace(secret, marker)
    return text


def excerpt(text: str, scrub: Callable[[str], str], limit: int) -> str:
    """``text`` on one line, scrubbed, and cut to ``limit`` characters (``...`` marks a
    cut). The whole text is scrubbed before it is cut, so no prefix of a secret is left at
    the cut, nor moved before it by a shorter replacement; and again once its whitespace
    is folded, in case a secret holds a line break."""
    text = scrub(" ".join(scrub(text).split()))
    return text if len(text) <= limit else text[:limit] + "..."
