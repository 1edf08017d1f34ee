"""Faults 1 and 2: the controller cut off its API server. Rollouts keep their outcomes
when the controller's watches are answered 410 Gone and it has to list again (fault 1),
and when the API server is unreachable for a whole minute (fault 2).

The controller reaches an API server without a watch cache (so watches are served from
etcd) through a partition. The rounds (:mod:`tests.faults.cutoff`) cut it for a random
1-6 s during which etcd is compacted past every resourceVersion the controller has seen
(its watches then resume from compacted resourceVersions, are answered 410, and list
again), or for 60 s without compaction.
"""

from __future__ import annotations

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.controller_process import ControllerProcess
from tests.faults.cutoff import LONG_GAP, across_outages, started
from tests.faults.outages import Cut
from tests.faults.partition import Partition
from tests.faults.uncached import UncachedApiServer

#: The minute-long outage runs a fifth of the other faults' rounds, at least one.
LONG_ROUNDS_DIVISOR = 5


async def test_rollouts_keep_their_outcomes_across_a_compacted_watch_history(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        uncached_apiserver: UncachedApiServer, partition: Partition,
        partitioned_controller: ControllerProcess, rounds: int) -> None:
    run = await started(kube, environment, [namespace, other_namespace, *two_more_namespaces],
                        uncached_apiserver, partitioned_controller, Cut(partition))
    await across_outages(run, rounds, "watch-gone")


async def test_rollouts_keep_their_outcomes_across_a_minute_without_the_api_server(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        uncached_apiserver: UncachedApiServer, partition: Partition,
        partitioned_controller: ControllerProcess, rounds: int) -> None:
    """The same rollouts, with the API server unreachable for a minute and no compaction:
    the controller keeps running, and picks up where it was when it can reach it again.
    The partition is as long as the progress deadline, so a deadline decided on the cache
    as it was before the partition (a canary scaled up just before it, made ready by the
    Deployment controller meanwhile) would roll a healthy revision back. A fifth of the
    other faults' rounds, at least one."""
    long_rounds = max(1, rounds // LONG_ROUNDS_DIVISOR)
    run = await started(kube, environment, [namespace, other_namespace, *two_more_namespaces],
                        uncached_apiserver, partitioned_controller, Cut(partition))
    run.gap, run.compact = LONG_GAP, False
    await across_outages(run, long_rounds, "unreachable-60s")


