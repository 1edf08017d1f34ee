"""The e2e tier's wait: "not yet" waits, a bug in the test fails at once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from canary.kube.errors import NotFound
from tests.e2e.waiting import wait_until


async def test_a_field_not_set_yet_is_waited_for() -> None:
    objects: list[dict[str, Any]] = [{}, {"status": {}}, {"status": {"phase": "Ready"}}]

    async def fetch() -> dict[str, Any]:
        return objects.pop(0) if len(objects) > 1 else objects[0]

    found = await wait_until(fetch, lambda o: o["status"]["phase"] == "Ready", "the phase",
                             timeout=5, interval=0.01)
    assert found["status"]["phase"] == "Ready"


async def test_an_object_not_created_yet_is_waited_for() -> None:
    calls = 0

    async def fetch() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise NotFound(404, "NotFound", "not yet")
        return calls

    assert await wait_until(fetch, lambda n: n == 3, "the object", timeout=5,
                            interval=0.01) == 3


async def test_a_typo_in_the_predicate_fails_at_once() -> None:
    async def fetch() -> dict[str, Any]:
        return {"status": {}}

    started = time.monotonic()
    with pytest.raises(AttributeError):
        await wait_until(fetch, lambda o: o.stauts, "a typo", timeout=30, interval=0.01)  # type: ignore[attr-defined]
    assert time.monotonic() - started < 5
