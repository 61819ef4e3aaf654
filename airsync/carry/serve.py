"""``airsync serve``: a mirror over HTTP, as a GOPROXY the go command can use directly.

A mirror directory already is a GOPROXY tree (and carries ``sumdb/<name>/``), so serving it is
serving static files: Starlette's ``StaticFiles`` does that (GET and HEAD, Range and If-Range,
ETag and Last-Modified, no path outside the directory, no symlinks out of it). Requests reach it
through airsync's own HTTP/1.1 loop (``httploop``); the commonest answer, a whole regular file
with its ETag, is given there directly (``_Fast``) with the headers StaticFiles would give: the
ASGI stack costs many times the file read. airsync adds only what is its own: ``.airsync/`` (resume state, rejected bytes)
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

import email.utils
import gzip
import hashlib
import mimetypes
import os
import stat
from functools import partial
from pathlib import Path

import structlog
import trio
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from airsync.carry import httploop, manifest
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


def private(rel: str) -> bool:
    """Does ``rel`` have an element a mirror never serves: one starting with a dot (its state and
    staging; module paths never have one), or one no file can have (a NUL, over 255 bytes)?"""
    return any(p.startswith(".") or "\0" in p or len(p.encode("utf-8", "surrogateescape")) > 255 for p in rel.split("/"))


def open_regular(real_root: str, rel: str) -> tuple[int, str, os.stat_result] | None:
    """An open descriptor (and its path and stat) of the regular file ``rel`` inside the tree
    whose real path is ``real_root``, reached through no symlink and by its normal name, else
    None. The kernel's name for the opened file (``/proc/self/fd``) must be the one asked for:
    one readlink instead of realpath's lstat of every component, which cost a third of a request."""
    path = os.path.join(real_root, rel)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        if os.readlink(f"/proc/self/fd/{fd}") == path:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode):
                return fd, path, st
    except OSError:
        pass
    os.close(fd)
    return None


class _HidePrivate:
    """404 for any path element starting with a dot (module paths never have one), and for
    paths no file can have (a NUL, an element over 255 bytes) before they reach a syscall."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and private(scope["path"]):
            await PlainTextResponse("not found\n", status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class _Carry:
    """The manifest and sidecars of a tree that does not hold them as files."""

    def __init__(self, app: ASGIApp, root: Path, signer) -> None:
        self.app = app
        self.root = root
        self.signer = signer
        self.real = os.path.realpath(root)
        self.cache = SignatureCache.for_tree(root)
        self._lock = trio.Lock()  # one manifest build at a time; the cache makes repeats cheap

    def _regular(self, rel: str) -> bool:
        """Is ``rel`` a regular file inside the tree, reached through no symlink?"""
        found = open_regular(self.real, rel)
        if found is not None:
            os.close(found[0])
        return found is not None

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
        self.real = os.path.realpath(root)
        self.cache: dict[tuple[str, int, int], bytes] = {}

    def _gzip(self, rel: str) -> bytes | None:
        found = open_regular(self.real, rel)  # never through a symlink
        if found is None:
            return None
        fd, _, st = found
        with os.fdopen(fd, "rb") as f:
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


class _Fast:
    """The answers a go command asks for most, without the ASGI stack: a whole regular file,
    GET or HEAD, with the same headers StaticFiles gives (ETag, Last-Modified, Content-Type,
    Accept-Ranges) and its 304s. Anything else (Range, If-Range, the manifest, sidecars, a path
    that is not a regular file inside the tree, the vulnerability database with its gzip forms)
    goes to ``app`` (``app_for``) unchanged."""

    SMALL = 256 * 1024  # read at once; larger files are sent in chunks from a worker thread

    def __init__(self, root: Path, app: ASGIApp) -> None:
        self.root = root
        self.real = os.path.realpath(root)
        self.app = app

    async def respond(self, req):
        h = req.headers
        rel = req.path.lstrip("/")
        if private(rel):
            return 404, list(httploop.TEXT), b"not found\n"
        found = None
        if (rel and b"range" not in h and b"if-range" not in h and rel != MANIFEST
                and not rel.endswith(SIDECAR_SUFFIX) and not rel.startswith("vulndb/")):
            found = open_regular(self.real, rel)
        if found is None:
            return await _asgi(self.app, req)
        fd, path, st = found
        try:
            return await self._answer(req, fd, path, st)
        finally:
            os.close(fd)

    async def _answer(self, req, fd: int, path: str, st: os.stat_result):
        h = req.headers
        etag = '"' + hashlib.md5(f"{st.st_mtime}-{st.st_size}".encode(), usedforsecurity=False).hexdigest() + '"'
        last = email.utils.formatdate(st.st_mtime, usegmt=True)
        ctype = mimetypes.guess_type(path)[0] or "text/plain"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        headers = [(b"content-type", ctype.encode()), (b"accept-ranges", b"bytes"), (b"last-modified", last.encode()),
                   (b"etag", etag.encode())]
        inm, ims = h.get(b"if-none-match"), h.get(b"if-modified-since")
        if inm is not None:
            fresh = etag.encode() in [t.strip().removeprefix(b"W/") for t in inm.split(b",")]
        elif ims is not None:
            since = email.utils.parsedate(ims.decode("latin-1"))
            fresh = since is not None and since >= email.utils.parsedate(last)
        else:
            fresh = False
        if fresh:
            return 304, [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-length", b"0")], b""
        if req.method == "HEAD":
            return 200, headers + [(b"content-length", str(st.st_size).encode())], b""
        if st.st_size <= self.SMALL:
            data = os.read(fd, self.SMALL + 1)
            if len(data) == st.st_size:
                return 200, headers, data
            return await _asgi(self.app, req)  # changed meanwhile (or a short read): the slow path
        return 200, headers, httploop.Stream(st.st_size, partial(_send_file, path, st.st_size))


async def _send_file(path: str, size: int, stream) -> None:
    f = await trio.to_thread.run_sync(open, path, "rb")
    try:
        left = size
        while left > 0:
            chunk = await trio.to_thread.run_sync(f.read, min(left, 1 << 20))
            if not chunk:
                raise OSError(f"{path}: shorter than announced")
            await stream.send_all(chunk)
            left -= len(chunk)
    finally:
        f.close()


async def _asgi(app: ASGIApp, req):
    """Answer ``req`` with an ASGI app, collecting its response (for the less common requests)."""
    raw_path = req.path.encode("utf-8", "surrogateescape")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": f"1.{req.minor}", "method": req.method,
        "scheme": "http", "path": req.path, "raw_path": raw_path, "root_path": "", "query_string": b"",
        "headers": list(req.headers.items()), "client": None, "server": None, "extensions": {},
    }
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await trio.sleep_forever()

    start: dict = {}
    body: list[bytes] = []

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))

    await app(scope, receive, send)
    headers = [(bytes(k).lower(), bytes(v)) for k, v in start.get("headers", [])]
    data = b"".join(body)
    if req.method == "HEAD":
        data = b""
    else:
        headers = [(k, v) for k, v in headers if k != b"content-length"]
    return start.get("status", 500), headers, data


async def serve(
    root: Path, listen: str, shutdown: trio.Event | None = None, signer=None, *, task_status=trio.TASK_STATUS_IGNORED
) -> None:
    """Serve until ``shutdown`` is set; ``task_status.started()`` once the socket listens."""
    host, port = parse_listen(listen)
    app = _Fast(root, app_for(root, signer))
    async with trio.open_nursery() as nursery:
        await nursery.start(httploop.serve_http, app, host, port, shutdown)
        log.info("serving", mirror=str(root), url=f"http://{host}:{port}/")
        task_status.started()
