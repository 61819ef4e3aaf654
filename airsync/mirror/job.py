"""A mirror job: fetch, verify and publish every file a plan of module versions needs.

Given a request rather than a plan, the job resolves its version queries and module graphs
(``resolve``) through the same upstreams, then mirrors what they need. The module versions
named exactly are certain before that, and their ``.info`` and ``.zip`` download while the
graphs are resolved; their ``.mod`` is the one the resolver reads, handed over when it is done.
For each wanted module version the job fetches the ``.mod``, ``.info`` and (when wanted) the
``.zip`` concurrently, bounded by a global limit on files in flight. A file already in the tree
costs nothing: it was verified when it was published, so it is skipped without any request.
Each downloaded file is verified before it becomes visible (``verify_file``): the ``.zip``
passes the module zip rules and its h1 must equal a go.sum hash, the ``.mod`` must match the
``/go.mod`` hash and name the module, the ``.info`` must be JSON naming the version. Bytes that
fail are moved aside (``.airsync/rejected``) and reported with module, expected and actual
hash. Once a version's files are all present it is added to ``@v/list``. Each published file's
chunk signature (``signatures``) is recorded as it is published, for sync, serve and pull.
A small version lands in the event loop's thread but for the wait for its flush; a larger one,
or one bound for a bucket or a network or FUSE file system, in a worker thread.

One failing module never stops the others; a failure of the mirror's own disk (ENOSPC, EIO,
EROFS) stops the whole job, since nothing else could be published either.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import errno
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
import trio

from airsync.carry import chunks
from airsync.carry.signatures import SignatureCache, SignatureCacheError
from airsync.errors import (
    AirsyncError,
    HashMismatch,
    NotFoundError,
    UpstreamError,
    VerifyError,
)
from airsync.fetch import auth
from airsync.fetch.fetcher import Fetcher, FetchSettings, Stats
from airsync.fetch.slots import ClientSlots
from airsync.goproxy import dirhash, gomod, modpath, modzip
from airsync.goproxy.modpath import ModuleVersion
from airsync.goproxy.query import is_query
from airsync.goproxy.upstream import Upstream
from airsync.goproxy.wants import ModuleWant, Request
from airsync.goproxy.wants import plan as plan_wants
from airsync.mirror.resolve import Resolution, Resolver, plan_for
from airsync.state import StateDB
from airsync.store import Flusher, MirrorStore, StagedList, StoreError, write_plain
from airsync.trust.sumdb import RecordError, SumDB, matches_patterns

if TYPE_CHECKING:
    from airsync.objstore.url import StoreTarget

log = structlog.get_logger("airsync.mirror")

MAX_SIZE = {"zip": modzip.MAX_ZIP_FILE, "mod": modzip.MAX_GO_MOD, "info": 1 << 20}

_FATAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


@dataclass(frozen=True)
class Failure:
    module: str
    file: str
    message: str


@dataclass
class Summary:
    fetched: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    bytes: int = 0
    resumed_bytes: int = 0
    retries: int = 0
    seconds: float = 0.0
    unpinned: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)  # pinned by go.sum, database unreachable
    sumdb_carried: int = 0  # checksum database records newly proved and stored
    fatal: str | None = None
    problems: list[str] = field(default_factory=list)  # what resolving could not answer
    resolution: Resolution | None = None  # queries answered and graphs loaded, when resolved
    plan: list[ModuleWant] = field(default_factory=list)  # every module version the job mirrored

    @property
    def ok(self) -> bool:
        return not self.failures and not self.problems and self.fatal is None


def verify_file(ext: str, path: Path, want: ModuleWant, data: bytes | None = None) -> str | None:
    """Raise VerifyError unless the downloaded file is exactly what the plan pins; returns the
    file's go.sum hash (None for .info). ``data``: the bytes just written to ``path``, still in
    memory (a small file is checked from them, not read back)."""
    mv = want.module
    if ext == "zip":
        actual = modzip.check_zip(path, mv, data)
        if want.zip_h1 and actual not in want.zip_h1:
            raise HashMismatch(str(mv), "zip", " or ".join(sorted(want.zip_h1)), actual)
        return actual
    if data is None:
        data = path.read_bytes()
    if ext == "mod":
        actual = dirhash.hash_gomod(data)
        if want.mod_h1 and actual not in want.mod_h1:
            raise HashMismatch(str(mv), "go.mod", " or ".join(sorted(want.mod_h1)), actual)
        # A dependency's go.mod, read as the go command reads it (modfile.ParseLax).
        parsed, problems = gomod.parse_gomod(data, f"{mv}.mod", lax=True)
        if problems:
            raise VerifyError(str(mv), f".mod does not parse: {problems[0]}")
        if parsed.module_path is not None and parsed.module_path != mv.path:
            raise VerifyError(str(mv), f".mod declares module {parsed.module_path!r}, not {mv.path!r}")
        return actual
    if ext == "info":
        try:
            info = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise VerifyError(str(mv), f".info is not valid JSON: {e}") from None
        if not isinstance(info, dict) or info.get("Version") != mv.version:
            got = info.get("Version") if isinstance(info, dict) else None
            raise VerifyError(str(mv), f".info names version {got!r}, expected {mv.version!r}")
        return None
    raise ValueError(ext)


def _certain(request: Request) -> list[ModuleWant]:
    """The wants of a request that resolving cannot change: each module version named exactly
    (not a query) is in the plan whatever its graph holds, with its zip, and pinned by go.sum
    alone; ``resolve.plan_for`` gives it the same want (a test holds them equal)."""
    named = {ModuleVersion(m.path, m.version): m.origin for m in request.modules if not is_query(m.version)}
    return [w for w in plan_wants(request.sum_lines, [], list(named.items())) if w.module in named]


#: A module version lands in the event loop's thread when its new files, all in memory, are at
#: most this many bytes, and its zip declares at most this many entries and bytes of content:
#: checking a zip inflates and hashes every entry (at most one piece past its declared size), so
#: its compressed size alone bounds nothing (250 KB of zeros inflate to 250 MB). At these limits
#: checking a zip blocks the loop about 5 ms at most, measured: 2 MiB of zeros in one entry, or
#: 499 small files (a 250 KB zip of Go source: 2.4 ms).
LAND_HERE_MAX = 256 << 10
LAND_HERE_ENTRIES = 500
LAND_HERE_CONTENT = 2 << 20


@dataclass
class _FlushBatch:
    paths: list[Path] = field(default_factory=list)
    done: bool = False
    error: Exception | None = None


class _LoopFlushes:
    """``Flusher.files`` for the tasks of one event loop: those that ask while a flush runs share
    the next one, a single worker call, instead of a thread each. Like the Flusher's own group
    commit, a task's files are covered by a flush that starts after it asked. The task that runs
    a flush runs it to the end even if it is cancelled meanwhile (a syncfs, milliseconds): the
    others of its batch are waiting on it."""

    def __init__(self, flusher: Flusher) -> None:
        self.flusher = flusher
        self._next: _FlushBatch | None = None
        self._running = False
        self._round = trio.Event()  # set when the running flush returns

    async def files(self, paths: list[Path]) -> None:
        if not paths:
            return
        if self._next is None:
            self._next = _FlushBatch()
        batch = self._next
        batch.paths += paths
        while not batch.done:
            if self._running:
                await self._round.wait()
                continue
            self._running, todo, self._next = True, batch, None
            todo.error = OSError(errno.EIO, "the flush did not complete")  # unless it returns
            try:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self.flusher.files, todo.paths)
                todo.error = None
            except Exception as e:
                todo.error = e
            finally:
                todo.done, self._running = True, False
                self._round.set()
                self._round = trio.Event()
        if batch.error is not None:  # each task its own copy (raising one changes its traceback)
            raise copy.copy(batch.error) from batch.error


@dataclass
class _Checked:
    """A landing's files once verified: the outcome per file, and what the flush must cover."""

    result: dict[str, AirsyncError | None] = field(default_factory=dict)
    h1: dict[str, str | None] = field(default_factory=dict)
    good: list[str] = field(default_factory=list)
    listing: StagedList | None = None
    latest: tuple[Path, Path] | None = None
    to_flush: list[Path] = field(default_factory=list)
    sigs: dict[str, chunks.FileSignature] = field(default_factory=dict)


@dataclass
class _ModuleRun:
    """One module version in flight: its fetched files, and which were there already."""

    want: ModuleWant
    got: dict[str, Path | bytes] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)
    pending: int = 0
    fetched: trio.Event = field(default_factory=trio.Event)


class MirrorJob:
    def __init__(
        self,
        root: Path | StoreTarget,
        upstreams: list[Upstream],
        settings: FetchSettings,
        stats: Stats | None = None,
        sumdb: SumDB | None = None,
        private: str = "",
    ) -> None:
        """``sumdb``: the checksum database to carry and check against (None: off);
        ``private``: GONOSUMDB-style globs of module paths never looked up in it."""
        # Whatever was opened is closed again if a later step fails: in the long-running
        # service a leaked lock would refuse every later job on this mirror.
        with contextlib.ExitStack() as opened:
            if isinstance(root, (str, os.PathLike)):
                self.store = MirrorStore(Path(root))
            else:  # an object store: its client (obstore) is imported only for one
                from airsync.objstore.mirror import open_store

                self.store = open_store(root)
            opened.callback(self.store.close)
            self.state = StateDB(self.store.state_path)
            opened.callback(self.state.close)
            self.signatures = SignatureCache(self.store.state_path)
            opened.callback(self.signatures.close)
            self.flusher = self.store.make_flusher()
            self.store.clean_partial(self.state.resumable())
            opened.pop_all()
        self.upstreams = upstreams
        self.settings = settings
        self.stats = stats or Stats()
        self.summary = Summary()
        self._list_locks: dict[str, trio.Lock] = {}
        self._unpinned: list[tuple[str, str]] = []
        self._vouched: list[tuple[str, str]] = []  # unpinned by go.sum, vouched for by the database
        self._files = trio.CapacityLimiter(settings.concurrency)
        # Small versions land in the event loop where file calls are quick: not on a bucket, nor
        # on a network or FUSE file system, where each one waits on the wire (a thread's work).
        self._here = not self.store.remote and self.flusher.local
        self._flushes = _LoopFlushes(self.flusher)
        self.sumdb = sumdb
        self.private = private
        self._checksums = None  # a checksums.Checksums when a database is carried
        self._fresh_record: dict[ModuleVersion, bool] = {}
        self._refused: dict[ModuleVersion, str] = {}  # why the database check refused a version
        self._prefetched: dict[str, bytes] = {}
        self._latest_done: set[str] = set()  # modules whose @latest was written as a version landed
        # Signs large files beside the landing threads; its threads start at the first one.
        self._signing = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="sign")

    async def run(self, wants: list[ModuleWant] | Request) -> Summary:
        """Mirror a plan, or a request: its queries and module graphs are resolved first
        (``mirror.resolve``), with the same connections and the same upstreams."""
        started = time.monotonic()
        credentials, notes = await trio.to_thread.run_sync(auth.load, self.settings.goauth, self.settings.netrc)
        for note in notes:
            log.warning("credentials", note=note)
        # Credentials in a proxy URL become headers like the others, so that no URL the job logs,
        # records for resume or reports carries them.
        self.upstreams = [auth.take_userinfo(up, credentials) for up in self.upstreams]
        slots = ClientSlots(
            self.settings.per_host,
            per_host_max=self.settings.per_host_max,
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            http2=self.settings.http2,
            credentials=credentials,
            insecure=self.settings.insecure,
        )
        try:
            async with slots:
                fetcher = Fetcher(slots, self.upstreams, self.store, self.state, self.settings, self.stats)
                if self.sumdb is not None:
                    # Imported here: ed25519 (cryptography) costs start-up time a job without a
                    # checksum database does not need to pay.
                    from airsync.trust.checksums import Checksums, database_upstreams

                    db_fetcher = Fetcher(
                        slots, database_upstreams(self.sumdb, self.upstreams), self.store, self.state,
                        self.settings, self.stats,
                    )
                    self._checksums = Checksums(self.sumdb, db_fetcher, self.store, self.state)
                unresolved: AirsyncError | OSError | None = None
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    dispatched: set[ModuleVersion] = set()
                    if isinstance(wants, Request):
                        request, resolved = wants, trio.Event()
                        early = _certain(request) if request.resolves else []
                        dispatched = {w.module for w in early}
                        self.summary.plan = early  # what the job took on so far, if it stops here
                        self.stats.files_total = sum(len(w.files()) for w in early)
                        nursery.start_soon(self._dispatch, nursery, fetcher, early, resolved)
                        try:
                            wants = await self._plan(fetcher, request)
                        except (AirsyncError, OSError) as e:
                            # Raised after the nursery as before, not inside an exception group.
                            unresolved = e
                            nursery.cancel_scope.cancel()
                        resolved.set()
                    if unresolved is None:
                        self.summary.plan = wants
                        self.stats.files_total = sum(len(w.files()) for w in wants)
                        await self._dispatch(nursery, fetcher, [w for w in wants if w.module not in dispatched])
                if unresolved is not None:
                    raise unresolved
                if self._checksums is not None and not self.summary.fatal:
                    try:
                        await self._checksums.finish()
                    except AirsyncError as e:
                        self.summary.fatal = str(e)
                if not self.summary.fatal:
                    await self._update_latest(self.summary.plan)
                try:
                    await trio.to_thread.run_sync(self.flusher.settle)
                except OSError as e:
                    self.summary.fatal = self.summary.fatal or f"mirror disk error making renames durable: {e.strerror}"
            try:
                self.state.mark_unpinned(self._unpinned)
                self.state.forget_unpinned(self._vouched)
            except OSError as e:
                self.summary.fatal = self.summary.fatal or f"mirror disk error on {self.state.path}: {e.strerror}"
        finally:
            self._signing.shutdown(wait=False, cancel_futures=True)  # each landing waited for its own
            try:
                self.signatures.flush()
            except SignatureCacheError as e:  # only a cache: sync or pull signs the files again
                log.warning("signatures not recorded", error=str(e))
            self.signatures.close()
            self.state.close()
            self.store.close()
        s = self.summary
        s.bytes = self.stats.bytes_received
        s.resumed_bytes = self.stats.bytes_resumed
        s.retries = self.stats.retries
        s.seconds = time.monotonic() - started
        return s

    async def _plan(self, fetcher: Fetcher, request: Request) -> list[ModuleWant]:
        res = None
        if request.resolves:
            # As many go.mods in flight as files in the downloads: the host's lane, which grows
            # while latency is the limit, is what bounds them (with 32 here, resolving 303 go.mods
            # 50 ms away took 0.6 s before the first download).
            resolver = Resolver(lambda rel, size: self._get(fetcher, rel, size), self.settings.concurrency)
            res = await resolver.resolve(request)
            self.summary.resolution = res
            self.summary.problems += res.problems
            for p in res.problems:
                log.error("not resolved", problem=p)
            self._prefetched = {modpath.proxy_file(mv, "mod"): data for mv, data in res.mods.items()}
        return plan_for(request, res)

    async def _update_latest(self, wants: list[ModuleWant]) -> None:
        """``@latest`` of every module the plan touched follows its ``@v/list``: a proxy without
        it answers the go command's latest queries by time, which a mirror cannot stamp."""
        # Versions that joined a list this run brought their @latest with them.
        paths = sorted({w.module.path for w in wants if w.need_zip} - self._latest_done)

        try:
            await trio.to_thread.run_sync(self.store.update_latest_many, paths, self.flusher)
        except OSError as e:
            self._disk_error(e, "@latest")

    async def _get(self, fetcher: Fetcher, relpath: str, max_size: int) -> bytes | None:
        """A small upstream file for resolving, in memory; None when no upstream has it. A go.mod
        the mirror already holds was verified when it landed: it is read from there."""
        if relpath.endswith(".mod") and self.store.is_published(relpath):
            return await trio.to_thread.run_sync(self.store.read_bytes, relpath)
        try:
            got = await fetcher.fetch(relpath, max_size)
        except NotFoundError:
            return None
        if isinstance(got, Path):  # from a file:// upstream, or large: read, then forget the partial
            data = await trio.to_thread.run_sync(got.read_bytes)
            got.unlink(missing_ok=True)
            self.state.finish_download(relpath)
            return data
        return got

    async def _dispatch(self, nursery: trio.Nursery, fetcher: Fetcher, wants: list[ModuleWant],
                        resolved: trio.Event | None = None) -> None:
        """Start file downloads in plan order, each as soon as a file slot is free.

        trio runs new tasks in a deliberately shuffled order, so tasks that took their own
        slots would start in random order: large files could wait behind every small one.
        Each module version's task only waits for its files, then lands them together.
        ``resolved``: wants dispatched while the request is resolved; their ``.mod`` waits for
        it (the resolver may be reading that very file: one fetch, its bytes handed over).
        """
        for i, want in enumerate(wants, 1):
            if i % 256 == 0:
                await trio.lowlevel.checkpoint()  # thousands already published: let the others run
            run = _ModuleRun(want)
            todo = []
            for ext, relpath in want.files():
                if self.store.is_published(relpath):
                    run.present.add(ext)
                    self.stats.files_skipped += 1
                    self.summary.skipped += 1
                else:
                    todo.append((ext, relpath))
            run.pending = len(todo)
            nursery.start_soon(self._module, run)
            for ext, relpath in todo:
                if ext == "mod" and resolved is not None:
                    nursery.start_soon(self._fetch_when, resolved, fetcher, run, ext, relpath)
                    continue
                ticket = object()
                await self._file_slot(ticket)
                nursery.start_soon(self._fetch, fetcher, run, ext, relpath, ticket)

    async def _fetch_when(self, resolved: trio.Event, fetcher: Fetcher, run: _ModuleRun, ext: str,
                          relpath: str) -> None:
        await resolved.wait()
        ticket = object()
        await self._file_slot(ticket)
        await self._fetch(fetcher, run, ext, relpath, ticket)

    async def _module(self, run: _ModuleRun) -> None:
        want = await self._vouch(run.want)  # while the files download
        if run.pending:
            await run.fetched.wait()
        if self.summary.fatal:
            return
        if want is None:
            # Refused by the database check: each file that came (or was here) is failed with
            # the reason once; one that could not be fetched was reported already.
            why = self._refused.pop(run.want.module)
            for ext, rel in run.want.files():
                if ext in run.got or ext in run.present:
                    self._fail(str(run.want.module), rel, why)
            return
        got, present = run.got, run.present
        exts = {ext for ext, _ in want.files()}
        if self._fresh_record.get(want.module) and present & {"zip", "mod"}:
            await self._check_present(want, present)
        if got or (present == exts and want.need_zip):
            # Versions of one module share @v/list: one lands at a time.
            lock = self._list_locks.setdefault(want.module.path, trio.Lock())
            try:
                async with lock:
                    rest = present == exts - set(got)
                    if self._lands_here(got):
                        landed = await self._land_here(want, got, rest)
                    else:
                        landed = await trio.to_thread.run_sync(self._land, want, got, rest)
            except OSError as e:
                self._disk_error(e, str(want.module))
                return
            finally:
                for ext in got:  # landed or set aside: either way not to be resumed
                    self.state.finish_download(modpath.proxy_file(want.module, ext))
            for ext, err in landed.items():
                relpath = modpath.proxy_file(want.module, ext)
                if err is None:
                    present.add(ext)
                    self.stats.files_done += 1
                    self.summary.fetched += 1
                else:
                    self._fail(str(want.module), relpath, str(err))
        if present == exts and not want.pinned:
            self._unpinned.append((want.module.path, want.module.version))
            self.summary.unpinned.append(str(want.module))

    async def _vouch(self, want: ModuleWant) -> ModuleWant | None:
        """The want with the checksum database's hashes, once proved; None if it must not land.

        go.sum and the database must agree where both speak. A database that cannot be
        reached leaves go.sum-pinned versions to go.sum (with a warning), and fails versions
        that nothing else vouches for.
        """
        mv = want.module
        if self._checksums is None or matches_patterns(self.private, mv.path):
            return want
        from airsync.trust.checksums import SumDBSecurityError, SumDBUnavailable
        try:
            rec, fresh = await self._checksums.lookup(mv)
        except SumDBSecurityError as e:
            self.summary.fatal = str(e)
            log.error("stopping: checksum database security error", error=str(e))
            self._nursery.cancel_scope.cancel()
            return None
        except (SumDBUnavailable, UpstreamError, RecordError) as e:
            if want.pinned and not isinstance(e, RecordError):
                self.summary.not_carried.append(str(mv))
                return want
            if isinstance(e, RecordError):
                why = str(e)
            elif isinstance(e, NotFoundError):
                why = f"no go.sum line pins it, and the checksum database {self.sumdb.name} has no record of it"
            else:
                why = f"no go.sum line pins it, and the checksum database is unavailable: {e}"
            self._refused[mv] = why
            return None
        for what, ours, theirs in (("zip", want.zip_h1, rec.zip_h1), ("go.mod", want.mod_h1, rec.mod_h1)):
            if ours and theirs not in ours:
                self._refused[mv] = (
                    f"SECURITY: go.sum and checksum database {self._checksums.db.name} disagree on the "
                    f"{what} hash: go.sum says {' or '.join(sorted(ours))}, the database says {theirs}"
                )
                return None
        self._fresh_record[mv] = fresh
        if not want.pinned:
            self._vouched.append((mv.path, mv.version))
        self.summary.sumdb_carried += fresh
        return dataclasses.replace(
            want, zip_h1=frozenset([rec.zip_h1]), mod_h1=frozenset([rec.mod_h1]), pinned=True
        )

    async def _check_present(self, want: ModuleWant, present: set[str]) -> None:
        """Files published before this database record was seen must match it too."""

        def check() -> list[tuple[str, str]]:
            bad = []
            for ext in sorted(present & {"zip", "mod"}):
                rel = modpath.proxy_file(want.module, ext)
                try:
                    with self.store.local_copy(rel) as path:
                        verify_file(ext, path, want)
                except VerifyError as e:
                    bad.append((rel, f"published file disagrees with the checksum database: {e.detail}"))
            return bad

        for rel, msg in await trio.to_thread.run_sync(check):
            self._fail(str(want.module), rel, msg)

    async def _file_slot(self, ticket: object) -> None:
        """One of the ``concurrency`` file slots for ``ticket``; taken at once while slots are free.

        trio's ``acquire`` yields to the scheduler even then, and a scheduler pass while dozens
        of bodies stream is milliseconds: a dispatcher that yields per file started one file a
        pass, ~300 a second, and kept a lane 50 ms away a third full. Without yielding it starts
        as many as there are free slots (at most ``concurrency``) in one pass.
        """
        try:
            self._files.acquire_on_behalf_of_nowait(ticket)
        except trio.WouldBlock:
            await self._files.acquire_on_behalf_of(ticket)

    async def _fetch(self, fetcher: Fetcher, run: _ModuleRun, ext: str, relpath: str, ticket: object) -> None:
        try:
            prefetched = self._prefetched.pop(relpath, None)  # a go.mod read while resolving
            run.got[ext] = prefetched if prefetched is not None else await fetcher.fetch(relpath, MAX_SIZE[ext])
        except AirsyncError as e:
            self._fail(str(run.want.module), relpath, str(e))
        except OSError as e:
            self._disk_error(e, relpath)
        finally:
            self._files.release_on_behalf_of(ticket)
            run.pending -= 1
            if run.pending == 0:
                run.fetched.set()

    def _land(self, want: ModuleWant, got: dict[str, Path | bytes], rest_present: bool) -> dict[str, AirsyncError | None]:
        """In a worker thread (a small version: ``_land_here``): verify a module version's new
        files and publish them together.

        New files are written, verified, fsynced and renamed into the tree; the renames are
        made durable by the next flush (``Flusher.dirs_later``). The version joins ``@v/list``
        in the same pass when all its files are there (``rest_present``: the ones not in
        ``got`` were already published). About one shared syncfs a module version: for
        thousands of small files the flushes and hand-overs, not the bytes, are what costs.
        Bytes that fail verification are set aside; the others are still published.
        """
        partials = self._write_partials(want, got)
        # A large download is signed in another thread while this one verifies it (hashlib, zlib
        # and the chunker release the GIL): the last big file's landing is the job's tail, and
        # then two cores are free.
        aside = {ext: self._signing.submit(chunks.signature_of_file, partials[ext])
                 for ext, data in got.items() if isinstance(data, Path)}
        try:
            checked = self._check(want, got, partials, rest_present)
            self.flusher.files(checked.to_flush)
            checked.sigs.update((ext, aside[ext].result()) for ext in checked.good if ext not in checked.sigs)
            result, signed = self._publish(want, partials, checked)
            if due := self.signatures.gather(signed):
                self._record(want, due)
            return result
        finally:
            for f in aside.values():
                f.cancel()
            concurrent.futures.wait(aside.values())  # none left reading a file once this returns

    def _lands_here(self, got: dict[str, Path | bytes]) -> bool:
        """Whether a version with these new files lands in the event loop (see LAND_HERE_MAX)."""
        if not self._here or not all(isinstance(d, bytes) for d in got.values()):
            return False
        if sum(len(d) for d in got.values()) > LAND_HERE_MAX:
            return False
        if "zip" not in got:
            return True
        declared = modzip.declared_contents(got["zip"])
        return declared is not None and declared[0] <= LAND_HERE_ENTRIES and declared[1] <= LAND_HERE_CONTENT

    async def _land_here(self, want: ModuleWant, got: dict[str, Path | bytes], rest_present: bool) -> dict[str, AirsyncError | None]:
        """``_land`` for a small version of a local mirror, in the event loop's thread but for
        the wait for its flush: the work is a millisecond or two of file calls and hashing (and a
        merge of ``@v/list``: 2 ms at 2,000 versions), and a worker thread per version cost more
        in hand-overs of the interpreter lock than it saved (16% of a mix's CPU samples were
        futex waits and wakes; closure 0.42 -> 0.32 s)."""
        partials = self._write_partials(want, got)
        checked = self._check(want, got, partials, rest_present)
        await self._flushes.files(checked.to_flush)
        result, signed = self._publish(want, partials, checked)
        if due := self.signatures.gather(signed):  # a batch of the cache's rows: a transaction
            with trio.CancelScope(shield=True):  # rows out of the cache's batch: write them, or lose them
                await trio.to_thread.run_sync(self._record, want, due)
        return result

    def _record(self, want: ModuleWant, rows: list) -> None:
        try:
            self.signatures.put_many(rows)
        except SignatureCacheError as e:  # only a cache: sync or pull signs the files again
            log.warning("signatures not recorded", module=str(want.module), error=str(e))

    def _write_partials(self, want: ModuleWant, got: dict[str, Path | bytes]) -> dict[str, Path]:
        partials: dict[str, Path] = {}
        for ext, data in got.items():
            if isinstance(data, bytes):
                partials[ext] = self.store.partial_path(modpath.proxy_file(want.module, ext))
                write_plain(partials[ext], data)
            else:
                partials[ext] = data  # a large download, already fsynced
        return partials

    def _check(self, want: ModuleWant, got: dict[str, Path | bytes], partials: dict[str, Path],
               rest_present: bool) -> _Checked:
        """Verify the partial files, stage ``@v/list`` and ``@latest``, sign the small files."""
        mv = want.module
        c = _Checked()
        for ext, partial in partials.items():
            try:
                data = got[ext]
                c.h1[ext] = verify_file(ext, partial, want, data if isinstance(data, bytes) else None)
                c.result[ext] = None
            except VerifyError as e:
                kept = self.store.reject(partial, modpath.proxy_file(mv, ext))
                c.result[ext] = VerifyError(str(mv), f"{e.detail} (bytes kept in {kept})")
        c.good = [ext for ext, err in c.result.items() if err is None]
        if want.need_zip and rest_present and len(c.good) == len(got):
            c.listing = self.store.prepare_list(modpath.list_file(mv.path), mv.version)
            if c.listing is not None and not self.store.remote:  # a store swaps @latest after its list
                # @latest follows the new list in the same flushes (not in a pass of its own).
                info = got.get("info")
                if isinstance(info, Path):
                    info = info.read_bytes()
                c.latest = self.store.stage_latest(mv.path, c.listing.text, {mv.version: info} if info else None)
                self._latest_done.add(mv.path)
        # Durable before visible; one syncfs is shared by every version landing meanwhile.
        c.to_flush = ([partials[ext] for ext in c.good if isinstance(got[ext], bytes)]
                      + ([c.listing[0]] if c.listing is not None else [])
                      + ([c.latest[0]] if c.latest is not None else []))
        # Signed now, while the bytes are at hand: sync, serve and pull need it later.
        c.sigs = {ext: chunks.signature_of_bytes(got[ext]) for ext in c.good if isinstance(got[ext], bytes)}
        return c

    def _publish(self, want: ModuleWant, partials: dict[str, Path], c: _Checked) -> tuple[dict[str, AirsyncError | None], list]:
        """Rename the flushed files into the tree and commit the list; the outcome per file, and
        the signature cache's rows for the files published."""
        mv = want.module
        dirs: set[Path] = set()
        signed = []
        for ext in c.good:
            rel = modpath.proxy_file(mv, ext)
            dirs |= self.store.publish(partials[ext], rel)
            if (st := self.store.stat(rel)) is not None:
                signed.append((rel, st, c.sigs[ext], c.h1[ext]))
        if c.listing is not None:
            dirs |= self.store.commit_list(c.listing)
        if c.latest is not None:
            os.replace(*c.latest)
            dirs.add(c.latest[1].parent)
        # The renames ride on the next version's syncfs (one a version, not two); the job settles
        # the rest before it reports. A power cut before then loses only renames: the files come
        # back to their partial names, which a rerun fetches again.
        self.flusher.dirs_later(dirs)
        return c.result, signed

    def _disk_error(self, e: OSError, where: str) -> None:
        if e.errno in _FATAL_ERRNOS:
            self.summary.fatal = f"mirror {'store' if self.store.remote else 'disk'} error on {where}: {e.strerror}"
            log.error("stopping: mirror disk error", where=where, error=e.strerror)
            self._nursery.cancel_scope.cancel()
        else:
            self._fail(where, where, f"{e.strerror or e}")

    def _fail(self, module: str, relpath: str, message: str) -> None:
        self.stats.files_failed += 1
        self.summary.failures.append(Failure(module, relpath, message))
        log.error("file failed", module=module, file=relpath, error=message)


__all__ = ["MirrorJob", "Summary", "Failure", "verify_file", "StoreError"]
