"""Fault 5: the control plane restarted under the controller. Rollouts keep their
outcomes when the controller's API server is stopped and started again, and when the
cluster's etcd is (every API server then fails its requests, and nothing can be written).

The rounds are those of faults 1 and 2 (:mod:`tests.faults.cutoff`), with the outage
a restart: a random 1-6 s from the stop to the start, after which the component takes
its own few seconds to answer again. No compaction: the watches resume where they were.
"""

from __future__ import annotations

import pytest

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.controller_process import ControllerProcess
from tests.faults.cutoff import across_outages, started
from tests.faults.outages import ApiServerRestart, EtcdRestart, Outage
from tests.faults.uncached import UncachedApiServer


@pytest.mark.parametrize("restarted", ["apiserver", "etcd"])
async def test_rollouts_keep_their_outcomes_across_a_restart(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        uncached_apiserver: UncachedApiServer,
        partitioned_controller: ControllerProcess, rounds: int, restarted: str) -> None:
    outage: Outage = (ApiServerRestart(environment, uncached_apiserver)
                      if restarted == "apiserver" else
                      EtcdRestart(environment, uncached_apiserver))
    run = await started(kube, environment, [namespace, other_namespace, *two_more_namespaces],
                        uncached_apiserver, partitioned_controller, outage)
    run.compact = False
    await across_outages(run, rounds, f"{restarted}-restart")
