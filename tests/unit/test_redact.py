"""One redaction for the webhooks (``***``) and the notifier (``<redacted>``)."""

from __future__ import annotations

from canary import webhooks
from canary.notify import redact as notify_redact
from canary.redact import excerpt, redact


def test_the_longest_secret_is_replaced_first() -> None:
    assert redact("token abc-def, part abc", ["abc", "abc-def"], "***") == \
        "token ***, part ***"


def test_an_empty_secret_changes_nothing() -> None:
    assert redact("text", ["", "y"], "<redacted>") == "text"


def test_each_caller_keeps_its_marker() -> None:
    assert webhooks._excerpt("key s3cret-key!", {"s3cret-key"}) == "key ***!"
    assert notify_redact.redact("key s3cret-key!", {"s3cret-key"}) == "key <redacted>!"


def test_an_excerpt_is_scrubbed_before_it_is_cut() -> None:
    secret = "Zq8-very-secret-value"
    text = "a" * 15 + secret + " tail"
    cut = excerpt(text, lambda part: redact(part, {secret}, "***"), 20)
    assert cut == "a" * 15 + "*** t..."
    assert "Zq8" not in excerpt(text, lambda part: part.replace(secret, ""), 17)


def test_an_excerpt_folds_whitespace_and_scrubs_what_that_joins() -> None:
    secret = "line one line two"
    cut = excerpt("say\n line one\nline   two\n", lambda part: redact(part, {secret}, "***"),
                  50)
    assert cut == "say ***"
