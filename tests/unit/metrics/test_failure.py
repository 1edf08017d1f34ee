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

from canary.metrics.failure import ERROR_EXCERPT, describe, server

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
