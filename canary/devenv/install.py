"""``canary devenv install``: build or fetch every piece of the local environment, once.

Everything lands in a cache directory outside the repository, keyed by the pinned
versions, so a second run costs nothing and a version bump rebuilds only what changed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from canary.devenv import gomod, versions
from canary.devenv.errors import InstallFailed, NotInstalled

#: Seconds between "still building" lines during a long build.
HEARTBEAT_SECONDS = 30.0


def cache_root() -> Path:
    """``$CANARY_DEVENV_CACHE``, else ``$XDG_CACHE_HOME/canary-devenv``, else ``~/.cache/...``."""
    explicit = os.environ.get("CANARY_DEVENV_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "canary-devenv"


def kubebuilder_assets() -> dict[str, Path]:
    """Binaries a user already has in ``$KUBEBUILDER_ASSETS`` (kube-apiserver, etcd, kubectl)."""
    root = os.environ.get("KUBEBUILDER_ASSETS")
    if not root:
        return {}
    found = {}
    for name in ("kube-apiserver", "etcd", "kubectl"):
        path = Path(root) / name
        if path.is_file() and os.access(path, os.X_OK):
            found[name] = path
    return found


@dataclass(frozen=True)
class Binaries:
    """Where each program of the environment is, and where the CRD manifests are."""

    paths: dict[str, Path]
    crd_files: tuple[Path, ...]
    #: Flux's CRDs, applied only when an environment runs Flux's controllers.
    flux_crd_files: tuple[Path, ...] = ()

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


FLUX_BINARIES = tuple(binary for module in gomod.FLUX for binary in module.tools.values())
REQUIRED = ("etcd", *versions.KUBERNETES_COMMANDS, "kwok", "helm", "prometheus",
            *FLUX_BINARIES)


def find_prometheus() -> Path | None:
    explicit = os.environ.get("CANARY_PROMETHEUS")
    if explicit:
        return Path(explicit)
    found = shutil.which("prometheus")
    return Path(found) if found else None


def _module_bin(module: gomod.HelperModule, root: Path) -> Path:
    return root / module.cache_key() / "bin"


def _crd_dir(root: Path, module: gomod.HelperModule = gomod.CRDS) -> Path:
    return root / module.cache_key() / "crds"


def _crds_in(directory: Path) -> tuple[Path, ...]:
    return tuple(sorted(directory.glob("*.yaml"))) if directory.is_dir() else ()


def locate(root: Path | None = None) -> Binaries:
    """Find every binary; raise :class:`NotInstalled` listing whatever is missing."""
    root = root or cache_root()
    paths: dict[str, Path] = {}
    for module in (gomod.KUBERNETES, gomod.ETCD, gomod.KWOK, gomod.HELM, *gomod.FLUX):
        for binary in module.tools.values():
            paths[binary] = _module_bin(module, root) / binary
    paths.update(kubebuilder_assets())
    prometheus = find_prometheus()
    if prometheus:
        paths["prometheus"] = prometheus
    missing = [name for name in REQUIRED if name not in paths or not paths[name].exists()]
    crds = _crds_in(_crd_dir(root))
    if not crds:
        missing.append("Istio and Gateway API CRDs")
    flux_crds = tuple(path for module in gomod.FLUX for path in _crds_in(_crd_dir(root, module)))
    if not all(_crds_in(_crd_dir(root, module)) for module in gomod.FLUX):
        missing.append("Flux's CRDs")
    if missing:
        raise NotInstalled(
            f"not installed: {', '.join(missing)} (looked in {root}); "
            "run `canary devenv install`")
    return Binaries(paths=paths, crd_files=crds, flux_crd_files=flux_crds)


class Progress:
    """Numbered progress lines with the time each step took."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream, self.step = total, stream, 0

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def run(self, title: str, action: Callable[[], str]) -> None:
        self.step += 1
        self.say(f"[{self.step}/{self.total}] {title} ...")
        started = time.monotonic()
        detail = action()
        took = _duration(time.monotonic() - started)
        self.say(f"[{self.step}/{self.total}] {title}: {detail} ({took})")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


def _source_dir(module: gomod.HelperModule, root: Path) -> Path:
    """The cache's copy of ``module``'s go.mod and go.sum, where its go commands run."""
    src = root / module.cache_key() / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("go.mod", "go.sum"):
        shutil.copyfile(module.source / name, src / name)
    return src


def _build(module: gomod.HelperModule, root: Path, progress: Progress,
           skip: set[str]) -> str:
    bin_dir = _module_bin(module, root)
    wanted = {pkg: name for pkg, name in module.tools.items()
              if name not in skip and not (bin_dir / name).exists()}
    if not wanted:
        return "cached" if len(skip) < len(module.tools) else "from KUBEBUILDER_ASSETS"
    build_dir = root / module.cache_key()
    src = _source_dir(module, root)
    tmp_bin = build_dir / "bin.partial"
    shutil.rmtree(tmp_bin, ignore_errors=True)
    tmp_bin.mkdir()
    log = build_dir / "build.log"
    ldflags = " ".join(["-s", "-w", *[f"-X {k}={v}" for k, v in module.linker_values.items()]])
    output = str(tmp_bin / next(iter(wanted.values()))) if len(wanted) == 1 else f"{tmp_bin}/"
    cmd = [gomod.find_go(), "build", "-v", "-trimpath", "-mod=readonly", "-ldflags", ldflags,
           "-o", output, *wanted]
    with log.open("w") as handle:
        handle.write(f"$ {' '.join(cmd)}\n")
        handle.flush()
        process = subprocess.Popen(cmd, cwd=src, env=gomod.go_env(), stdout=handle,
                                   stderr=subprocess.STDOUT)
        started = time.monotonic()
        stop = threading.Event()

        def heartbeat() -> None:
            while not stop.wait(HEARTBEAT_SECONDS):
                lines = sum(1 for _ in log.open(errors="replace")) - 1
                progress.say(f"      still building {module.name}: {lines} packages so far, "
                             f"{_duration(time.monotonic() - started)} (log: {log})")

        beat = threading.Thread(target=heartbeat, daemon=True)
        beat.start()
        try:
            code = process.wait()
        finally:
            stop.set()
            beat.join()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-15:])
        raise InstallFailed(f"building {module.name} failed (log: {log}):\n{tail}")
    bin_dir.mkdir(exist_ok=True)
    for name in wanted.values():
        (tmp_bin / name).replace(bin_dir / name)
    tmp_bin.rmdir()
    return f"built {', '.join(sorted(wanted.values()))}"


def _fetch_crds(root: Path) -> str:
    target = _crd_dir(root)
    if target.is_dir() and any(target.glob("*.yaml")):
        return "cached"
    work = _source_dir(gomod.CRDS, root)
    dirs = gomod.download_dirs(gomod.CRDS, work, [versions.ISTIO_CRDS[0],
                                                  versions.GATEWAY_API_CRDS[0]])
    partial = target.with_name("crds.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    istio_module, istio_file = versions.ISTIO_CRDS
    shutil.copyfile(dirs[istio_module] / istio_file, partial / "istio.yaml")
    gateway_module, gateway_dir = versions.GATEWAY_API_CRDS
    gateway_files = sorted((dirs[gateway_module] / gateway_dir).glob("*.yaml"))
    if not gateway_files:
        raise InstallFailed(f"no CRDs in {dirs[gateway_module] / gateway_dir}")
    for path in gateway_files:
        shutil.copyfile(path, partial / f"gateway-api-{path.name}")
    for path in partial.iterdir():
        path.chmod(0o644)
    partial.replace(target)
    count = 1 + len(gateway_files)
    return f"Istio {versions.ISTIO_API}, Gateway API {versions.GATEWAY_API} ({count} files)"


def _flux_crds(module: gomod.HelperModule, root: Path) -> int:
    """Copy ``module``'s CRDs (``config/crd/bases``) next to its binary; returns how many."""
    target = _crd_dir(root, module)
    if _crds_in(target):
        return len(_crds_in(target))
    controller = module.requires[0][0]
    module_dir = gomod.download_dirs(module, _source_dir(module, root), [controller])[controller]
    directory = module_dir / versions.FLUX_CRDS_DIR
    files = _crds_in(directory)
    if not files:
        raise InstallFailed(f"no CRDs in {directory}")
    partial = target.with_name("crds.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for path in files:
        shutil.copyfile(path, partial / path.name)
        (partial / path.name).chmod(0o644)
    partial.replace(target)
    return len(files)


def _build_flux(root: Path, progress: Progress) -> str:
    """Build source-controller and kustomize-controller, each in its own helper module (so
    each gets exactly the dependency versions its release was tested with), and take their
    CRDs from the same downloaded modules."""
    details = []
    for module in gomod.FLUX:
        built = _build(module, root, progress, set())
        details.append(f"{module.name}: {built}, {_flux_crds(module, root)} CRDs")
    return "; ".join(details)


def install(stream: TextIO = sys.stderr, root: Path | None = None) -> Binaries:
    """Build and fetch everything that is missing; print a line per step with its time."""
    root = root or cache_root()
    root.mkdir(parents=True, exist_ok=True)
    assets = set(kubebuilder_assets())
    progress = Progress(7, stream)
    started = time.monotonic()
    progress.say(f"installing the local environment into {root}")

    def check_tools() -> str:
        go = gomod.run_go(["version"], cwd=root).strip()
        prometheus = find_prometheus()
        if prometheus is None:
            raise NotInstalled("Prometheus is not on PATH: install Debian's `prometheus` "
                               "package (apt-get install prometheus) or set CANARY_PROMETHEUS")
        note = f"; using {', '.join(sorted(assets))} from KUBEBUILDER_ASSETS" if assets else ""
        return f"{go}; prometheus at {prometheus}{note}"

    progress.run("toolchain and Prometheus", check_tools)
    progress.run(f"kubernetes {versions.KUBERNETES}",
                 lambda: _build(gomod.KUBERNETES, root, progress, assets))
    progress.run(f"etcd {versions.ETCD}", lambda: _build(gomod.ETCD, root, progress, assets))
    progress.run(f"kwok {versions.KWOK}", lambda: _build(gomod.KWOK, root, progress, set()))
    progress.run(f"helm {versions.HELM}", lambda: _build(gomod.HELM, root, progress, set()))
    progress.run("CRDs", lambda: _fetch_crds(root))
    progress.run(f"flux {versions.FLUX}", lambda: _build_flux(root, progress))
    binaries = locate(root)
    progress.say(f"installed in {_duration(time.monotonic() - started)}")
    return binaries
