"""A gRPC call is counted as Istio counts it: HTTP 200, its outcome in the gRPC status;
plain HTTP requests keep their status and no gRPC status."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canary.devenv.traffic.grpcstatus import (
    INTERNAL,
    OK,
    UNAVAILABLE,
    UNIMPLEMENTED,
    UNKNOWN,
    grpc_status,
    response_labels,
)

HTTP_STATUSES = st.integers(min_value=100, max_value=599)


class TestGrpcCalls:
    @given(HTTP_STATUSES)
    def test_every_grpc_call_is_http_200_with_its_grpc_status(self, status: int) -> None:
        answer = response_labels(status, grpc=True)
        assert answer.request_protocol == "grpc" and answer.response_code == "200"
        assert answer.grpc_response_status == str(grpc_status(status))

    @given(HTTP_STATUSES.filter(lambda s: s != 200))
    def test_only_an_ok_answer_is_grpc_ok(self, status: int) -> None:
        assert grpc_status(status) != OK
        assert grpc_status(200) == OK

    def test_statuses_follow_grpcs_http_mapping(self) -> None:
        """An application error is UNKNOWN, no route UNIMPLEMENTED, no healthy upstream
        UNAVAILABLE, a malformed request INTERNAL."""
        assert [grpc_status(s) for s in (500, 404, 503, 502, 504, 429, 400)] == [
            UNKNOWN, UNIMPLEMENTED, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, UNAVAILABLE,
            INTERNAL]


class TestPlainRequests:
    @given(HTTP_STATUSES)
    def test_a_plain_request_keeps_its_status_and_has_no_grpc_status(self, status: int) -> None:
        assert tuple(response_labels(status, grpc=False)) == ("http", str(status), "")
