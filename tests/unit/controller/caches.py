"""A watch cache as the controller's code reads it, holding given objects."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, cast

from canary.controller.caches import Caches
from canary.kube import Reflector


class Cache:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                        for o in objects}

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))

    async def complete(self, namespace: str, name: str, lacks: object = None
                       ) -> dict[str, Any] | None:
        """The objects held are whole: nothing to read from the API."""
        return self.get(namespace, name)

    def learn(self, written: dict[str, Any]) -> None:
        """The objects held are whole: a write's answer adds nothing."""

    def items(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for (ns, _), o in self.objects.items() if namespace in (None, ns)]

    def covers(self, namespace: str) -> bool:
        return True

    def stale_seconds(self) -> float | None:
        return None


def caches(**held: Cache) -> Caches:
    """The controller's caches, holding what is given (by attribute name) and nothing
    else."""
    unknown = set(held) - {f.name for f in fields(Caches)}
    assert not unknown, f"no such cache: {unknown}"
    return Caches(**{f.name: cast(Reflector, held[f.name] if f.name in held else Cache())
                     for f in fields(Caches)})
