"""Alert problems the notifier reports become Warning events on the Canary."""

from __future__ import annotations

from typing import Any

from canary.controller.alert_failures import AlertFailures
from canary.notify import DeliveryFailure, TemplateProblem
from tests.unit.controller.caches import Cache
from tests.unit.notify.helpers import make_alert

CANARY = {"apiVersion": "canary.dev/v1beta1", "kind": "Canary",
          "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1"}}


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    async def record(self, obj: dict[str, Any], type_: str, reason: str, note: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, note))


class Reported:
    """The reporter of alert failures, with the Canaries it finds and the events it wrote."""

    def __init__(self, *canaries: dict[str, Any]) -> None:
        self.events = Recorder()
        self.report = AlertFailures(Cache(*canaries), self.events)  # type: ignore[arg-type]


async def test_an_undelivered_alert_is_a_warning_naming_the_provider() -> None:
    fake = Reported(CANARY)
    failure = DeliveryFailure(make_alert(), "test/slack", "slack", "AlertDeliveryFailed",
                              "HTTP 404: no_team", 1)
    await fake.report(failure)
    assert fake.events.events == [(
        "podinfo", "Warning", "AlertDeliveryFailed",
        "Alert RolledBack (error) was not delivered to AlertProvider test/slack (slack): "
        "HTTP 404: no_team")]


async def test_a_template_with_unknown_variables_is_a_warning_naming_them() -> None:
    fake = Reported(CANARY)
    await fake.report(TemplateProblem(make_alert(), "test/hook", "webhook", ("wieght",)))
    ((name, type_, reason, note),) = fake.events.events
    assert (name, type_, reason) == ("podinfo", "Warning", "AlertTemplateInvalid")
    assert "AlertProvider test/hook" in note and "$wieght" in note


async def test_a_deleted_canary_gets_no_event() -> None:
    fake = Reported()
    failure = DeliveryFailure(make_alert(), "test/slack", "slack", "AlertDeliveryFailed", "x")
    await fake.report(failure)
    assert fake.events.events == []
