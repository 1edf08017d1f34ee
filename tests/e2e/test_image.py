"""The container image, as far as it can be checked without a container engine: the
Dockerfile's shape, and its install steps reproduced in a fresh venv whose entrypoint,
run as the image's non-root user, reaches the API server and answers its probes."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from canary.devenv import LocalEnvironment
from canary.devenv.process import free_port

ROOT = Path(__file__).parents[2]
USER = 10001


def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, per stage: (INSTRUCTION, arguments)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    result: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            result.append([])
        if result:
            result[-1].append((instruction.upper(), arguments.strip()))
    return result


def test_the_dockerfile_builds_in_one_stage_and_runs_slim_and_unprivileged() -> None:
    build, final = stages()
    assert "AS build" in build[0][1]
    instructions = dict(final)
    assert instructions["USER"] == f"{USER}:{USER}"
    assert instructions["ENTRYPOINT"] == '["canary"]'
    assert instructions["STOPSIGNAL"] == "SIGTERM"
    assert "HEALTHCHECK" not in instructions
    labels = " ".join(arguments for name, arguments in final if name == "LABEL")
    for key in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{key}=" in labels
    final_runs = " ".join(arguments for name, arguments in final if name == "RUN")
    for tool in ("apt-get", "gcc", "build-essential", "pip wheel"):
        assert tool not in final_runs, f"the final stage must not use {tool}"
    assert "--no-index" in final_runs  # only the wheels made by the build stage


@pytest.fixture(scope="module")
def image_root() -> Iterator[Path]:
    """The build stage's wheels and the final stage's venv, made by the Dockerfile's own
    commands (paths mapped into a directory the non-root user can read)."""
    root = Path(tempfile.mkdtemp(prefix="canary-image-"))
    root.chmod(0o755)
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "canary", source / "canary",
                    ignore=shutil.ignore_patterns("__pycache__"))
    build, final = stages()
    paths = {"/wheels": str(root / "wheels"), "/opt/canary": str(root / "opt" / "canary")}
    for stage, cwd in ((build, source), (final, root)):
        for name, arguments in stage:
            if name != "RUN":
                continue
            command = arguments.split("--mount=", 1)[-1].split(" ", 1)[1] \
                if arguments.startswith("--mount=") else arguments
            if "useradd" in command or "groupadd" in command:
                continue  # the image's user: here, a bare uid
            for path, mapped in paths.items():
                command = command.replace(path, mapped)
            # pip's download cache is allowed here (the image build uses none), so the
            # test does not fetch every dependency again.
            command = command.replace("--no-cache-dir ", "")
            command = command.replace("pip wheel", f"{shlex.quote(sys.executable)} -m pip wheel")
            command = command.replace("python -m venv", f"{shlex.quote(sys.executable)} -m venv")
            result = subprocess.run(command, shell=True, cwd=cwd, capture_output=True,
                                    text=True, check=False)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_installed_entrypoint_runs_as_the_image_user_and_serves_probes(
        image_root: Path, environment: LocalEnvironment) -> None:
    venv = image_root / "opt" / "canary"
    assert not (venv / "bin" / "pip").exists(), "pip is removed from the final image"
    kubeconfig = image_root / "kubeconfig"
    shutil.copy(environment.kubeconfig, kubeconfig)
    kubeconfig.chmod(0o644)
    probes, metrics = free_port(), free_port()
    log = image_root / "controller.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--clear-groups",
             str(venv / "bin" / "canary"), "run", "--kubeconfig", str(kubeconfig),
             "--metrics-server", environment.prometheus_url,
             "--health-probe-bind-address", f"127.0.0.1:{probes}",
             "--metrics-bind-address", f"127.0.0.1:{metrics}",
             # Watch one empty namespace: this process must not act on other tests' canaries.
             "--namespace", "canary-image-test"],
            stdout=out, stderr=subprocess.STDOUT, cwd="/",
            env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": "/nonexistent",
                 "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{probes}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"never ready:\n{log.read_text()}"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{probes}/healthz", timeout=2).status_code == 200
        assert "canary_" in httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).text
        owner = subprocess.run(["ps", "-o", "uid=", "-p", str(process.pid)],
                               capture_output=True, text=True, check=True).stdout.strip()
        assert owner == str(USER)
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0, log.read_text()
