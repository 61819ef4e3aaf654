"""``airsync serve s3://BUCKET/PREFIX``: one of any number of stateless replicas of a store mirror.

Every replica answers from the same objects, so any number of them, on any hosts, behind one name
answer identically. A replica keeps nothing but a bounded in-memory cache:

- *Immutable files* (``@v/<version>.{info,mod,zip}``, checksum-database tiles): published once and
  never changed (objstore.mirror), so a cached copy is good for ever; least recently used ones
  leave first when the cache is over ``--cache-mb``. Objects larger than a sixteenth of the cache
  are streamed from the store and not cached.
- *Index files* (``@v/list``, ``@latest``, the database's ``latest`` and lookups) and every "not
  found": cached for ``--list-ttl`` seconds (2 by default), so a version an import or a mirror run
  publishes is visible from every replica within that time, while a burst of the same request
  costs the store one read.

Concurrent misses of one key share one store read. ``--redirect-zips`` answers a ``.zip`` with a
302 to a presigned GET URL of the object (valid 15 minutes, reused for 5) when clients can reach
the store themselves: the zip bytes then never pass through the replica.

HTTP/1.1 is spoken by a small loop over trio sockets (``http1``: GET and HEAD, keep-alive,
nothing else), since a cached answer is a dictionary lookup and a general server's per-request
machinery cost a replica ten times that (BENCHMARKS.md). As for a directory, every path element
starting with a dot is private (404) and only GET and HEAD are answered.
"""

from __future__ import annotations

import errno
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import structlog
import trio

from airsync.carry import http1, httploop
from airsync.carry.serve import parse_listen, private
from airsync.objstore.client import Bucket, ObjectStoreError
from airsync.objstore.url import StoreTarget

log = structlog.get_logger("airsync.serve")

_IMMUTABLE = re.compile(r"(/@v/[^/]+\.(info|mod|zip)|^sumdb/[^/]+/tile/.*)$")
_TYPES = {".info": b"application/json", ".mod": b"text/plain; charset=utf-8", ".zip": b"application/zip"}
_PRESIGN_SECONDS = 900
_PRESIGN_REUSE = 300.0
_STREAM_CHUNK = 1 << 20


@dataclass(frozen=True)
class Options:
    redirect_zips: bool = False
    cache_mb: int = 256
    list_ttl: float = 2.0


@dataclass
class _Entry:
    body: bytes | None  # None: not found
    etag: bytes
    expires: float  # time.monotonic() after which it is read again; inf for immutable files


def open_bucket(target: StoreTarget) -> Bucket:
    """The bucket, checked to exist and answer (ObjectStoreError otherwise)."""
    bucket = Bucket(target.url, target.settings)
    bucket.check()
    return bucket


def _content_type(rel: str) -> bytes:
    dot = rel.rfind(".")
    return _TYPES.get(rel[dot:], b"text/plain; charset=utf-8") if dot > rel.rfind("/") else b"text/plain; charset=utf-8"


class StoreApp:
    def __init__(self, bucket: Bucket, opts: Options) -> None:
        self.bucket = bucket
        self.opts = opts
        self.budget = max(1, opts.cache_mb) << 20
        self.max_cached = self.budget // 16
        self.cache: OrderedDict[str, _Entry] = OrderedDict()
        self.used = 0
        self._inflight: dict[str, trio.Event] = {}
        self._signed: dict[str, tuple[str, float]] = {}

    # -- cache -----------------------------------------------------------------------------

    def _put(self, rel: str, entry: _Entry) -> None:
        old = self.cache.pop(rel, None)
        if old is not None and old.body is not None:
            self.used -= len(old.body)
        self.cache[rel] = entry
        self.used += len(entry.body) if entry.body is not None else 0
        while self.used > self.budget and self.cache:
            _, gone = self.cache.popitem(last=False)
            self.used -= len(gone.body) if gone.body is not None else 0

    async def _lookup(self, rel: str) -> _Entry | int:
        """The cached or freshly read entry; or the object's size when it is too large to cache."""
        while True:
            e = self.cache.get(rel)
            if e is not None and e.expires > time.monotonic():
                self.cache.move_to_end(rel)
                return e
            waiting = self._inflight.get(rel)
            if waiting is None:
                break
            await waiting.wait()  # another request is reading it: take its answer
        done = self._inflight[rel] = trio.Event()
        try:
            found = await trio.to_thread.run_sync(self._read, rel)
            # Cached here, on the event loop's thread: reads for other paths run in other worker
            # threads at the same time, and the cache and its byte count are not theirs to change.
            if isinstance(found, _Entry) and (found.body is None or len(found.body) <= self.max_cached):
                self._put(rel, found)
            return found
        finally:
            del self._inflight[rel]
            done.set()

    def _read(self, rel: str) -> _Entry | int:
        key = self.bucket.url.key(rel)
        immutable = bool(_IMMUTABLE.search(rel))
        if immutable and rel.endswith(".zip"):
            head = self.bucket.head(key)
            if head is not None and head[0] > self.max_cached:
                return head[0]
        got = self.bucket.get(key)
        ttl = float("inf") if immutable and got is not None else self.opts.list_ttl
        return _Entry(got[0] if got else None, (got[1] or "").encode() if got else b"", time.monotonic() + ttl)

    def _presigned(self, rel: str) -> str:
        now = time.monotonic()
        hit = self._signed.get(rel)
        if hit is not None and hit[1] > now:
            return hit[0]
        url = self.bucket.presign_get(self.bucket.url.key(rel), _PRESIGN_SECONDS)
        if len(self._signed) > 10000:
            self._signed.clear()
        self._signed[rel] = (url, now + _PRESIGN_REUSE)
        return url

    # -- answers -----------------------------------------------------------------------------

    async def answer(self, path: str, if_none_match: bytes | None):
        """(status, headers, body) for a GET or HEAD (``http1`` refuses other methods); body is
        bytes, or an int: the size of an object to stream from the store (``stream``)."""
        rel = path.lstrip("/")
        if not rel or "" in rel.split("/") or private(rel):  # no directories, no empty elements
            return 404, list(httploop.TEXT), b"not found\n"
        try:
            if self.opts.redirect_zips and rel.endswith(".zip"):
                url = await trio.to_thread.run_sync(self._presigned, rel)
                return 302, [(b"location", url.encode())], b""
            found = await self._lookup(rel)
        except ObjectStoreError as e:
            log.error("cannot serve", path=rel, error=str(e))
            return 503, [(b"retry-after", b"1"), *httploop.TEXT], b"the store cannot be read now\n"
        if isinstance(found, int):
            return 200, [(b"content-type", _content_type(rel))], httploop.Stream(found, partial(self.stream, rel=rel))
        if found.body is None:
            return 404, list(httploop.TEXT), b"not found\n"
        headers = [(b"content-type", _content_type(rel))]
        if found.etag:
            headers.append((b"etag", found.etag))
            if if_none_match is not None and found.etag in [t.strip() for t in if_none_match.split(b",")]:
                return 304, headers, b""
        if found.expires != float("inf"):
            headers.append((b"cache-control", b"no-cache"))
        return 200, headers, found.body

    async def respond(self, req: http1.Request):
        return await self.answer(req.path, req.headers.get(b"if-none-match"))

    async def stream(self, stream: trio.abc.Stream, rel: str) -> None:
        """Copy a large object from the store to ``stream``, a chunk at a time. A store failure
        is an OSError (``ObjectStoreError``), which ends this connection only."""
        key = self.bucket.url.key(rel)
        chunks = await trio.to_thread.run_sync(self.bucket.get_chunks, key)
        if chunks is None:
            raise FileNotFoundError(errno.ENOENT, f"{key}: gone from the store after it was looked up")
        while (chunk := await trio.to_thread.run_sync(next, chunks, None)) is not None:
            await stream.send_all(bytes(chunk))


async def serve(target: StoreTarget, listen: str, opts: Options, shutdown: trio.Event | None = None,
                bucket: Bucket | None = None, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Serve until ``shutdown`` is set; ``task_status.started()`` once the socket listens."""
    host, port = parse_listen(listen)
    if bucket is None:
        bucket = await trio.to_thread.run_sync(open_bucket, target)
    async with trio.open_nursery() as nursery:
        await nursery.start(httploop.serve_http, StoreApp(bucket, opts), host, port, shutdown)
        log.info("serving", mirror=str(target), url=f"http://{host}:{port}/")
        task_status.started()
