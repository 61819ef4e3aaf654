"""``airsync pull``: bring a peer's mirror into the local one, moving only the chunks it lacks.

The peer is anything serving a GOPROXY tree with airsync's carry files over HTTP: ``airsync
serve`` (which makes the signed manifest and chunk sidecars from its mirror) or a plain static
server such as nginx in front of a medium written by ``airsync sync`` (which holds them as
files). Trust comes only from the signed manifest; the peer and the network are not trusted.

How it works:

1. Fetch ``/airsync-manifest`` and open it with the trusted verifier key: a bad signature or a
   wrong key stops the pull before anything else is requested.
2. Compare each listed file with the local mirror exactly as ``import`` does (``plan_import``):
   identical files are skipped, ``@v/list`` files are merged, and any other file whose bytes
   differ from the local one is a tamper signal that refuses the whole pull.
3. A new file whose SHA-256 a local file already has (a ``.mod`` unchanged between versions)
   is copied from it. For each other new file large enough to have one, fetch its sidecar (``<file>.airsig``) and plan
   the file with ``chunks.plan_delta`` against an index of every chunk the local mirror holds,
   in any file (a new version of a module shares chunks with the old one under another name):
   known chunks are copied from local files, the rest is fetched with Range requests, nearby
   ranges coalesced into one. Small files, and files whose sidecar is missing or does not
   describe the listed file, are fetched whole.
4. Assemble each file in the mirror's staging area in target order, hashing as it is written;
   its size and SHA-256 must match the manifest, and a module ``.zip``/``.mod`` must hash to the
   manifest's go.sum line (the zip is checked against the module zip rules on the way). A file
   assembled from local chunks that fails (a local file changed) is fetched once more whole.
   Then fsync and publish; module files become durable before any list that names them.

A file that fails is reported and the others go on (exit status 1); what was published is
complete and verified, and a rerun fetches only what is still missing. A file cut short by a
kill or a lost peer resumes: its partial keeps the chunks the sidecar vouches for (or, for a
file fetched whole, its bytes, sent on by a Range request and checked by the final sha256).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
import xxhash

from airsync.carry import accepted, chunks, rollback
from airsync.carry.manifest import Entry, Manifest, open_manifest
from airsync.carry.medium import MANIFEST, MANIFEST_MAX, SIDECAR_SUFFIX
from airsync.carry.signatures import (
    SIDECAR_MIN,
    SignatureCache,
    SignatureCacheError,
    h1_of,
    module_file,
    selected,
    tree_signatures,
)
from airsync.carry.verify import (
    VULNDB_PREFIX, ImportFailed, Report, gosum_hashes, inside_state, merge_list, plan_import, update_latest,
    vulndb_decision, vulndb_index_rank,
)
from airsync.errors import AirsyncError
from airsync.imports import hidden
from airsync.state import StateDB
from airsync.store import MirrorStore
from airsync.trust import note
from airsync.units import count, human_bytes
from airsync.vulndb import db as vulndb_db
from airsync.vulndb.ondisk import read_small

# httpx imports its own command line (click, rich, pygments) whenever click is installed: ~30 ms of
# every start-up, for nothing airsync uses (see airsync.imports).
with hidden("click"):
    import httpx

__all__ = ["PullError", "PullRefused", "PullResult", "pull", "DEFAULT_CONCURRENCY"]

DEFAULT_CONCURRENCY = 8
ATTEMPTS = 3  # per request, for resets and 5xx
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_REQUEST = 2 << 20  # bytes asked for in one range request (held in memory until written)
DEADLINE_BASE, MIN_RATE = 60.0, 32 << 10  # a request may take 60 s plus 1 s per 32 KiB
WRITE_BLOCK = 1 << 20


class PullError(AirsyncError):
    """The peer cannot be pulled from (unreachable, no manifest, a bad signature)."""


class PullRefused(AirsyncError):
    """The peer's files conflict with the local mirror: nothing was pulled."""

    def __init__(self, report: Report, why: str) -> None:
        self.report = report
        super().__init__(why)


@dataclass
class PullResult:
    pulled: int = 0  # new files published
    skipped: int = 0  # identical already
    merged: list[str] = field(default_factory=list)  # @v/list files that gained versions
    bytes: int = 0  # size of the new files
    fetched: int = 0  # bytes of HTTP bodies received (manifest, sidecars, ranges, whole files)
    reused: int = 0  # bytes of new files copied from chunks the local mirror already had
    requests: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (path, why)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        return (
            f"pulled {count(self.pulled, 'file')} ({human_bytes(self.bytes)}): fetched {human_bytes(self.fetched)} "
            f"in {count(self.requests, 'request')}, {human_bytes(self.reused)} reused from local files; "
            f"{self.skipped} already present, {count(len(self.merged), 'list')} merged"
            + (f"; {len(self.failures)} failed" if self.failures else "")
        )


class _FileFailed(AirsyncError):
    pass


@dataclass(frozen=True)
class _Local:
    """What the local mirror holds: every chunk (hash -> a file and offset), every file by sha256."""

    index: dict[bytes, tuple[str, int]]
    by_sha256: dict[str, str]


def _deadline(size: int) -> float:
    """Seconds one request for ``size`` bytes may take: a peer dripping a byte at a time must
    not hold a pull forever (httpx's timeouts are per read)."""
    return DEADLINE_BASE + size / MIN_RATE


class _Peer:
    """GET requests to the peer with a few retries and deadlines, counting what crosses."""

    def __init__(self, client: httpx.AsyncClient, base: str, result: PullResult) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.result = result

    async def request(self, url: str, headers: dict[str, str], size: int, handle):
        """``await handle(response)`` on a streamed GET of ``url`` (at most ``size`` bytes are
        expected), retrying resets, truncation, stalls, 5xx and 429; _FileFailed after that."""
        why = ""
        for attempt in range(1, ATTEMPTS + 1):
            with trio.move_on_after(_deadline(size)) as scope:
                try:
                    async with self.client.stream("GET", url, headers=headers) as r:
                        self.result.requests += 1
                        if r.status_code < 500 and r.status_code != 429:
                            return await handle(r)
                        why = f"HTTP {r.status_code}"
                except httpx.RequestError as e:  # resets, truncation, undecodable bodies
                    why = f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__} (no detail)"
            if scope.cancelled_caught:
                why = f"no complete answer within {_deadline(size):.0f} s"
            if attempt < ATTEMPTS:
                await trio.sleep(0.2 * attempt)
        raise _FileFailed(f"{url}: {why}")

    async def get(
        self, rel: str, start: int | None = None, end: int | None = None, *, limit: int, gzip: bool = False
    ) -> bytes | None:
        """The file ``rel`` (None when the peer has no such file), or bytes [start, end); no
        more than ``limit`` bytes are ever held, whatever the peer sends.

        ``gzip``: the peer may compress it (the manifest: text, ~190 bytes a file, compresses
        about 3x); never for module files, whose bytes and ranges must be exact."""
        url = f"{self.base}/{rel}"
        headers = {"Accept-Encoding": "gzip" if gzip else "identity"}
        if start is not None:
            headers["Range"] = f"bytes={start}-{end - 1}"
            limit = end - start

        async def handle(r: httpx.Response) -> bytes | None:
            if r.status_code in (404, 410):
                return None
            if start is not None and r.status_code == 200:
                raise _FileFailed(f"{url}: the peer ignores Range requests")
            if r.status_code != (200 if start is None else 206):
                raise _FileFailed(f"{url}: HTTP {r.status_code}")
            if start is not None:
                got = r.headers.get("content-range", "")
                if not got.startswith(f"bytes {start}-{end - 1}/"):
                    raise _FileFailed(f"{url}: asked for bytes {start}-{end - 1}, got {got or 'no Content-Range'}")
            body = bytearray()
            try:
                async for block in r.aiter_bytes():
                    body += block
                    if len(body) > limit:
                        raise _FileFailed(f"{url}: more than the {limit} bytes it can be; not read further")
            finally:
                self.result.fetched += r.num_bytes_downloaded
            return bytes(body)

        return await self.request(url, headers, limit, handle)


async def pull(
    url: str,
    into: Path,
    verifier: note.Verifier,
    *,
    only: str = "",
    coalesce_gap: int = chunks.DEFAULT_COALESCE_GAP,
    concurrency: int = DEFAULT_CONCURRENCY,
    say: Callable[[str], None] | None = None,
    policy: rollback.Policy | None = None,
) -> PullResult:
    """Pull the peer at ``url`` into the mirror at ``into`` (``only``: module path globs). A peer's
    manifest older than one the mirror accepted before is refused (rollback's errors, ``policy``);
    a pull that completes records it."""
    if not url.startswith(("http://", "https://")):
        raise PullError(f"{url}: not an http:// or https:// URL (to bring in a medium, use airsync import)")
    try:
        httpx.URL(url)
    except httpx.InvalidURL as e:
        raise PullError(f"{url}: not a usable URL: {e}") from None
    say = say or (lambda _m: None)
    result = PullResult()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # The system's certificate store, like the mirror job's (fetch.slots): a peer's certificate is
    # trusted as the operating system trusts it.
    async with httpx.AsyncClient(timeout=TIMEOUT, limits=limits, follow_redirects=False,
                                 verify=ssl.create_default_context()) as client:
        peer = _Peer(client, url, result)
        try:
            data = await peer.get(MANIFEST, gzip=True, limit=MANIFEST_MAX)
        except _FileFailed as e:
            raise PullError(str(e)) from None
        if data is None:
            raise PullError(f"{peer.base}/{MANIFEST}: not found (serve the mirror with airsync serve --signing-key)")
        m = open_manifest(data, verifier, f"{peer.base}/{MANIFEST}")
        guard = accepted.guard(into, verifier, m, policy or rollback.Policy())
        store = MirrorStore(into)
        cache = None
        try:
            cache = SignatureCache(store.state_path)
            await _pull(peer, store, cache, m, only, coalesce_gap, concurrency, say)
            _clean_leftovers(store, {path for path, _ in result.failures})
            if result.ok:
                guard.commit()
        except OSError as e:
            raise PullError(
                f"{e.filename or into}: {e.strerror or e}; stopped. Files pulled so far are complete and "
                "verified; a rerun fetches the rest"
            ) from None
        except (sqlite3.Error, SignatureCacheError) as e:
            raise PullError(f"{store.state_path}: {e}; stopped. Files pulled so far are complete and verified") from None
        finally:
            if cache is not None:
                cache.close()
            store.close()
    return result


def _clean_leftovers(store: MirrorStore, failed: set[str]) -> None:
    """After a pull: remove partial files nothing will resume (kept: those of files that failed
    this time, which the next pull resumes, and what a mirror job can resume)."""
    state = StateDB(store.state_path)
    try:
        store.clean_partial(state.resumable() | failed)
    finally:
        state.close()


async def _pull(
    peer: _Peer, store: MirrorStore, cache: SignatureCache, m: Manifest, only: str, gap: int, concurrency: int, say
) -> None:
    result = peer.result
    if only:
        m = Manifest(m.created, m.source, tuple(e for e in m.entries if selected(e.path, only)), m.gosum)
        if not any("/@v/" in e.path for e in m.entries):
            raise PullError(f"--only {only!r} selects no module in the peer's manifest")

    def hasher(path: Path) -> tuple[int, str]:
        sf = cache.get(store.root, path.relative_to(store.root).as_posix())
        return sf.size, sf.sha256

    def look() -> dict:
        return {e.path: inside_state(store.root, e.path, hasher) for e in m.entries}

    inside = await trio.to_thread.run_sync(look)
    plan = plan_import(m, inside, vulndb=await _vulndb_decision(peer, store, m, inside))
    if plan.conflicts:
        raise PullRefused(
            Report(plan.conflicts, files=len(m.entries), bytes=sum(e.size for e in m.entries)),
            f"{store.root}: the peer conflicts with the local mirror; nothing pulled",
        )
    result.skipped = len(plan.skip)

    local = _Local({}, {})
    if plan.copy:
        sigs = await trio.to_thread.run_sync(tree_signatures, store.root, cache)
        local = _Local(
            chunks.index_chunks({rel: sf.sig for rel, sf in sigs.items()}),
            {sf.sha256: rel for rel, sf in sorted(sigs.items(), reverse=True)},
        )
    h1s = gosum_hashes(m.gosum)

    # The local disk failing (full, read-only, gone) stops the whole pull, not one file.
    fatal: list[Exception] = []

    async def one(e: Entry, dirs: set[Path], nursery: trio.Nursery) -> None:
        async with limiter:
            try:
                dirs |= await _pull_file(peer, store, cache, e, local, gap, h1s)
                result.pulled += 1
                result.bytes += e.size
                say(f"pulled {e.path}")
            except _FileFailed as e2:
                # What arrived stays in its partial (a lost peer): the next pull resumes it.
                result.failures.append((e.path, str(e2)))
            except (OSError, sqlite3.Error, SignatureCacheError) as err:
                with contextlib.suppress(OSError):
                    store.partial_path(e.path).unlink(missing_ok=True)  # the local disk: make room
                fatal.append(err)
                nursery.cancel_scope.cancel()

    limiter = trio.CapacityLimiter(concurrency)
    dirs: set[Path] = set()
    async with trio.open_nursery() as nursery:
        for e in plan.copy:
            if not e.path.endswith("/@v/list") and not vulndb_index_rank(e.path):
                nursery.start_soon(one, e, dirs, nursery)
    if fatal:
        raise fatal[0]
    # Module files durable before any list advertises them.
    await trio.to_thread.run_sync(store.sync_dirs, dirs)
    # The vulnerability database's indexes after its entries, db.json last; none when an entry failed.
    indexes = sorted((e for e in plan.copy if vulndb_index_rank(e.path)), key=lambda e: vulndb_index_rank(e.path))
    if indexes and not any(path.startswith(VULNDB_PREFIX) for path, _ in result.failures):
        for e in indexes:
            dirs = set()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(one, e, dirs, nursery)
            if fatal:
                raise fatal[0]
            await trio.to_thread.run_sync(store.sync_dirs, dirs)
    elif indexes:
        result.failures += [(e.path, "not pulled: an entry of the vulnerability database failed") for e in indexes]
    # A list names only the versions whose files are all here: one that failed is not advertised.
    async def merge(e: Entry, nursery: trio.Nursery) -> None:
        async with limiter:
            try:
                data = await peer.get(e.path, limit=e.size)
                if data is None or (len(data), hashlib.sha256(data).hexdigest()) != (e.size, e.sha256):
                    raise _FileFailed("the peer's file does not match its signed manifest")
                if await trio.to_thread.run_sync(merge_list, store, e, data, True):
                    result.merged.append(e.path)
            except (_FileFailed, ImportFailed) as err:
                result.failures.append((e.path, str(err)))
            except (OSError, sqlite3.Error, SignatureCacheError) as err:
                fatal.append(err)
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for e in [e for e in plan.copy if e.path.endswith("/@v/list")] + list(plan.merge):
            nursery.start_soon(merge, e, nursery)
    if fatal:
        raise fatal[0]
    await trio.to_thread.run_sync(update_latest, store, [e.path for e in m.entries])


async def _vulndb_decision(peer: _Peer, store: MirrorStore, m: Manifest, inside: dict) -> str | None:
    """``vulndb_decision`` from the peer's db.json (checked against the manifest) and the local one."""
    rel = VULNDB_PREFIX + vulndb_db.DB_FILE
    e = next((e for e in m.entries if e.path == rel), None)
    have = inside.get(rel)
    if e is None or have is None or have[1:] == (e.size, e.sha256):
        return None
    try:
        data = await peer.get(rel, limit=e.size)
    except _FileFailed:
        data = None
    if data is None or (len(data), hashlib.sha256(data).hexdigest()) != (e.size, e.sha256):
        return "older"  # what cannot be shown newer never replaces the local database
    try:
        local = await trio.to_thread.run_sync(read_small, store.root / rel, vulndb_db.MAX_INDEX)
    except (OSError, vulndb_db.VulnDBError):
        return "newer"
    return vulndb_decision(data, local)


async def _pull_file(
    peer: _Peer,
    store: MirrorStore,
    cache: SignatureCache,
    e: Entry,
    local: _Local,
    gap: int,
    h1s: dict[tuple[str, str], set[str]],
) -> set[Path]:
    pieces: list[chunks.Piece] = []
    sig = None
    same = local.by_sha256.get(e.sha256)
    if same is not None:
        # Already here under another name (a .mod unchanged between versions): no request at all.
        pieces = [chunks.Copy(same, 0, e.size)]
    elif e.size >= SIDECAR_MIN and local.index:
        try:
            side = await peer.get(e.path + SIDECAR_SUFFIX, limit=chunks.max_encoded_size(e.size))
        except _FileFailed:
            side = None  # only a hint: without it the file comes whole
        try:
            sig = chunks.decode(side) if side is not None else None
        except chunks.SignatureFormatError:
            sig = None  # an unusable hint: fetch the file whole
        if sig is not None and sig.size == e.size and sig.sha256.hex() == e.sha256:
            pieces = chunks.plan_delta(sig, local.index, coalesce_gap=gap)
        else:
            sig = None
    partial = store.partial_path(e.path)
    # What an interrupted pull wrote of this file stays: chunks the sidecar vouches for, or
    # (without one) the bytes as they are, which the final sha256 checks.
    have = await trio.to_thread.run_sync(_prefix, partial, e, sig)
    # A leftover that is the whole file already (a pull killed while checking it) just lands;
    # one as long as the file but with other bytes is of no use.
    ok = 0 < have.pos == e.size and have.digest.hexdigest() == e.sha256
    if have.pos == e.size and not ok:
        have = _Written()
    kept = have.pos
    delta = any(isinstance(p, chunks.Copy) for p in pieces)
    if delta and not ok:
        try:
            ok = await _assemble(peer, store.root, partial, e, pieces, have)
        except _FileFailed:
            ok = False  # e.g. a peer that ignores Range: the whole file may still come
    if not ok:
        try:
            ok = await _fetch_whole(peer, partial, e, _Written() if delta else have)
        except _FileFailed:
            if not kept or delta:
                raise
            ok = False  # the peer would not continue it (416, a changed file): start over
    if not ok and kept and not delta:
        ok = await _fetch_whole(peer, partial, e, _Written())  # the kept bytes were not good
    if not ok:
        partial.unlink(missing_ok=True)
        raise _FileFailed("the peer's file does not match its signed manifest (size or sha256)")
    return await trio.to_thread.run_sync(_land, store, cache, partial, e, h1s)


@dataclass
class _Written:
    """How much of a file is in its partial, in order, and the sha256 of those bytes."""

    pos: int = 0
    digest: Any = field(default_factory=hashlib.sha256)


def _prefix(partial: Path, e: Entry, sig: chunks.FileSignature | None) -> _Written:
    """The bytes an earlier attempt left in ``partial`` that may stay (see ``_pull_file``)."""
    have = _Written()
    try:
        fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return have
    try:
        size = min(os.fstat(fd).st_size, e.size)
        if sig is None:
            while have.pos < size and (block := os.pread(fd, min(WRITE_BLOCK, size - have.pos), have.pos)):
                have.digest.update(block)
                have.pos += len(block)
            return have
        for c in sig.chunks:
            if c.offset + c.length > size:
                break
            piece = os.pread(fd, c.length, c.offset)
            if xxhash.xxh3_128_digest(piece) != c.xxh3:
                break
            have.digest.update(piece)
            have.pos = c.offset + c.length
        return have
    finally:
        os.close(fd)


async def _write(fd: int, data: bytes, have: _Written) -> None:
    # Written first, hashed after: after an error the digest covers exactly what is on disk.
    await trio.to_thread.run_sync(os.pwrite, fd, data, have.pos)
    have.digest.update(data)
    have.pos += len(data)


async def _fetch_whole(peer: _Peer, partial: Path, e: Entry, have: _Written) -> bool:
    """Stream the file into ``partial`` after the ``have.pos`` bytes already there (a Range
    request; a peer answering 200 sends it all again); True when it then matches ``e``."""
    url = f"{peer.base}/{e.path}"

    asked = have.pos  # where the Range starts (a retry asks the same; what came since is skipped)

    async def handle(r: httpx.Response) -> bool:
        nonlocal have
        skip = 0
        if r.status_code in (404, 410):
            raise _FileFailed("listed in the peer's manifest, but the peer does not have it")
        if r.status_code == 200 and have.pos:
            have = _Written()  # the whole file after all: start over
        elif r.status_code == 206:
            if not r.headers.get("content-range", "").startswith(f"bytes {asked}-"):
                raise _FileFailed(f"{url}: a range that does not start at byte {asked}")
            skip = have.pos - asked
        elif r.status_code != 200:
            raise _FileFailed(f"{url}: HTTP {r.status_code}")
        buf = bytearray()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            await trio.to_thread.run_sync(os.ftruncate, fd, have.pos)
            async for block in r.aiter_raw():
                peer.result.fetched += len(block)
                if skip:
                    block, skip = block[skip:], max(0, skip - len(block))
                buf += block
                if have.pos + len(buf) > e.size:
                    return False
                if len(buf) >= WRITE_BLOCK:
                    await _write(fd, bytes(buf), have)
                    buf.clear()
            await _write(fd, bytes(buf), have)
            await trio.to_thread.run_sync(os.fsync, fd)
        finally:
            os.close(fd)
        return have.pos == e.size and have.digest.hexdigest() == e.sha256

    headers = {"Accept-Encoding": "identity"}
    if asked:
        headers["Range"] = f"bytes={asked}-"
    return await peer.request(url, headers, e.size - asked, handle)


async def _assemble(
    peer: _Peer, root: Path, partial: Path, e: Entry, pieces: list[chunks.Piece], have: _Written
) -> bool:
    """Write ``pieces`` into ``partial`` in order after the ``have.pos`` bytes already there;
    True when it then matches ``e``."""
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        await trio.to_thread.run_sync(os.ftruncate, fd, have.pos)
        at = 0  # where the piece starts in the target
        for p in pieces:
            skip = min(max(have.pos - at, 0), p.length)  # already there from an earlier attempt
            at += p.length
            # Large ranges go in parts, so memory stays bounded whatever the file size.
            for start in range(p.offset + skip, p.offset + p.length, MAX_REQUEST):
                end = min(start + MAX_REQUEST, p.offset + p.length)
                if isinstance(p, chunks.Copy):
                    data = await trio.to_thread.run_sync(_read_local, root / p.path, start, end - start)
                    peer.result.reused += len(data)
                else:
                    data = await peer.get(e.path, start, end, limit=end - start)
                if data is None:
                    raise _FileFailed("listed in the peer's manifest, but the peer does not have it")
                if len(data) != end - start:
                    return False
                await _write(fd, data, have)
        await trio.to_thread.run_sync(os.fsync, fd)
    finally:
        os.close(fd)
    return have.pos == e.size and have.digest.hexdigest() == e.sha256


def _read_local(path: Path, offset: int, length: int) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return b""  # gone since it was indexed: the caller falls back to fetching
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def _land(store: MirrorStore, cache: SignatureCache, partial: Path, e: Entry, h1s) -> set[Path]:
    """Check a module file's go.sum hash (and zip rules), publish, and record its signature."""
    mod = module_file(e.path)
    try:
        h1 = h1_of(partial, e.path)
    except AirsyncError as err:
        partial.unlink(missing_ok=True)
        raise _FileFailed(str(err)) from None
    if mod is not None:
        mv, ext = mod
        want = h1s.get((mv.path, mv.version + ("/go.mod" if ext == "mod" else "")), set())
        if h1 not in want:
            partial.unlink(missing_ok=True)
            raise _FileFailed(f"h1 hash {h1} is not the manifest's go.sum hash for {mv}")
    sig = chunks.signature_of_file(partial)
    dirs = store.publish(partial, e.path)
    cache.put(e.path, os.lstat(store.root / e.path), sig, h1)
    return dirs
