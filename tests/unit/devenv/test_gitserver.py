"""The local Git server: what a test commits is what a client clones over HTTP."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.errors import NotGitRepository
from dulwich.refs import Ref
from dulwich.repo import Repo

from canary.devenv import components
from canary.devenv.components import GIT_BRANCH
from canary.devenv.gitserver import GitServer, create_repository
from canary.devenv.process import free_port

HEAD = Ref(f"refs/heads/{GIT_BRANCH}".encode())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "git") as running:
        yield running


def clone(url: str, target: Path) -> Repo:
    return porcelain.clone(url, str(target), errstream=io.BytesIO())


def test_commits_are_pushed_and_cloned_over_http(server: GitServer, tmp_path: Path) -> None:
    repository = server.create("apps")
    first = repository.commit({"app/deployment.yaml": "kind: Deployment\n",
                               "README": "apps\n"}, "Add the app")
    second = repository.commit({"app/deployment.yaml": "kind: Deployment # v2\n",
                                "README": None}, "Change the app, drop the README")
    assert repository.url == f"{server.url}/apps.git"
    with clone(repository.url, tmp_path / "clone") as cloned:
        assert cloned.refs[HEAD].decode() == second
        assert cloned[second.encode()].parents == [first.encode()]  # type: ignore[attr-defined]
    assert (tmp_path / "clone" / "app" / "deployment.yaml").read_text() == \
        "kind: Deployment # v2\n"
    assert not (tmp_path / "clone" / "README").exists()


def test_repositories_are_served_side_by_side(server: GitServer, tmp_path: Path) -> None:
    for name in ("one", "two"):
        server.create(name).commit({"name": name}, f"Name {name}")
    for name in ("one", "two"):
        clone(f"{server.url}/{name}.git", tmp_path / name).close()
        assert (tmp_path / name / "name").read_text() == name


def test_an_unknown_repository_is_not_found(server: GitServer, tmp_path: Path) -> None:
    server.create("apps").commit({"a": "a"}, "A")
    with pytest.raises(NotGitRepository):
        clone(f"{server.url}/other.git", tmp_path / "other")


def test_a_revert_commit_restores_the_files_it_changed(server: GitServer,
                                                       tmp_path: Path) -> None:
    repository = server.create("apps")
    repository.commit({"image": "v1\n"}, "v1")
    change = repository.commit({"image": "v2\n", "extra": "x"}, "v2")
    revert = repository.revert(change)
    with clone(repository.url, tmp_path / "clone") as cloned:
        assert cloned.refs[HEAD].decode() == revert
        assert cloned[revert.encode()].message.startswith(b"Revert")  # type: ignore[attr-defined]
    assert (tmp_path / "clone" / "image").read_text() == "v1\n"
    assert not (tmp_path / "clone" / "extra").exists()


def test_the_server_as_a_process_serves_repositories_created_beside_it(tmp_path: Path) -> None:
    """As the local environment runs it: another process, its root shared on disk."""
    root, port = tmp_path / "git", free_port()
    with subprocess.Popen(components.git_server(root, port), stdout=subprocess.PIPE,
                          text=True) as server:
        try:
            assert server.stdout is not None and "serving" in server.stdout.readline()
            url = f"http://127.0.0.1:{port}"
            repository = create_repository(root, url, "demo")
            sha = repository.commit({"apps/canary.yaml": "kind: Canary\n"}, "Add a Canary")
            with clone(repository.url, tmp_path / "clone") as cloned:
                assert cloned.refs[HEAD].decode() == sha
        finally:
            server.terminate()
