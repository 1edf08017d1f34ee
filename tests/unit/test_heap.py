"""What canary holds for good (imports, caches) is kept out of the cycle collector's
scans, and garbage is collected before it is set aside."""

from __future__ import annotations

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
