"""One pure function per provider type: an :class:`~canary.notify.alert.Alert` to the JSON
its service accepts.

Every message carries the same things: a title (what happened to which canary), the text
(the default message or the provider's template), the canary, its target, the phase
change and the weight, every failing check with its value and its bound, and the
dashboard link when there is one. Severity has one colour everywhere
(:data:`COLOURS`). Texts are clipped to each service's documented limits, so a long
message is shortened rather than refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC
from typing import Any, Protocol

from canary.models.templates import AlertProviderSpec
from canary.notify.alert import Alert, Evidence, Severity
from canary.notify.template import render

JSON = dict[str, Any]

#: Green, amber, red: the same colour for a severity in every service.
COLOURS: Mapping[Severity, str] = {"info": "#2EB67D", "warn": "#ECB22E", "error": "#E01E5A"}
#: Slack has no colour for Block Kit messages; these emoji carry the same colours.
SLACK_ICONS: Mapping[Severity, str] = {
    "info": ":large_green_circle:", "warn": ":large_yellow_circle:", "error": ":red_circle:"}
#: Adaptive Cards name colours rather than giving them.
TEAMS_STYLES: Mapping[Severity, str] = {"info": "good", "warn": "warning", "error": "attention"}
#: At most this many failing checks are listed; the rest are counted.
MAX_CHECKS = 10
#: Version of the generic webhook's JSON (see docs/alerts.md).
WEBHOOK_VERSION = "v1"


class Builder(Protocol):
    def __call__(self, alert: Alert, *, channel: str | None = ...,
                 username: str | None = ..., template: str | None = ...) -> JSON: ...


def clip(text: str, limit: int) -> str:
    """``text`` shortened to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def facts(alert: Alert) -> list[tuple[str, str]]:
    """The labelled facts every message shows."""
    return [("Canary", f"{alert.namespace}/{alert.canary}"), ("Target", str(alert.target)),
            ("Phase", alert.phase_change()), ("Weight", alert.shown_weight())]


def check_line(check: Evidence, code: Callable[[str], str] = str) -> str:
    """``95.2 vs bound >= 99 (Failed)``; a check without numbers says why."""
    if check.value is None and check.min is None and check.max is None:
        return f"{check.shown_value()} ({check.verdict})"
    return f"{code(check.shown_value())} vs bound {code(check.bound())} ({check.verdict})"


def shown_checks(alert: Alert) -> tuple[list[Evidence], int]:
    """The failing checks to list, and how many more were left out."""
    failing = list(alert.failing)
    return failing[:MAX_CHECKS], max(0, len(failing) - MAX_CHECKS)


def _iso(alert: Alert) -> str | None:
    if alert.time is None:
        return None
    return alert.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _overrides(channel: str | None, username: str | None, *, sender: str) -> JSON:
    """The channel and the displayed sender a message asks for, where given; ``sender``
    is the field the chat reads the sender from."""
    out: JSON = {}
    if channel:
        out["channel"] = channel
    if username:
        out[sender] = username
    return out


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(alert: Alert, *, channel: str | None = None, username: str | None = None,
          template: str | None = None) -> JSON:
    """Slack incoming webhook, Block Kit: header, text, facts, one section per failing
    check (its value against its bound), the dashboard button, and a context line."""
    text = render(template, alert)

    def code(s: str) -> str:
        return f"`{_slack_escape(s)}`"

    blocks: list[JSON] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True,
                                    "text": clip(f"{SLACK_ICONS[alert.severity]} "
                                                 f"{alert.title}", 150)}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": clip(_slack_escape(text), 3000)}},
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": clip(f"*{label}*\n{_slack_escape(value)}", 2000)}
            for label, value in facts(alert)]},
    ]
    checks, more = shown_checks(alert)
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": clip(
        f":x: *{_slack_escape(c.metric)}*: {check_line(c, code)}", 3000)}} for c in checks]
    if more:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"and {more} more failing checks"}]})
    if alert.dashboard_url:
        blocks.append({"type": "actions", "elements": [{
            "type": "button", "text": {"type": "plain_text", "text": "Open dashboard"},
            "url": alert.dashboard_url}]})
    context = f"severity *{alert.severity}* · {alert.reason}"
    if alert.revision:
        context += f" · revision `{_slack_escape(alert.revision)}`"
    if alert.time is not None:
        context += (f" · <!date^{int(alert.time.timestamp())}^{{date_short_pretty}} "
                    f"{{time_secs}}|{_iso(alert)}>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    payload: JSON = {"text": clip(f"{alert.title}: {text}", 3000), "blocks": blocks}
    return {**payload, **_overrides(channel, username, sender="username")}


def msteams(alert: Alert, *, channel: str | None = None, username: str | None = None,
            template: str | None = None) -> JSON:
    """Microsoft Teams: a message with one Adaptive Card attachment, the format Teams
    Workflows ("When a Teams webhook request is received") and the older incoming
    webhooks both accept. Teams webhooks take no channel or sender override."""
    body: list[JSON] = [
        {"type": "Container", "style": TEAMS_STYLES[alert.severity], "bleed": True,
         "items": [{"type": "TextBlock", "text": alert.title, "weight": "Bolder",
                    "size": "Medium", "wrap": True}]},
        {"type": "TextBlock", "text": clip(render(template, alert), 4000), "wrap": True},
        {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in facts(alert)]},
    ]
    checks, more = shown_checks(alert)
    if checks:
        body.append({"type": "TextBlock", "text": "Failing checks", "weight": "Bolder",
                     "color": "Attention", "wrap": True})
        body.append({"type": "FactSet", "facts": [
            {"title": c.metric, "value": check_line(c)} for c in checks]})
    if more:
        body.append({"type": "TextBlock", "text": f"and {more} more failing checks",
                     "isSubtle": True, "wrap": True})
    context = f"severity {alert.severity} · {alert.reason}"
    if alert.revision:
        context += f" · revision {alert.revision}"
    body.append({"type": "TextBlock", "text": context, "isSubtle": True, "size": "Small",
                 "wrap": True})
    card: JSON = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                  "type": "AdaptiveCard", "version": "1.4", "msteams": {"width": "Full"},
                  "body": body}
    if alert.dashboard_url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Open dashboard",
                            "url": alert.dashboard_url}]
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": card}]}


def discord(alert: Alert, *, channel: str | None = None, username: str | None = None,
            template: str | None = None) -> JSON:
    """Discord webhook: one embed in the severity's colour; mentions are disabled, so a
    template cannot ping anyone by accident."""
    checks, more = shown_checks(alert)
    fields: list[JSON] = [{"name": k, "value": clip(v, 1024), "inline": True}
                          for k, v in facts(alert)]
    fields += [{"name": clip(f"❌ {c.metric}", 256),
                "value": clip(check_line(c, lambda s: f"`{s}`"), 1024), "inline": False}
               for c in checks]
    if more:
        fields.append({"name": "…", "value": f"and {more} more failing checks",
                       "inline": False})
    footer = f"severity {alert.severity} · {alert.reason}"
    if alert.revision:
        footer += f" · revision {alert.revision}"
    embed: JSON = {"title": clip(alert.title, 256),
                   "description": clip(render(template, alert), 4096),
                   "color": int(COLOURS[alert.severity].lstrip("#"), 16),
                   "fields": fields, "footer": {"text": clip(footer, 2048)}}
    if alert.dashboard_url:
        embed["url"] = alert.dashboard_url
    if alert.time is not None:
        embed["timestamp"] = _iso(alert)
    payload: JSON = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if username:
        payload["username"] = clip(username, 80)
    return payload


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def googlechat(alert: Alert, *, channel: str | None = None, username: str | None = None,
               template: str | None = None) -> JSON:
    """Google Chat incoming webhook: a ``cardsV2`` card (header, text in the severity's
    colour, facts, failing checks, dashboard button) with ``fallbackText`` for
    notifications. Chat webhooks post as the webhook's own name: no overrides."""
    text = render(template, alert)
    colour = COLOURS[alert.severity]
    sections: list[JSON] = [
        {"widgets": [{"textParagraph": {
            "text": f'<font color="{colour}">{_html(clip(text, 4000))}</font>'}}]},
        {"widgets": [{"decoratedText": {"topLabel": k, "text": _html(v)}}
                     for k, v in facts(alert)]},
    ]
    checks, more = shown_checks(alert)
    if checks:
        widgets: list[JSON] = [{"decoratedText": {
            "topLabel": _html(c.metric), "wrapText": True,
            "text": _html(check_line(c))}} for c in checks]
        if more:
            widgets.append({"textParagraph": {"text": f"and {more} more failing checks"}})
        sections.append({"header": "Failing checks", "widgets": widgets})
    if alert.dashboard_url:
        sections.append({"widgets": [{"buttonList": {"buttons": [{
            "text": "Open dashboard",
            "onClick": {"openLink": {"url": alert.dashboard_url}}}]}}]})
    subtitle = f"severity {alert.severity} · {alert.reason}"
    return {"fallbackText": clip(f"{alert.title}: {text}", 4000),
            "cardsV2": [{"cardId": "canary-alert", "card": {
                "header": {"title": clip(alert.title, 200), "subtitle": subtitle},
                "sections": sections}}]}


def rocket(alert: Alert, *, channel: str | None = None, username: str | None = None,
           template: str | None = None) -> JSON:
    """Rocket.Chat incoming webhook: a bold title and one attachment in the severity's
    colour, with short fields for the facts and a long field per failing check.
    ``username`` becomes the message's ``alias`` (its displayed sender)."""
    checks, more = shown_checks(alert)
    fields: list[JSON] = [{"short": True, "title": k, "value": v} for k, v in facts(alert)]
    fields += [{"short": False, "title": c.metric, "value": check_line(c, lambda s: f"`{s}`")}
               for c in checks]
    if more:
        fields.append({"short": False, "title": "…",
                       "value": f"and {more} more failing checks"})
    attachment: JSON = {"title": alert.title, "text": clip(render(template, alert), 4000),
                        "color": COLOURS[alert.severity], "fields": fields}
    if alert.dashboard_url:
        attachment["title_link"] = alert.dashboard_url
    if alert.time is not None:
        attachment["ts"] = _iso(alert)
    payload: JSON = {"text": f"*{alert.title}*", "attachments": [attachment]}
    return {**payload, **_overrides(channel, username, sender="alias")}


def webhook(alert: Alert, *, channel: str | None = None, username: str | None = None,
            template: str | None = None) -> JSON:
    """canary's own JSON, for any receiver: stable field names, every field always present
    (null when unknown), documented in docs/alerts.md. Additions keep ``version``; a
    change of meaning or removal would bump it."""
    return {
        "version": WEBHOOK_VERSION,
        "canary": {"name": alert.canary, "namespace": alert.namespace},
        "target": {"kind": alert.target.kind, "name": alert.target.name},
        "severity": alert.severity,
        "reason": alert.reason,
        "phase": alert.phase,
        "previousPhase": alert.previous_phase,
        "weight": alert.weight,
        "rolledBackAt": alert.rolled_back_at,
        "revision": alert.revision,
        "title": alert.title,
        "message": render(template, alert),
        "evidence": [{"metric": e.metric, "value": e.value, "min": e.min, "max": e.max,
                      "verdict": e.verdict, "message": e.message} for e in alert.evidence],
        "dashboardUrl": alert.dashboard_url,
        "time": _iso(alert),
        "channel": channel,
        "username": username,
    }


#: The builder of each AlertProvider type.
BUILDERS: Mapping[str, Builder] = {
    "slack": slack, "msteams": msteams, "discord": discord, "googlechat": googlechat,
    "rocket": rocket, "webhook": webhook,
}


def build(spec: AlertProviderSpec, alert: Alert) -> JSON:
    """The payload an AlertProvider's service expects for ``alert``."""
    return BUILDERS[spec.type](alert, channel=spec.channel, username=spec.username,
                               template=spec.message_template)
