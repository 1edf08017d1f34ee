"""Fault 6: the API server throttling canary. The rounds of fault 1 (a partition with
etcd compacted during it, so every watch is answered 410 and lists again), with the
controller running as a ServiceAccount that API Priority and Fairness gives a seat or
two and no queue (``throttling.py``): its bursts (the lists and watches after each
heal, the writes of several Canaries deciding at once) are refused with 429 and
``Retry-After``. Rollouts must keep their outcomes, no event may be lost (one refused is
kept and sent again), and the 429s must have happened.
"""

from __future__ import annotations

from canary.devenv import LocalEnvironment
from canary.kube import KubeClient
from tests.e2e.controller_process import ControllerProcess
from tests.faults.cutoff import across_outages, started
from tests.faults.observed import totals
from tests.faults.outages import Cut
from tests.faults.partition import Partition
from tests.faults.uncached import UncachedApiServer


async def test_rollouts_keep_their_outcomes_while_the_api_server_throttles_canary(
        kube: KubeClient, environment: LocalEnvironment, namespace: str,
        other_namespace: str, two_more_namespaces: list[str],
        uncached_apiserver: UncachedApiServer, partition: Partition,
        throttled_controller: ControllerProcess, rounds: int) -> None:
    run = await started(kube, environment, [namespace, other_namespace, *two_more_namespaces],
                        uncached_apiserver, throttled_controller, Cut(partition))
    await across_outages(run, rounds, "throttled")
    answers = await totals(throttled_controller.metrics_url)
    refused, sent = answers["answers:429"], sum(
        value for key, value in answers.items() if key.startswith("answers:"))
    print(f"throttled: {refused} of {sent} requests answered 429; events: "
          f"{answers['events:written']} written, {answers['events:resent']} of them resent, "
          f"{answers['events:dropped']} dropped, {answers['events:refused']} refused for good "
          "(about Canaries of namespaces being deleted)")
    assert refused > 0, "API Priority and Fairness refused nothing: the fault did not happen"
    assert answers["events:dropped"] == 0, "events refused by the throttled API server were lost"
