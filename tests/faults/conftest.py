"""What the fault tier adds to the shared local environment (tests/e2e/fixtures.py):
an API server without a watch cache, a partition in front of it, and a controller that
reaches the cluster only through both."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from canary.devenv import LocalEnvironment
from canary.devenv.components import url
from canary.kube import KubeClient
from tests.e2e.controller_process import ControllerProcess
from tests.e2e.fixtures import fresh_namespace
from tests.e2e.identities import admin_account, service_account_kubeconfig
from tests.faults import throttling, uncached
from tests.faults.partition import Partition
from tests.faults.prometheus_proxy import PrometheusProxy

#: Rounds of each fault: small by default (the smoke `make test` runs), larger in
#: `make faults`.
ROUNDS_VARIABLE = "CANARY_FAULT_ROUNDS"
#: Replays the random timings of a run (printed by each test).
SEED_VARIABLE = "CANARY_FAULT_SEED"


@pytest.fixture(scope="session")
def rounds() -> int:
    return int(os.environ.get(ROUNDS_VARIABLE) or 1)


@contextlib.asynccontextmanager
async def namespaces(kube: KubeClient, environment: LocalEnvironment, namespace: str,
                     count: int) -> AsyncIterator[list[str]]:
    """``namespace`` and ``count - 1`` fresh namespaces beside it, deleted afterwards."""
    async with contextlib.AsyncExitStack() as stack:
        more = [await stack.enter_async_context(fresh_namespace(
            kube, environment, f"{namespace[:50]}-{secrets.token_hex(2)}"))
            for _ in range(count - 1)]
        yield [namespace, *more]


@pytest_asyncio.fixture(loop_scope="session")
async def eight_namespaces(kube: KubeClient, environment: LocalEnvironment,
                           namespace: str) -> AsyncIterator[list[str]]:
    """Eight applications side by side."""
    async with namespaces(kube, environment, namespace, 8) as found:
        yield found


@pytest_asyncio.fixture(loop_scope="session")
async def four_namespaces(kube: KubeClient, environment: LocalEnvironment,
                          namespace: str) -> AsyncIterator[list[str]]:
    async with namespaces(kube, environment, namespace, 4) as found:
        yield found


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def uncached_apiserver(environment: LocalEnvironment
                             ) -> AsyncIterator[uncached.UncachedApiServer]:
    server = await uncached.start(environment)
    yield server
    server.stop()


@pytest.fixture
def partition(uncached_apiserver: uncached.UncachedApiServer) -> Iterator[Partition]:
    proxy = Partition(uncached_apiserver.port)
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def partitioned_controller(environment: LocalEnvironment, controller: ControllerProcess,
                           partition: Partition) -> Iterator[ControllerProcess]:
    """The controller under test, through the partition to the uncached API server. The
    session's controller is stopped meanwhile (two would act on the same Canaries) and
    started again afterwards."""
    kubeconfig = uncached.kubeconfig_through(environment, partition.port,
                                             environment.run_dir / "kubeconfig-partitioned")
    with _instead_of(controller):
        process = ControllerProcess(environment, environment.logs_dir / "controller-faults.log",
                                    kubeconfig=kubeconfig)
        process.start()
        yield process
        process.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def throttled_controller(environment: LocalEnvironment, controller: ControllerProcess,
                               kube: KubeClient, namespace: str, partition: Partition
                               ) -> AsyncIterator[ControllerProcess]:
    """The controller under test as a ServiceAccount API Priority and Fairness starves
    (``throttling.py``), through the partition to the uncached API server; the session's
    controller is stopped meanwhile and started again afterwards."""
    async with throttling.starved_account(kube, namespace) as account:
        kubeconfig = await service_account_kubeconfig(
            kube, environment, environment.run_dir / "kubeconfig-throttled", namespace,
            account, server=url("https", partition.port))
        with _instead_of(controller):
            process = ControllerProcess(environment,
                                        environment.logs_dir / "controller-faults.log",
                                        kubeconfig=kubeconfig)
            await asyncio.to_thread(process.start)
            yield process
            await asyncio.to_thread(process.stop)


@dataclass
class Replica:
    """One of two controller replicas with leader election, each under its own
    ServiceAccount (so the audit log tells their writes apart) and through its own
    partition to the uncached API server (so one can be cut off alone)."""

    process: ControllerProcess
    partition: Partition
    #: Its user name in the audit log.
    user: str


@pytest_asyncio.fixture(loop_scope="session")
async def replicas(environment: LocalEnvironment, controller: ControllerProcess,
                   kube: KubeClient, namespace: str,
                   uncached_apiserver: uncached.UncachedApiServer
                   ) -> AsyncIterator[list[Replica]]:
    """Two replicas electing a leader on a Lease in ``namespace`` (4 s lease, 3 s renew
    deadline, renewed every 0.5 s), alone on the cluster."""
    async with contextlib.AsyncExitStack() as stack:
        pair = []
        for index in range(2):
            account = await stack.enter_async_context(
                admin_account(kube, namespace, f"canary-replica-{index}"))
            partition = Partition(uncached_apiserver.port)
            partition.start()
            stack.callback(partition.stop)
            kubeconfig = await service_account_kubeconfig(
                kube, environment, environment.run_dir / f"kubeconfig-replica-{index}",
                namespace, account, server=url("https", partition.port))
            pair.append(Replica(ControllerProcess(
                environment, environment.logs_dir / f"replica-{index}-faults.log",
                "--leader-elect", "--leader-election-namespace", namespace,
                "--leader-election-identity", f"replica-{index}", "--lease-duration", "4s",
                "--renew-deadline", "3s", "--retry-period", "500ms", kubeconfig=kubeconfig),
                partition, f"system:serviceaccount:{namespace}:{account}"))
        with _instead_of(controller):
            for replica in pair:
                replica.process.start(wait_for=None)
            yield pair
            for replica in pair:
                await asyncio.to_thread(replica.process.stop)


@pytest_asyncio.fixture(loop_scope="session")
async def prometheus_proxy(environment: LocalEnvironment) -> AsyncIterator[PrometheusProxy]:
    proxy = PrometheusProxy(environment.prometheus_url)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def proxied_controller(environment: LocalEnvironment, controller: ControllerProcess,
                       prometheus_proxy: PrometheusProxy) -> Iterator[ControllerProcess]:
    """The controller under test, reading metrics through the proxy; the session's
    controller is stopped meanwhile and started again afterwards."""
    with _instead_of(controller):
        process = ControllerProcess(environment, environment.logs_dir / "controller-faults.log",
                                    "--metrics-server", prometheus_proxy.url)
        process.start()
        yield process
        process.stop()


@contextlib.contextmanager
def _instead_of(controller: ControllerProcess) -> Iterator[None]:
    """The session's controller stopped for the block (two controllers would act on the
    same Canaries), and started again after it if it was running."""
    was_running = controller.running()
    if was_running:
        controller.stop()
    try:
        yield
    finally:
        if was_running:
            controller.start()
