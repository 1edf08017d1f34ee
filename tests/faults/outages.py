"""What a round of faults 1, 2 and 5 takes away from the controller for a while: its
network path to the API server, its API server's process, or the cluster's etcd.

Each outage starts with :meth:`Outage.begin` and ends with :meth:`Outage.end`, which
returns once the part taken away answers again. ``writable`` says whether the cluster
takes writes meanwhile (only the controller has lost it), so a round applies the
revisions the controller must not miss during the outage, or just before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from canary.devenv import LocalEnvironment, readiness
from canary.devenv.components import url
from tests.e2e import restart
from tests.faults import uncached
from tests.faults.partition import Partition


class Outage(Protocol):
    #: Whether the cluster takes writes while it lasts.
    writable: bool

    async def begin(self) -> int:
        """Start it; returns how many connections it cut (0 where not counted)."""

    async def end(self) -> None:
        """End it, once what was taken away answers again."""


@dataclass
class Cut:
    """The controller's connections to its API server cut and refused (faults 1, 2)."""

    partition: Partition
    writable: bool = True

    async def begin(self) -> int:
        return self.partition.cut()

    async def end(self) -> None:
        self.partition.heal()


@dataclass
class ApiServerRestart:
    """The controller's API server stopped, then started again as it was (fault 5):
    its connections close, new ones are refused until it serves again."""

    env: LocalEnvironment
    server: uncached.UncachedApiServer
    writable: bool = True

    async def begin(self) -> int:
        await restart.stop(self.env, uncached.NAME)
        return 0

    async def end(self) -> None:
        ready = readiness.https_ok(url("https", self.server.port, "/readyz"), self.env.ca_file)
        self.server.record = await restart.start_again(
            self.env, self.server.record, ready, "the restarted API server to be ready")


@dataclass
class EtcdRestart:
    """The cluster's etcd stopped, then started again with its data (fault 5): every
    API server fails its requests meanwhile, and nothing can be written."""

    env: LocalEnvironment
    server: uncached.UncachedApiServer
    writable: bool = False

    async def begin(self) -> int:
        self._record = await restart.stop(self.env, "etcd")
        return 0

    async def end(self) -> None:
        await restart.start_again(self.env, self._record,
                                  readiness.etcd_healthy(self.server.etcd_url),
                                  "the restarted etcd to be healthy")
        for server in (self.env.api_server, url("https", self.server.port)):
            await restart.wait_ready(readiness.https_ok(f"{server}/readyz", self.env.ca_file),
                                     f"the API server at {server} to be ready again")
