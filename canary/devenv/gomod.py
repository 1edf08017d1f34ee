"""The helper Go modules the local environment's binaries are built from.

Each helper module (``canary/devenv/gomod/<name>/``) is a go.mod and go.sum and nothing
else: its ``tool`` lines name the commands to build, its go.sum pins every dependency.
``pin`` regenerates them from :mod:`canary.devenv.versions`; ``build`` turns them into
binaries in a cache directory keyed by their content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from canary.devenv import versions
from canary.devenv.errors import InstallFailed, NotInstalled

GOMOD_ROOT = Path(__file__).parent / "gomod"


@dataclass(frozen=True)
class HelperModule:
    """One helper Go module and what it produces."""

    name: str
    version: str
    #: Modules to require at pin time, with their versions.
    requires: tuple[tuple[str, str], ...]
    #: Package paths built into binaries, and the binary each becomes.
    tools: dict[str, str] = field(default_factory=dict)
    #: Extra ``-X`` linker settings (package.variable -> value).
    linker_values: dict[str, str] = field(default_factory=dict)
    #: A required module whose go.mod ``replace`` lines (those naming a module version,
    #: not a local directory) are copied at pin time: Go ignores a dependency's replace
    #: lines, so without them the build would pick other versions than upstream's.
    copy_replaces_of: str | None = None
    #: ``(module, named, built)``: build ``built`` wherever ``named`` is required.
    substitutes: tuple[tuple[str, str, str], ...] = ()

    @property
    def source(self) -> Path:
        return GOMOD_ROOT / self.name

    @property
    def module_path(self) -> str:
        return f"canary.dev/devenv/{self.name}"

    def cache_key(self) -> str:
        """Changes whenever the pinned go.mod/go.sum or the build settings change."""
        digest = hashlib.sha256()
        for name in ("go.mod", "go.sum"):
            path = self.source / name
            digest.update(path.read_bytes() if path.exists() else b"")
        digest.update(json.dumps([self.tools, self.linker_values], sort_keys=True).encode())
        return f"{self.name}-{self.version}-{digest.hexdigest()[:12]}"


def _kubernetes_linker_values(version: str) -> dict[str, str]:
    major, minor = version.lstrip("v").split(".")[:2]
    values: dict[str, str] = {}
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        values |= {f"{package}.gitVersion": version, f"{package}.gitMajor": major,
                   f"{package}.gitMinor": minor, f"{package}.gitTreeState": "clean"}
    return values


KUBERNETES = HelperModule(
    name="kubernetes", version=versions.KUBERNETES,
    requires=(("k8s.io/kubernetes", versions.KUBERNETES),),
    tools={f"k8s.io/kubernetes/cmd/{cmd}": cmd for cmd in versions.KUBERNETES_COMMANDS},
    linker_values=_kubernetes_linker_values(versions.KUBERNETES),
)
ETCD = HelperModule(
    name="etcd", version=versions.ETCD,
    requires=(("go.etcd.io/etcd/server/v3", versions.ETCD),),
    tools={"go.etcd.io/etcd/server/v3": "etcd"},
)
KWOK = HelperModule(
    name="kwok", version=versions.KWOK,
    requires=(("sigs.k8s.io/kwok", versions.KWOK),),
    tools={"sigs.k8s.io/kwok/cmd/kwok": "kwok"},
)
HELM = HelperModule(
    name="helm", version=versions.HELM,
    requires=(("helm.sh/helm/v3", versions.HELM),),
    tools={"helm.sh/helm/v3/cmd/helm": "helm"},
    linker_values={"helm.sh/helm/v3/internal/version.version": versions.HELM},
)
CRDS = HelperModule(
    name="crds", version=f"istio-{versions.ISTIO_API}-gateway-{versions.GATEWAY_API}",
    requires=((versions.ISTIO_CRDS[0], versions.ISTIO_API),
              (versions.GATEWAY_API_CRDS[0], versions.GATEWAY_API)),
)


def _flux_controller(module: str) -> HelperModule:
    """One of Flux's controllers. Its go.mod maps its ``api`` module to ``./api``, which a
    dependency cannot use, so the helper requires ``api`` at the same (tagged) version."""
    binary = module.rsplit("/", 1)[1]
    return HelperModule(
        name=binary, version=versions.FLUX,
        requires=((module, versions.FLUX), (f"{module}/api", versions.FLUX)),
        tools={module: binary}, copy_replaces_of=module,
        substitutes=versions.FLUX_SUBSTITUTES,
    )


FLUX_SOURCE, FLUX_KUSTOMIZE = (_flux_controller(m) for m in versions.FLUX_CONTROLLERS)
FLUX = (FLUX_SOURCE, FLUX_KUSTOMIZE)
ALL = (KUBERNETES, ETCD, KWOK, HELM, CRDS, *FLUX)


def go_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every go command runs in: the local toolchain, no cgo, no workspace."""
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOWORK": "off",
                "GOFLAGS": "-buildvcs=false"})
    env.update(extra or {})
    return env


def find_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise NotInstalled("the Go toolchain (`go`) is not on PATH; the local environment's "
                           "control plane is built from Go modules")
    return go


def run_go(args: list[str], cwd: Path, log: Path | None = None,
           env: dict[str, str] | None = None) -> str:
    """Run a go command; on failure raise :class:`InstallFailed` with its output's tail."""
    cmd = [find_go(), *args]
    result = subprocess.run(cmd, cwd=cwd, env=go_env(env), capture_output=True, text=True,
                            check=False)
    output = result.stdout + result.stderr
    if log is not None:
        with log.open("a") as handle:
            handle.write(f"$ {' '.join(cmd)}\n{output}\n")
    if result.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise InstallFailed(f"`go {' '.join(args)}` failed in {cwd}:\n{tail}")
    return result.stdout


def download_dirs(module: HelperModule, workdir: Path, modules: list[str]) -> dict[str, Path]:
    """Download modules as pinned by ``module``'s go.sum and return their directories."""
    out = run_go(["mod", "download", "-json", *modules], cwd=workdir)
    dirs: dict[str, Path] = {}
    for document in _json_stream(out):
        if document.get("Error"):
            raise InstallFailed(f"downloading {document.get('Path')}: {document['Error']}")
        dirs[str(document["Path"])] = Path(str(document["Dir"]))
    return dirs


def _json_stream(text: str) -> list[dict[str, object]]:
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


def staging_replacements(kubernetes_version: str, workdir: Path) -> list[tuple[str, str]]:
    """``(module, version)`` for every staging module the served k8s.io/kubernetes go.mod maps
    to ``./staging``: each is published as v0.N.M for Kubernetes v1.N.M."""
    info = _json_stream(run_go(["mod", "download", "-json",
                                f"k8s.io/kubernetes@{kubernetes_version}"], cwd=workdir))[0]
    gomod = Path(str(info["GoMod"])).read_text()
    staging_version = "v0." + kubernetes_version.lstrip("v").split(".", 1)[1]
    names = re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", gomod, flags=re.MULTILINE)
    if not names:
        raise InstallFailed(f"no staging replace lines in k8s.io/kubernetes@{kubernetes_version}")
    return [(name, staging_version) for name in sorted(set(names))]


def served_replacements(module: str, version: str, workdir: Path) -> list[str]:
    """``old[@v]=new@v`` for every replace line of ``module``'s served go.mod that names a
    module version; lines pointing at a local directory (``=> ./api``) are left out."""
    info = _json_stream(run_go(["mod", "download", "-json", f"{module}@{version}"],
                               cwd=workdir))[0]
    parsed = _json_stream(run_go(["mod", "edit", "-json", str(info["GoMod"])], cwd=workdir))[0]
    return replace_edits(parsed)


def replace_edits(gomod_json: dict[str, object]) -> list[str]:
    """``go mod edit -replace`` arguments for the module-version replace lines of a go.mod
    as ``go mod edit -json`` prints it."""
    replaces = cast("list[dict[str, dict[str, str]]]", gomod_json.get("Replace") or [])
    edits = []
    for replace in replaces:
        old, new = replace["Old"], replace["New"]
        if not new.get("Version"):
            continue
        source = f"{old['Path']}@{old['Version']}" if old.get("Version") else old["Path"]
        edits.append(f"{source}={new['Path']}@{new['Version']}")
    return edits


def pin(module: HelperModule) -> None:
    """Regenerate ``module``'s go.mod and go.sum from the pinned versions (needs the network)."""
    with tempfile.TemporaryDirectory(prefix=f"canary-pin-{module.name}-") as tmp:
        work = Path(tmp)
        # `go get` raises the go line to what the dependencies need.
        lines = [f"module {module.module_path}", "", "go 1.22", ""]
        if module is KUBERNETES:
            lines.append("replace (")
            lines += [f"\t{name} => {name} {version}"
                      for name, version in staging_replacements(module.version, work)]
            lines.append(")")
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        edits = [f"{path}@{named}={path}@{built}" for path, named, built in module.substitutes]
        if module.copy_replaces_of:
            version = dict(module.requires)[module.copy_replaces_of]
            edits += served_replacements(module.copy_replaces_of, version, work)
        if edits:
            run_go(["mod", "edit", *[f"-replace={edit}" for edit in edits]], cwd=work)
        requirements = [f"{path}@{version}" for path, version in module.requires]
        run_go(["get", *requirements], cwd=work)
        if module.tools:
            # Each tool is named with the pinned version: without it `go get` would move the
            # module to its latest release.
            version = module.requires[0][1]
            run_go(["get", "-tool", *[f"{tool}@{version}" for tool in module.tools]], cwd=work)
            # -e: tests of dependencies may need versions the proxy does not serve; what
            # the build needs is checked next, and fails the pin if anything is missing.
            run_go(["mod", "tidy", "-e"], cwd=work)
            run_go(["list", "-mod=readonly", "-deps", *module.tools], cwd=work)
        module.source.mkdir(parents=True, exist_ok=True)
        for name in ("go.mod", "go.sum"):
            shutil.copyfile(work / name, module.source / name)
