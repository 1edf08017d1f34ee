"""RFC 3339 times as the Kubernetes API writes them (UTC, second precision)."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime, precise: bool = False) -> str:
    """Second precision, as metav1.Time; ``precise`` keeps milliseconds, for step timing
    that compressed intervals (a second or two) depend on."""
    moment = moment.astimezone(UTC)
    if precise:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
