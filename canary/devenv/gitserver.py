"""A Git server over smart HTTP on loopback: the Git host of GitOps in the local environment.

Flux's source-controller clones from it as from any Git host; tests and the demo change a
working copy, commit and push to it, as a person would. It is dulwich's WSGI application
(``dulwich.web``) behind a threading WSGI server, run in a thread (:class:`GitServer`) or as
a process (``python -m canary.devenv.gitserver --root DIR --port PORT``).
"""

from __future__ import annotations

import argparse
import io
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from types import TracebackType
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import make_server

from dulwich import porcelain
from dulwich.protocol import CAPABILITY_THIN_PACK
from dulwich.refs import HEADREF, Ref
from dulwich.repo import Repo
from dulwich.server import DEFAULT_HANDLERS, BackendRepo, FileSystemBackend, UploadPackHandler
from dulwich.web import WSGIRequestHandlerLogger, WSGIServerLogger, make_wsgi_chain

from canary.devenv.components import GIT_BRANCH, LOOPBACK

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

AUTHOR = b"canary devenv <devenv@canary.invalid>"
_REF = Ref(f"refs/heads/{GIT_BRANCH}".encode())


class _ThreadingServer(ThreadingMixIn, WSGIServerLogger):
    """One thread a request: a clone by Flux and a push by a test may overlap."""

    daemon_threads = True


class _Repositories(FileSystemBackend):
    """The bare repositories under a directory, found by URL path. A URL path starts with
    ``/``, which :class:`FileSystemBackend` alone would read as an absolute file path.

    Each repository opened for a request is closed when its response is over (dulwich's
    handlers leave that to the backend), so no pack file stays open."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self._opened = threading.local()

    def open_repository(self, path: str | bytes) -> BackendRepo:
        # The receive-pack handler passes the path as bytes.
        repo = super().open_repository(os.fsdecode(path).lstrip("/"))
        self._opened.repos = [*getattr(self._opened, "repos", []), repo]
        return repo

    def closing(self, app: WSGIApplication) -> WSGIApplication:
        """``app``, closing the repositories each request opened once it is answered."""
        def wrapped(environ: WSGIEnvironment, start_response: StartResponse
                    ) -> Iterator[bytes]:
            self._opened.repos = []
            try:
                yield from app(environ, start_response)
            finally:
                for repo in self._opened.repos:
                    repo.close()
                self._opened.repos = []
        return wrapped


class _UploadPack(UploadPackHandler):
    """Clones and fetches. dulwich requires a client to accept thin packs, which go-git
    (Flux's Git client) never asks for; the packs sent here are never thin (deltas only
    against objects in the same pack), so the requirement is dropped."""

    @classmethod
    def required_capabilities(cls) -> tuple[bytes, ...]:
        return tuple(c for c in super().required_capabilities() if c != CAPABILITY_THIN_PACK)


class GitServer:
    """Serves every bare repository under ``root/repos`` at ``http://127.0.0.1:PORT/NAME.git``.

    Use as a context manager, or :meth:`start` and :meth:`stop`.
    """

    def __init__(self, root: Path, port: int = 0) -> None:
        self.root = root
        self.repos = root / "repos"
        self.repos.mkdir(parents=True, exist_ok=True)
        backend = _Repositories(str(self.repos))
        handlers: dict[bytes, Callable[..., Any]] = {**DEFAULT_HANDLERS,
                                                     b"git-upload-pack": _UploadPack}
        app = backend.closing(make_wsgi_chain(backend, handlers=handlers))
        self._server = make_server(LOOPBACK, port, app, server_class=_ThreadingServer,
                                   handler_class=WSGIRequestHandlerLogger)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_port}"

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` is called from another."""
        self._server.serve_forever()

    def start(self) -> GitServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.serve_forever, name="git-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> GitServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def create(self, name: str) -> Repository:
        """A new, empty repository ``name`` and a working copy of it to commit from."""
        return create_repository(self.root, self.url, name)


def create_repository(root: Path, url: str, name: str) -> Repository:
    """A new, empty repository ``name`` of the server serving ``root`` at ``url`` (in this
    process or another: the local environment's), and a working copy to commit from."""
    bare = root / "repos" / f"{name}.git"
    Repo.init_bare(str(bare), mkdir=True).refs.set_symbolic_ref(HEADREF, _REF)
    return Repository(f"{url}/{name}.git", root / "work" / name)


class Repository:
    """A working copy whose every commit is pushed to ``url``'s branch,
    :data:`~canary.devenv.components.GIT_BRANCH`."""

    def __init__(self, url: str, path: Path) -> None:
        self.url, self.path = url, path
        path.mkdir(parents=True)
        Repo.init(str(path)).refs.set_symbolic_ref(HEADREF, _REF)

    def commit(self, files: Mapping[str, str | None], message: str) -> str:
        """Write each file (``None`` deletes it), commit and push; returns the commit's SHA.

        Paths are relative to the repository's root and use ``/``.
        """
        changed, removed = [], []
        for name, content in files.items():
            target = self.path / name
            if content is None:
                removed.append(str(target))
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            changed.append(str(target))
        with Repo(str(self.path)) as repo:
            if changed:
                porcelain.add(repo, changed)
            if removed:
                porcelain.remove(repo, removed)
            sha = porcelain.commit(repo, message.encode(), author=AUTHOR, committer=AUTHOR)
            self._push(repo)
        return sha.decode()

    def revert(self, sha: str) -> str:
        """``git revert`` of commit ``sha``, pushed; returns the new commit's SHA."""
        with Repo(str(self.path)) as repo:
            reverted = porcelain.revert(repo, sha.encode(), author=AUTHOR, committer=AUTHOR)
            assert reverted is not None
            self._push(repo)
        return reverted.decode()

    def _push(self, repo: Repo) -> None:
        porcelain.push(repo, self.url, _REF, outstream=io.BytesIO(), errstream=io.BytesIO())

    def read(self, name: str) -> str:
        """The working copy's ``name`` as last committed."""
        return (self.path / name).read_text()


def main(argv: list[str] | None = None) -> None:
    """Serve ``--root``'s repositories until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m canary.devenv.gitserver",
                                     description=__doc__)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = GitServer(args.root, args.port)
    print(f"serving {server.repos} at {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
