"""``airsync serve``: a mirror over HTTP, as a GOPROXY the go command can use directly.

A mirror directory already is a GOPROXY tree (and carries ``sumdb/<name>/``), so serving it is
serving static files: Starlette's ``StaticFiles`` does that (GET and HEAD, Range and If-Range,
ETag and Last-Modified, no path outside the directory, no symlinks out of it), on Hypercorn's
trio worker. airsync adds only what is its own: ``.airsync/`` (resume state, rejected bytes)
and every other dot-path stay private, and it binds to 127.0.0.1 unless told otherwise.

For peers running ``airsync pull`` it also serves what a synced medium carries as files: the
signed manifest at ``/airsync-manifest`` (made from the mirror's cached signatures and signed
with ``--signing-key``; without a key only a manifest already in the tree is served) and each
file's chunk signature at ``/<file>.airsig``. A tree that holds these files (a medium) has them
served as they are, so nginx serving a synced medium offers the same to a puller.

The vulnerability database under ``vulndb/`` is also served as govulncheck reads it over HTTP:
each ``.json`` file as ``.json.gz`` too (``-db http://HOST:PORT/vulndb``).
"""

from __future__ import annotations

import gzip
import os
from functools import partial
from pathlib import Path

import structlog
import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from airsync.carry import manifest
from airsync.carry.medium import MANIFEST, SIDECAR_SUFFIX
from airsync.carry.signatures import SignatureCache, make_manifest, tree_signatures
from airsync.errors import AirsyncError, ConfigError

log = structlog.get_logger("airsync.serve")

DEFAULT_LISTEN = "127.0.0.1:8080"


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"bad listen address {value!r}: want HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "127.0.0.1", int(port)


class _HidePrivate:
    """404 for any path element starting with a dot (module paths never have one), and for
    paths no file can have (a NUL, an element over 255 bytes) before they reach a syscall."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = [p for p in scope["path"].split("/") if p] if scope["type"] == "http" else []
        if any(p.startswith(".") or "\0" in p or len(p.encode("utf-8", "surrogateescape")) > 255 for p in parts):
            await PlainTextResponse("not found\n", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Carry:
    """The manifest and sidecars of a tree that does not hold them as files."""

    def __init__(self, app: ASGIApp, root: Path, signer) -> None:
        self.app = app
        self.root = root
        self.signer = signer
        self.cache = SignatureCache.for_tree(root)
        self._lock = trio.Lock()  # one manifest build at a time; the cache makes repeats cheap

    def _regular(self, rel: str) -> bool:
        """Is ``rel`` a regular file inside the tree, reached through no symlink?"""
        path = self.root / rel
        try:
            return os.path.realpath(path) == os.path.join(os.path.realpath(self.root), rel) and path.is_file()
        except (OSError, ValueError):
            return False

    def _manifest(self) -> bytes:
        return manifest.sign_manifest(make_manifest(self.root, tree_signatures(self.root, self.cache)), self.signer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rel = scope["path"].lstrip("/") if scope["type"] == "http" else ""
        body, status = None, 200
        if rel and scope["method"] in ("GET", "HEAD") and not self._regular(rel):
            try:
                if rel == MANIFEST and self.signer is not None:
                    async with self._lock:
                        body = await trio.to_thread.run_sync(self._manifest)
                elif rel == MANIFEST:
                    body, status = b"no manifest: start airsync serve with --signing-key\n", 404
                elif rel.endswith(SIDECAR_SUFFIX) and self._regular(base := rel[: -len(SIDECAR_SUFFIX)]):
                    sf = await trio.to_thread.run_sync(self.cache.get, self.root, base)
                    body = sf.encoded
            except (OSError, AirsyncError) as e:
                log.error("cannot serve", path=rel, error=str(e))
                body, status = b"cannot make it now\n", 503
        if body is None:
            await self.app(scope, receive, send)
            return
        ctype = "text/plain; charset=utf-8" if rel == MANIFEST else "application/octet-stream"
        headers = {}
        accept = dict(scope["headers"]).get(b"accept-encoding", b"")
        if rel == MANIFEST and status == 200 and b"gzip" in accept:
            # ~190 bytes a file of hex and paths: a third of that on the wire.
            body = await trio.to_thread.run_sync(gzip.compress, body, 6)
            headers["content-encoding"] = "gzip"
            headers["vary"] = "Accept-Encoding"
        await Response(body, status_code=status, media_type=ctype, headers=headers)(scope, receive, send)


class _VulnGzip:
    """The vulnerability database (``vulndb/``) as govulncheck asks for it over HTTP: each
    ``X.json`` also as ``X.json.gz`` (it reads only those, and probes ``index/modules.json.gz``
    with HEAD), and ``X.json`` gzip-encoded for a client that accepts it. Compressed once per file
    version (path, size, mtime) and kept in a small cache; a tree that holds ``.gz`` files has
    them served as they are."""

    CACHE = 64  # files; modules.json, the largest, compresses to a few hundred kB

    def __init__(self, app: ASGIApp, root: Path) -> None:
        self.app = app
        self.root = root
        self.cache: dict[tuple[str, int, int], bytes] = {}

    def _gzip(self, rel: str) -> bytes | None:
        path = self.root / rel
        try:
            if os.path.realpath(path) != os.path.join(os.path.realpath(self.root), rel):
                return None  # reached through a symlink: never followed
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (OSError, ValueError):
            return None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            key = (rel, st.st_size, st.st_mtime_ns)
            if key not in self.cache:
                if len(self.cache) >= self.CACHE:
                    self.cache.pop(next(iter(self.cache)))
                self.cache[key] = gzip.compress(f.read(), 6, mtime=0)
            return self.cache[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rel = scope["path"].lstrip("/") if scope["type"] == "http" else ""
        if not rel.startswith("vulndb/") or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        asked = dict(scope["headers"])
        accept = b"gzip" in asked.get(b"accept-encoding", b"") and b"range" not in asked
        headers = {}
        if rel.endswith(".json.gz") and not (self.root / rel).is_file():
            body = await trio.to_thread.run_sync(self._gzip, rel.removesuffix(".gz"))
            ctype = "application/gzip"
        elif rel.endswith(".json") and accept:
            body = await trio.to_thread.run_sync(self._gzip, rel)
            ctype, headers = "application/json", {"content-encoding": "gzip", "vary": "Accept-Encoding"}
        else:
            body = None
        if body is None:
            await self.app(scope, receive, send)
            return
        await Response(body if scope["method"] == "GET" else b"", media_type=ctype,
                       headers={**headers, "content-length": str(len(body))})(scope, receive, send)


def check_root(root: Path) -> None:
    if not root.is_dir():
        raise ConfigError(f"{root}: no such mirror directory")


def app_for(root: Path, signer=None) -> ASGIApp:
    """The ASGI app serving ``root``; ``signer`` signs the manifest made when the tree has none."""
    check_root(root)
    static = StaticFiles(directory=root, follow_symlink=False)
    return _HidePrivate(_VulnGzip(_Carry(Starlette(routes=[Mount("/", app=static)]), root, signer), root))


async def serve(
    root: Path, listen: str, shutdown: trio.Event | None = None, signer=None, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until ``shutdown`` is set; ``task_status.started()`` once the socket listens."""
    host, port = parse_listen(listen)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None
    trigger = shutdown.wait if shutdown is not None else None
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(hypercorn_serve, app_for(root, signer), config, shutdown_trigger=trigger))
        log.info("serving", mirror=str(root), url=f"http://{host}:{port}/")
        task_status.started()
