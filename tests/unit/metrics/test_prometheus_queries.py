"""The judge's queries reach Prometheus's HTTP API with the exact evaluation times."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from canary.metrics.prometheus import PrometheusQuerier, QueryFailed


class FakePrometheus(BaseHTTPRequestHandler):
    """Answers /api/v1/query and /api/v1/query_range; remembers the parameters."""

    seen: list[tuple[str, dict[str, str]]] = []
    status = 200

    def do_GET(self) -> None:
        url = urlparse(self.path)
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakePrometheus.seen.append((url.path, params))
        if url.path.endswith("/query_range"):
            start, end, step = (float(params["start"]), float(params["end"]),
                                float(params["step"].rstrip("s")))
            points, t = [], start
            while t <= end + 1e-9:
                points.append([round(t, 3), str(int(t - start) * 10)])
                t += step
            result: list[dict[str, Any]] = [{"metric": {"destination_workload": "web"},
                                             "values": points}]
        else:
            result = [{"metric": {"destination_workload": "web"},
                       "value": [float(params["time"]), "42"]}]
        body = json.dumps({"status": "success", "data": {"result": result}}).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    FakePrometheus.seen, FakePrometheus.status = [], 200
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


async def test_an_error_status_is_a_query_failure(prometheus: str) -> None:
    FakePrometheus.status = 400
    querier = PrometheusQuerier(prometheus, timeout=5)
    with pytest.raises(QueryFailed, match="query failed"):
        await querier.samples("sum(x)", 1.0)
