"""The webhook caller against a real HTTP endpoint on 127.0.0.1: timeouts, retries, what
counts as success, the payload, headers from a Secret, and messages that never show a
Secret's value."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiohttp import web

from canary import webhooks
from canary.backoff import Backoff
from canary.core.observation import HookResult
from canary.kube import NotFound
from canary.kube import resources as r
from canary.models.canary import Canary, CanaryWebhook
from canary.redact import redact
from canary.webhooks import WebhookCaller, secret_forms

TOKEN = "s3cr3t-0f-the-gate"
BEARER = f"Bearer {TOKEN}"


@dataclass
class Answer:
    status: int = 200
    #: Sent as the body; "{auth}" becomes the Authorization header received, "{headers}"
    #: every header received as JSON.
    body: str = "ok"
    delay: float = 0.0


@dataclass
class Endpoint:
    """Answers each path from its queue of answers (the last one repeats) and records
    every request."""

    url: str = ""
    answers: dict[str, list[Answer]] = field(default_factory=dict)
    received: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def answer(self, path: str, *answers: Answer) -> str:
        self.answers[path] = list(answers)
        return f"{self.url}/{path}"

    def calls(self, path: str) -> list[tuple[Any, dict[str, str]]]:
        return [(body, headers) for p, body, headers in self.received if p == path]

    async def handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        headers = dict(request.headers)
        self.received.append((path, await request.json(), headers))
        queue = self.answers.get(path) or [Answer()]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if answer.delay:
            # Cut short when the endpoint stops, so its shutdown does not wait.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), answer.delay)
        body = answer.body.replace("{auth}", headers.get("Authorization", "")) \
            .replace("{headers}", json.dumps(headers))
        extra = {"Location": "/elsewhere"} if 300 <= answer.status < 400 else {}
        return web.Response(status=answer.status, text=body, headers=extra)


@pytest_asyncio.fixture
async def endpoint() -> AsyncIterator[Endpoint]:
    state = Endpoint()
    app = web.Application()
    app.router.add_post("/{path}", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    state.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    yield state
    state.stopping.set()
    await runner.cleanup()


class FakeKube:
    """Just enough of a KubeClient: Secrets by name in the Canary's namespace."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets
        self.reads: list[str] = []

    async def get(self, resource: Any, name: str, namespace: str) -> dict[str, Any]:
        assert resource == r.SECRETS and namespace == "shop"
        self.reads.append(name)
        if name not in self.secrets:
            raise NotFound(404, "NotFound", f'secrets "{name}" not found')
        return {"metadata": {"name": name, "namespace": namespace},
                "data": {key: base64.b64encode(value.encode()).decode()
                         for key, value in self.secrets[name].items()}}


@pytest_asyncio.fixture
async def caller() -> AsyncIterator[WebhookCaller]:
    kube = FakeKube({"gate-token": {"Authorization": BEARER, "X-Tenant": "payments"}})
    made = WebhookCaller(kube, httpx.AsyncClient())  # type: ignore[arg-type]
    yield made
    await made.close()


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhooks, "RETRY_BACKOFF", Backoff(0.01, 5.0))


def reason(result: HookResult) -> str:
    """A failed hook's message after the URL it starts with (TestWhere shows the URL)."""
    if result.passed:
        return result.message
    where, _, rest = result.message.partition(": ")
    assert where.startswith("http://"), result.message
    return rest


def canary() -> Canary:
    return Canary.model_validate({
        "metadata": {"name": "web", "namespace": "shop", "generation": 1},
        "spec": {"targetRef": {"kind": "Deployment", "name": "web"},
                 "service": {"port": 80},
                 "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 30,
                              "stepWeight": 10}},
        "status": {"phase": "Progressing", "lastAppliedSpec": "7d9f8c6b5"}})


def hook(url: str, **spec: Any) -> CanaryWebhook:
    return CanaryWebhook.model_validate({"name": "gate", "type": "pre-rollout", "url": url,
                                         "timeout": "2s", **spec})


def secret_caller(**values: str) -> WebhookCaller:
    return WebhookCaller(FakeKube({"gate-token": values}),  # type: ignore[arg-type]
                         httpx.AsyncClient())


class TestSuccess:
    @pytest.mark.parametrize("status", [200, 201, 202, 204])
    async def test_any_2xx_passes(self, endpoint: Endpoint, caller: WebhookCaller,
                                  status: int) -> None:
        url = endpoint.answer("gate", Answer(status, "" if status == 204 else "fine"))
        result = await caller.call(canary(), hook(url))
        assert (result.name, result.type, result.passed) == ("gate", "pre-rollout", True)
        assert reason(result) == f"HTTP {status}"

    @pytest.mark.parametrize("status", [304, 400, 403, 404, 500, 503])
    async def test_anything_else_fails_with_its_status(
            self, endpoint: Endpoint, caller: WebhookCaller, status: int) -> None:
        url = endpoint.answer("gate", Answer(status, "not now"))
        result = await caller.call(canary(), hook(url))
        assert not result.passed
        assert reason(result) == (f"HTTP {status}" if status == 304
                                  else f"HTTP {status}: not now")
        assert len(endpoint.calls("gate")) == 1

    @pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
    async def test_a_redirect_fails_and_says_it_was_not_followed(
            self, endpoint: Endpoint, caller: WebhookCaller, status: int) -> None:
        """A gate gives its verdict itself: a redirect is no 2xx of its own."""
        url = endpoint.answer("gate", Answer(status, "moved"))
        result = await caller.call(canary(), hook(url))
        assert not result.passed
        assert reason(result) == f"HTTP {status}: a redirect to /elsewhere, not followed"
        assert len(endpoint.calls("gate")) == 1

    async def test_a_long_answer_is_cut_and_kept_on_one_line(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(500, "line one\nline two\n" + "x" * 500))
        result = await caller.call(canary(), hook(url))
        assert reason(result).startswith("HTTP 500: line one line two xxx")
        assert reason(result).endswith("...")
        assert len(reason(result)) == len("HTTP 500: ") + webhooks.BODY_EXCERPT + 3

    async def test_an_endpoint_that_refuses_connections_fails(
            self, caller: WebhookCaller) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        result = await caller.call(canary(), hook(f"http://127.0.0.1:{port}/gate"))
        assert not result.passed
        assert reason(result).startswith("ConnectError")


class TestTimeoutAndRetries:
    async def test_a_slow_endpoint_fails_after_the_hooks_timeout(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(200, delay=10))
        started = time.monotonic()
        result = await caller.call(canary(), hook(url, timeout="300ms"))
        elapsed = time.monotonic() - started
        assert not result.passed
        assert reason(result) == "timed out after 0.3s"
        assert 0.25 <= elapsed < 2.0

    async def test_each_attempt_gets_the_timeout(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(200, delay=10), Answer(200, delay=10),
                              Answer(204))
        result = await caller.call(canary(), hook(url, timeout="300ms", retries=2))
        assert result.passed
        assert len(endpoint.calls("gate")) == 3

    async def test_retries_until_a_2xx(self, endpoint: Endpoint,
                                       caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(500, "down"), Answer(500, "down"), Answer(204))
        result = await caller.call(canary(), hook(url, retries=2))
        assert result.passed and reason(result) == "HTTP 204"
        assert len(endpoint.calls("gate")) == 3

    async def test_too_few_retries_fail_with_the_last_answer(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(500, "down"), Answer(503, "still down"),
                              Answer(204))
        result = await caller.call(canary(), hook(url, retries=1))
        assert not result.passed
        assert reason(result) == "HTTP 503: still down (2 attempts)"
        assert len(endpoint.calls("gate")) == 2

    async def test_without_retries_one_attempt(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(500, "down"), Answer(204))
        result = await caller.call(canary(), hook(url))
        assert (result.passed, reason(result)) == (False, "HTTP 500: down")
        assert len(endpoint.calls("gate")) == 1


class TestPayloadAndHeaders:
    async def test_the_documented_payload(self, endpoint: Endpoint,
                                          caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(200))
        await caller.call(canary(), hook(url, metadata={"team": "payments", "cmd": "run"}))
        [(body, headers)] = endpoint.calls("gate")
        assert body == {"name": "web", "namespace": "shop", "phase": "Progressing",
                        "checksum": "7d9f8c6b5",
                        "metadata": {"team": "payments", "cmd": "run"}, "timeout": "2s"}
        assert headers["Content-Type"] == "application/json"
        assert "Authorization" not in headers  # no secretRef, no Secret headers

    async def test_event_hooks_also_get_the_event(self, endpoint: Endpoint,
                                                  caller: WebhookCaller) -> None:
        url = endpoint.answer("events", Answer(202))
        subject = canary().model_copy(deep=True)
        subject.spec.analysis.webhooks = [
            CanaryWebhook.model_validate({"name": "events", "type": "event", "url": url}),
            CanaryWebhook.model_validate({"name": "gate", "type": "pre-rollout",
                                          "url": f"{endpoint.url}/gate"})]
        caller.send_event(subject, "Warning", "Halt advancement of web")
        await asyncio.gather(*caller._background)
        [(body, _)] = endpoint.calls("events")
        assert body == {"name": "web", "namespace": "shop", "phase": "Progressing",
                        "checksum": "7d9f8c6b5", "metadata": {}, "timeout": "10s",
                        "eventType": "Warning", "eventMessage": "Halt advancement of web"}
        assert endpoint.calls("gate") == []  # only event hooks hear of events

    async def test_call_type_calls_the_hooks_of_that_type(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        subject = canary().model_copy(deep=True)
        subject.spec.analysis.webhooks = [
            hook(endpoint.answer("a", Answer(200))),
            CanaryWebhook.model_validate({"name": "b", "type": "pre-rollout",
                                          "url": endpoint.answer("b", Answer(500, "no"))}),
            CanaryWebhook.model_validate({"name": "c", "type": "rollout",
                                          "url": endpoint.answer("c", Answer(200))})]
        results = await caller.call_type(subject, "pre-rollout")
        assert [(h.name, h.passed) for h in results] == [("gate", True), ("b", False)]
        assert endpoint.calls("c") == []

    async def test_every_key_of_the_secret_is_sent_as_a_header(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        assert result.passed
        [(_, headers)] = endpoint.calls("gate")
        assert headers["Authorization"] == BEARER
        assert headers["X-Tenant"] == "payments"

    async def test_a_value_with_a_trailing_newline_is_sent_stripped(
            self, endpoint: Endpoint) -> None:
        caller = secret_caller(Authorization=BEARER + "\n")
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        await caller.close()
        assert result.passed
        assert endpoint.calls("gate")[0][1]["Authorization"] == BEARER

    async def test_a_missing_secret_fails_without_calling(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "absent"}))
        assert not result.passed
        assert reason(result).startswith("Secret absent: 404 NotFound")
        assert endpoint.calls("gate") == []


class TestSecretsStayOutOfMessages:
    @pytest.mark.parametrize("body", [
        "you sent {auth}",
        "token " + TOKEN + " is revoked",
        "{headers}",
        "x" * 190 + "{auth}",  # across the excerpt's cut
        "you sent {auth}".replace(" ", "\n"),
    ])
    async def test_an_echoing_gate(self, endpoint: Endpoint, caller: WebhookCaller,
                                   body: str) -> None:
        url = endpoint.answer("gate", Answer(403, body))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        assert not result.passed
        assert reason(result).startswith("HTTP 403: ")
        assert "***" in result.message
        assert TOKEN not in result.message
        assert TOKEN[:12] not in result.message
        assert "payments" not in result.message  # every value of the Secret

    async def test_the_echo_stays_useful(self, endpoint: Endpoint,
                                         caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(403, "you sent {auth}"))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        assert reason(result) == "HTTP 403: you sent ***"

    async def test_basic_credentials_are_hidden_decoded_too(
            self, endpoint: Endpoint) -> None:
        credentials = base64.b64encode(b"ops:hunter2-the-password").decode()
        caller = secret_caller(Authorization=f"Basic {credentials}")
        url = endpoint.answer("gate", Answer(401, "user ops, password "
                                                  "hunter2-the-password: wrong"))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        await caller.close()
        assert reason(result) == "HTTP 401: user ops, password ***: wrong"

    @pytest.mark.parametrize("value", [f"Bearer {TOKEN}\nX-Injected: 1",
                                       f"Bearer {TOKEN}\r\n", f"Bearer\x00{TOKEN}",
                                       f"Bearer {TOKEN}\x7f"])
    async def test_a_value_with_a_control_character_is_refused_unsent(
            self, endpoint: Endpoint, value: str) -> None:
        caller = secret_caller(**{"X-Tenant": "payments", "Authorization": value})
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        await caller.close()
        if value.strip() == BEARER:  # only at the ends: stripped, sent
            assert result.passed
            return
        assert not result.passed
        assert reason(result).startswith("Secret gate-token, key Authorization: ")
        assert "control character" in result.message
        assert TOKEN not in result.message and "Injected" not in result.message
        assert endpoint.calls("gate") == []

    async def test_a_non_ascii_value_is_refused_unsent(self, endpoint: Endpoint) -> None:
        caller = secret_caller(Authorization=f"Bearer {TOKEN}é")
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        await caller.close()
        assert reason(result) == ("Secret gate-token, key Authorization: the value holds "
                                  "non-ASCII characters, which a header cannot carry")
        assert endpoint.calls("gate") == []

    async def test_a_key_that_is_no_header_name_is_refused(self, endpoint: Endpoint) -> None:
        caller = secret_caller(**{"bad key": TOKEN})
        url = endpoint.answer("gate", Answer(200))
        result = await caller.call(canary(), hook(url, secretRef={"name": "gate-token"}))
        await caller.close()
        assert reason(result) == ("Secret gate-token, key bad key: not a valid HTTP "
                                  "header name")
        assert endpoint.calls("gate") == []

    async def test_an_error_quoting_the_header_is_redacted(self) -> None:
        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.LocalProtocolError(
                f"Illegal header value {request.headers['Authorization'].encode()!r}")

        caller = WebhookCaller(FakeKube({"gate-token": {"Authorization": BEARER}}),  # type: ignore[arg-type]
                               httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
        result = await caller.call(canary(), hook("http://gate.test/",
                                                  secretRef={"name": "gate-token"}))
        await caller.close()
        assert reason(result) == "LocalProtocolError: Illegal header value b'***'"

    async def test_a_failing_event_hook_logs_no_secret(
            self, endpoint: Endpoint, caller: WebhookCaller,
            monkeypatch: pytest.MonkeyPatch) -> None:
        logged: list[dict[str, Any]] = []
        monkeypatch.setattr(webhooks.log, "warning",
                            lambda event, **kw: logged.append({"event": event, **kw}))
        subject = canary().model_copy(deep=True)
        subject.spec.analysis.webhooks = [CanaryWebhook.model_validate({
            "name": "events", "type": "event", "secretRef": {"name": "gate-token"},
            "url": endpoint.answer("events", Answer(400, "bad {headers}"))})]
        caller.send_event(subject, "Normal", "Promotion of web completed")
        await asyncio.gather(*caller._background)
        [entry] = logged
        assert entry["error"].startswith(f"{endpoint.url}/events: HTTP 400: bad ")
        assert TOKEN not in json.dumps(entry)


class TestWhere:
    """A failed hook's message says which URL failed, without the secrets a URL holds."""

    async def test_the_url_leads_the_message(self, endpoint: Endpoint,
                                             caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(503, "busy"))
        result = await caller.call(canary(), hook(url))
        assert result.message == f"{url}: HTTP 503: busy"

    async def test_credentials_and_query_values_are_not_shown(
            self, endpoint: Endpoint, caller: WebhookCaller) -> None:
        url = endpoint.answer("gate", Answer(403, "token q-t0ken-123 refused"))
        credentialed = url.replace("http://", "http://ops:hunter2-pw@") + "?token=q-t0ken-123&v=1"
        result = await caller.call(canary(), hook(credentialed))
        assert result.message == f"{url}?token=***&v=***: HTTP 403: token *** refused"
        assert "hunter2" not in result.message and "ops" not in result.message

    async def test_a_refused_connection_names_its_url(self, caller: WebhookCaller) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        result = await caller.call(canary(), hook(f"http://127.0.0.1:{port}/gate"))
        assert result.message.startswith(f"http://127.0.0.1:{port}/gate: ConnectError")


def test_secret_forms_leave_the_scheme_and_short_words() -> None:
    assert not {"Bearer", "abc"} & secret_forms("Bearer abc")
    assert {BEARER, TOKEN} <= secret_forms(BEARER) and "Bearer" not in secret_forms(BEARER)
    assert 'a\\"b' in secret_forms('a"b')  # as JSON quotes it


@pytest.mark.parametrize("echoed", [
    "a\\/b+c=d&e",  # JSON with escaped slashes (PHP)
    "a\\u002fb\\u002bc\\u003dd\\u0026e",  # \\u escapes (Go's HTML-safe JSON)
    "a%2Fb%2Bc%3Dd%26e",  # percent-encoded
    "a%2Fb%2Bc%3Dd%26e".replace("%20", "+"),
    "a/b+c=d&amp;e",  # HTML
])
def test_an_escaped_echo_of_a_secret_is_redacted(echoed: str) -> None:
    assert redact(f"you sent {echoed}!", secret_forms("Bearer a/b+c=d&e"), "***") == \
        "you sent ***!"
