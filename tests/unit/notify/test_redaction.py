"""A webhook URL is a credential: it never appears in logs, events or failure reports."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from structlog.testing import capture_logs

from canary.notify.address_redaction import REDACTED, RedactingFilter, redact_addresses, variants
from canary.notify.notifier import DeliveryFailure
from tests.unit.notify.helpers import Cluster, make_alert, subscribe
from tests.unit.notify.servers import Answer, Proxy, Receiver

TOKEN = "xoxb-0123456789-very-secret"
PASSWORD = "proxy-pa55word-secret"


async def test_no_log_line_or_report_shows_an_address_or_credential(
        cluster: Cluster, receiver: Receiver, proxy: Proxy,
        caplog: pytest.LogCaptureFixture) -> None:
    """Success, retries, a receiver echoing the path, a refusal, a malformed address and a
    proxy with credentials: the structlog lines, httpx's own request lines (the standard
    library's logging) and the failure reports all stay clean."""
    caplog.set_level(logging.DEBUG)
    receiver.answers = [Answer(500, body="retry {path}"), Answer(200)]
    cluster.add("ok", f"{receiver.url}/services/T0/{TOKEN}")
    cluster.add("refused", f"{receiver.url}/hooks/{TOKEN}?sig={TOKEN}", type_="msteams")
    cluster.add("malformed", f"hooks.example/{TOKEN}")
    cluster.add("proxied", f"http://hooks.invalid/{TOKEN}",
                secret={"proxy": proxy.url.replace("http://", f"http://u:{PASSWORD}@")})
    with capture_logs() as logs:
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("ok")])
            await receiver.wait_for(2)
            receiver.default = Answer(403, body="forbidden: {path}")
            notifier.notify(make_alert(), [subscribe(name) for name in
                                           ("refused", "malformed", "proxied")])
            deadline = time.monotonic() + 3
            while notifier.pending() or len(cluster.failures) < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.005)
    assert len(proxy.requests) == 1
    assert notifier.stats["test/ok"].delivered == 1
    assert {f.reason for f in cluster.failures} == {"AlertDeliveryFailed",
                                                    "AlertAddressUnavailable"}
    deliveries = [f for f in cluster.failures if isinstance(f, DeliveryFailure)]
    assert deliveries == cluster.failures
    reports = " ".join(f"{f.event_message()} {f.message}" for f in deliveries)
    structured = repr(logs)
    standard = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    for text in (reports, structured, standard):
        assert TOKEN not in text and PASSWORD not in text
        assert "hooks.invalid" not in text and "hooks.example" not in text
    assert any(e.get("event") == "alert delivery failed; retrying" for e in logs)
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert httpx_lines and all(REDACTED in line for line in httpx_lines)
    assert not any(isinstance(f, RedactingFilter) for f in logging.getLogger("httpx").filters)


class TestRedact:
    def test_the_address_its_path_and_its_tokens(self) -> None:
        url = f"https://hooks.example/services/T0/{TOKEN}"
        secrets = variants(url)
        assert redact_addresses(f"POST {url} failed", secrets) == "POST <redacted> failed"
        assert redact_addresses(f"no route for /services/T0/{TOKEN}", secrets) == \
            "no route for <redacted>"
        assert redact_addresses(f"token {TOKEN} revoked", secrets) == "token <redacted> revoked"

    def test_any_url_at_all(self) -> None:
        assert redact_addresses("see https://other.example/x?y=1 now") == "see <redacted> now"

    def test_short_path_segments_are_kept(self) -> None:
        """Only long segments look like tokens; words like 'services' stay readable."""
        assert "services" not in variants("https://h.example/services/T0/" + TOKEN)

    def test_a_proxy_password(self) -> None:
        assert PASSWORD in variants(f"http://user:{PASSWORD}@proxy:3128")


class TestRedactingFilter:
    def test_rewrites_records_that_contain_a_secret_and_passes_others(self) -> None:
        record = logging.LogRecord("httpx", logging.INFO, __file__, 1,
                                   'HTTP Request: %s %s "%s"', (
                                       "POST", f"https://hooks.example/{TOKEN}", "200 OK"),
                                   None)
        other = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s",
                                  ("https://gate.example/approve",), None)
        redacting = RedactingFilter()
        redacting.add(f"https://hooks.example/{TOKEN}")
        assert redacting.filter(record) and redacting.filter(other)
        assert record.getMessage() == 'HTTP Request: POST <redacted> "200 OK"'
        assert other.getMessage() == "HTTP Request: https://gate.example/approve"
