"""Webhook gates against a real HTTP endpoint, driven by the controller process."""

from __future__ import annotations

import base64
import json
import secrets
from typing import Any

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from canary.kube import resources as r
from tests.e2e.gates import Gates, hooks
from tests.e2e.rollout import (
    ANALYSIS,
    APP,
    History,
    canary_object,
    deploy,
    events,
    phase,
    primary,
    start,
    target_revision,
)
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.usefixtures("running_controller")


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
                    "metadata": {"team": "payments"}, "timeout": "2s"}
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


async def test_a_gate_echoing_its_token_never_shows_it(
        kube: KubeClient, environment: LocalEnvironment, namespace: str, gates: Gates,
        controller: Any) -> None:
    token = f"s3cr3t-{secrets.token_hex(8)}"
    await kube.create(r.SECRETS, {"metadata": {"name": "gate-token", "namespace": namespace},
                                  "data": {"Authorization": base64.b64encode(
                                      f"Bearer {token}".encode()).decode()}})
    webhooks = hooks(gates, "confirm-rollout", "event", secretRef={"name": "gate-token"})
    await start(kube, environment, namespace, analysis={**ANALYSIS, "webhooks": webhooks})
    gates.answers.update({"confirm-rollout": 403, "event": 400})
    gates.echo |= {"confirm-rollout", "event"}
    await deploy(kube, namespace, {"revision": "2"})
    waiting = await wait_until(lambda: events(kube, namespace, "WaitingForApproval"),
                               bool, "the rollout to be held by the echoing gate")
    # The gate's URL and answer are shown, with the token in the answer replaced.
    assert (f"confirm-rollout: {gates.url}/confirm-rollout: HTTP 403: confirm-rollout: "
            "you sent ***") in waiting[-1]["note"]
    # The event hook's refusals (each event is sent to it) are logged.
    await wait_until(lambda: _async(controller.tail(400)), lambda log: "event hook failed"
                     in log and "you sent ***" in log, "the event hook's failure log")
    assert any(headers.get("Authorization") == f"Bearer {token}"
               for _, _, headers in gates.received)
    held = await canary_object(kube, namespace)
    assert phase(held) == "Waiting"
    assert token not in json.dumps(held)
    assert token not in json.dumps(await kube.list(r.EVENTS, namespace))
    assert token not in controller.tail(2000)


async def test_a_failing_pre_rollout_hook_rolls_back_before_any_traffic(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        gates: Gates) -> None:
    # Each failed pre-rollout call is a failed check; the threshold (2) rolls back.
    await start(kube, environment, namespace, analysis={
        **ANALYSIS, "webhooks": hooks(gates, "pre-rollout", "post-rollout")})
    gates.answers["pre-rollout"] = 500
    await deploy(kube, namespace, {"revision": "2"})
    history = History()
    checks: list[int] = []

    def record(c: dict[str, Any]) -> dict[str, Any]:
        count = c.get("status", {}).get("failedChecks") or 0
        if not checks or checks[-1] != count:
            checks.append(count)
        return history.record(c)

    failed = await wait_until(lambda: canary_object(kube, namespace),
                              lambda c: phase(record(c)) == "Failed", "the rollback",
                              interval=0.1)
    assert checks[-2:] == [1, 2]
    assert failed["status"]["failedChecks"] == ANALYSIS["threshold"]
    assert set(history.weights()) <= {0}  # the canary never got traffic
    promoted = {c["type"]: c for c in failed["status"]["conditions"]}["Promoted"]
    assert promoted["reason"] == "AnalysisFailed"
    assert (f"pre-rollout hooks failed: pre-rollout: {gates.url}/pre-rollout: HTTP 500"
            in promoted["message"])
    assert "(failed checks 2/2)" in promoted["message"]
    assert len(gates.calls("pre-rollout")) >= 2
    halted = await events(kube, namespace, "AnalysisFailed")
    assert any("Halt advancement" in e["note"] and "1/2" in e["note"] for e in halted)
    # Rolled back: the primary still runs revision 1, the canary is scaled down.
    assert (await primary(kube, namespace))["spec"]["template"]["metadata"]["annotations"][
        "revision"] == "1"
    await wait_until(lambda: kube.get(r.DEPLOYMENTS, APP, namespace),
                     lambda d: d["spec"]["replicas"] == 0, "the canary to be scaled down")
    post = await wait_until(lambda: _async(gates.calls("post-rollout")), bool,
                            "the post-rollout hook")
    assert post[-1]["phase"] == "Failed"


async def _async(value: Any) -> Any:
    return value
