"""spec.service's timeout and retries in the Gateway API's terms."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canary.models.base import parse_duration
from canary.router.gatewayapi.matches import UnsupportedRoute
from canary.router.gatewayapi.policy import duration, retry, serves_retry, timeouts

#: The Gateway API's Duration, from the CRDs.
GATEWAY_DURATION = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


class TestDurations:
    """Any duration Istio takes, to the millisecond, in the Gateway API's form."""

    @given(st.integers(0, 99_999 * 3_600_000))
    def test_the_same_length_in_the_stricter_form(self, millis: int) -> None:
        text = duration(f"{millis / 1000}s", "f")
        assert GATEWAY_DURATION.fullmatch(text)
        assert round(parse_duration(text) * 1000) == millis

    def test_what_cannot_be_said(self) -> None:
        with pytest.raises(UnsupportedRoute, match="f: the Gateway API counts whole"):
            duration("0.1ms", "f")
        with pytest.raises(UnsupportedRoute, match="f: "):
            duration("soon", "f")

    def test_a_per_try_timeout_longer_than_the_request_is_refused(self) -> None:
        with pytest.raises(UnsupportedRoute, match="perTryTimeout"):
            timeouts("1s", {"perTryTimeout": "2s"})
        assert timeouts("0s", {"perTryTimeout": "2s"}) == {"request": "0s",
                                                           "backendRequest": "2s"}


class TestRetries:
    """Istio's HTTPRetry as HTTPRoute retry, in the experimental channel."""

    def test_status_conditions_become_codes(self) -> None:
        policy = retry({"attempts": 2, "retryOn": "gateway-error,retriable-4xx,connect-failure,"
                                                  "429"}, experimental=True)
        assert policy == {"attempts": 2, "codes": [409, 429, 502, 503, 504]}
        assert retry({"retryOn": "5xx"}, experimental=True) == {"codes": list(range(500, 600))}

    def test_what_does_not_map_is_refused(self) -> None:
        for retries, field in (({"retryOn": "cancelled"}, "retryOn"),
                               ({"attempts": 0}, "attempts"),
                               ({"retryRemoteLocalities": True}, "retryRemoteLocalities")):
            with pytest.raises(UnsupportedRoute, match=f"spec.service.retries.{field}"):
                retry(retries, experimental=True)

    def test_only_a_per_try_timeout_needs_no_retry_field(self) -> None:
        assert retry({"perTryTimeout": "1s"}, experimental=False) is None

    def test_the_channel_is_read_from_the_crd(self) -> None:
        def crd(channel: str) -> dict[str, object]:
            return {"metadata": {"annotations": {
                "gateway.networking.k8s.io/channel": channel}}}
        assert serves_retry(crd("experimental")) and not serves_retry(crd("standard"))
