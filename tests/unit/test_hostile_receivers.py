"""Gates and alert receivers that misbehave, against a real server on 127.0.0.1
(tests/hostile_server.py). Whatever the receiver does, each call ends within its
timeout, says what happened, reads a bounded part of the answer, follows no redirect, and
leaves the calls to other receivers alone, so a rollout decision is still made and an
alert that cannot be delivered is given up, reported and counted.

Gates are called as the controller calls them (a WebhookCaller with its own HTTP client),
alerts as the notifier posts them; most tests run once for each."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httpx
import pytest
from structlog.testing import capture_logs

from canary.backoff import Backoff
from canary.kube import KubeClient
from canary.models.canary import Canary, CanaryWebhook
from canary.notify import RetryPolicy
from canary.notify.delivery import post
from canary.notify.notifier import DeliveryFailure
from canary.webhooks import WebhookCaller
from tests.hostile_server import HostileServer, hostile
from tests.unit.notify.helpers import Cluster, make_alert, subscribe

#: Each call's timeout (s).
TIMEOUT = 1.0
#: Seconds a call may take past its timeout: scheduling on a busy machine, closing.
MARGIN = 0.5
#: Seconds a call that does not hang may take.
QUICK = 0.5
#: Seconds before a call still running is declared stuck (the test fails, not hangs).
STUCK = 5.0
MB = 1024 * 1024
#: Bytes of Python memory a call may allocate at its peak while reading a 50 MB answer:
#: the 64 KiB it reads, httpx's buffers and the test server's own; not the answer.
PEAK = 2 * MB
#: Calls in flight beyond the 100 connections an httpx client allows by default.
CROWD = 101


@dataclass(frozen=True)
class Outcome:
    passed: bool
    #: A gate's message after the URL it starts with, or an alert's detail.
    message: str
    seconds: float
    attempts: int = 1


class Caller(Protocol):
    kind: str

    def shown(self, url: str) -> str:
        """How ``url`` appears in this caller's messages."""

    async def __call__(self, url: str, attempts: int = 1) -> Outcome: ...


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait until ``condition`` holds (the notifier works in the background)."""
    deadline = time.monotonic() + STUCK
    while not condition():
        assert time.monotonic() < deadline, f"still not so after {STUCK:g}s"
        await asyncio.sleep(0.005)


def canary(name: str = "web") -> Canary:
    return Canary.model_validate({
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": {"targetRef": {"kind": "Deployment", "name": name},
                 "service": {"port": 80},
                 "analysis": {"interval": "10s", "threshold": 2, "maxWeight": 30,
                              "stepWeight": 10}},
        "status": {"phase": "Progressing", "lastAppliedSpec": "7d9f8c6b5"}})


def hook(url: str, name: str = "gate", type_: str = "pre-rollout",
         timeout: float = TIMEOUT, **spec: Any) -> CanaryWebhook:
    return CanaryWebhook.model_validate({"name": name, "type": type_, "url": url,
                                         "timeout": f"{timeout:g}s", **spec})


def gate_caller() -> WebhookCaller:
    """A caller as the controller makes it, with its own HTTP client. No hook here has a
    secretRef, so the Kubernetes client is never used."""
    return WebhookCaller(cast(KubeClient, None))


class Gate:
    kind = "gate"

    def __init__(self) -> None:
        self.caller = gate_caller()

    def shown(self, url: str) -> str:
        return url

    async def __call__(self, url: str, attempts: int = 1) -> Outcome:
        started = time.monotonic()
        async with asyncio.timeout(STUCK * attempts):
            result = await self.caller.call(canary(), hook(url, retries=attempts - 1))
        message = result.message
        if not result.passed:
            where, _, message = message.partition(": ")
            assert where == url, result.message
        return Outcome(result.passed, message, time.monotonic() - started)


class Alert:
    """One alert posted as the notifier posts it, through a plain httpx client: the
    bounds hold whatever client the notifier is given (its ``client_factory``)."""

    kind = "alert"

    def __init__(self) -> None:
        self.client = httpx.AsyncClient()

    def shown(self, url: str) -> str:
        return "<redacted>"  # no URL ever appears in an alert's failure

    async def __call__(self, url: str, attempts: int = 1) -> Outcome:
        policy = RetryPolicy(attempts=attempts, backoff=Backoff(0.01, 0.01, jitter=0),
                             timeout=TIMEOUT)
        started = time.monotonic()
        async with asyncio.timeout(STUCK * attempts):
            result = await post(self.client, url, {"text": "Rolled back"}, policy)
        return Outcome(result.delivered, result.detail, time.monotonic() - started,
                       result.attempts)


@pytest.fixture
async def server() -> AsyncIterator[HostileServer]:
    # A byte every 0.1 s: ten times within each read timeout of httpx.
    async with hostile(trickle=0.1) as started:
        yield started


@pytest.fixture
async def elsewhere() -> AsyncIterator[HostileServer]:
    async with hostile() as started:
        yield started


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture(params=["gate", "alert"])
async def call(request: pytest.FixtureRequest) -> AsyncIterator[Caller]:
    if request.param == "gate":
        gate = Gate()
        yield gate
        await gate.caller.close()
    else:
        alert = Alert()
        yield alert
        await alert.client.aclose()


class TestEveryCallEndsWithinItsTimeout:
    @pytest.mark.parametrize(("path", "message"), [
        ("hang", "timed out after 1s"),
        ("slow-head", "timed out after 1s"),
        ("slow-body/200", "timed out after 1s reading the body of an HTTP 200 answer"),
        ("slow-body/500", "timed out after 1s reading the body of an HTTP 500 answer"),
    ])
    async def test_a_receiver_that_never_finishes_its_answer(
            self, call: Caller, server: HostileServer, path: str, message: str) -> None:
        """httpx's timeout bounds each read, and a byte every 0.1 s never trips it: the
        whole call runs under one deadline. A 200 whose body does not come in time is a
        timeout like any other: no verdict from a gate, an alert attempt to retry."""
        outcome = await call(server.at(path))
        assert (outcome.passed, outcome.message) == (False, message)
        assert TIMEOUT - 0.05 <= outcome.seconds < TIMEOUT + MARGIN

    @pytest.mark.parametrize("path", ["reset", "garbage", "escapes", "loop", "away",
                                      f"big/500/{MB}", f"stream/500/{50 * MB}"])
    async def test_a_receiver_that_fails_fast_fails_at_once(
            self, call: Caller, server: HostileServer, path: str) -> None:
        outcome = await call(server.at(path))
        assert not outcome.passed
        assert outcome.seconds < QUICK


class TestTheMessageSaysWhatHappened:
    async def test_a_reset_connection(self, call: Caller, server: HostileServer) -> None:
        """httpx words a reset as ``ReadError('')``: the words come from the OS error."""
        outcome = await call(server.at("reset"))
        assert outcome.message == "ReadError: Connection reset by peer"

    async def test_an_answer_that_is_not_http(self, call: Caller,
                                              server: HostileServer) -> None:
        outcome = await call(server.at("garbage"))
        assert outcome.message.startswith("RemoteProtocolError: ")

    async def test_a_long_answer_shows_its_start(self, call: Caller,
                                                 server: HostileServer) -> None:
        outcome = await call(server.at(f"big/500/{MB}"))
        assert outcome.message == "HTTP 500: " + "x" * 200 + "..."

    async def test_a_compressed_answer_is_not_shown(self, call: Caller,
                                                    server: HostileServer) -> None:
        """Sent though the request asked for none: decoding it could inflate 50 KB into
        50 MB."""
        outcome = await call(server.at(f"gzip/500/{50 * MB}"))
        assert outcome.message == "HTTP 500 (a gzip-encoded body, not shown)"

    async def test_characters_that_do_not_print_are_replaced(
            self, call: Caller, server: HostileServer) -> None:
        """The message reaches terminals (kubectl describe, logs): no escape sequence,
        NUL or bidirectional override gets there."""
        outcome = await call(server.at("escapes"))
        assert outcome.message == ("HTTP 500: \ufffd[31mred\ufffd[0m \ufffd\ufffd "
                                   "\ufffdexe.gnp")


class TestAnswersAreReadWithinBounds:
    @pytest.mark.parametrize(("path", "passed"), [
        (f"stream/200/{50 * MB}", True), (f"stream/500/{50 * MB}", False),
        (f"big/500/{50 * MB}", False), (f"gzip/500/{50 * MB}", False)])
    async def test_a_50_mb_answer_is_not_held_in_memory(
            self, call: Caller, server: HostileServer, path: str, passed: bool) -> None:
        """Only the first 64 KiB of a body are read: it only ever serves for a message.
        A 2xx still passes, whatever follows its status."""
        await call(server.at("ok"))  # what the first call sets up is not the answer's
        tracemalloc.start()
        try:
            outcome = await call(server.at(path))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert outcome.passed is passed
        assert peak < PEAK, f"{peak / MB:.1f} MB at the peak"

    async def test_the_rest_of_an_endless_answer_is_never_read(
            self, call: Caller, server: HostileServer) -> None:
        """The connection is dropped after the first 64 KiB; the server could write no
        more than what the sockets' buffers took."""
        await call(server.at(f"stream/500/{500 * MB}"))
        await asyncio.sleep(0.1)
        assert server.sent < 50 * MB


class TestRedirectsAreNotFollowed:
    async def test_a_redirect_to_itself_is_asked_once(
            self, call: Caller, server: HostileServer) -> None:
        outcome = await call(server.at("loop"))
        assert not outcome.passed
        shown = call.shown(server.at("loop"))
        assert outcome.message == f"HTTP 302: a redirect to {shown}, not followed"
        assert server.requests == ["/loop"]

    async def test_a_redirect_to_another_host_is_not_followed(
            self, call: Caller, server: HostileServer, elsewhere: HostileServer) -> None:
        """A gate gives its verdict itself; an alert goes only where its provider says."""
        server.elsewhere = elsewhere.at("ok")
        outcome = await call(server.at("away"))
        assert not outcome.passed
        shown = call.shown(elsewhere.at("ok"))
        assert outcome.message == f"HTTP 302: a redirect to {shown}, not followed"
        assert elsewhere.requests == []

    async def test_an_alert_is_not_sent_again_after_a_redirect(
            self, server: HostileServer) -> None:
        """The same request would be redirected the same way."""
        alert = Alert()
        outcome = await alert(server.at("loop"), attempts=3)
        await alert.client.aclose()
        assert outcome.attempts == 1
        assert server.requests == ["/loop"]


class TestOtherCallsGoOn:
    async def test_a_decision_gets_every_gates_verdict_in_time(
            self, server: HostileServer) -> None:
        """The gates of one decision run together; the slowest ends at its timeout."""
        paths = ["ok", "hang", "reset", "slow-head", "slow-body/200", "loop", "garbage",
                 f"stream/200/{50 * MB}"]
        subject = canary()
        subject.spec.analysis.webhooks = [hook(server.at(path), name=f"gate-{i}")
                                          for i, path in enumerate(paths)]
        caller = gate_caller()
        started = time.monotonic()
        results = await caller.call_type(subject, "pre-rollout")
        elapsed = time.monotonic() - started
        await caller.close()
        assert [r.passed for r in results] == [True, False, False, False, False, False,
                                               False, True]
        assert elapsed < TIMEOUT + MARGIN

    async def test_gates_hanging_by_the_hundred_do_not_hold_up_another(
            self, server: HostileServer, elsewhere: HostileServer) -> None:
        """A hundred Canaries whose gates hang must not make another Canary's gate wait
        for a connection."""
        caller = gate_caller()
        hung = [asyncio.create_task(caller.call(canary(f"hung-{i}"),
                                                hook(server.at("hang"), timeout=3)))
                for i in range(CROWD)]
        await asyncio.sleep(0.3)  # every hung call holds its connection
        started = time.monotonic()
        result = await caller.call(canary(), hook(elsewhere.at("ok")))
        elapsed = time.monotonic() - started
        await asyncio.gather(*hung)
        await caller.close()
        assert result.passed, result.message
        assert elapsed < QUICK

    async def test_event_hooks_hanging_by_the_hundred_do_not_hold_up_a_gate(
            self, server: HostileServer, elsewhere: HostileServer) -> None:
        """Event hooks run in the background, as many as there are events: a receiver
        that hangs keeps each one for its whole timeout."""
        caller = gate_caller()
        subject = canary("noisy")
        subject.spec.analysis.webhooks = [hook(server.at("hang"), type_="event", timeout=3)]
        for i in range(CROWD):
            caller.send_event(subject, "Normal", f"event {i}")
        await asyncio.sleep(0.3)
        started = time.monotonic()
        result = await caller.call(canary(), hook(elsewhere.at("ok")))
        elapsed = time.monotonic() - started
        await caller.close()
        assert result.passed, result.message
        assert elapsed < QUICK


class TestUndeliverableAlerts:
    async def test_an_alert_is_given_up_after_its_retries_reported_and_counted(
            self, server: HostileServer, cluster: Cluster) -> None:
        """A receiver trickling its answer holds the provider's queue for the attempts'
        timeouts, no longer; the next alert goes out."""
        cluster.add("slow", server.at("slow-body/200"))
        policy = RetryPolicy(attempts=2, backoff=Backoff(0.01, 0.01, jitter=0),
                             timeout=0.5)
        with capture_logs() as logs:
            async with cluster.notifier(policy=policy) as notifier:
                started = time.monotonic()
                notifier.notify(make_alert(), [subscribe("slow")])
                await eventually(lambda: bool(cluster.failures))
                elapsed = time.monotonic() - started
                cluster.add("slow", server.at("ok"))
                notifier.notify(make_alert(), [subscribe("slow")])
                await eventually(lambda: notifier.stats["test/slow"].delivered == 1)
        (failure,) = cluster.failures
        assert isinstance(failure, DeliveryFailure)
        assert (failure.reason, failure.attempts, failure.message) == (
            "AlertDeliveryFailed", 2,
            "timed out after 0.5s reading the body of an HTTP 200 answer")
        assert elapsed < 2 * 0.5 + MARGIN
        assert notifier.stats["test/slow"].failed == 1
        assert [e["error"] for e in logs if e["event"] == "alert not delivered"] == [
            failure.message]

    async def test_providers_hanging_by_the_hundred_do_not_hold_up_another(
            self, server: HostileServer, elsewhere: HostileServer,
            cluster: Cluster) -> None:
        """Each provider has its own queue, but they share the HTTP client: a hundred
        hanging must not make another provider's alert wait for a connection."""
        for i in range(CROWD):
            cluster.add(f"dead-{i}", server.at("hang"))
        cluster.add("live", elsewhere.at("ok"))
        policy = RetryPolicy(attempts=1, timeout=3.0)
        notifier = cluster.notifier(policy=policy)
        await notifier.start()
        notifier.notify(make_alert(), [subscribe(f"dead-{i}") for i in range(CROWD)])
        await asyncio.sleep(0.3)
        started = time.monotonic()
        notifier.notify(make_alert(), [subscribe("live")])
        await eventually(lambda: notifier.stats["test/live"].delivered == 1)
        elapsed = time.monotonic() - started
        await notifier.aclose(timeout=0)
        assert elapsed < QUICK
