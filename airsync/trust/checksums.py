"""Carrying the checksum database: look up, verify and store what the go command will ask for.

For each module version a job mirrors (unless its path is private), airsync fetches the lookup
answer from the database (through each upstream's ``/sumdb/<name>/``, or from a direct URL),
then, before anything is published: opens the signed tree note with the configured verifier
key; checks that tree against the newest tree seen before (kept in the state database) exactly as
the go command's client does (the older tree's hash recomputed from the newer tree's tiles), so a
database that forked its log stops the job loudly; proves the record's inclusion in the newest
tree with hash tiles; and hands the record's go.sum hashes to the mirror job, which checks the
downloaded .zip and .mod against them.

What is stored under ``MIRROR/sumdb/<name>/`` is what a go command inside needs to verify every
module offline in any order of lookups and whatever head it remembers (see ``carried``): every
lookup answer carries the newest head's signed note (the database's own record lines and its own
signature of a tree proved to include the record: nothing is re-signed), with the tiles that prove
each record in that head. Proxies answer lookups from caches at many different heads; tiles read
only to check those intermediate heads are used, never stored.

``finish`` (once per job) makes the carried database whole: heads found in stored lookups (an
older airsync, a crash mid-job) and heads queued by ``--prove-heads`` are merged; every stored
record is proved in the newest head and its answer rewritten to carry that head; every head the
mirror carried before (kept in the state database) is proved consistent with the newest one,
pairwise, and with itself from its own right edge (what a go command remembering it checks first
when it starts), and the tiles for that are stored, so a go command that remembers last month's head
verifies with this month's mirror. The heads' signed notes and the key are written beside the
database (``airsync/heads/<size>``, ``airsync/key``) for the checks inside.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog
import trio

from airsync.errors import AirsyncError, NotFoundError, UpstreamError
from airsync.fetch.fetcher import Fetcher
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.upstream import Upstream
from airsync.state import StateDB
from airsync.store import MirrorStore, fsync_path, write_plain
from airsync.trust import carried, note, sumdb, tlog
from airsync.trust.carried import Head

log = structlog.get_logger("airsync.checksums")

TILE_HEIGHT = carried.TILE_HEIGHT
MAX_LOOKUP = 1 << 20
MAX_TILE = 32 * (1 << TILE_HEIGHT)
MAX_TILE_CACHE = 4096  # tiles kept in memory for one job (8 KiB each at most)


class SumDBUnavailable(AirsyncError):
    """The checksum database cannot be reached through any upstream."""


class SumDBSecurityError(AirsyncError):
    """The database contradicts itself or its key: a forked log, a bad signature, a bad proof."""


def database_upstreams(db: sumdb.SumDB, upstreams: list[Upstream]) -> list[Upstream]:
    """Where the database's files are: the direct URL, or each proxy's /sumdb/<name>."""
    if db.url is not None:
        return [Upstream(db.url, False)]
    return [Upstream(f"{u.url}/{db.dir()}", u.next_on_any_error) for u in upstreams]


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
        self._tiles: dict[str, bytes] = {}  # tiles read this job (fetched or from the mirror)
        # Heads of lookups this job stored only in passing (rewritten by finish) were never carried;
        # the heads stored lookups had before this job touched them were.
        self._written: set[str] = set()
        self._preexisting: dict[tlog.Tree, Head] = {}
        saved = state.sumdb_latest(db.name)
        self._latest: Head | None = carried.open_head(saved, self.verifier) if saved else None

    def _rel(self, path: str) -> str:
        return f"{self.db.dir()}/{path}"

    async def _get(self, path: str, max_size: int) -> bytes:
        rel = self._rel(path)
        if self.store.is_published(rel):
            return await trio.to_thread.run_sync(self.store.read_bytes, rel)
        return await self._fetch(path, max_size)

    async def _fetch(self, path: str, max_size: int) -> bytes:
        got = await self.fetcher.fetch(path, max_size)
        return got if isinstance(got, bytes) else await trio.to_thread.run_sync(_read_and_remove, got)

    async def _get_tile(self, path: str) -> bytes:
        """A tile from the mirror or the database; a partial tile the database no longer serves is
        cut from the full one (as the go command's client does)."""
        try:
            return await self._get(path, MAX_TILE)
        except NotFoundError:
            t = tlog.parse_tile_path(path)
            if t.w == 1 << t.h:
                raise
            full = await self._get(tlog.Tile(t.h, t.l, t.n, 1 << t.h).path(), MAX_TILE)
            return full[: t.w * tlog.HASH_SIZE]

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
            rid, text, _, rest = carried.split_lookup(body)
            head = carried.open_head(rest, self.verifier)
        except AirsyncError as e:
            raise SumDBSecurityError(f"{mv}: bad checksum database answer: {e}") from None
        hashes = sumdb.record_hashes(text, mv)
        async with self._lock:
            await self._merge(head)
            latest = self._latest
            assert latest is not None
            used: dict[str, bytes] = {}
            await self._prove_records(str(mv), [(rid, text)], latest.tree, used)
            # The answer carries the newest head: the record is proved in it (above).
            new_body = body if rest == latest.note else carried.with_head(body, latest)
            if stored:
                self._preexisting.setdefault(head.tree, head)
            await trio.to_thread.run_sync(self._save, used)  # tiles before the answer that needs them
            await trio.to_thread.run_sync(self._save, {path: new_body}, new_body != body)
            self._written.add(path)
        return hashes, not stored

    async def _merge(self, head: Head) -> None:
        """Make ``head`` the newest if it is, after checking it against the one we had as the go
        command does (``carried.check_consistent``: the older tree from the newer tree's tiles)."""
        old = self._latest
        if old is None:
            self._set_latest(head)
            return
        if head.tree == old.tree:
            return
        try:
            await self._consistent(old.tree, head.tree, {})
        except carried.Forked as e:
            raise self._fork(old.tree, head.tree, e) from None
        if head.n > old.n:
            self._set_latest(head)
            log.info("checksum database tree advanced", database=self.db.name, size=head.n)

    def _set_latest(self, head: Head) -> None:
        self._latest = head
        self.state.set_sumdb_latest(self.db.name, head.note)

    async def _consistent(self, a: tlog.Tree, b: tlog.Tree, used: dict[str, bytes]) -> None:
        """carried.check_consistent with tiles from the mirror or the database (into ``used``)."""
        await self._with_tiles(lambda read: carried.check_consistent(a, b, read), used)

    async def _with_tiles(self, check: Callable[[Callable[[str], bytes | None]], None], used: dict[str, bytes]) -> None:
        """Run a pure tile check whose tiles come from the mirror or the database.

        The check is synchronous and asks for one tile at a time; it runs on a worker thread
        and each tile it asks for is brought from the event loop (mirror first, then upstream).
        Fetch failures are kept aside and raised as what they are, not as a missing tile.
        """
        failure: list[AirsyncError] = []

        def read(path: str) -> bytes | None:  # runs in a worker thread
            if path not in self._tiles:
                try:
                    data = trio.from_thread.run(self._get_tile, path)
                except AirsyncError as e:
                    failure.append(e)
                    return None
                if len(self._tiles) >= MAX_TILE_CACHE:
                    self._tiles.clear()
                self._tiles[path] = data
            used[path] = self._tiles[path]
            return self._tiles[path]

        try:
            await trio.to_thread.run_sync(check, read)
        except carried.MissingTile as e:
            why = failure[0] if failure else e
            raise SumDBSecurityError(f"cannot read tile {e.path} of checksum database {self.db.name}: {why}") from None

    def _fork(self, a: tlog.Tree, b: tlog.Tree, why: object = "") -> SumDBSecurityError:
        return SumDBSecurityError(
            f"SECURITY ERROR: checksum database {self.db.name} served inconsistent trees "
            f"(size {a.n} hash {a.hash.hex()} vs size {b.n} hash {b.hash.hex()}): its log has forked; "
            f"stopping ({why})"
        )

    async def _prove_records(self, what: str, records: list[tuple[int, bytes]], tree: tlog.Tree,
                             used: dict[str, bytes]) -> None:
        try:
            await self._with_tiles(lambda read: carried.check_included(records, tree, read), used)
        except carried.NotIncluded as e:
            if "tampered" in str(e):
                raise SumDBSecurityError(f"{what}: the database record does not match its log (tampered answer)") from None
            raise SumDBSecurityError(f"{what}: {e}") from None
        except SumDBSecurityError as e:
            raise SumDBSecurityError(f"{what}: cannot prove the database record: {e}") from None
        except tlog.TileError as e:
            raise SumDBSecurityError(f"{what}: cannot prove the database record: {e}") from None

    async def finish(self) -> None:
        """Make the carried database whole for the go command (see the module docstring)."""
        lookups = await trio.to_thread.run_sync(self.store.read_tree, f"{self.db.dir()}/lookup")
        pending = self.state.sumdb_heads(self.db.name, "pending")
        if self._latest is None and not lookups and not pending:
            return
        async with self._lock:
            # Heads the mirror holds or was told of: each is checked against the newest as it merges.
            found: dict[tlog.Tree, Head] = dict(self._preexisting)
            for rel, body in lookups.items():
                if f"lookup/{rel}" in self._written:
                    continue
                try:
                    _, _, _, rest = carried.split_lookup(body)
                    head = carried.open_head(rest, self.verifier)
                except AirsyncError as e:
                    raise SumDBSecurityError(f"stored {rel}: bad checksum database answer: {e}") from None
                found.setdefault(head.tree, head)
            queued = []
            for msg in pending:
                try:
                    queued.append(carried.open_head(msg, self.verifier))
                except AirsyncError as e:
                    raise SumDBSecurityError(f"a head given to --prove-heads does not open with the key: {e}") from None
            for head in sorted([*found.values(), *queued], key=lambda h: h.n):
                await self._merge(head)
            latest = self._latest
            assert latest is not None

            # Every record in the newest head, one pass over the tiles (then one by one to name a failure).
            keep: dict[str, bytes] = {}
            records = []
            for rel, body in lookups.items():
                rid, text, _, _ = carried.split_lookup(body)
                records.append((rel, rid, text))
            try:
                await self._prove_records("stored lookups", [(r, t) for _, r, t in records], latest.tree, keep)
            except SumDBSecurityError:
                for rel, rid, text in records:
                    await self._prove_records(f"stored {rel}", [(rid, text)], latest.tree, keep)

            # Every head carried before (and every other head found) against each newer one.
            carried_before = []
            for msg in self.state.sumdb_heads(self.db.name):
                try:
                    carried_before.append(carried.open_head(msg, self.verifier))
                except AirsyncError as e:
                    raise SumDBSecurityError(f"a head this mirror carried does not open with the key: {e}") from None
            heads = {h.tree: h for h in [*carried_before, *found.values(), *queued, latest]}
            ordered = sorted(heads.values(), key=lambda h: h.n)
            for i, a in enumerate(ordered):
                for b in ordered[i:]:  # a against itself too: the go command starts with that check
                    try:
                        await self._consistent(a.tree, b.tree, keep)
                    except carried.Forked as e:
                        raise self._fork(a.tree, b.tree, e) from None

            rewritten = {
                f"lookup/{rel}": carried.with_head(body, latest)
                for rel, body in lookups.items()
                if carried.split_lookup(body)[3] != latest.note
            }
            extra = {carried.head_path(h.n): h.note for h in ordered}
            extra[carried.KEY_FILE] = (self.db.vkey + "\n").encode()
            await trio.to_thread.run_sync(self._save, keep)
            await trio.to_thread.run_sync(self._save, rewritten, True)
            await trio.to_thread.run_sync(self._save, extra)
            self.state.add_sumdb_heads(self.db.name, [(h.n, h.note) for h in ordered])
            if rewritten:
                log.info("checksum database lookups now carry the newest tree", database=self.db.name,
                         size=latest.n, rewritten=len(rewritten))

    def _save(self, files: dict[str, bytes], replace: bool = False) -> None:
        """Publish database files (write, fsync, rename); ``replace``: also over different bytes."""
        dirs: set[Path] = set()
        for path, data in files.items():
            rel = self._rel(path)
            if self.store.is_published(rel):
                if not replace or self.store.read_bytes(rel) == data:
                    continue
            partial = self.store.partial_path(rel)
            write_plain(partial, data)
            fsync_path(partial)
            dirs |= self.store.publish(partial, rel, replace=replace)
        self.store.sync_dirs(dirs)


def _read_and_remove(path: Path) -> bytes:
    data = path.read_bytes()
    path.unlink()
    return data
