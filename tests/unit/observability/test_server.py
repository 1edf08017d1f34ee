"""The endpoints over real loopback HTTP: /readyz, /healthz (answered even while the event
loop is blocked, since the server has threads of its own) and /metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from canary.app import _servers
from canary.observability import (
    ControllerMetrics,
    Health,
    HealthSettings,
    ObservabilityServer,
    parse_address,
)
from canary.settings import ServingSettings
from tests.unit.observability.helpers import SUCCESS_RATE, FakeClock, get, make_canary


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(["canaries", "deployments"], clock=clock)


@pytest.fixture
def metrics() -> ControllerMetrics:
    return ControllerMetrics(flagger_compatible=True)


@pytest.fixture
def server(metrics: ControllerMetrics, health: Health) -> Iterator[ObservabilityServer]:
    with ObservabilityServer("127.0.0.1:0", metrics=metrics, health=health) as running:
        yield running


class TestReadyz:
    def test_503_naming_the_missing_lists_then_200(
            self, server: ObservabilityServer, health: Health) -> None:
        status, content_type, body = get(f"{server.url}/readyz")
        assert (status, body) == (503, "waiting for the first list of canaries, "
                                       "deployments\n")
        assert content_type.startswith("text/plain")
        health.mark_listed("canaries")
        health.mark_listed("deployments")
        assert get(f"{server.url}/readyz")[::2] == (200, "ok\n")


class TestHealthz:
    def test_200_while_alive(self, server: ObservabilityServer) -> None:
        assert get(f"{server.url}/healthz")[::2] == (200, "ok\n")

    def test_500_naming_a_silent_watch(self, server: ObservabilityServer, health: Health,
                                       clock: FakeClock) -> None:
        clock.advance(312)
        health.beat()
        health.touch("canaries")
        assert get(f"{server.url}/healthz")[::2] == (
            500, "watch deployments silent for 312s\n")

    async def test_500_while_the_event_loop_is_blocked(self) -> None:
        """The probe is answered from the server's thread while the loop sleeps."""
        health = Health(["canaries"], HealthSettings(heartbeat_interval_seconds=0.02,
                                                     loop_stall_seconds=0.25))
        heartbeat = asyncio.create_task(health.heartbeat())
        answers: list[tuple[int, str, str]] = []
        try:
            with ObservabilityServer("127.0.0.1:0", health=health) as server:
                await asyncio.sleep(0.05)
                assert (await asyncio.to_thread(get, f"{server.url}/healthz"))[0] == 200

                def probe_later() -> None:
                    time.sleep(0.5)
                    answers.append(get(f"{server.url}/healthz"))

                prober = threading.Thread(target=probe_later)
                prober.start()
                time.sleep(0.8)  # noqa: ASYNC251 (the point: block the loop)
                prober.join()
                status, _, body = answers[0]
                assert status == 500
                assert body.startswith("event loop stalled for ")

                await asyncio.sleep(0.1)  # the loop turns again
                assert (await asyncio.to_thread(get, f"{server.url}/healthz"))[::2] == (
                    200, "ok\n")
        finally:
            heartbeat.cancel()


class TestMetrics:
    def test_the_exposition_parses(self, server: ObservabilityServer,
                                   metrics: ControllerMetrics) -> None:
        metrics.observe(make_canary(results=[SUCCESS_RATE]))
        status, content_type, body = get(f"{server.url}/metrics")
        assert status == 200
        assert content_type.startswith("text/plain; version=0.0.4")
        names = {family.name for family in text_string_to_metric_families(body)}
        assert {"canary_phase", "canary_analysis_value", "canary_analysis_min_bound",
                "flagger_canary_status", "process_cpu_seconds"} <= names

    def test_openmetrics_on_request(self, server: ObservabilityServer) -> None:
        status, content_type, body = get(f"{server.url}/metrics",
                                         accept="application/openmetrics-text")
        assert status == 200
        assert content_type.startswith("application/openmetrics-text")
        assert body.endswith("# EOF\n")


class TestServer:
    def test_unknown_paths_are_404(self, server: ObservabilityServer) -> None:
        assert get(f"{server.url}/nope")[0] == 404

    def test_only_what_it_was_given_is_served(self, health: Health) -> None:
        with ObservabilityServer("127.0.0.1:0", health=health) as probes:
            assert get(f"{probes.url}/metrics")[0] == 404
            assert probes.endpoints == ["/healthz", "/readyz"]
        with pytest.raises(ValueError):
            ObservabilityServer("127.0.0.1:0")

    def test_port_zero_binds_a_free_port_and_stop_releases_it(self, health: Health) -> None:
        server = ObservabilityServer("127.0.0.1:0", health=health)
        server.start()
        port = server.port
        assert port > 0
        assert get(f"{server.url}/healthz")[0] == 200
        server.stop()
        server.stop()
        with pytest.raises(RuntimeError):
            _ = server.port
        with ObservabilityServer(f"127.0.0.1:{port}", health=health) as again:
            assert again.port == port

    def test_a_taken_address_fails_at_start(self, server: ObservabilityServer,
                                            health: Health) -> None:
        with pytest.raises(OSError):
            ObservabilityServer(f"127.0.0.1:{server.port}", health=health).start()

    @pytest.mark.parametrize(("address", "expected"), [
        (":8080", ("", 8080)), ("127.0.0.1:9090", ("127.0.0.1", 9090)),
        ("[::1]:8081", ("::1", 8081)), ("localhost:0", ("localhost", 0))])
    def test_addresses_are_host_and_port(self, address: str,
                                         expected: tuple[str, int]) -> None:
        assert parse_address(address) == expected

    @pytest.mark.parametrize("address", ["8080", "host:", "host:http", ":70000"])
    def test_malformed_addresses_are_refused(self, address: str) -> None:
        with pytest.raises(ValueError, match="host:port"):
            parse_address(address)


class TestStartup:
    def test_each_server_says_once_where_it_serves(self, metrics: ControllerMetrics,
                                                   health: Health) -> None:
        """One line per listening address, naming the port it got."""
        serving = ServingSettings(metrics_bind_address="127.0.0.1:0",
                                  health_probe_bind_address="127.0.0.1:0")
        with capture_logs() as logs:
            [server] = _servers(serving, metrics, health)
        try:
            [line] = [entry for entry in logs if entry["event"] == "serving"]
            assert line["port"] == server.port > 0
            assert line["endpoints"] == server.endpoints
        finally:
            server.stop()
