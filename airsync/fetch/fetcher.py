"""Downloading one upstream file, resumably, into a partial file or memory (trio, and the HTTP
clients of ``fetch.slots``).

The first request for a file is ranged (``bytes=0-<probe>``): a 206 tells the size and the
validator (strong ETag or Last-Modified) that every later request sends as ``If-Range``, so a
file that changes upstream restarts instead of being spliced from two versions. A file that
fits in that first response (most .info, .mod and .zip files) is handed back as bytes, for the
caller to write, verify and publish in one go. A 200 means the server ignores ranges: the body
is then streamed whole to the partial file. Files above ``split_threshold`` are cut
into aligned ``chunk_size`` spans fetched in parallel, each a stream that writes with ``pwrite``
at its own offset. ``Accept-Encoding: identity`` and ``aiter_raw`` keep the bytes exact.

Durability: a ``SpanWriter`` per file fsyncs the partial file every ``checkpoint`` bytes and only
then records each stream's progress ``[start, end)`` with the xxh3-64 of those bytes in the state
database. After a kill -9 the recorded spans are re-hashed (a torn write is dropped) and only the
gaps are fetched. Within one run, a retried stream continues from the last byte it wrote.

Failure policy (retry.py): connection errors, truncated bodies, read stalls (the clients' per-read
timeout), 5xx and 429 (Retry-After honoured) are retried with jittered exponential backoff;
404/410 mean "not at this upstream" and move on down the GOPROXY list; a per-file deadline
bounds everything, so a stalled server cannot hang a job.
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import trio
import xxhash

from airsync.errors import NotFoundError, UpstreamError
from airsync.fetch import rangeplan, retry
from airsync.fetch.rangeplan import Span
from airsync.fetch.ratelimit import TokenBucket
from airsync.fetch import slots as _slots
from airsync.fetch.slots import FILE_LANE, RANGE_LANE, ClientSlots
from airsync.goproxy.upstream import Upstream
from airsync.state import SpanRecord, StateDB
from airsync.store import MirrorStore

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("airsync.fetch")


@dataclass(frozen=True)
class FetchSettings:
    concurrency: int = 64  # files in flight
    per_host: int = 16  # whole-file requests in flight per upstream host (+ half as many for ranges)
    per_host_max: int | None = None  # ... growing up to this while latency is the limit (None: 4 x)
    chunk_size: int = 8 << 20
    split_threshold: int = 16 << 20
    probe_size: int = 1 << 20
    checkpoint: int = 1 << 20  # fsync + record progress after this many new bytes per file
    connect_timeout: float = 15.0
    read_timeout: float = 30.0  # per read: a stalled body fails after this long
    file_deadline: float = 3600.0
    limit_rate: int | None = None  # bytes per second, all downloads together
    http2: bool = False
    retry: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    # From the Go environment (goproxy.goenv): hosts that may be reached without TLS checks and
    # receive credentials over plain HTTP, and where credentials come from (fetch.auth).
    insecure: str = ""
    goauth: str = "netrc"
    netrc: str | None = None


@dataclass
class Stats:
    """Live counters for progress display and the summary (mutated by the fetcher)."""

    files_total: int = 0
    files_done: int = 0
    files_skipped: int = 0
    files_failed: int = 0
    bytes_received: int = 0
    bytes_resumed: int = 0  # bytes found intact on disk from an earlier run
    bytes_expected: int = 0  # sizes of the files whose size is known so far
    retries: int = 0
    requests: int = 0


# The retry policy of the upstream being tried (set per file, read by every stream of that file).
_policy: contextvars.ContextVar[retry.RetryPolicy] = contextvars.ContextVar("policy")

# After '|' the next upstream is a real alternative: give up on this one after a few attempts,
# as the go command moves on at the first error.
FALLBACK_ATTEMPTS = 2


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class FileChanged(Exception):
    """The upstream file is no longer the one whose bytes we hold: start it over."""


class SpanWriter:
    """Writes the streams of one file and checkpoints their progress durably."""

    def __init__(self, fd: int, relpath: str, state: StateDB, checkpoint: int) -> None:
        self.fd = fd
        self.relpath = relpath
        self.state = state
        self.checkpoint_every = checkpoint
        self._streams: dict[int, _Stream] = {}
        self._dirty: set[int] = set()
        self._unsynced = 0
        self._syncing = False
        self._noted: set[int] = set()  # streams written since the last note (state.note_written)
        self._unnoted = 0
        # Set once the file has a resume record (size and validator known, more than one response).
        self.resumable = False

    def stream(self, start: int) -> _Stream:
        s = _Stream(start)
        self._streams[start] = s
        return s

    def adopt(self, start: int, data: bytes) -> None:
        """Count ``data``, already written at ``start``, as a stream due at the next checkpoint."""
        s = self.stream(start)
        s.hasher.update(data)
        s.end = start + len(data)
        self._dirty.add(start)

    async def write(self, s: _Stream, data: bytes) -> None:
        os.pwrite(self.fd, data, s.end)
        s.hasher.update(data)
        s.end += len(data)
        self._dirty.add(s.start)
        self._noted.add(s.start)
        self._unsynced += len(data)
        self._unnoted += len(data)
        if not self.resumable:
            return
        if self._unnoted >= self.checkpoint_every and self._syncing:
            # An fsync is running, and megabytes may arrive before it returns: note how far the
            # streams got, for a rerun after kill -9 to check by hash (never trusted as durable).
            self._note()
        if self._unsynced >= self.checkpoint_every and not self._syncing:
            await self.checkpoint()

    def _note(self) -> None:
        snap = [SpanRecord(st.start, st.end, st.hasher.hexdigest())
                for st in (self._streams[k] for k in self._noted) if st.end > st.start]
        self._noted.clear()
        self._unnoted = 0
        self.state.note_written(self.relpath, snap)

    async def checkpoint(self, record: bool = True) -> None:
        """fsync, then record every stream's progress (``record=False``: just make it durable)."""
        # Snapshot before the fsync: the fsync covers every byte written before it started.
        snap = [
            SpanRecord(s.start, s.end, s.hasher.hexdigest())
            for s in (self._streams[k] for k in self._dirty)
            if s.end > s.start
        ]
        self._dirty.clear()
        self._unsynced = 0
        self._noted.clear()  # the durable record will cover what was written so far
        self._unnoted = 0
        if record and self.resumable:
            # Noted first: a kill -9 during the fsync, which under load takes long enough for
            # another megabyte per stream to arrive, would otherwise lose these bytes too.
            self.state.note_written(self.relpath, snap)
        self._syncing = True
        try:
            await trio.to_thread.run_sync(os.fsync, self.fd)
        finally:
            self._syncing = False
        if record:
            self.state.record_spans(self.relpath, snap)


class _Stream:
    __slots__ = ("start", "end", "hasher")

    def __init__(self, start: int) -> None:
        self.start = start
        self.end = start
        self.hasher = xxhash.xxh3_64()


def _intact_spans(
    fd: int, records: list[SpanRecord], noted: list[SpanRecord] = ()
) -> tuple[list[Span], list[int], list[SpanRecord]]:
    """Re-hash recorded spans on disk; returns (intact spans, starts of torn ones, noted spans
    that held).

    A stream's write note (``noted``, longer than its durable record when the process was killed
    between checkpoints) is tried first; if its bytes do not hash as noted, the durable record is.
    """
    best = {r.start: [r] for r in records}
    for n in noted:
        if n.end > max((r.end for r in best.get(n.start, [])), default=n.start):
            best.setdefault(n.start, []).insert(0, n)
    good: list[Span] = []
    torn: list[int] = []
    promoted: list[SpanRecord] = []
    for start in sorted(best):
        for r in best[start]:
            if _hash_span(fd, r):
                good.append(Span(r.start, r.end))
                if r not in records:
                    promoted.append(r)
                break
        else:
            torn.append(start)
    return good, torn, promoted


def _hash_span(fd: int, r: SpanRecord) -> bool:
    h = xxhash.xxh3_64()
    pos = r.start
    while pos < r.end:
        piece = os.pread(fd, min(1 << 20, r.end - pos), pos)
        if not piece:
            return False
        h.update(piece)
        pos += len(piece)
    return h.hexdigest() == r.xxh3


def _copy_durable(src: Path, dst: Path, max_size: int) -> None:
    with open(src, "rb") as f, open(dst, "wb") as out:
        if os.fstat(f.fileno()).st_size > max_size:
            raise UpstreamError(f"{src}: larger than the {max_size} byte limit")
        shutil.copyfileobj(f, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


class Fetcher:
    def __init__(
        self,
        slots: ClientSlots,
        upstreams: list[Upstream],
        store: MirrorStore,
        state: StateDB,
        settings: FetchSettings,
        stats: Stats,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.slots = slots
        self.upstreams = upstreams
        self.store = store
        self.state = state
        self.settings = settings
        self.stats = stats
        self.rand = rand
        self._bucket = (
            TokenBucket(settings.limit_rate, max(settings.limit_rate / 4, 64 << 10)) if settings.limit_rate else None
        )

    async def fetch(self, relpath: str, max_size: int) -> Path | bytes:
        """Fetch ``relpath`` from the first upstream that has it.

        Returns the fsynced partial file, or for a file that came whole in one response (most
        module files) its bytes, for the caller to make durable together with publishing.
        """
        tried: list[str] = []
        for i, up in enumerate(self.upstreams):
            last = i == len(self.upstreams) - 1
            try:
                if up.is_file:
                    return await self._from_file(up, relpath, max_size)
                policy = self.settings.retry
                if up.next_on_any_error and not last:
                    policy = dataclasses.replace(policy, attempts=min(policy.attempts, FALLBACK_ATTEMPTS))
                token = _policy.set(policy)
                try:
                    return await self._from_http(up.url + "/" + relpath, relpath, max_size)
                finally:
                    _policy.reset(token)
            except NotFoundError:
                tried.append(f"{up.url}: not found")
            except (UpstreamError, *_slots.HTTP_ERRORS) as e:
                if not isinstance(e, UpstreamError):  # e.g. too many redirects, a bad redirect URL
                    e = UpstreamError(f"{up.url}/{relpath}: {_describe(e)}")
                if not up.next_on_any_error or last:
                    raise e from None
                tried.append(f"{up.url}: {e}")
                log.warning("upstream failed, trying next", file=relpath, upstream=up.url, error=str(e))
        raise NotFoundError(f"{relpath}: not found upstream ({'; '.join(tried)})")

    async def _from_file(self, up: Upstream, relpath: str, max_size: int) -> Path:
        src = up.file_root / relpath
        if not src.is_file():
            raise NotFoundError(f"{src}: no such file")
        dst = self.store.partial_path(relpath)
        await trio.to_thread.run_sync(_copy_durable, src, dst, max_size)
        size = dst.stat().st_size
        self.stats.bytes_received += size
        self.stats.bytes_expected += size
        return dst

    async def _from_http(self, url: str, relpath: str, max_size: int) -> Path | bytes:
        partial = self.store.partial_path(relpath)
        try:
            with trio.fail_after(self.settings.file_deadline):
                for _ in range(3):
                    try:
                        body = await self._download(url, relpath, partial, max_size)
                        return partial if body is None else body
                    except FileChanged as e:
                        log.warning("upstream file changed during download, starting over", url=url, reason=str(e))
                        self.state.start_download(relpath, url, None, None)
        except trio.TooSlowError:
            raise UpstreamError(f"{url}: not complete after the {self.settings.file_deadline:g} s file deadline") from None
        raise UpstreamError(f"{url}: the file kept changing while it was downloaded")

    async def _download(self, url: str, relpath: str, partial: Path, max_size: int) -> bytes | None:
        """Download into ``partial`` (returns None), or return a file that came whole."""
        rec = self.state.download(relpath)
        # Resuming across runs needs a validator: without one a changed file could be spliced.
        if rec is not None and rec.url == url and rec.size is not None and rec.validator:
            size, validator = rec.size, rec.validator
            self.stats.bytes_expected += size
            fd = await trio.to_thread.run_sync(_open_partial, partial)
            try:
                durable, noted = self.state.spans(relpath), self.state.written(relpath)
                done, torn, promoted = await trio.to_thread.run_sync(_intact_spans, fd, durable, noted)
                if promoted:  # noted spans whose bytes held: durable now, and recorded as such
                    await trio.to_thread.run_sync(os.fsync, fd)
                    self.state.record_spans(relpath, promoted)
                self.state.forget_written(relpath)
                self.state.forget_spans(relpath, torn)
                self.stats.bytes_resumed += sum(len(s) for s in done)
                if torn:
                    log.info("torn spans dropped on resume", file=relpath, count=len(torn))
                await self._fetch_rest(url, relpath, fd, size, validator, done)
            finally:
                os.close(fd)
            return None
        probe = await self._probe(url, partial, max_size)
        if probe is None:  # a 200 streamed the whole file to disk already
            return None
        size, validator, body = probe
        if len(body) == size:
            # Whole in one response (small files): nothing to resume, so nothing to record.
            return body
        self.state.start_download(relpath, url, validator, size)
        fd = await trio.to_thread.run_sync(_open_partial, partial)
        try:
            os.pwrite(fd, body, 0)
            await self._fetch_rest(url, relpath, fd, size, validator, [Span(0, len(body))], body)
        finally:
            os.close(fd)
        return None

    async def _fetch_rest(
        self, url: str, relpath: str, fd: int, size: int, validator: str | None, done: list[Span], head: bytes = b""
    ) -> None:
        """Fetch the gaps of a resumable file in parallel spans, checkpointing as they go."""
        writer = SpanWriter(fd, relpath, self.state, self.settings.checkpoint)
        writer.resumable = True
        if head:  # the probe's bytes, already written: make them part of the first checkpoint
            writer.adopt(0, head)
        os.ftruncate(fd, size)
        todo = rangeplan.plan(size, done, self.settings.chunk_size, self.settings.split_threshold)
        if todo:
            try:
                async with trio.open_nursery() as nursery:
                    for span in todo:
                        nursery.start_soon(self._fetch_span, url, span, size, validator, writer)
            except BaseExceptionGroup as eg:
                raise _most_telling(eg) from None
        await writer.checkpoint()

    async def _throttle(self, n: int) -> None:
        if self._bucket is not None:
            wait = self._bucket.reserve(n, trio.current_time())
            if wait > 0:
                await trio.sleep(wait)

    async def _backoff(self, attempt: int, url: str, err: Exception) -> None:
        policy = _policy.get(self.settings.retry)
        if policy.gives_up(attempt):
            raise UpstreamError(f"{url}: giving up after {attempt} attempts: {_describe(err)}")
        self.stats.retries += 1
        ra = err.retry_after if isinstance(err, _Retryable) else None
        delay = policy.delay(attempt, ra, self.rand())
        log.info("retrying", url=url, attempt=attempt, delay=round(delay, 3), reason=_describe(err))
        await trio.sleep(delay)

    async def _probe(self, url: str, partial: Path, max_size: int) -> tuple[int, str | None, bytes] | None:
        """First request: learn size and validator, and keep the first bytes it brings.

        Returns (size, validator, first bytes) from a 206, held in memory (at most
        ``probe_size``); or None when the server ignored the range and its 200 was streamed
        whole into ``partial`` (and fsynced).
        """
        attempt = 0
        while True:
            headers = {"Range": f"bytes=0-{self.settings.probe_size - 1}", "Accept-Encoding": "identity"}
            try:
                async with self.slots.slot(url, FILE_LANE) as client:
                    self.stats.requests += 1
                    async with client.stream("GET", url, headers=headers) as resp:
                        status = resp.status_code
                        if status == 206:
                            start, end, total = _content_range(url, resp)
                            if start != 0 or total is None:
                                raise _Retryable(f"unusable Content-Range {resp.headers.get('content-range')!r}")
                            _check_size(url, total, max_size)
                            self.stats.bytes_expected += total
                            validator = rangeplan.if_range_value(resp.headers.get("etag"), resp.headers.get("last-modified"))
                            return total, validator, await self._read_small(url, resp, end)
                        if status == 200:
                            length = resp.headers.get("content-length")
                            if length is not None and length.isdigit():
                                _check_size(url, int(length), max_size)
                                self.stats.bytes_expected += int(length)
                            await self._stream_whole(url, resp, partial, length, max_size)
                            return None
                        if status == 416:
                            # Range past the end: the file is empty ("bytes */0").
                            cr = resp.headers.get("content-range", "")
                            if cr.replace(" ", "") == "bytes*/0":
                                return 0, None, b""
                            raise UpstreamError(f"{url}: HTTP 416 for the first bytes of the file ({cr!r})")
                        self._raise_for_status(url, resp)
            except (_Retryable, *_slots.TRANSPORT_ERRORS) as e:
                attempt += 1
                await self._backoff(attempt, url, e)

    async def _read_small(self, url: str, resp: httpx.Response, end: int) -> bytes:
        _check_identity(url, resp)
        parts: list[bytes] = []
        got = 0
        async for chunk in resp.aiter_raw():
            got += len(chunk)
            if got > end:
                raise _Retryable(f"body runs past byte {end} that its Content-Range announced")
            parts.append(bytes(chunk))  # a piece is valid until the next one (fetch.h11client)
            self.stats.bytes_received += len(chunk)
            await self._throttle(len(chunk))
        if got < end:
            raise _Retryable(f"body ended at byte {got}, expected {end}")
        return b"".join(parts)

    async def _stream_whole(
        self, url: str, resp: httpx.Response, partial: Path, length: str | None, max_size: int
    ) -> None:
        fd = await trio.to_thread.run_sync(_open_partial, partial)
        try:
            os.ftruncate(fd, 0)
            writer = SpanWriter(fd, "", self.state, self.settings.checkpoint)  # not resumable: no records
            s = writer.stream(0)
            await self._read_body(url, resp, writer, s, None, max_size=max_size)
            if length is not None and length.isdigit() and s.end != int(length):
                raise _Retryable(f"body ended after {s.end} of {length} bytes")
            await writer.checkpoint(record=False)
        finally:
            os.close(fd)

    async def _fetch_span(self, url: str, span: Span, size: int, validator: str | None, writer: SpanWriter) -> None:
        s = writer.stream(span.start)
        attempt = 0
        while s.end < span.end:
            want = Span(s.end, span.end)
            headers = {"Range": rangeplan.range_header(want), "Accept-Encoding": "identity"}
            if validator:
                headers["If-Range"] = validator
            before = s.end
            try:
                async with self.slots.slot(url, RANGE_LANE) as client:
                    self.stats.requests += 1
                    async with client.stream("GET", url, headers=headers) as resp:
                        if resp.status_code == 200:
                            raise FileChanged("a ranged request got the whole file (If-Range did not match)")
                        if resp.status_code == 416:
                            raise FileChanged("the file is shorter than it was")
                        if resp.status_code != 206:
                            self._raise_for_status(url, resp)
                        _, _, total = _content_range(url, resp)
                        if total is not None and total != size:
                            raise FileChanged(f"its size changed from {size} to {total}")
                        try:
                            got = rangeplan.check_partial(want, resp.headers.get("content-range", ""), size)
                        except ValueError as e:
                            raise _Retryable(f"bad Content-Range: {e}") from None
                        etag = resp.headers.get("etag")
                        if validator and rangeplan.is_strong_etag(validator) and etag and etag != validator:
                            raise FileChanged(f"ETag changed from {validator} to {etag}")
                        await self._read_body(url, resp, writer, s, got.end)
            except (_Retryable, *_slots.TRANSPORT_ERRORS) as e:
                attempt = 1 if s.end > before else attempt + 1  # progress resets the budget
                await self._backoff(attempt, url, e)

    async def _read_body(
        self,
        url: str,
        resp: httpx.Response,
        writer: SpanWriter,
        s: _Stream,
        end: int | None,
        max_size: int | None = None,
    ) -> None:
        """Stream a response body into the file at the stream's position, up to ``end``."""
        _check_identity(url, resp)
        # Read to the end of the message, never break early: a body left unread makes httpcore
        # close the connection instead of returning it to the pool.
        async for chunk in resp.aiter_raw():
            if end is not None and s.end + len(chunk) > end:
                raise _Retryable(f"body runs past byte {end} that its Content-Range announced")
            if max_size is not None and s.end + len(chunk) > max_size:
                raise UpstreamError(f"{url}: larger than the {max_size} byte limit")
            await writer.write(s, chunk)
            self.stats.bytes_received += len(chunk)
            await self._throttle(len(chunk))
        if end is not None and s.end < end:
            raise _Retryable(f"body ended at byte {s.end}, expected {end}")

    def _raise_for_status(self, url: str, resp: httpx.Response) -> None:
        outcome = retry.classify_status(resp.status_code)
        if outcome is retry.Outcome.NOT_FOUND:
            raise NotFoundError(f"{url}: HTTP {resp.status_code}")
        if outcome is retry.Outcome.RETRY:
            ra = retry.parse_retry_after(resp.headers.get("retry-after"), time.time())
            raise _Retryable(f"HTTP {resp.status_code}", ra)
        if resp.status_code in (401, 407):
            raise UpstreamError(
                f"{url}: HTTP {resp.status_code} {resp.reason_phrase}: the proxy wants credentials (from the netrc "
                "file, a GOAUTH command or https://user:token@host; sent over HTTPS, or over plain HTTP to hosts "
                "listed in GOINSECURE)")
        raise UpstreamError(f"{url}: HTTP {resp.status_code} {resp.reason_phrase}")


def _most_telling(eg: BaseExceptionGroup) -> BaseException:
    """The one error of a failed span nursery worth reporting (siblings only got cancelled)."""
    leaves: list[BaseException] = []

    def walk(e: BaseException) -> None:
        if isinstance(e, BaseExceptionGroup):
            for sub in e.exceptions:
                walk(sub)
        else:
            leaves.append(e)

    walk(eg)
    if any(not isinstance(e, Exception) for e in leaves):
        return eg  # cancellation or KeyboardInterrupt: let trio see the group as it is
    for kind in (FileChanged, NotFoundError, UpstreamError):
        for e in leaves:
            if isinstance(e, kind):
                return e
    return leaves[0]


def _content_range(url: str, resp: httpx.Response) -> tuple[int, int, int | None]:
    try:
        return rangeplan.parse_content_range(resp.headers.get("content-range", ""))
    except ValueError as e:
        raise _Retryable(f"bad Content-Range: {e}") from None


def _check_identity(url: str, resp: httpx.Response) -> None:
    enc = resp.headers.get("content-encoding", "identity").lower()
    if enc not in ("identity", ""):
        raise UpstreamError(f"{url}: upstream sent Content-Encoding {enc} although identity was asked for")


def _open_partial(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _check_size(url: str, size: int, max_size: int) -> None:
    if size > max_size:
        raise UpstreamError(f"{url}: {size} bytes is over the {max_size} byte limit for this kind of file")


def _describe(err: BaseException) -> str:
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
