"""Alerts from the controller process to real HTTP receivers: a Slack message on rollback
names the failing metric, its value, its bound and the weight rolled back at; a receiver
that never answers holds up no canary; one that refuses gives a Warning event on the
Canary, not a stuck rollout."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from canary.devenv import LocalEnvironment
from canary.devenv.process import free_port
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.rollout import ANALYSIS, canary_object, deploy, events, phase, start
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


@dataclass
class Receiver:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@contextlib.asynccontextmanager
async def slack_like(status: int, text: str, token: str) -> AsyncIterator[Receiver]:
    """A loopback receiver at a Slack-like webhook path that keeps what it is sent and
    answers ``status`` with ``text``."""
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/services/T000/B000/{token}")

    async def post(request: web.Request) -> web.Response:
        receiver.received.append(await request.json())
        return web.Response(status=status, text=text)

    app = web.Application()
    app.router.add_post("/services/{path:.*}", post)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture(loop_scope="session")
async def slack() -> AsyncIterator[Receiver]:
    """Answers like Slack's incoming webhooks and keeps what it was sent."""
    async with slack_like(200, "ok", "XXXX") as receiver:
        yield receiver


@pytest_asyncio.fixture(loop_scope="session")
async def black_hole() -> AsyncIterator[Receiver]:
    """Accepts connections and never answers."""
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook")
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        receiver.received.append({})
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", port)
    yield receiver
    for writer in held:
        writer.close()
    server.close()


@pytest_asyncio.fixture(loop_scope="session")
async def refusing() -> AsyncIterator[Receiver]:
    """Answers 404 like a revoked Slack webhook (not retried), keeping what it was sent."""
    async with slack_like(404, "no_team", secrets.token_hex(12)) as receiver:
        yield receiver


async def provider(kube: KubeClient, namespace: str, name: str, address: str) -> None:
    await kube.create(r.SECRETS, {
        "metadata": {"name": f"{name}-url", "namespace": namespace},
        "data": {"address": base64.b64encode(address.encode()).decode()}})
    await kube.create(r.ALERT_PROVIDERS, {
        "apiVersion": "canary.dev/v1beta1", "kind": "AlertProvider",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"type": "slack", "channel": "#deploys", "secretRef": {"name": f"{name}-url"}}})


def alerting(name: str) -> dict[str, Any]:
    return {**ANALYSIS, "alerts": [{"name": name, "severity": "info",
                                    "providerRef": {"name": name}}]}


def text_of(payload: dict[str, Any]) -> str:
    return json.dumps(payload)


async def test_a_rollback_reaches_slack_with_the_metric_its_value_and_its_bound(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        slack: Receiver, controller: Any) -> None:
    await provider(kube, namespace, "slack", slack.url)
    await start(kube, environment, namespace, analysis=alerting("slack"))
    await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.3"})
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the rollback", timeout=120)
    value = {m["name"]: m for m in failed["status"]["lastAnalysis"]["results"]}[
        "request-success-rate"]["value"]
    rollback = await wait_until(
        lambda: asyncio.sleep(0, [p for p in slack.received if "Rolled back" in text_of(p)]),
        bool, "a Slack message about the rollback", timeout=30)
    message = text_of(rollback[-1])
    assert "request-success-rate" in message and ">= 99" in message
    shown = re.findall(r"\d+(?:\.\d+)?", message)  # 60 is shown as 60, 60.5 as 60.5
    assert any(abs(float(number) - value) < 0.01 for number in shown), (value, message)
    assert rollback[-1]["channel"] == "#deploys" and "blocks" in rollback[-1]
    # The status says weight 0 after the rollback; the message, the weight it failed at.
    failed_at = failed["status"]["lastAnalysis"]["weight"]
    assert failed["status"]["canaryWeight"] == 0 and failed_at > 0
    assert f"0% (rolled back at {failed_at}%)" in message, message
    assert slack.url not in controller.tail(400)  # the address stays out of the logs


async def test_a_receiver_that_never_answers_does_not_hold_up_another_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        black_hole: Receiver, other_namespace: str) -> None:
    other = other_namespace
    await provider(kube, namespace, "dead", black_hole.url)
    await asyncio.gather(start(kube, environment, namespace, analysis=alerting("dead")),
                         start(kube, environment, other))
    started = time.monotonic()
    await asyncio.gather(deploy(kube, namespace, {"revision": "2"}),
                         deploy(kube, other, {"revision": "2"}))
    await wait_until(lambda: canary_object(kube, other), lambda c: phase(c) == "Succeeded",
                     "the other canary's promotion", timeout=90)
    took = time.monotonic() - started
    # 3 weights at a 3 s interval, then promotion: well under the 10 s an alert waits
    # for an answer, times its retries, had delivery been in the way.
    assert took < 40, took
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded", "the silent-alerted promotion",
                     timeout=90)
    # Nor is the alerted canary slowed by its own alerts: the same bound.
    own = time.monotonic() - started
    assert own < 40, own
    assert black_hole.received, "alerts were attempted"
    assert not await events(kube, namespace, "RolledBack")


async def test_a_refused_alert_is_a_warning_event_naming_the_provider_not_its_address(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        refusing: Receiver) -> None:
    await provider(kube, namespace, "refused", refusing.url)
    await start(kube, environment, namespace, analysis=alerting("refused"))
    # The Initialized alert is refused at once (a 404 is not retried) ...
    warnings = await wait_until(
        lambda: events(kube, namespace, "AlertDeliveryFailed"), bool,
        "a Warning event about the undelivered alert", timeout=30)
    event = warnings[0]
    assert event["type"] == "Warning"
    assert event["regarding"]["name"] == "podinfo"
    note = event["note"]
    assert f"AlertProvider {namespace}/refused (slack)" in note, note
    assert "HTTP 404: no_team" in note, note
    path = refusing.url.split("127.0.0.1", 1)[1]
    token = refusing.url.rsplit("/", 1)[1]
    assert all(secret not in note for secret in (refusing.url, path, token)), note
    assert len(refusing.received) == 1  # one attempt for the Initialized alert
    # ... and the canary goes on: the next revision is promoted.
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace), lambda c: phase(c) == "Succeeded",
                     "the promotion despite the refused alerts", timeout=90)


async def test_a_canary_without_alerts_of_its_own_reaches_the_default_provider(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        slack: Receiver, controller: ControllerProcess) -> None:
    """``--default-alert-provider``, at ``--default-alert-severity warn``: the rollback
    (an error) is sent, the initialization (info) is not."""
    await provider(kube, namespace, "platform-slack", slack.url)
    controller.stop()  # this test runs a controller of its own, on this namespace only
    own = ControllerProcess(
        environment, environment.run_dir / "logs" / f"default-alerts-{namespace}.log",
        "--namespace", namespace, "--default-alert-provider", f"{namespace}/platform-slack",
        "--default-alert-severity", "warn")
    own.start()
    try:
        await start(kube, environment, namespace)  # ANALYSIS lists no alerts
        await deploy(kube, namespace, {"revision": "2", "devenv.canary.dev/error-rate": "0.3"})
        await wait_until(lambda: canary_object(kube, namespace),
                         lambda c: phase(c) == "Failed", "the rollback", timeout=120)
        await wait_until(
            lambda: asyncio.sleep(0, [p for p in slack.received
                                      if "Rolled back" in text_of(p)]),
            bool, "the rollback at the default provider", timeout=30)
        assert not [p for p in slack.received if "Initialized" in text_of(p)], slack.received
    finally:
        own.stop()
