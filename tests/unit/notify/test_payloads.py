"""Each provider's payload: the shape its service accepts, with the same facts in all."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canary.models.templates import AlertProviderSpec
from canary.notify import BUILDERS, COLOURS, Evidence, build, dashboard_url
from tests.unit.notify.helpers import make_alert

DASHBOARD = dashboard_url("https://grafana.example/d/canary", "test", "podinfo")


def text_of(payload: Any) -> str:
    """Every string in a payload, for "does it mention ..." checks."""
    return json.dumps(payload, ensure_ascii=False)


class TestSlack:
    def test_a_rollback_names_the_metric_its_value_and_its_bound(self) -> None:
        payload = BUILDERS["slack"](make_alert())
        checks = [b["text"]["text"] for b in payload["blocks"]
                  if b["type"] == "section" and b.get("text", {}).get("text", "").startswith(":x:")]
        assert checks == [":x: *request-success-rate*: `95.2` vs bound `&gt;= 99` (Failed)"]

    def test_blocks_hold_header_facts_and_context(self) -> None:
        blocks = BUILDERS["slack"](make_alert())["blocks"]
        assert blocks[0]["type"] == "header"
        assert blocks[0]["text"]["text"] == ":red_circle: Rolled back: test/podinfo"
        fields = [f["text"] for f in blocks[2]["fields"]]
        assert fields == ["*Canary*\ntest/podinfo", "*Target*\nDeployment/podinfo",
                          "*Phase*\nProgressing → Failed", "*Weight*\n0%"]
        assert blocks[-1]["type"] == "context"
        assert "revision `7c9d5f`" in blocks[-1]["elements"][0]["text"]

    def test_a_rollback_shows_the_weight_it_was_rolled_back_at(self) -> None:
        fields = [f["text"] for f in
                  BUILDERS["slack"](make_alert(rolled_back_at=30))["blocks"][2]["fields"]]
        assert fields[-1] == "*Weight*\n0% (rolled back at 30%)"

    def test_the_dashboard_is_a_button(self) -> None:
        blocks = BUILDERS["slack"](make_alert(dashboard_url=DASHBOARD))["blocks"]
        actions = [b for b in blocks if b["type"] == "actions"]
        assert actions[0]["elements"][0]["url"] == DASHBOARD
        assert not [b for b in BUILDERS["slack"](make_alert())["blocks"]
                    if b["type"] == "actions"]

    def test_channel_and_username_are_set_only_when_given(self) -> None:
        payload = BUILDERS["slack"](make_alert(), channel="#releases", username="canary")
        assert (payload["channel"], payload["username"]) == ("#releases", "canary")
        assert "channel" not in BUILDERS["slack"](make_alert())

    def test_a_fallback_text_is_there_for_notifications(self) -> None:
        assert BUILDERS["slack"](make_alert())["text"].startswith("Rolled back: test/podinfo")

    def test_many_failing_checks_stay_within_slacks_block_limit(self) -> None:
        evidence = tuple(Evidence(f"m{i}", i, None, 0, "Failed") for i in range(40))
        blocks = BUILDERS["slack"](make_alert(evidence=evidence))["blocks"]
        assert len(blocks) <= 50
        assert "and 30 more failing checks" in text_of(blocks)

    def test_user_text_cannot_inject_slack_markup(self) -> None:
        payload = BUILDERS["slack"](make_alert(message="<!channel> & <http://x|y>"))
        assert payload["blocks"][1]["text"]["text"] == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"


class TestTeams:
    def test_is_a_message_with_one_adaptive_card(self) -> None:
        payload = BUILDERS["msteams"](make_alert(dashboard_url=DASHBOARD))
        assert payload["type"] == "message"
        (attachment,) = payload["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
        assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open dashboard",
                                    "url": DASHBOARD}]

    def test_facts_and_failing_checks(self) -> None:
        body = BUILDERS["msteams"](make_alert())["attachments"][0]["content"]["body"]
        assert body[0]["style"] == "attention"
        fact_sets = [b["facts"] for b in body if b["type"] == "FactSet"]
        assert {"title": "Weight", "value": "0%"} in fact_sets[0]
        assert fact_sets[1] == [{"title": "request-success-rate",
                                 "value": "95.2 vs bound >= 99 (Failed)"}]


class TestDiscord:
    def test_one_embed_in_the_severity_colour_without_mentions(self) -> None:
        payload = BUILDERS["discord"](make_alert(dashboard_url=DASHBOARD), username="canary")
        (embed,) = payload["embeds"]
        assert embed["color"] == 0xE01E5A
        assert embed["url"] == DASHBOARD
        assert embed["timestamp"] == "2026-03-04T05:06:07Z"
        assert {"name": "❌ request-success-rate",
                "value": "`95.2` vs bound `>= 99` (Failed)", "inline": False} in embed["fields"]
        assert payload["allowed_mentions"] == {"parse": []}
        assert payload["username"] == "canary"


class TestGoogleChat:
    def test_a_cards_v2_card_with_fallback_text(self) -> None:
        payload = BUILDERS["googlechat"](make_alert(dashboard_url=DASHBOARD))
        assert payload["fallbackText"].startswith("Rolled back: test/podinfo")
        card = payload["cardsV2"][0]["card"]
        assert card["header"]["title"] == "Rolled back: test/podinfo"
        checks = next(s for s in card["sections"] if s.get("header") == "Failing checks")
        assert checks["widgets"][0]["decoratedText"] == {
            "topLabel": "request-success-rate", "wrapText": True,
            "text": "95.2 vs bound &gt;= 99 (Failed)"}
        button = card["sections"][-1]["widgets"][0]["buttonList"]["buttons"][0]
        assert button["onClick"]["openLink"]["url"] == DASHBOARD


class TestRocketChat:
    def test_an_attachment_with_fields_and_the_sender_as_alias(self) -> None:
        payload = BUILDERS["rocket"](make_alert(dashboard_url=DASHBOARD), channel="#ops",
                                     username="canary")
        assert (payload["channel"], payload["alias"]) == ("#ops", "canary")
        (attachment,) = payload["attachments"]
        assert attachment["color"] == COLOURS["error"]
        assert attachment["title_link"] == DASHBOARD
        assert {"short": False, "title": "request-success-rate",
                "value": "`95.2` vs bound `>= 99` (Failed)"} in attachment["fields"]


class TestGenericWebhook:
    FIELDS = {"version", "canary", "target", "severity", "reason", "phase", "previousPhase",
              "weight", "rolledBackAt", "revision", "title", "message", "evidence",
              "dashboardUrl", "time", "channel", "username"}

    def test_every_documented_field_is_always_present(self) -> None:
        """Receivers can rely on the keys: unknown values are null, never missing."""
        bare = make_alert(previous_phase=None, revision=None, time=None, evidence=())
        for alert in (make_alert(), bare):
            assert set(BUILDERS["webhook"](alert)) == self.FIELDS
        assert BUILDERS["webhook"](bare)["previousPhase"] is None
        assert BUILDERS["webhook"](bare)["rolledBackAt"] is None

    def test_values(self) -> None:
        payload = BUILDERS["webhook"](make_alert())
        assert payload["version"] == "v1"
        assert payload["canary"] == {"name": "podinfo", "namespace": "test"}
        assert payload["target"] == {"kind": "Deployment", "name": "podinfo"}
        assert (payload["phase"], payload["previousPhase"]) == ("Failed", "Progressing")
        assert payload["evidence"][0] == {"metric": "request-success-rate", "value": 95.2,
                                          "min": 99, "max": None, "verdict": "Failed",
                                          "message": None}
        assert payload["time"] == "2026-03-04T05:06:07Z"

    def test_a_rollback_gives_the_weight_it_was_rolled_back_at(self) -> None:
        payload = BUILDERS["webhook"](make_alert(rolled_back_at=30))
        assert (payload["weight"], payload["rolledBackAt"]) == (0, 30)


class TestAllProviders:
    @pytest.mark.parametrize("type_", sorted(BUILDERS))
    def test_payloads_are_json_and_name_the_failing_check(self, type_: str) -> None:
        payload = BUILDERS[type_](make_alert())
        text = json.dumps(payload)
        assert "request-success-rate" in text and "95.2" in text and "99" in text

    @pytest.mark.parametrize("type_", sorted(BUILDERS))
    def test_a_template_replaces_the_default_text(self, type_: str) -> None:
        spec = AlertProviderSpec.model_validate({
            "type": type_, "secretRef": {"name": "s"},
            "messageTemplate": "$canary in $namespace: $metric=$value, bound $bound"})
        text = text_of(build(spec, make_alert()))
        assert "podinfo in test: request-success-rate=95.2, bound" in text
        assert "Rolling back podinfo" not in text

    @pytest.mark.parametrize("severity", ["info", "warn", "error"])
    def test_a_severity_has_one_colour_everywhere(self, severity: Any) -> None:
        colour = COLOURS[severity]
        alert = make_alert(severity=severity)
        assert BUILDERS["discord"](alert)["embeds"][0]["color"] == int(colour[1:], 16)
        assert BUILDERS["rocket"](alert)["attachments"][0]["color"] == colour
        assert colour in text_of(BUILDERS["googlechat"](alert))

    @pytest.mark.parametrize("type_", sorted(set(BUILDERS) - {"webhook"}))
    def test_a_huge_message_is_clipped_for_chat_services(self, type_: str) -> None:
        """Chat services refuse oversized messages; a shortened one still tells."""
        payload = BUILDERS[type_](make_alert(message="x" * 20000))
        assert "x" * 4097 not in text_of(payload)
        assert "x…" in text_of(payload)
