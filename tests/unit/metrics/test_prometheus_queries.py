"""The judge's queries reach Prometheus's HTTP API with the exact evaluation times; a
failed query is told in one line naming the server and what failed, never the query."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from prometheus_api_client import prometheus_connect
from structlog.testing import capture_logs

from canary.metrics.prometheus import MetricsUnavailable, PrometheusQuerier, QueryFailed

#: A query as long as real ones: URL-encoded, it would fill a screen.
LONG_QUERY = ("sum(rate(istio_requests_total{reporter=\"destination\","
              "destination_workload_namespace=\"shop\",destination_workload=~\"web\","
              "response_code!~\"5.*\"}[1m])) / " * 8).rstrip(" /")


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers /api/v1/query and /api/v1/query_range; remembers the parameters."""

    seen: list[tuple[str, dict[str, str]]] = []
    status = 200
    #: The body of an error answer (None: the usual result with ``status``).
    error: dict[str, str] | None = None

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakePrometheus.seen.append((url.path, params))
        result: list[dict[str, Any]]
        if FakePrometheus.error is not None:
            result = []
        elif url.path.endswith("/query_range"):
            start, end, step = (float(params["start"]), float(params["end"]),
                                float(params["step"].rstrip("s")))
            points, t = [], start
            while t <= end + 1e-9:
                points.append([round(t, 3), str(int(t - start) * 10)])
                t += step
            result = [{"metric": {"destination_workload": "web"}, "values": points}]
        else:
            result = [{"metric": {"destination_workload": "web"},
                       "value": [float(params.get("time", 0)), "42"]}]
        answer = {"status": "success", "data": {"result": result}}
        if FakePrometheus.error is not None:
            answer = {"status": "error", **FakePrometheus.error}
        body = json.dumps(answer).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    FakePrometheus.seen, FakePrometheus.status, FakePrometheus.error = [], 200, None
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_instant_samples_are_evaluated_at_the_given_time(prometheus: str) -> None:
    querier = PrometheusQuerier(prometheus, timeout=5)
    samples = await querier.samples("sum(x)", 1_800_000_000.25)
    assert samples == [({"destination_workload": "web"}, 42.0)]
    [(path, params)] = FakePrometheus.seen
    assert path == "/api/v1/query" and params["time"] == "1800000000.250"


async def test_range_queries_keep_fractional_start_and_end(prometheus: str) -> None:
    querier = PrometheusQuerier(prometheus, timeout=5)
    [(labels, points)] = await querier.series("sum(x)", 1_800_000_000.25, 1_800_000_006.25, 3)
    [(_, params)] = FakePrometheus.seen
    assert (params["start"], params["end"], params["step"]) == (
        "1800000000.250", "1800000006.250", "3s")
    assert [t for t, _ in points] == [1_800_000_000.25, 1_800_000_003.25, 1_800_000_006.25]
    assert labels == {"destination_workload": "web"}


class TestFailures:
    """What a failed query says in the Canary's status and events: one line with the
    server and what failed; the query goes to the log only."""

    @pytest.fixture(autouse=True)
    def quick_retries(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(prometheus_connect, "RETRY_BACKOFF_FACTOR", 0)

    async def test_an_error_status_is_a_query_failure(self, prometheus: str) -> None:
        FakePrometheus.status = 400
        querier = PrometheusQuerier(prometheus, timeout=5)
        with pytest.raises(QueryFailed, match="HTTP 400"):
            await querier.samples("sum(x)", 1.0)

    async def test_a_server_error_is_an_outage_and_a_bad_query_is_not(
            self, prometheus: str) -> None:
        querier = PrometheusQuerier(prometheus, timeout=5)
        FakePrometheus.status = 503
        with capture_logs():
            with pytest.raises(MetricsUnavailable, match="HTTP 503"):
                await querier.samples("sum(x)", 1.0)
            down = await querier.query("request-success-rate", "sum(x)")
            FakePrometheus.status = 400
            refused = await querier.query("request-success-rate", "sum(x)")
        assert down.unavailable and down.error is not None and "503" in down.error
        assert not refused.unavailable and refused.error is not None

    async def test_a_bad_query_says_so_with_prometheus_error_cut_short(
            self, prometheus: str) -> None:
        FakePrometheus.status = 400
        FakePrometheus.error = {"errorType": "bad_data", "error": "invalid parameter "
                                "\"query\": 1:5: parse error: unexpected identifier" + " x" * 200}
        querier = PrometheusQuerier(prometheus, timeout=5)
        with capture_logs() as logs:
            measured = await querier.query("request-success-rate", LONG_QUERY)
        host = prometheus.removeprefix("http://")
        assert measured.error is not None
        assert measured.error.startswith(f"Prometheus at {host}: HTTP 400, bad query: "
                                         "invalid parameter \"query\": 1:5: parse error")
        assert measured.error.endswith("...") and len(measured.error) < 250
        assert "istio_requests_total" not in measured.error and "%" not in measured.error
        [logged] = logs
        assert logged["log_level"] == "warning" and logged["query"] == LONG_QUERY
        assert logged["metric"] == "request-success-rate"

    async def test_a_refused_connection_names_the_server_never_its_credentials(
            self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        querier = PrometheusQuerier(f"http://ops:hunter2@127.0.0.1:{port}/prom", timeout=5)
        with capture_logs():
            measured = await querier.query("request-duration", LONG_QUERY)
        assert measured.error == f"Prometheus at 127.0.0.1:{port}: connection refused"
        assert measured.unavailable
        assert measured.query == LONG_QUERY  # the result keeps its rendered query
