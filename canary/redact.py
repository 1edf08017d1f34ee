"""Replacing secrets in text canary shows: in a Canary's status, events, logs and alerts.

Both the webhooks (header values from a Secret, shown as ``***``) and the notifier
(alert addresses, shown as ``<redacted>``) use these two functions; a webhook's address
is shown through :func:`shown_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

#: What a character that does not print is shown as.
UNPRINTABLE = "\ufffd"


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
    is folded, in case a secret holds a line break. Characters that do not print (NUL,
    terminal escapes, bidirectional overrides: what a binary or hostile answer holds)
    become U+FFFD, so they never reach a terminal showing a status or an event."""
    text = scrub(" ".join(scrub(text).split()))
    shown = "".join(c if c.isprintable() else UNPRINTABLE for c in text[:limit])
    return shown if len(text) <= limit else shown + "..."


#: The shortest part of a URL :func:`url_secrets` treats as a secret.
MIN_URL_SECRET = 4


def shown_url(url: str, marker: str) -> str:
    """``url`` as it may be shown: its credentials (userinfo) dropped, each query value
    replaced by ``marker`` (tokens travel there), no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "an invalid URL"
    host = parts.netloc.rpartition("@")[2]
    shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else f"{host}{parts.path}"
    if parts.query:
        keys = [key for key, _ in parse_qsl(parts.query, keep_blank_values=True)]
        shown += "?" + ("&".join(f"{key}={marker}" for key in keys) if keys else marker)
    return shown


def url_secrets(url: str) -> set[str]:
    """The parts of ``url`` :func:`shown_url` hides, to keep them out of other text too
    (an error or an answer may quote the request); parts shorter than
    :data:`MIN_URL_SECRET` are left, or every ``1`` of a message would go."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return {url}
    userinfo, at, _ = parts.netloc.rpartition("@")
    found = {userinfo, userinfo.partition(":")[2]} if at else set()
    if parts.query:
        found.add(parts.query)
        found.update(value for _, value in parse_qsl(parts.query, keep_blank_values=True))
    return {secret for secret in found if len(secret) >= MIN_URL_SECRET}
