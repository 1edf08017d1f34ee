"""Local HTTP endpoints and a cluster stand-in for the notifier tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.unit.notify.helpers import Cluster
from tests.unit.notify.servers import BlackHole, Proxy, Receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def other_receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def black_hole() -> AsyncIterator[BlackHole]:
    server = BlackHole()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    server = Proxy()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()
