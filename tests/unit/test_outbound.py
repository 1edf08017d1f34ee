"""What an answer becomes in a message (canary.outbound): its text in the charset it
names, a redirect's target without its secrets, an httpx error in words. The calls
themselves are tested against a misbehaving server in test_hostile_receivers.py."""

from __future__ import annotations

import httpx
import pytest

from canary.outbound import Answer, describe


def answer(status: int, body: bytes = b"", **headers: str) -> Answer:
    return Answer(status, httpx.Headers({k.replace("_", "-"): v for k, v in headers.items()}),
                  body)


def keep(text: str) -> str:
    return text


class TestText:
    def test_the_charset_the_answer_names(self) -> None:
        body = "déjà refusé".encode("latin-1")
        assert answer(403, body, Content_Type="text/plain; charset=ISO-8859-1").text() == \
            "déjà refusé"

    @pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=nonsense",
                                              ""])
    def test_utf_8_otherwise_and_bytes_that_are_not_replaced(self, content_type: str
                                                             ) -> None:
        body = "refusé ".encode() + b"\xff"
        assert answer(403, body, Content_Type=content_type).text() == "refusé \ufffd"


class TestSummary:
    def test_a_redirect_shows_where_to_without_credentials_or_query_values(self) -> None:
        shown = answer(307, b"moved", Location="https://ops:pw@gate.example/v2?token=abc")
        assert shown.summary(keep, 200) == (
            "HTTP 307: a redirect to https://gate.example/v2?token=***, not followed")

    def test_a_304_is_no_redirect(self) -> None:
        assert answer(304, Location="/elsewhere").summary(keep, 200) == "HTTP 304"

    def test_the_body_is_scrubbed_and_cut(self) -> None:
        shown = answer(500, b"token s3cret\nand " + b"x" * 50)
        assert shown.summary(lambda text: text.replace("s3cret", "***"), 20) == \
            "HTTP 500: token *** and xxxxxx..."


class TestDescribe:
    def test_an_error_with_words_keeps_them(self) -> None:
        assert describe(httpx.ConnectError("All connection attempts failed")) == \
            "ConnectError: All connection attempts failed"

    def test_an_error_without_words_takes_those_of_the_os_error_under_it(self) -> None:
        try:
            try:
                raise ConnectionResetError(104, "Connection reset by peer")
            except ConnectionResetError as exc:
                raise httpx.ReadError("") from exc
        except httpx.ReadError as exc:
            assert describe(exc) == "ReadError: Connection reset by peer"

    def test_an_error_with_no_words_anywhere_is_named(self) -> None:
        assert describe(httpx.ReadError("")) == "ReadError"
