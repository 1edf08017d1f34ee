"""A pod with an error-rate ramp answers as its age says: the simulator measures the age
from the pod's creation timestamp with the clock it is given, so the same pod (the same
template, the same revision) is healthy at first and degrades later."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from hypothesis import given
from hypothesis import strategies as st

from canary.core.timefmt import format_time
from canary.devenv.traffic import behaviour
from canary.devenv.traffic.cluster import ClusterView, Endpoint, created_at
from canary.devenv.traffic.routing import Destination, Request
from canary.devenv.traffic.simulator import Simulator

HOST = "web.shop.svc.cluster.local"
#: 2026-12-02T14:00:00Z
CREATED = 1_796_220_000.0


class OnePod:
    """The mesh host ``web.shop`` with no VirtualService, served by one pod created at
    :data:`CREATED` that never fails until 10 s old and always from 20 s."""

    def __init__(self) -> None:
        ramp = behaviour.from_annotations({behaviour.ERROR_RATE_RAMP_ANNOTATION:
                                           "10s=0,20s=1"})
        self.pod = Endpoint(pod="web-1", namespace="shop", workload="web", app="web",
                            version="v1", canonical_service="web", behaviour=ramp,
                            created=CREATED)

    def synced(self) -> bool:
        return True

    def ingress_for(self, host: str) -> None:
        return None

    def virtual_service_for(self, host: str) -> tuple[None, str]:
        return None, "shop"

    def endpoints(self, destination: Destination) -> list[Endpoint] | None:
        return [self.pod] if destination.host == HOST else None


def simulator(now: list[float]) -> Simulator:
    """A simulator whose wall clock reads ``now[0]``."""
    return Simulator(cast(ClusterView, OnePod()), seed=5, wall_clock=lambda: now[0])


def statuses(sim: Simulator, count: int = 200) -> set[int]:
    return {sim.deliver(Request(HOST)).status for _ in range(count)}


def test_the_pod_degrades_as_it_ages_on_the_simulators_clock() -> None:
    now = [CREATED + 5]
    sim = simulator(now)
    assert statuses(sim) == {200}
    now[0] = CREATED + 25
    assert statuses(sim) == {500}
    assert sim.metrics.total(reporter="destination", response_code="500") == 200
    now[0] = CREATED + 15  # halfway: half of the requests fail
    failed = sum(1 for _ in range(2000) if sim.deliver(Request(HOST)).status == 500)
    assert 850 < failed < 1150


@given(st.integers(0, 4_000_000_000))
def test_the_creation_timestamp_is_read_as_utc_seconds(seconds: int) -> None:
    stamp = format_time(datetime.fromtimestamp(seconds, UTC))
    assert created_at({"creationTimestamp": stamp}) == seconds


def test_a_pod_without_a_creation_timestamp_counts_from_the_epoch() -> None:
    assert created_at({}) == 0.0
