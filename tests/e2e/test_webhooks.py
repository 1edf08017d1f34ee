"""Webhook gates against a real HTTP endpoint, driven by the controller process."""

from __future__ import annotations

import base64
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
from tests.e2e.rollout import ANALYSIS, APP, canary_object, deploy, phase, start, target_revision
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


@dataclass
class Gates:
    """An HTTP endpoint per hook: answers with the status set for it (200 by default)
    and records what it received."""

    url: str
    answers: dict[str, int] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)

    def calls(self, hook: str) -> list[dict[str, Any]]:
        return [body for name, body, _ in self.received if name == hook]


@pytest_asyncio.fixture(loop_scope="session")
async def gates() -> AsyncIterator[Gates]:
    port = free_port()
    state = Gates(f"http://127.0.0.1:{port}")

    async def answer(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        state.received.append((name, await request.json(), dict(request.headers)))
        return web.Response(status=state.answers.get(name, 200), text=name)

    app = web.Application()
    app.router.add_post("/{name}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


def hooks(gates: Gates, *types: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"name": t, "type": t, "url": f"{gates.url}/{t}", "timeout": "2s", **extra}
            for t in types]


async def test_a_closed_confirm_rollout_gate_holds_the_rollout_until_it_opens(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, gates: Gates) -> None:
    await kube.create(r.SECRETS, {"metadata": {"name": "gate-token", "namespace": namespace},
                                  "data": {"Authorization": base64.b64encode(
                                      b"Bearer s3cr3t").decode()}})
    webhooks = hooks(gates, "confirm-rollout", secretRef={"name": "gate-token"},
                     metadata={"team": "payments"})
    await start(kube, environment, namespace,
                analysis={**ANALYSIS, "webhooks": webhooks + hooks(gates, "event")})
    gates.answers["confirm-rollout"] = 403
    await deploy(kube, namespace, {"revision": "2"})
    revision = await target_revision(kube, namespace)
    waiting = await wait_until(lambda: canary_object(kube, namespace),
                               lambda c: phase(c) == "Waiting", "the rollout to be held")
    assert waiting["status"]["lastAppliedSpec"] != revision
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the held revision not to run")
    _, body, headers = next(c for c in gates.received if c[0] == "confirm-rollout")
    assert body == {"name": APP, "namespace": namespace, "phase": "Initialized",
                    "checksum": waiting["status"]["lastAppliedSpec"],
                    "metadata": {"team": "payments"}}
    assert headers["Authorization"] == "Bearer s3cr3t"
    gates.answers["confirm-rollout"] = 200
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: phase(c) == "Succeeded"
                     and c["status"].get("lastPromotedSpec") == revision,
                     "the rollout to go ahead once approved", timeout=120)
    # Event hooks are delivered after the status is written, so wait for them.
    events = await wait_until(
        lambda: _async(gates.calls("event")),
        lambda es: any(e["eventType"] == "Normal" and "Promotion of" in e["eventMessage"]
                       for e in es),
        "the promotion's event hook")
    assert any("waits for rollout approval" in e["eventMessage"] for e in events)


async def test_a_rollback_hook_aborts_and_post_rollout_hooks_hear_of_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, gates: Gates) -> None:
    gates.answers["rollback"] = 404  # "no rollback requested"
    await start(kube, environment, namespace, analysis={
        **ANALYSIS, "webhooks": hooks(gates, "rollback", "post-rollout")})
    await deploy(kube, namespace, {"revision": "2"})
    await wait_until(lambda: canary_object(kube, namespace),
                     lambda c: (c["status"].get("canaryWeight") or 0) >= 20,
                     "the analysis to be under way")
    gates.answers["rollback"] = 200
    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(c) == "Failed", "the abort")
    promoted = {c["type"]: c for c in failed["status"]["conditions"]}["Promoted"]
    assert promoted["reason"] == "RollbackRequested"
    post = await wait_until(lambda: _async(gates.calls("post-rollout")), bool,
                            "the post-rollout hook")
    assert post[-1]["phase"] == "Failed"


async def _async(value: Any) -> Any:
    return value
