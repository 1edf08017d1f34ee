"""The scale benchmark's readings: a rollout from the Canary states its watch saw (when it
ended, how late each analysis step ran against the interval), and the API server's audit
log while it is being written, and the event loop's stalls inside the process."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.scale import report
from benchmarks.scale.list_pages import lists_served, served_between
from benchmarks.scale.looptimer import BUILT, LoopClock, record_reflectors, relist_all
from benchmarks.scale.measure import (
    AuditLog,
    AvailableWatch,
    Seen,
    ended_at,
    initialized_after_available,
    step_lateness,
)
from benchmarks.scale.restart import delays, list_seconds, requests_by_verb
from canary.kube import JSON, Reflector
from canary.kube import resources as r
from tests.unit.kube.fakes import initial_events

#: A rollout with a 60 s interval: detected at 100, steps at 101, 161, 222, 290,
#: promoted at 350; an earlier rollout's states before the change at 100.
HISTORY = [Seen(10, "Progressing", 10), Seen(70, "Progressing", 20), Seen(80, "Succeeded", 0),
           Seen(100.5, "Progressing", 0), Seen(101, "Progressing", 10),
           Seen(161, "Progressing", 20), Seen(222, "Progressing", 30),
           Seen(290, "Progressing", 40), Seen(350, "Promoting", 0),
           Seen(352, "Succeeded", 0), Seen(500, "Progressing", 10), Seen(560, "Progressing", 20)]


def test_the_end_is_the_first_after_the_change() -> None:
    assert ended_at(HISTORY, since=100) == Seen(352, "Succeeded", 0)
    assert ended_at(HISTORY, since=400) is None


def test_lateness_is_the_gap_between_weight_rises_less_the_interval() -> None:
    assert step_lateness(HISTORY, since=100, interval=60) == [0.0, 1.0, 8.0]


def test_a_rollout_still_running_counts_the_steps_seen_so_far() -> None:
    assert step_lateness(HISTORY, since=400, interval=60) == [0.0]


def test_a_held_weight_is_not_a_step() -> None:
    held = [Seen(1, "Progressing", 10), Seen(61, "Progressing", 10),
            Seen(121, "Progressing", 20)]
    assert step_lateness(held, since=0, interval=60) == [60.0]


def test_initialized_is_timed_from_the_primary_first_seen_available() -> None:
    """Per Canary, its first Initialized less the moment its own primary became
    Available; a Canary not yet Initialized, or whose primary never was, is left out."""
    histories = {("ns", "a"): [Seen(5, "Initializing", 0), Seen(12.5, "Initialized", 0),
                               Seen(30, "Initialized", 0)],
                 ("ns", "b"): [Seen(6, "Initializing", 0)],
                 ("ns", "c"): [Seen(9, "Initialized", 0)]}
    available = {("ns", "a-primary"): 11.0, ("ns", "b-primary"): 7.0, ("ns", "a"): 1.0}
    assert initialized_after_available(histories, available) == {("ns", "a"): 1.5}


def test_the_canaries_over_the_target_are_named_slowest_first() -> None:
    seconds = {("ns", "a"): 0.1, ("ns", "b"): 6.4, ("ns", "c"): 2.5, ("ns", "d"): 2.0}
    summary = delays(seconds)
    assert summary["over_2s"] == [(6.4, "ns/b"), (2.5, "ns/c")]
    assert summary["changes"] == 4 and summary["max"] == 6.4


def test_a_deployment_counts_as_available_from_the_first_time_it_is_seen_so() -> None:
    watch = AvailableWatch(kube=None)  # type: ignore[arg-type]  # no watch is run
    def deployment(available: str) -> dict[str, object]:
        return {"metadata": {"namespace": "ns", "name": "a-primary"},
                "status": {"conditions": [{"type": "Progressing", "status": "True"},
                                          {"type": "Available", "status": available}]}}
    watch._seen(deployment("False"))
    assert watch.available == {}
    watch._seen(deployment("True"))
    first = watch.available[("ns", "a-primary")]
    watch._seen(deployment("False"))
    watch._seen(deployment("True"))
    assert watch.available == {("ns", "a-primary"): first}


def test_the_audit_log_is_read_in_whole_lines_while_it_is_written(tmp_path: Path) -> None:
    """A line the API server is still writing is left for the next read."""
    entry = {"user": {"username": "bench"}, "verb": "get", "stage": "ResponseComplete",
             "objectRef": {"resource": "deployments"}}
    line = json.dumps(entry).encode() + b"\n"
    path = tmp_path / "audit.log"
    path.write_bytes(line * 3 + line[:20])
    log = AuditLog(path)
    first = log.mark()
    assert first == 3 * len(line)
    assert log.requests("bench", 0) == {"get deployments": 3}
    path.write_bytes(line * 5)
    assert log.requests("bench", first) == {"get deployments": 2}


def test_an_audit_log_that_shrank_under_its_reader_is_an_error(tmp_path: Path) -> None:
    """A rotated log would make a mark point past its end: said, not read as nothing."""
    path = tmp_path / "audit.log"
    path.write_bytes(b"{}\n" * 10)
    log = AuditLog(path)
    mark = log.mark()
    path.write_bytes(b"{}\n")
    with pytest.raises(RuntimeError, match="shrank"):
        log.requests("bench", mark)


async def test_the_loop_timer_sees_the_loop_held_and_reports_it_whole(tmp_path: Path) -> None:
    clock = LoopClock()
    ticking = asyncio.create_task(clock.tick())
    await asyncio.sleep(0.02)
    time.sleep(0.12)  # noqa: ASYNC251 - a turn of the loop that holds it, on purpose
    await asyncio.sleep(0.02)
    ticking.cancel()
    clock.report(tmp_path / "loop.json")
    report = json.loads((tmp_path / "loop.json").read_text())
    assert report["longest_ms"] >= 100
    assert max(held for _, held in report["over_50_ms"]) == round(clock.longest * 1000)
    clock.report(tmp_path / "loop.json")
    assert json.loads((tmp_path / "loop.json").read_text())[
        "longest_since_last_report_ms"] == 0.0


def test_the_restart_reads_each_caches_first_list_from_the_log(tmp_path: Path) -> None:
    log = tmp_path / "canary.log"
    log.write_text(
        "2026-12-03 23:46:10 [info     ] listed      objects=3 resource=deployments "
        "seconds=0.25\n"
        "2026-12-03 23:46:10 [info     ] caches synced; starting workers canaries=1\n"
        "2026-12-03 23:50:10 [info     ] listed again namespace=None objects=3 "
        "resource=deployments seconds=9.0\n"
        "2026-12-03 23:46:11 [info     ] listed      objects=9 resource=secrets "
        "seconds=1.5\n")
    assert list_seconds(log) == {"deployments": 0.25, "secrets": 1.5}


def test_a_process_api_requests_are_summed_by_verb_across_status_codes() -> None:
    exposition = """# HELP canary_kube_requests_total Requests to the Kubernetes API.
# TYPE canary_kube_requests_total counter
canary_kube_requests_total{code="200",verb="GET"} 2000.0
canary_kube_requests_total{code="404",verb="GET"} 3.0
canary_kube_requests_total{code="200",verb="WATCH"} 12.0
# HELP canary_kube_requests_created Requests to the Kubernetes API.
# TYPE canary_kube_requests_created gauge
canary_kube_requests_created{code="200",verb="GET"} 1.7e9
"""
    assert requests_by_verb(exposition) == {"GET": 2003, "WATCH": 12}


def test_the_lists_the_api_server_served_are_read_by_store_and_resource() -> None:
    """Its own counters, summed over their other labels (the index a list used)."""
    exposition = """# HELP apiserver_cache_list_total Number of lists served from watch cache
# TYPE apiserver_cache_list_total counter
apiserver_cache_list_total{group="",index="",resource="configmaps"} 40
apiserver_cache_list_total{group="",index="f:metadata.name",resource="configmaps"} 2
apiserver_cache_list_total{group="apps",index="",resource="deployments"} 3
# HELP apiserver_storage_list_total Number of LIST requests served from storage
# TYPE apiserver_storage_list_total counter
apiserver_storage_list_total{group="",resource="secrets"} 41
"""
    before = lists_served(exposition)
    assert before == {"watch cache": {"configmaps": 42.0, "deployments": 3.0},
                      "etcd": {"secrets": 41.0}}
    after = lists_served(exposition.replace('resource="secrets"} 41',
                                            'resource="secrets"} 82'))
    assert served_between(before, after) == {"watch cache": {}, "etcd": {"secrets": 41.0}}


class Listed:
    """Answers watch-lists with one ConfigMap per namespace, counting them."""

    def __init__(self) -> None:
        self.lists: list[str | None] = []

    async def watch(self, resource: Any, namespace: str | None, resource_version: str,
                    **options: Any) -> AsyncIterator[JSON]:
        assert options.get("initial_events")
        self.lists.append(namespace)
        for event in initial_events({"items": [{"metadata": {
                "namespace": namespace, "name": "c", "resourceVersion": "1"}}],
                "metadata": {"resourceVersion": "1"}}):
            yield event


async def test_on_sighup_every_cache_built_lists_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``restart.py --relist`` times: the Reflectors the process built are found
    without walking the heap (so the collector's frozen objects stay frozen), and each
    of their namespaces is listed again."""
    monkeypatch.setattr(Reflector, "__init__", Reflector.__init__)  # undone after
    record_reflectors()
    wrapped = Reflector.__init__
    record_reflectors()
    assert Reflector.__init__ is wrapped  # wrapped once, however often it is asked
    api = Listed()
    reflectors = [Reflector(api, r.CONFIG_MAPS, ["a", "b"]),  # type: ignore[arg-type]
                  Reflector(api, r.SECRETS, "c")]  # type: ignore[arg-type]
    assert set(reflectors) <= set(BUILT)
    await relist_all(tmp_path / "relist.json", reflectors)
    assert sorted(api.lists, key=str) == ["a", "b", "c"]
    report = json.loads((tmp_path / "relist.json").read_text())
    assert report["caches"] == 2 and report["objects"] == 3
    assert sum(len(reflector) for reflector in reflectors) == 3


def test_a_controller_cut_short_in_start_up_is_reported_with_what_it_had() -> None:
    """Flagger at 3,000 Canaries: how many it had initialized, then "-" for every
    measure it did not reach, in the table and as gaps in the plot's lines."""
    cut_short = {"ready_seconds": 0.62, "initialized_seconds": None,
                 "initialized_count": 2353, "startup_seconds": 1202.9,
                 "startup_cpu_seconds": 127.29, "startup_api_requests": 154654}
    run = {"canaries": 3000, "sizes": {"namespaces": 300, "deployments": 5000,
                                       "configmaps": 20000, "secrets": 20000},
           "setup": {"seconds": 60, "objects_per_second": 900, "pods_ready_seconds": 160},
           "objects": {}, "objects_after": {}, "controllers": {"flagger": cut_short}}
    table = report.markdown({"runs": [run], "interval": "30s", "flagger": "v1.36.1"})
    assert "not within 1202.9 s: 2,353 were" in table
    assert "| idle RSS, median (MiB) | - |" in table
    assert math.isnan(report.point(lambda c: c["rss_median_mib"], cut_short))
    assert math.isnan(report.point(lambda c: c["rss_median_mib"], None))
    assert report.point(lambda c: c["startup_seconds"], cut_short) == 1202.9
