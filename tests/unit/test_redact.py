"""One redaction for the webhooks (``***``) and the notifier (``<redacted>``)."""

from __future__ import annotations

from canary import webhooks
from canary.notify import address_redaction
from canary.redact import excerpt, redact, shown_url, url_secrets


def test_the_longest_secret_is_replaced_first() -> None:
    assert redact("token abc-def, part abc", ["abc", "abc-def"], "***") == \
        "token ***, part ***"


def test_an_empty_secret_changes_nothing() -> None:
    assert redact("text", ["", "y"], "<redacted>") == "text"


def test_each_caller_keeps_its_marker() -> None:
    assert webhooks._excerpt("key s3cret-key!", {"s3cret-key"}) == "key ***!"
    assert address_redaction.redact_addresses("key s3cret-key!", {"s3cret-key"}) == \
        "key <redacted>!"


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


class TestUrls:
    """A URL shown in a message keeps its host and path, never its credentials or its
    query values; those are kept out of the rest of the message too."""

    def test_credentials_and_query_values_are_hidden(self) -> None:
        url = "https://ops:hunter2@gate.test:8443/check?token=abcdef&team=a#frag"
        assert shown_url(url, "***") == "https://gate.test:8443/check?token=***&team=***"
        assert {"ops:hunter2", "hunter2", "abcdef"} <= url_secrets(url)

    def test_short_parts_are_not_secrets(self) -> None:
        assert url_secrets("http://gate.test/?v=1&team=a") == {"v=1&team=a"}

    def test_a_plain_url_is_shown_as_it_is(self) -> None:
        assert shown_url("http://loadtester.test/gate/check", "***") == \
            "http://loadtester.test/gate/check"
        assert url_secrets("http://loadtester.test/gate/check") == set()


def test_an_excerpt_shows_what_does_not_print_as_a_replacement_character() -> None:
    """A status or an event is shown in terminals: no escape sequence, NUL or
    bidirectional override from an answer may reach one."""
    assert excerpt("\x1b[2Jgone\x00 \u202eexe.gnp", lambda part: part, 50) == \
        "\ufffd[2Jgone\ufffd \ufffdexe.gnp"
