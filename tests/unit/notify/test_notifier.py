"""The notifier against real HTTP endpoints on 127.0.0.1: routing by severity, failures
reported rather than raised, providers isolated from each other, bounded queues."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable

from structlog.testing import capture_logs

from canary.backoff import Backoff
from canary.notify import Notifier, RetryPolicy
from canary.notify.notifier import DeliveryFailure, TemplateProblem
from tests.unit.notify.helpers import FAST, Cluster, make_alert, subscribe
from tests.unit.notify.servers import Answer, BlackHole, Proxy, Receiver


async def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``condition`` holds (the workers run in the background)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


class TestDelivery:
    async def test_an_alert_reaches_the_address_in_the_providers_secret(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("slack", f"{receiver.url}/services/T0/B0/token")
        async with cluster.notifier() as notifier:
            assert notifier.notify(make_alert(), [subscribe("slack")]) == 1
            (request,) = await receiver.wait_for(1)
        assert request.path == "/services/T0/B0/token"
        assert request.body["blocks"][0]["type"] == "header"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("canary/")
        assert notifier.stats["test/slack"].delivered == 1
        assert cluster.failures == []

    async def test_the_providers_type_and_template_shape_the_payload(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("hook", f"{receiver.url}/hook", type_="webhook", channel="#ops",
                    messageTemplate="$canary: $reason")
        cluster.add("teams", f"{receiver.url}/teams", type_="msteams")
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("hook"), subscribe("teams")])
            await receiver.wait_for(2)
        bodies = {r.path: r.body for r in receiver.received}
        assert bodies["/hook"]["message"] == "podinfo: RolledBack"
        assert bodies["/hook"]["channel"] == "#ops"
        assert bodies["/hook"]["time"] is not None  # stamped when accepted
        assert bodies["/teams"]["type"] == "message"

    async def test_one_provider_hears_alerts_in_the_order_they_happened(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("slack", f"{receiver.url}/s", type_="webhook")
        reasons = ["Progressing", "CheckFailed", "RolledBack"]
        async with cluster.notifier() as notifier:
            for reason in reasons:
                notifier.notify(make_alert(reason=reason), [subscribe("slack")])
            await receiver.wait_for(3)
        assert [r.body["reason"] for r in receiver.received] == reasons

    async def test_a_provider_may_live_in_another_namespace(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("shared", f"{receiver.url}/shared", namespace="platform")
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("shared", namespace="platform")])
            await receiver.wait_for(1)
        assert cluster.failures == []

    async def test_the_providers_proxy_carries_the_request(
            self, cluster: Cluster, proxy: Proxy) -> None:
        cluster.add("slack", "http://hooks.invalid/services/T0/B0/token", proxy=proxy.url)
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("slack")])
            await eventually(lambda: notifier.stats["test/slack"].delivered == 1)
        (line, authorization, _body), = proxy.requests
        assert line == "POST http://hooks.invalid/services/T0/B0/token HTTP/1.1"
        assert authorization is None

    async def test_a_proxy_with_credentials_can_live_in_the_secret(
            self, cluster: Cluster, proxy: Proxy) -> None:
        with_credentials = proxy.url.replace("http://", "http://alerts:pa55word@")
        cluster.add("slack", "http://hooks.invalid/x", secret={"proxy": with_credentials},
                    proxy="http://unused.invalid:3128")
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("slack")])
            await eventually(lambda: notifier.stats["test/slack"].delivered == 1)
        (_line, authorization, _body), = proxy.requests
        assert authorization == "Basic " + base64.b64encode(b"alerts:pa55word").decode()


class TestSeverityRouting:
    async def test_each_subscription_hears_its_severity_and_above(
            self, cluster: Cluster, receiver: Receiver) -> None:
        for name in ("everything", "warnings", "errors"):
            cluster.add(name, f"{receiver.url}/{name}", type_="webhook")
        subscriptions = [subscribe("everything", "info"), subscribe("warnings", "warn"),
                         subscribe("errors", "error")]
        async with cluster.notifier() as notifier:
            queued = [notifier.notify(make_alert(severity=s), subscriptions)
                      for s in ("info", "warn", "error")]
            await receiver.wait_for(6)
        assert queued == [1, 2, 3]
        heard = {(r.path, r.body["severity"]) for r in receiver.received}
        assert heard == {("/everything", "info"), ("/everything", "warn"),
                         ("/everything", "error"), ("/warnings", "warn"),
                         ("/warnings", "error"), ("/errors", "error")}

    async def test_a_provider_named_twice_hears_an_alert_once(self, cluster: Cluster) -> None:
        notifier = cluster.notifier()
        subscriptions = [subscribe("slack", "info"), subscribe("slack", "error")]
        assert notifier.notify(make_alert(severity="error"), subscriptions) == 1
        assert notifier.notify(make_alert(severity="info"), subscriptions) == 1
        await notifier.aclose(timeout=0)

    async def test_nothing_is_queued_when_no_subscription_accepts(
            self, cluster: Cluster) -> None:
        notifier = cluster.notifier()
        assert notifier.notify(make_alert(severity="info"), [subscribe("slack", "warn")]) == 0
        assert notifier.notify(make_alert(), None) == 0
        assert notifier.pending() == 0
        await notifier.aclose()


class TestFailuresAreReported:
    async def send(self, cluster: Cluster, provider: str = "slack",
                   policy: RetryPolicy = FAST) -> DeliveryFailure | None:
        async with cluster.notifier(policy=policy) as notifier:
            notifier.notify(make_alert(), [subscribe(provider)])
            await eventually(lambda: notifier.pending() == 0)
        assert len(cluster.failures) <= 1
        failure = cluster.failures[0] if cluster.failures else None
        assert failure is None or isinstance(failure, DeliveryFailure)
        return failure

    async def test_a_missing_provider(self, cluster: Cluster) -> None:
        failure = await self.send(cluster, "ghost")
        assert failure is not None and failure.reason == "AlertProviderUnavailable"
        assert failure.provider == "test/ghost" and failure.provider_type is None
        assert "AlertProvider test/ghost not found" in failure.event_message()

    async def test_a_provider_that_does_not_match_its_schema(self, cluster: Cluster) -> None:
        cluster.add("slack", "http://127.0.0.1:9/x", type_="pager")
        failure = await self.send(cluster)
        assert failure is not None and failure.reason == "AlertProviderUnavailable"
        assert "does not match its schema" in failure.message

    async def test_a_secret_name_no_secret_could_have_is_said_by_its_field(
            self, cluster: Cluster) -> None:
        """As for an AlertProvider stored before its schema refused such names."""
        cluster.add("slack", "http://127.0.0.1:9/x")
        cluster.providers[("test", "slack")]["spec"]["secretRef"]["name"] = "é" * 514
        failure = await self.send(cluster)
        assert failure is not None and failure.reason == "AlertProviderUnavailable"
        assert "spec.secretRef.name" in failure.event_message()

    async def test_a_missing_secret(self, cluster: Cluster) -> None:
        cluster.add("slack", "http://127.0.0.1:9/x")
        cluster.secrets.clear()
        failure = await self.send(cluster)
        assert failure is not None and failure.reason == "AlertAddressUnavailable"
        assert failure.message == "Secret test/slack-url not found"
        assert failure.provider_type == "slack"

    async def test_a_lookup_that_raises(self, cluster: Cluster) -> None:
        """The caches' fallback may call the API; its errors are reported like the rest."""
        async def unreachable(namespace: str, name: str) -> None:
            raise ConnectionError("API server unreachable")

        cluster.add("slack", "http://127.0.0.1:9/x")
        async with Notifier(unreachable, cluster.provider, cluster.record,
                            policy=FAST) as notifier:
            notifier.notify(make_alert(), [subscribe("slack")])
            await eventually(lambda: notifier.pending() == 0)
        (failure,) = cluster.failures
        assert isinstance(failure, DeliveryFailure)
        assert failure.reason == "AlertAddressUnavailable"
        assert failure.message == "Secret test/slack-url could not be read: ConnectionError"

    async def test_a_secret_without_an_address(self, cluster: Cluster) -> None:
        cluster.add("slack", "http://127.0.0.1:9/x")
        cluster.secrets[("test", "slack-url")]["data"] = {"url": "eA=="}
        failure = await self.send(cluster)
        assert failure is not None
        assert failure.message == "Secret test/slack-url has no `address` key"

    async def test_an_address_that_is_not_a_url_is_not_shown(self, cluster: Cluster) -> None:
        cluster.add("slack", "hooks.example/T0/secret-token-value")
        failure = await self.send(cluster)
        assert failure is not None and failure.reason == "AlertAddressUnavailable"
        assert "secret-token-value" not in failure.event_message()

    async def test_a_refusing_endpoint_after_one_attempt(
            self, cluster: Cluster, receiver: Receiver) -> None:
        receiver.default = Answer(404, body="no_team")
        cluster.add("slack", f"{receiver.url}/x")
        failure = await self.send(cluster)
        assert failure is not None and failure.reason == "AlertDeliveryFailed"
        assert (failure.attempts, failure.message) == (1, "HTTP 404: no_team")
        assert len(receiver.received) == 1

    async def test_a_failing_endpoint_after_every_retry(
            self, cluster: Cluster, receiver: Receiver) -> None:
        receiver.default = Answer(503, body="down")
        cluster.add("slack", f"{receiver.url}/x")
        failure = await self.send(cluster)
        assert failure is not None and failure.attempts == FAST.attempts == 3
        assert "after 3 attempts: HTTP 503: down" in failure.event_message()
        assert len(receiver.received) == 3

    async def test_an_endpoint_recovering_within_the_retries_gets_the_alert(
            self, cluster: Cluster, receiver: Receiver) -> None:
        receiver.answers = [Answer(503), Answer(429, {"Retry-After": "0"})]
        cluster.add("slack", f"{receiver.url}/x")
        assert await self.send(cluster) is None
        assert len(receiver.received) == 3

    async def test_a_failing_callback_does_not_stop_delivery(
            self, cluster: Cluster, receiver: Receiver) -> None:
        async def broken(failure: DeliveryFailure | TemplateProblem) -> None:
            raise RuntimeError("the event could not be written")

        cluster.add("slack", f"{receiver.url}/x")
        async with Notifier(cluster.secret, cluster.provider, broken, policy=FAST) as notifier:
            notifier.notify(make_alert(), [subscribe("ghost"), subscribe("slack")])
            await receiver.wait_for(1)
            notifier.notify(make_alert(), [subscribe("ghost")])
            await eventually(lambda: notifier.stats["test/ghost"].failed == 2)


class TestTemplateProblems:
    """A typo in a messageTemplate still sends the alert (the name left as written), and
    is reported: a Warning event names the unknown variables."""

    async def test_unknown_variables_are_reported_and_the_alert_still_sent(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("hook", f"{receiver.url}/hook", type_="webhook",
                    messageTemplate="$canary at $wieght% ($nosuch, $wieght)")
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("hook")])
            (request,) = await receiver.wait_for(1)
            await eventually(lambda: notifier.pending() == 0)
        assert request.body["message"] == "podinfo at $wieght% ($nosuch, $wieght)"
        (problem,) = cluster.failures
        assert isinstance(problem, TemplateProblem)
        assert (problem.reason, problem.provider, problem.unknown) == (
            "AlertTemplateInvalid", "test/hook", ("wieght", "nosuch"))
        assert problem.event_message() == (
            "The messageTemplate of AlertProvider test/hook (webhook) uses unknown "
            "variables $wieght, $nosuch, sent as written; see docs/alerts.md for the "
            "variables")
        assert notifier.stats["test/hook"].delivered == 1
        assert notifier.stats["test/hook"].failed == 0

    async def test_reported_once_per_provider_template_and_canary(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("hook", f"{receiver.url}/hook", type_="webhook",
                    messageTemplate="$canary $nosuch")
        async with cluster.notifier() as notifier:
            for _ in range(3):
                notifier.notify(make_alert(), [subscribe("hook")])
            notifier.notify(make_alert(canary="other"), [subscribe("hook")])
            await receiver.wait_for(4)
            cluster.providers[("test", "hook")]["spec"]["messageTemplate"] = "$typo"
            notifier.notify(make_alert(), [subscribe("hook")])
            await receiver.wait_for(5)
            await eventually(lambda: notifier.pending() == 0)
        reported = [(p.alert.canary, p.unknown) for p in cluster.failures
                    if isinstance(p, TemplateProblem)]
        assert reported == [("podinfo", ("nosuch",)), ("other", ("nosuch",)),
                            ("podinfo", ("typo",))]

    async def test_a_template_with_known_variables_only_is_not_reported(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("hook", f"{receiver.url}/hook", type_="webhook",
                    messageTemplate="$canary costs $$5 at ${weight}% $")
        async with cluster.notifier() as notifier:
            notifier.notify(make_alert(), [subscribe("hook")])
            await receiver.wait_for(1)
            await eventually(lambda: notifier.pending() == 0)
        assert cluster.failures == []


class TestIsolation:
    async def test_a_hung_endpoint_does_not_delay_another_provider(
            self, cluster: Cluster, receiver: Receiver, black_hole: BlackHole) -> None:
        """The dead provider's request hangs for its whole timeout; the live one's alert
        arrives at once, and shutdown gives up on the dead one after its bound."""
        cluster.add("dead", f"{black_hole.url}/x")
        cluster.add("live", f"{receiver.url}/y")
        policy = RetryPolicy(attempts=3, backoff=Backoff(0.01, 30.0, jitter=0), timeout=5.0)
        notifier = cluster.notifier(policy=policy)
        await notifier.start()
        started = time.monotonic()
        for _ in range(3):
            notifier.notify(make_alert(), [subscribe("dead"), subscribe("live")])
        await receiver.wait_for(3)
        assert time.monotonic() - started < 1.0
        await eventually(lambda: notifier.stats["test/live"].delivered == 3)
        await eventually(lambda: black_hole.connections == 1)
        assert notifier.stats["test/dead"].delivered == 0
        assert notifier.pending() == 3
        with capture_logs() as logs:
            closing = time.monotonic()
            await notifier.aclose(timeout=0.1)
        assert time.monotonic() - closing < 1.0
        assert {"event": "alerts not delivered before shutdown", "alerts": 3,
                "waited": 0.1, "log_level": "warning"} in logs

    async def test_notify_returns_at_once_whatever_the_endpoints_do(
            self, cluster: Cluster, black_hole: BlackHole) -> None:
        cluster.add("dead", f"{black_hole.url}/x")
        async with cluster.notifier(queue_size=1000, drain_timeout=0) as notifier:
            started = time.monotonic()
            for _ in range(500):
                notifier.notify(make_alert(), [subscribe("dead")])
            assert time.monotonic() - started < 0.5


class TestBoundedQueues:
    async def test_a_full_queue_drops_counts_and_logs(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("slack", f"{receiver.url}/x")
        notifier = cluster.notifier(queue_size=2)
        with capture_logs() as logs:
            queued = [notifier.notify(make_alert(), [subscribe("slack")]) for _ in range(5)]
        assert queued == [1, 1, 0, 0, 0]
        assert notifier.dropped == 3 and notifier.stats["test/slack"].dropped == 3
        drops = [e for e in logs if e["event"] == "alert dropped"]
        assert [e["dropped"] for e in drops] == [1, 2, 3]
        assert drops[0]["why"] == "the provider's queue is full"
        assert drops[0]["log_level"] == "warning"
        await notifier.start()
        await receiver.wait_for(2)
        await notifier.aclose()
        assert notifier.stats["test/slack"].delivered == 2

    async def test_alerts_after_shutdown_are_dropped(self, cluster: Cluster) -> None:
        notifier = cluster.notifier()
        await notifier.start()
        await notifier.aclose()
        assert notifier.notify(make_alert(), [subscribe("slack")]) == 0
        assert notifier.dropped == 1


class TestShutdown:
    async def test_queued_alerts_are_delivered_before_closing(
            self, cluster: Cluster, receiver: Receiver) -> None:
        cluster.add("slack", f"{receiver.url}/x")
        notifier = cluster.notifier()
        await notifier.start()
        for _ in range(3):
            notifier.notify(make_alert(), [subscribe("slack")])
        await notifier.aclose()
        assert len(receiver.received) == 3 and notifier.pending() == 0
