"""A watch cache as the controller's code reads it, holding given objects."""

from __future__ import annotations

from typing import Any


class Cache:
    def __init__(self, *objects: dict[str, Any]) -> None:
        self.objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o
                        for o in objects}

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return [o for (ns, _), o in self.objects.items() if namespace in (None, ns)]

    def covers(self, namespace: str) -> bool:
        return True
