"""A failed Prometheus query in a few words: the HTTP client's exceptions quote the
request's URL (the whole query, URL-encoded); what canary shows must not."""

from __future__ import annotations

import socket
from urllib.parse import urlencode

import requests
import urllib3
from hypothesis import given
from hypothesis import strategies as st
from prometheus_api_client.exceptions import PrometheusApiClientException

from canary.metrics.failure import ERROR_EXCERPT, describe, outage, server

QUERY = 'sum(rate(istio_requests_total{destination_workload=~"web"}[1m]))'


def wrapped(reason: Exception, query: str = QUERY) -> requests.ConnectionError:
    """What requests raises when urllib3 gave up: the URL and its query in the text."""
    url = "/api/v1/query?" + urlencode({"query": query})
    return requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, url, reason))  # type: ignore[arg-type]


def refused() -> Exception:
    cause = ConnectionRefusedError(111, "Connection refused")
    failure = urllib3.exceptions.NewConnectionError(
        None, f"Failed: {cause}")  # type: ignore[arg-type]
    failure.__cause__ = cause
    return wrapped(failure)


class TestWhatFailed:
    def test_a_refused_connection(self) -> None:
        assert describe(refused()) == "connection refused"

    def test_an_unknown_host(self) -> None:
        cause = socket.gaierror(-2, "Name or service not known")
        failure = urllib3.exceptions.NameResolutionError("prom", None, cause)  # type: ignore[arg-type]
        assert describe(wrapped(failure)) == "host not found"

    def test_a_timeout(self) -> None:
        assert describe(requests.ReadTimeout("HTTPConnectionPool(host='prom', port=9090): "
                                             "Read timed out. (read timeout=10)")) == "timed out"

    def test_a_status_retried_until_urllib3_gave_up(self) -> None:
        failure = requests.exceptions.RetryError(urllib3.exceptions.MaxRetryError(
            None, "/api/v1/query?" + urlencode({"query": QUERY}),  # type: ignore[arg-type]
            urllib3.exceptions.ResponseError("too many 503 error responses")))
        assert describe(failure) == "HTTP 503 (after retries)"

    def test_a_bad_query_quotes_prometheus(self) -> None:
        body = (b'{"status":"error","errorType":"bad_data","error":"invalid parameter '
                b'\\"query\\": 1:5: parse error"}')
        failure = PrometheusApiClientException(f"HTTP Status Code 400 ({body!r})")
        assert describe(failure) == ('HTTP 400, bad query: invalid parameter "query": '
                                     '1:5: parse error')

    def test_a_status_without_prometheus_error(self) -> None:
        failure = PrometheusApiClientException("HTTP Status Code 401 (b'Unauthorized\\n')")
        assert describe(failure) == "HTTP 401: Unauthorized"


def answered(status: int, body: bytes = b'{"status":"error","error":"x"}'
             ) -> PrometheusApiClientException:
    """How prometheus-api-client reports a non-200 answer."""
    return PrometheusApiClientException(f"HTTP Status Code {status} ({body!r})")


class TestOutage:
    """The server could not answer (an outage of the evidence) or refused the query (a
    mistake to fix, a failed check)."""

    def test_no_connection_or_no_answer_in_time_is_an_outage(self) -> None:
        assert outage(refused())
        assert outage(requests.ReadTimeout("Read timed out. (read timeout=10)"))
        assert outage(requests.ConnectionError("Connection aborted."))

    @given(st.sampled_from([429, *range(500, 600)]))
    def test_a_server_error_or_too_many_requests_is_an_outage(self, status: int) -> None:
        assert outage(answered(status))

    def test_a_status_retried_until_urllib3_gave_up_is_an_outage(self) -> None:
        assert outage(requests.exceptions.RetryError(urllib3.exceptions.MaxRetryError(
            None, "/api/v1/query", urllib3.exceptions.ResponseError(  # type: ignore[arg-type]
                "too many 502 error responses"))))

    @given(st.sampled_from([400, 401, 403, 404, 422]))
    def test_a_refused_query_is_no_outage(self, status: int) -> None:
        assert not outage(answered(status))

    def test_a_failed_tls_handshake_or_an_unknown_error_is_no_outage(self) -> None:
        assert not outage(requests.exceptions.SSLError("certificate verify failed"))
        assert not outage(ValueError("unexpected"))


#: The characters of PromQL.
PROMQL = st.text(st.sampled_from('abcxyz_019 {}()[]"=~!,.*+/-'), min_size=20,
                 max_size=2000)


@given(PROMQL)
def test_no_description_quotes_the_query(query: str) -> None:
    """Whatever the query, and however the client words its failure, the description is
    one short line without it."""
    encoded = urlencode({"query": query})
    for failure in (wrapped(RuntimeError("boom"), query), RuntimeError(
            f"GET /api/v1/query?{encoded} failed")):
        text = describe(failure)
        assert encoded[:20] not in text and "\n" not in text
        assert len(text) <= ERROR_EXCERPT + 3


class TestServer:
    def test_host_and_port_without_credentials_path_or_query(self) -> None:
        assert server("https://ops:hunter2@Prom.example:9443/x?token=t") == \
            "prom.example:9443"

    def test_the_default_port_of_the_scheme(self) -> None:
        assert server("http://prometheus.istio-system") == "prometheus.istio-system:80"
        assert server("https://[::1]/") == "[::1]:443"
