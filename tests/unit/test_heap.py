"""What canary holds for good (imports, caches) is kept out of the cycle collector's
scans, and garbage is collected before it is set aside."""

from __future__ import annotations

import asyncio
import gc
import random
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary import heap


class Node:
    """An object that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def frozen_afterwards() -> Iterator[None]:
    yield
    gc.enable()
    gc.unfreeze()


def scanned(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


@pytest.mark.usefixtures("frozen_afterwards")
def test_what_survives_is_no_longer_scanned_by_the_collector() -> None:
    cached = {"metadata": {"name": "a", "labels": {"app": "a"}}, "items": [[1], [2]]}
    assert scanned(cached)
    heap.freeze_survivors()
    assert not scanned(cached) and not scanned(cached["items"])
    made_after = [cached]
    assert scanned(made_after)


@pytest.mark.usefixtures("frozen_afterwards")
def test_cycles_already_unreachable_are_collected_not_set_aside() -> None:
    first, second = Node(), Node()
    first.other, second.other = second, first
    gone = weakref.ref(first)
    del first, second
    heap.freeze_survivors()
    assert gone() is None


@pytest.mark.usefixtures("frozen_afterwards")
async def test_collection_is_off_while_the_first_lists_fill_the_caches() -> None:
    """No pass of the collector scans the caches half filled: each list's survivors
    are set aside as it ends, and once every cache has listed the collector runs again."""
    first_lists = heap.FirstLists()
    first_lists.hold()
    assert not gc.isenabled()
    cached = {"metadata": {"name": "a"}}
    first_lists.listed()  # one cache listed, others still listing
    assert not scanned(cached) and not gc.isenabled()
    listed_next = {"metadata": {"name": "b"}}
    first_lists.synced()
    assert gc.isenabled()
    assert not scanned(listed_next)


@pytest.mark.usefixtures("frozen_afterwards")
async def test_a_start_that_never_lists_collects_again_after_the_limit() -> None:
    first_lists = heap.FirstLists(limit=0.01)
    first_lists.hold()
    await asyncio.sleep(0.05)
    assert gc.isenabled() and not first_lists.held


@pytest.mark.usefixtures("frozen_afterwards")
async def test_a_controller_stopped_before_its_caches_listed_leaves_collection_on() -> None:
    with pytest.raises(RuntimeError), heap.FirstLists():
        assert not gc.isenabled()
        raise RuntimeError("the controller failed while listing")
    assert gc.isenabled()


@pytest.mark.usefixtures("frozen_afterwards")
async def test_after_the_first_lists_each_list_sets_its_survivors_aside() -> None:
    first_lists = heap.FirstLists()
    first_lists.hold()
    first_lists.synced()
    listed_again = {"metadata": {"name": "b"}}
    assert scanned(listed_again)
    first_lists.listed()
    assert not scanned(listed_again) and gc.isenabled()


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads /proc")
def test_memory_freed_between_live_objects_goes_back_to_the_system() -> None:
    """A burst's answers freed while what it cached stays leaves free pages all through
    the C allocator's heap, which keeps them; given back, the resident set shrinks."""
    burst = [bytes(random.Random(i).randint(2_000, 16_000)) for i in range(24_000)]
    kept = burst[::4]
    del burst
    before = resident_mib()
    assert heap.give_back()
    assert before - resident_mib() > 50, (before, resident_mib())
    assert len(kept) == 6_000
