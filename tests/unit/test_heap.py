"""What canary holds for good (imports, caches) is kept out of the cycle collector's
scans, and garbage is collected before it is set aside."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

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

