"""The controller mirrors the counts its watches keep (restarts, relists) into Prometheus
counters: whatever the order and spacing of the updates, each counter ends at the count."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canary.controller.controller import CountMirror
from canary.observability import ControllerMetrics

#: Per update, the resource and by how much its own count grew (often not at all).
UPDATES = st.lists(st.tuples(st.sampled_from(["canaries", "deployments"]),
                             st.integers(0, 3)), max_size=30)


@given(UPDATES)
def test_a_mirrored_counter_ends_at_the_count_it_follows(updates: list[tuple[str, int]]
                                                          ) -> None:
    metrics = ControllerMetrics()
    relists = CountMirror(metrics.record_watch_relist)
    counts: dict[str, int] = {}
    for resource, grown in updates:
        counts[resource] = counts.get(resource, 0) + grown
        relists.update(resource, counts[resource])
        # A repeat of an unchanged count adds nothing.
        relists.update(resource, counts[resource])
    for resource, count in counts.items():
        value = metrics.registry.get_sample_value("canary_watch_relists_total",
                                                  {"resource": resource})
        assert (value or 0.0) == count
