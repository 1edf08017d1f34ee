"""Session-wide checks shared by the tiers, and the local environment's fixtures."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# Registered here, above both tiers that use them, so that one session starts one
# environment (a fixture defined in two conftests would be two fixtures).
from tests.e2e.fixtures import (  # noqa: F401
    controller,
    environment,
    flux,
    git_repository,
    kube,
    namespace,
    other_namespace,
    running_controller,
    two_more_namespaces,
)
from tests.e2e.gates import gates  # noqa: F401

# A test's verdict must not depend on how busy the machine is: no per-example deadline
# and no health check on how fast examples are generated (both measure wall time).
settings.register_profile("canary", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("canary")

_e2e_passed = 0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/e2e and tests/faults needs the local environment: mark it
    ``e2e``; the fault tier is also marked ``faults``."""
    for item in items:
        if "e2e" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
        if "faults" in item.path.parts:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.faults)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _e2e_passed
    if report.when == "call" and report.passed and "e2e" in report.keywords:
        _e2e_passed += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With CANARY_REQUIRE_E2E=1 (as in CI) a run in which no e2e test passed fails."""
    if os.environ.get("CANARY_REQUIRE_E2E") == "1" and _e2e_passed == 0:
        print("\nCANARY_REQUIRE_E2E=1 but no end-to-end test passed: the e2e tier did not run")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
