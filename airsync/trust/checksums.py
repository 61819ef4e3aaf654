"""Carrying the checksum database: look up, verify and store what the go command will ask for.

For each module version a job mirrors (unless its path is private), airsync fetches the lookup
answer from the database (through each upstream's ``/sumdb/<name>/``, or from a direct URL),
then, before anything is published: opens the signed tree note with the configured verifier
key; checks that tree against the newest tree seen before (kept in the state database), so a
database that forked its log stops the job loudly; proves the record's inclusion in the newest
tree with hash tiles; and hands the record's go.sum hashes to the mirror job, which checks the
downloaded .zip and .mod against them. Lookup answers and every tile a proof read are stored
under ``MIRROR/sumdb/<name>/`` exactly where the go command asks for them, so a go command inside
verifies offline with GOSUMDB on. When the newest tree moved on during a job, ``finish`` proves
every stored record again against it, so the tiles they need for that tree are stored too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
import trio

from airsync.errors import AirsyncError, NotFoundError, UpstreamError
from airsync.fetch.fetcher import Fetcher
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.upstream import Upstream
from airsync.state import StateDB
from airsync.store import MirrorStore, fsync_path, write_plain
from airsync.trust import note, sumdb, tlog

log = structlog.get_logger("airsync.checksums")

TILE_HEIGHT = 8
MAX_LOOKUP = 1 << 20
MAX_TILE = 32 * (1 << TILE_HEIGHT)


class SumDBUnavailable(AirsyncError):
    """The checksum database cannot be reached through any upstream."""


class SumDBSecurityError(AirsyncError):
    """The database contradicts itself or its key: a forked log, a bad signature, a bad proof."""


def database_upstreams(db: sumdb.SumDB, upstreams: list[Upstream]) -> list[Upstream]:
    """Where the database's files are: the direct URL, or each proxy's /sumdb/<name>."""
    if db.url is not None:
        return [Upstream(db.url, False)]
    return [Upstream(f"{u.url}/{db.dir()}", u.next_on_any_error) for u in upstreams]


@dataclass
class _Latest:
    tree: tlog.Tree
    msg: bytes  # the signed note


class Checksums:
    """Verified lookups for one database, shared by every module of a job."""

    def __init__(self, db: sumdb.SumDB, fetcher: Fetcher, store: MirrorStore, state: StateDB) -> None:
        """``fetcher`` must fetch from ``database_upstreams(db, ...)``."""
        self.db = db
        self.fetcher = fetcher
        self.store = store
        self.state = state
        self.verifier = note.parse_verifier(db.vkey)
        self._lock = trio.Lock()  # proofs and the newest tree change together
        self._supported: bool | None = None
        self._probe_lock = trio.Lock()
        self._advanced = False  # the newest tree moved on during this job
        saved = state.sumdb_latest(db.name)
        self._latest = _Latest(tlog.parse_tree(note.open_note(saved, [self.verifier]).text), saved) if saved else None

    def _rel(self, path: str) -> str:
        return f"{self.db.dir()}/{path}"

    async def _get(self, path: str, max_size: int) -> bytes:
        rel = self._rel(path)
        if self.store.is_published(rel):
            return await trio.to_thread.run_sync((self.store.root / rel).read_bytes)
        return await self._fetch(path, max_size)

    async def _fetch(self, path: str, max_size: int) -> bytes:
        got = await self.fetcher.fetch(path, max_size)
        return got if isinstance(got, bytes) else await trio.to_thread.run_sync(_read_and_remove, got)

    async def supported(self) -> bool:
        async with self._probe_lock:  # every module asks at once: probe (and store) once
            return await self._probe()

    async def _probe(self) -> bool:
        if self._supported is None:
            try:
                await self._get("supported", 1 << 10)
                await trio.to_thread.run_sync(self._save, {"supported": b""})
                self._supported = True
            except (NotFoundError, UpstreamError) as e:
                log.warning("checksum database not reachable", database=self.db.name, error=str(e))
                self._supported = False
        return self._supported

    async def lookup(self, mv: ModuleVersion) -> tuple[sumdb.RecordHashes, bool]:
        """The database's hashes for ``mv``, proved; stores the lookup and the tiles it needed.

        Also says whether the record is new to this mirror (not read from a stored lookup).
        """
        path = sumdb.lookup_path(mv)
        stored = self.store.is_published(self._rel(path))
        if not stored and not await self.supported():
            raise SumDBUnavailable(f"checksum database {self.db.name} is not reachable through any upstream")
        body = await self._get(path, MAX_LOOKUP)
        try:
            rid, text, rest = tlog.parse_record(body)
            opened = note.open_note(rest, [self.verifier])
            tree = tlog.parse_tree(opened.text)
        except AirsyncError as e:
            raise SumDBSecurityError(f"{mv}: bad checksum database answer: {e}") from None
        hashes = sumdb.record_hashes(text, mv)
        async with self._lock:
            tiles: dict[str, bytes] = {}
            await self._merge(tree, rest, tiles)
            assert self._latest is not None
            await self._prove_record(str(mv), rid, text, self._latest.tree, tiles)
            await trio.to_thread.run_sync(self._save, {path: body, **tiles})
        return hashes, not stored

    async def _merge(self, tree: tlog.Tree, msg: bytes, tiles: dict[str, bytes]) -> None:
        """Make ``tree`` the newest if it is, after proving it consistent with the one we had."""
        old = self._latest
        if old is None:
            self._latest = _Latest(tree, msg)
            self.state.set_sumdb_latest(self.db.name, msg)
            return
        if tree.n == old.tree.n:
            if tree.hash != old.tree.hash:
                raise self._fork(old.tree, tree)
            return
        big, small = (tree, old.tree) if tree.n > old.tree.n else (old.tree, tree)
        read = await self._hash_reader(big, tiles)
        try:
            proof = await trio.to_thread.run_sync(tlog.prove_tree, big.n, small.n, read)
            tlog.check_tree(proof, big.n, big.hash, small.n, small.hash)
        except AirsyncError:
            raise self._fork(small, big) from None
        if tree.n > old.tree.n:
            self._latest = _Latest(tree, msg)
            self.state.set_sumdb_latest(self.db.name, msg)
            log.info("checksum database tree advanced", database=self.db.name, size=tree.n)
            self._advanced = True

    def _fork(self, a: tlog.Tree, b: tlog.Tree) -> SumDBSecurityError:
        return SumDBSecurityError(
            f"SECURITY ERROR: checksum database {self.db.name} served inconsistent trees "
            f"(size {a.n} hash {a.hash.hex()} vs size {b.n} hash {b.hash.hex()}): its log has forked; stopping"
        )

    async def _prove_record(self, what: str, rid: int, text: bytes, tree: tlog.Tree, tiles: dict) -> None:
        if rid >= tree.n:
            raise SumDBSecurityError(f"{what}: record {rid} is not in the database tree of size {tree.n}")
        read = await self._hash_reader(tree, tiles)
        try:
            (h,) = await trio.to_thread.run_sync(read, [tlog.stored_hash_index(0, rid)])
        except AirsyncError as e:
            raise SumDBSecurityError(f"{what}: cannot prove the database record: {e}") from None
        if h != tlog.record_hash(text):
            raise SumDBSecurityError(f"{what}: the database record does not match its log (tampered answer)")

    async def finish(self) -> None:
        """If the newest tree moved on during the job, prove every stored record against it.

        The go command inside trusts the newest tree any stored lookup shows and proves every
        record against that tree: the tiles it reads for that must be in the mirror. Once per
        job, not per advance: a live database grows every few seconds.
        """
        if not self._advanced or self._latest is None:
            return
        base = self.store.root / self.db.dir() / "lookup"
        paths = await trio.to_thread.run_sync(lambda: sorted(p for p in base.rglob("*") if p.is_file()))
        async with self._lock:
            tiles: dict[str, bytes] = {}
            for path in paths:
                rid, text, _ = tlog.parse_record(await trio.to_thread.run_sync(path.read_bytes))
                await self._prove_record(f"stored {path.relative_to(base)}", rid, text, self._latest.tree, tiles)
            await trio.to_thread.run_sync(self._save, tiles)
        self._advanced = False

    async def _hash_reader(self, tree: tlog.Tree, tiles: dict[str, bytes]) -> Callable[[list[int]], list[bytes]]:
        """A tlog hash reader for ``tree`` whose tiles come from the mirror or the upstream.

        Tile fetching is async, the tlog reader is not: fetch what the reader asks for, then
        let it run again on a thread (tiles already fetched are served from ``tiles``).
        """
        def read_tiles(ts: list[tlog.Tile]) -> list[bytes]:  # runs in a worker thread
            out = []
            for t in ts:
                key = t.path()
                if key not in tiles:
                    tiles[key] = trio.from_thread.run(self._get, key, MAX_TILE)
                out.append(tiles[key])
            return out

        return tlog.tile_hash_reader(tree, TILE_HEIGHT, read_tiles)



    def _save(self, files: dict[str, bytes]) -> None:
        """Publish lookups and tiles that are not in the mirror yet (write, fsync, rename)."""
        dirs: set[Path] = set()
        for path, data in files.items():
            rel = self._rel(path)
            if self.store.is_published(rel):
                continue
            partial = self.store.partial_path(rel)
            write_plain(partial, data)
            fsync_path(partial)
            dirs |= self.store.publish(partial, rel)
        self.store.sync_dirs(dirs)


def _read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink()
    return data
