"""When a component cannot start, the error names it and shows its log; nothing is left."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from canary.devenv import ComponentFailed, EnvironmentSettings, LocalEnvironment, NotInstalled
from canary.devenv.install import locate


def _fake(tmp_path: Path, name: str, script: str) -> Path:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)
    return path


async def test_a_component_that_exits_is_named_with_its_log(tmp_path: Path) -> None:
    binaries = locate()
    broken = _fake(tmp_path, "kube-scheduler",
                   'echo "scheduler: invalid configuration" >&2; exit 3')
    binaries = dataclasses.replace(binaries, paths={**binaries.paths, "kube-scheduler": broken})
    run_dir = tmp_path / "run"
    with pytest.raises(ComponentFailed) as failed:
        await LocalEnvironment.start(run_dir, EnvironmentSettings(simulator=False),
                                     binaries=binaries)
    assert failed.value.component == "kube-scheduler"
    assert "scheduler: invalid configuration" in str(failed.value)
    assert failed.value.log_path == str(run_dir / "logs" / "kube-scheduler.log")
    # Everything started before the failure was stopped; the logs were kept.
    state = LocalEnvironment.attach(run_dir)
    assert [p.name for p in state.processes if p.alive()] == []
    assert (run_dir / "logs" / "kube-apiserver.log").exists()


async def test_a_component_that_never_gets_ready_times_out_naming_what_it_waited_for(
        tmp_path: Path) -> None:
    binaries = locate()
    silent = _fake(tmp_path, "etcd", "exec sleep 60")
    binaries = dataclasses.replace(binaries, paths={**binaries.paths, "etcd": silent})
    with pytest.raises(ComponentFailed, match=r"etcd: not ready after 2s: /health"):
        await LocalEnvironment.start(tmp_path / "run",
                                     EnvironmentSettings(simulator=False,
                                                         startup_timeout_seconds=2),
                                     binaries=binaries)


def test_missing_binaries_are_listed_with_the_command_that_installs_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBEBUILDER_ASSETS", raising=False)
    with pytest.raises(NotInstalled, match=r"kube-apiserver.*canary devenv install"):
        locate(tmp_path / "empty-cache")


def test_kubebuilder_assets_are_used_when_present(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("kube-apiserver", "etcd", "kubectl"):
        _fake(assets, name, "exit 0")
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(assets))
    binaries = locate()
    assert {binaries[n] for n in ("kube-apiserver", "etcd", "kubectl")} == {
        assets / "kube-apiserver", assets / "etcd", assets / "kubectl"}
    assert binaries["kube-scheduler"].parent != assets
