"""Retries: exponential backoff on 5xx, 429 and connection errors, Retry-After honoured,
no retry on other 4xx. The waits are recorded instead of slept (httpx.MockTransport)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from canary.backoff import Backoff
from canary.notify.delivery import DeliveryResult, RetryPolicy, post, retry_after

POLICY = RetryPolicy(attempts=4, backoff=Backoff(1.0, 3.0, jitter=0),
                     max_retry_after=30.0, timeout=1.0)
URL = "https://hooks.example/services/T0/B0/secret-token"


class Script:
    """Answers requests from a list (the last one repeats) and records the waits."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.waits: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def post(self, policy: RetryPolicy = POLICY) -> DeliveryResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(self.handle)) as client:
            return await post(client, URL, {"text": "hi"}, policy, secrets={URL},
                              sleep=self.sleep)


def answer(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, text=f"status {status}")


class TestRetries:
    async def test_server_errors_are_retried_with_exponential_backoff(self) -> None:
        script = Script(answer(500), answer(502), answer(503), answer(200))
        outcome = await script.post()
        assert outcome == DeliveryResult(True, 4, 200, "HTTP 200")
        assert script.waits == [1.0, 2.0, 3.0]  # doubled, capped at max_backoff

    async def test_connection_errors_and_timeouts_are_retried(self) -> None:
        script = Script(httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), answer(200))
        outcome = await script.post()
        assert outcome.delivered and outcome.attempts == 3

    async def test_giving_up_reports_the_last_answer(self) -> None:
        script = Script(answer(503))
        outcome = await script.post()
        assert outcome == DeliveryResult(False, 4, 503, "HTTP 503: status 503")
        assert len(script.requests) == 4 and len(script.waits) == 3

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
    async def test_other_client_errors_are_not_retried(self, status: int) -> None:
        """A revoked webhook or a refused payload fails the same way every time."""
        script = Script(answer(status))
        outcome = await script.post()
        assert (outcome.delivered, outcome.attempts, outcome.status) == (False, 1, status)
        assert script.waits == []

    async def test_408_is_retried(self) -> None:
        script = Script(answer(408), answer(204))
        assert (await script.post()).delivered

    async def test_jitter_spreads_the_waits_within_its_bounds(self) -> None:
        policy = RetryPolicy(backoff=Backoff(1.0, 30.0, jitter=0.5))
        waits = [policy.delay(1) for _ in range(200)]
        assert all(0.5 <= w <= 1.5 for w in waits) and len(set(waits)) > 1


class TestRetryAfter:
    async def test_429_waits_as_long_as_the_receiver_asks(self) -> None:
        script = Script(answer(429, **{"Retry-After": "7"}), answer(200))
        outcome = await script.post()
        assert outcome.delivered and script.waits == [7.0]

    async def test_an_http_date_is_understood(self) -> None:
        later = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
        script = Script(answer(503, **{"Retry-After": later}), answer(200))
        await script.post()
        assert 18.0 <= script.waits[0] <= 20.0

    async def test_an_excessive_retry_after_is_capped(self) -> None:
        script = Script(answer(429, **{"Retry-After": "86400"}), answer(200))
        await script.post()
        assert script.waits == [30.0]

    async def test_without_retry_after_429_backs_off(self) -> None:
        script = Script(answer(429), answer(200))
        await script.post()
        assert script.waits == [1.0]

    @pytest.mark.parametrize(("header", "seconds"), [
        ("3", 3.0), (" 2.5 ", 2.5), ("-4", 0.0), ("soon", None), ("", None), (None, None)])
    def test_parsing(self, header: str | None, seconds: float | None) -> None:
        assert retry_after(header) == seconds

    def test_a_date_in_the_past_means_now(self) -> None:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        past = format_datetime(now - timedelta(minutes=5), usegmt=True)
        assert retry_after(past, now) == 0.0


class TestWhatIsReported:
    async def test_the_address_never_appears_in_the_detail(self) -> None:
        """Receivers and httpx errors may echo the URL; the outcome goes to events."""
        script = Script(httpx.Response(
            404, text=f"no_service for {URL} (path /services/T0/B0/secret-token)"))
        outcome = await script.post()
        assert "secret-token" not in outcome.detail and "hooks.example" not in outcome.detail
        assert outcome.detail == "HTTP 404: no_service for <redacted> (path <redacted>)"

    async def test_a_secret_across_the_cut_of_a_long_body_leaves_no_prefix(self) -> None:
        """The body is redacted whole before it is cut to 200 characters."""
        secret = "Zq8-very-secret-value"
        script = Script(httpx.Response(400, text="a" * 190 + secret + " and more " * 20))
        async with httpx.AsyncClient(transport=httpx.MockTransport(script.handle)) as client:
            outcome = await post(client, URL, {"text": "hi"}, POLICY, secrets={secret},
                                 sleep=script.sleep)
        assert "Zq8" not in outcome.detail, outcome.detail
        assert outcome.detail == "HTTP 400: " + "a" * 190 + "<redacted>..."

    async def test_an_unsupported_scheme_is_not_retried(self) -> None:
        script = Script(httpx.UnsupportedProtocol("ftp"))
        outcome = await script.post()
        assert (outcome.delivered, outcome.attempts, outcome.status) == (False, 1, None)
        assert outcome.detail == "UnsupportedProtocol: ftp"
