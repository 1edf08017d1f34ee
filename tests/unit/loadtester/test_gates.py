"""Gate state is per Canary, closed by default, and survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.errors import ConfigError
from canary.loadtester import GateStore


def test_gates_are_closed_until_opened_and_scoped_to_one_canary(tmp_path: Path) -> None:
    gates = GateStore(tmp_path / "gates.json")
    assert not gates.is_open("gate", "shop", "web")
    gates.set("gate", "shop", "web", True)
    assert gates.is_open("gate", "shop", "web")
    assert not gates.is_open("gate", "shop", "api")
    assert not gates.is_open("gate", "other", "web")
    assert not gates.is_open("rollback", "shop", "web")
    gates.set("gate", "shop", "web", False)
    assert not gates.is_open("gate", "shop", "web")


def test_acknowledged_changes_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state" / "gates.json"
    first = GateStore(path)
    first.set("gate", "shop", "web", True)
    first.set("rollback", "shop", "api", True)
    second = GateStore(path)
    assert second.is_open("gate", "shop", "web")
    assert second.is_open("rollback", "shop", "api")
    assert not second.is_open("gate", "shop", "api")
    assert [p.name for p in path.parent.iterdir()] == ["gates.json"]  # no temporary left


def test_memory_only_state_is_forgotten() -> None:
    GateStore(None).set("gate", "shop", "web", True)
    assert not GateStore(None).is_open("gate", "shop", "web")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"gate": {}}',
                                     '{"gate": 1, "rollback": {}}'])
def test_a_damaged_state_file_is_an_error_not_closed_gates(tmp_path: Path,
                                                            content: str) -> None:
    path = tmp_path / "gates.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"gates\.json"):
        GateStore(path)
