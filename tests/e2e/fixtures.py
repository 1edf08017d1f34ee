"""One local environment per test session, one namespace per test.

Shared by the end-to-end tier and the fault tier (tests/faults): tests/conftest.py
registers these fixtures once, so a session running both tiers starts one environment.

The environment is real: kube-apiserver, etcd, controller manager, scheduler, kwok,
Prometheus and the traffic simulator. If it cannot start, every e2e test fails (it is
never skipped): run ``canary devenv install`` first, or ``make test``, which does.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from canary.devenv import DevenvError, EnvironmentSettings, LocalEnvironment
from canary.devenv.gitserver import Repository, create_repository
from canary.kube import KubeClient, NotFound
from canary.kube import resources as r
from tests.e2e.controller_process import ControllerProcess


@pytest.fixture(scope="session")
def environment(request: pytest.FixtureRequest) -> Iterator[LocalEnvironment]:
    import asyncio

    run_dir = Path(tempfile.mkdtemp(prefix="canary-e2e-"))
    try:
        env = asyncio.run(LocalEnvironment.start(
            run_dir, EnvironmentSettings(scrape_interval_seconds=1.0, seed=42)))
    except DevenvError as exc:
        pytest.fail(f"the local environment did not start:\n{exc}", pytrace=False)
    yield env
    failed = request.session.testsfailed > 0 or os.environ.get("CANARY_KEEP_ENV") == "1"
    env.stop(remove=not failed)
    if failed:
        print(f"\nlocal environment logs kept in {run_dir / 'logs'}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kube(environment: LocalEnvironment) -> AsyncIterator[KubeClient]:
    async with await environment.client() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def namespace(kube: KubeClient, environment: LocalEnvironment,
                    request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A fresh namespace named after the test, deleted afterwards with the traffic the test
    sent into it."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    async with fresh_namespace(kube, environment, f"{stem}-{secrets.token_hex(3)}") as name:
        yield name


@pytest_asyncio.fixture(loop_scope="session")
async def other_namespace(kube: KubeClient, environment: LocalEnvironment,
                          namespace: str) -> AsyncIterator[str]:
    """A second fresh namespace, for two applications side by side in one test."""
    async with fresh_namespace(kube, environment,
                                f"{namespace[:50]}-{secrets.token_hex(2)}") as name:
        yield name


@pytest_asyncio.fixture(loop_scope="session")
async def two_more_namespaces(kube: KubeClient, environment: LocalEnvironment,
                              namespace: str) -> AsyncIterator[list[str]]:
    """Two more fresh namespaces, for four applications side by side in one test."""
    async with fresh_namespace(kube, environment,
                                f"{namespace[:50]}-{secrets.token_hex(2)}") as third, \
            fresh_namespace(kube, environment,
                             f"{namespace[:50]}-{secrets.token_hex(2)}") as fourth:
        yield [third, fourth]


@contextlib.asynccontextmanager
async def fresh_namespace(kube: KubeClient, environment: LocalEnvironment,
                           name: str) -> AsyncIterator[str]:
    await kube.create(r.NAMESPACES, {"metadata": {"name": name}})
    try:
        yield name
    finally:
        await environment.stop_traffic(name)
        with contextlib.suppress(NotFound):
            await kube.delete(r.NAMESPACES, name)


@pytest.fixture(scope="session")
def controller(environment: LocalEnvironment) -> Iterator[ControllerProcess]:
    """The controller, running for the whole session (a test may kill and restart it)."""
    process = ControllerProcess(environment, environment.run_dir / "logs" / "controller.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def running_controller(controller: ControllerProcess) -> ControllerProcess:
    if not controller.running():
        controller.start()
    return controller


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def flux(environment: LocalEnvironment) -> LocalEnvironment:
    """Flux's source-controller and kustomize-controller, started in the session's
    environment by the first test that asks for them (only the GitOps tests do); they stop
    with the environment."""
    try:
        await environment.start_flux()
    except DevenvError as exc:
        pytest.fail(f"Flux's controllers did not start:\n{exc}", pytrace=False)
    return environment


@pytest.fixture(scope="session")
def git_repository(flux: LocalEnvironment) -> Callable[[str], Repository]:
    """Makes a repository ``name`` on the Git server the environment runs beside Flux,
    with a working copy to commit from."""
    assert flux.git_url is not None, "the environment runs Flux without its Git server"
    url = flux.git_url
    return lambda name: create_repository(flux.run_dir / "git", url, name)
