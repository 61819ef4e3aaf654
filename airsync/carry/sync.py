"""``airsync sync``: copy a mirror to a directory target (a USB medium, a mounted share), durably.

Only missing or changed files cross. What the target holds is known from its previous signed
manifest plus a stat check (``verify=True`` re-hashes the target's bytes instead); every source
file's size, sha256, xxh3_128, content-defined chunks and (for .zip and .mod) go.sum hash are
computed once and cached in the mirror's state database, keyed by size and mtime.

Before writing, the target is checked: free space for what must be written, the FAT32 4 GiB
file limit, case-insensitive name collisions, symlinks where directories must be. Each file is
written beside its final place in ``.airsync-partial/`` and made durable before it is renamed
into place, and the rename is made durable before the manifest names the file; this is done
per batch of files (one syncfs where the file system allows it, else an fsync of each file and
directory). A large file cut short by a pulled stick resumes from its last intact chunk. While a
sync runs the old manifest is set aside, so an interrupted sync is visibly incomplete; the new
manifest, signed, listing only complete files, is written last, just after the SBOM of the
module versions on the medium (``airsync-sbom.cdx.json``, ``carry.sbom``) that it hashes. ENOSPC,
EIO and EROFS stop the job with a clear error: nothing already on the medium is damaged.

Beside every file of 1 MiB or more goes its chunk signature (``<file>.airsig``), for peers that
``pull`` from the medium. ``only`` makes the medium a subset of the mirror's modules. The mirror
is read under a shared lock (syncs to several media run together, never beside a mirror job),
the medium is written under a lock of its own (one sync per medium, whatever path reaches it),
and the staging area is never written through a symlink planted in it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import xxhash

from airsync.carry import syncstamp
from airsync.carry.medium import (
    MANIFEST,
    MANIFEST_MAX,
    SBOM,
    SIDECAR_SUFFIX,
    STAGING,
    TreeScan,
    overlap,
    sha256_file,
    tree_files,
)
from airsync.errors import AirsyncError, ConfigError
from airsync.store import (
    WORKDIR,
    Flusher,
    MirrorStore,
    fill,
    fstype,
    fsync_dir,
    makedirs,
)

if TYPE_CHECKING:
    from airsync.carry.signatures import SignatureCache, SignedFile

FAT_MAX_FILE = (4 << 30) - 1


class SyncError(AirsyncError):
    """The target cannot take the sync, or failed under it."""


@dataclass(frozen=True)
class SyncEvent:
    """What a sync reports as it goes (to ``sync(progress=...)``, from its worker threads too,
    one call at a time). A callback may raise to stop the sync: the file in flight keeps its
    intact prefix for the next run, files already renamed into place are complete.

    kind "plan": ``files``/``bytes`` to write in all; "bytes": ``bytes`` more copied;
    "file": ``rel`` is durable in its place; "note": ``rel`` is a message for people."""

    kind: str
    rel: str = ""
    files: int = 0
    bytes: int = 0


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    resumed_bytes: int = 0
    bytes_written: int = 0
    unknown: list[str] = field(default_factory=list)  # files on the target we did not put there
    manifest_written: bool = False  # False: the medium already was the mirror, left as it was


#: Files are written in batches: the batch's data is flushed once, then its files are renamed
#: into place and their directories flushed once. A pulled stick loses at most the batch in
#: flight (its parts resume by chunk), and a medium sees two flushes per batch instead of two
#: per file (measured on ext4: per-file fsyncs were two thirds of a first copy's time).
BATCH_BYTES = 64 << 20
BATCH_FILES = 1024
#: Copies of files of at least LARGE_COPY bytes at once (see ``_copies``).
COPY_THREADS = 4
#: Smaller files are copied one at a time, in a thread of their own.
LARGE_COPY = 1 << 20
_T = TypeVar("_T")


def _copies(copy: Callable[[SignedFile], _T], todo: list[SignedFile], local: bool) -> Iterator[_T]:
    """``copy`` of each of ``todo``, in order; on a local file system run ahead in threads.

    The copies then run beside the commits (whose flushes wait on the device): large files a few
    at once (their hashing and I/O release the GIL for a MiB at a time), small files one after
    another in a thread of their own. Several threads of small files cost more than they
    overlapped: each system call handed the GIL over (100 futex calls a file), and 1,500 small
    files took 0.56 s of CPU against 0.42 s (first copy 0.47 -> 0.40 s; with three 128 MiB zips
    beside them 0.75 -> 0.615 s). Strictly one thing at a time on FUSE and network file systems,
    and the caller commits in batches of one there: fusefat was seen to corrupt files written
    while others were renamed.

    Closing the generator (the caller failed, or a copy did) cancels every copy not yet started,
    in both pools, before it waits for those running: none starts after it.
    """
    if not local:
        yield from map(copy, todo)
        return
    large, small = ThreadPoolExecutor(COPY_THREADS), ThreadPoolExecutor(1)
    try:
        futures = [(large if sf.size >= LARGE_COPY else small).submit(copy, sf) for sf in todo]
        for f in futures:
            yield f.result()
    finally:
        for pool in (large, small):
            pool.shutdown(wait=False, cancel_futures=True)
        for pool in (large, small):
            pool.shutdown()


def _staged(path: Path, flags: int = os.O_WRONLY | os.O_TRUNC) -> int:
    """Open a file in the medium's staging area for writing, never through whatever else
    (a planted symlink, a directory) may sit at its name: that is removed first."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    return os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW, 0o644)


def _write_staged(path: Path, data: bytes, fsync: bool = False) -> None:
    fill(_staged(path), data, fsync)


def _case_insensitive(staging: Path) -> bool:
    probe = staging / "CaseProbe"
    _write_staged(probe, b"")
    try:
        return (staging / "caseprobe").exists()
    finally:
        probe.unlink()


def _has_entries(root: Path) -> bool:
    with os.scandir(root) as it:
        return any(not e.name.startswith(".") for e in it)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _part_name(rel: str) -> str:
    return f"{xxhash.xxh3_64_hexdigest(rel.encode())}.part"


def _read_plain(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(MANIFEST_MAX)
    finally:
        os.close(fd)


def _serialized(progress: Callable[[SyncEvent], None] | None) -> Callable[[SyncEvent], None]:
    if progress is None:
        return lambda _e: None
    lock = threading.Lock()

    def call(event: SyncEvent) -> None:
        with lock:
            progress(event)

    return call


def _copy_resumable(
    src: Path, part: Path, sf: SignedFile, copied: Callable[[int], None] = lambda _n: None
) -> tuple[int, str]:
    """Copy ``src`` into ``part``, keeping an intact prefix left by an interrupted run.

    Returns (bytes kept, sha256 of what the part now holds). The prefix is checked chunk by
    chunk against the source signature; the first chunk that differs (or is cut short) and
    everything after it is written again. The hash is taken of the bytes as they are written
    (reading them back would only read the page cache), so a source file that changed under
    the copy is caught without a second pass.
    """
    kept = 0
    digest = hashlib.sha256()
    fd = _staged(part, os.O_RDWR)
    try:
        have = os.fstat(fd).st_size
        for c in sf.sig.chunks if have else ():  # decoded only when there is a prefix to check
            if c.offset + c.length > have:
                break
            piece = os.pread(fd, c.length, c.offset)
            if xxhash.xxh3_128_digest(piece) != c.xxh3:
                break
            digest.update(piece)
            kept = c.offset + c.length
        os.ftruncate(fd, kept)
        copied(kept)
        with open(src, "rb") as f:
            f.seek(kept)
            pos = kept
            while block := f.read(1 << 20):
                os.pwrite(fd, block, pos)
                digest.update(block)
                pos += len(block)
                copied(len(block))
    finally:
        os.close(fd)
    return kept, digest.hexdigest()


def _safe_parents(target: Path, rel: str, seen: set[str] | None = None) -> None:
    """Refuse to write through a symlink or a non-directory on the target. ``seen``: directories
    (relative) already found to be real ones in this run, not looked at again."""
    parent = rel.rpartition("/")[0]
    if seen is not None and parent in seen:
        return
    p = target
    for part in rel.split("/")[:-1]:
        p = p / part
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(st.st_mode):
            what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
            raise SyncError(f"{p}: {what} on the target where a directory must be; refusing to follow or replace it")
    if seen is not None:
        seen.add(parent)


def sync(
    mirror: Path,
    target: Path,
    signer,
    verify: bool = False,
    progress: Callable[[SyncEvent], None] | None = None,
    only: str = "",
) -> SyncResult:
    """Make ``target`` equal to the mirror (or to the modules ``only`` selects: comma-separated
    GONOSUMDB-style globs of module paths), with a signed manifest at its root."""
    # Usage errors (nothing is touched): ConfigError, exit status 2.
    if not target.is_dir():
        raise ConfigError(f"{target}: no such directory (mount the medium first)")
    # A mistyped path would look like an empty mirror, and the sync would empty the medium. A
    # GOPROXY tree made by other means is fine: it needs no .airsync/ yet, only to be there.
    if not mirror.is_dir():
        raise ConfigError(f"{mirror}: no such mirror directory; check the path")
    if not (mirror / WORKDIR).is_dir() and not _has_entries(mirror):
        raise ConfigError(f"{mirror}: an empty directory, not a mirror; check the path")
    if overlap(mirror, target):
        raise ConfigError(f"{target}: the target and the mirror {mirror} overlap; sync to a separate medium")
    store = MirrorStore(mirror, shared=True)  # keeps a mirror job from changing files under us
    cache = None
    lock = -1
    try:
        lock = _lock_medium(target)
        seen = _Seen(store, target, signer, only)
        if not verify:
            record = seen.record()
            if record is not None:
                return SyncResult(unchanged=record.files, unknown=list(record.unknown))
        # Only a sync with something to look at needs the signatures, the manifest's keys and
        # the SBOM: imported here, they cost a no-op resync nothing.
        from airsync.carry.signatures import SignatureCache

        cache = SignatureCache(store.state_path)
        result, sources = _sync(store, cache, target, signer, verify, _serialized(progress), only, seen.mirror,
                                seen.before)
        seen.remember(result, sources)
        return result
    except OSError as e:
        # A pulled stick shows as EIO, ENOTCONN or even EPERM (a FUSE daemon gone), a full one
        # as ENOSPC, a FAT remounted read-only as EROFS: whatever it is, stop and say so.
        what = "the medium is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror
        raise SyncError(
            f"{e.filename or target}: {what}; stopped. Files already on the medium are complete; "
            "after fixing the medium, run the sync again to finish"
        ) from None
    finally:
        if lock >= 0:
            try:
                os.close(lock)
            except OSError:
                pass  # a pulled stick: the lock went with it
        if cache is not None:
            cache.close()
        store.close()


def _lock_medium(target: Path) -> int:
    """Make the staging directory (a real one: never through a symlink) and hold its lock, so
    that two syncs (two processes, or one medium reached by two paths) never write one medium."""
    staging = target / STAGING
    try:
        os.mkdir(staging)
    except FileExistsError:
        pass
    if not stat.S_ISDIR(os.lstat(staging).st_mode):
        raise SyncError(f"{staging}: not a directory (a symlink?) on the target; refusing to follow or replace it")
    fd = os.open(staging / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SyncError(f"{target}: another sync is writing to this medium; try again when it has finished") from None
    return fd


class _Seen:
    """The quick check (``syncstamp``): the stamp of the mirror, the target and the settings,
    and its record in the mirror's state, one per target."""

    def __init__(self, store: MirrorStore, target: Path, signer, only: str) -> None:
        self.target = target
        self.mirror = tree_files(store.root)  # the mirror cannot change: we hold its shared lock
        self.settings = (f"only {only}", f"signer {signer.name}+{signer.key_hash:08x}")
        name = hashlib.sha256(os.fsencode(os.path.realpath(target))).hexdigest()[:32]
        self.path = store.work / "synced" / f"{name}.json"
        self.before: TreeScan | None = None  # the target as ``record`` scanned it, for the full path

    def _stamp(self, there: TreeScan) -> str:
        meta: dict[str, os.stat_result | None] = {}
        for rel in (MANIFEST, SBOM):
            try:
                meta[rel] = os.lstat(self.target / rel)
            except FileNotFoundError:
                meta[rel] = None
        return syncstamp.stamp(
            [("mirror", self.mirror.files), ("mirror odd", dict.fromkeys(r for r, _ in self.mirror.odd)),
             ("target", there.files), ("sidecars", there.sidecars),
             ("target odd", dict.fromkeys(r for r, _ in there.odd)), ("meta", meta)],
            self.settings,
        )

    def record(self) -> syncstamp.Record | None:
        """The record of the last sync, if the mirror, the target and the settings are as it saw them."""
        try:
            with open(self.path, "rb") as f:
                record = syncstamp.decode(f.read(1 << 20))
        except OSError:
            return None
        if record is None:
            return None
        self.before = tree_files(self.target)
        if record.stamp != self._stamp(self.before):
            return None
        return record

    def remember(self, result: SyncResult, sources: dict[str, SignedFile]) -> None:
        """Record what the sync left, if the target now holds every source file at its size (a
        hint: if the target changed meanwhile, the next sync takes the full path)."""
        there = tree_files(self.target)
        if there.odd or len(there.files) != len(sources) + sum(
            1 for rel in result.unknown if not rel.endswith(SIDECAR_SUFFIX)
        ):
            return
        for rel, sf in sources.items():
            st = there.files.get(rel)
            if st is None or st.st_size != sf.size:
                return
        data = syncstamp.encode(syncstamp.Record(self._stamp(there), len(sources), tuple(result.unknown)))
        try:
            self.path.parent.mkdir(exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path)  # no fsync: a record lost in a crash only costs a full check
        except OSError:
            pass  # a read-only state directory: every sync takes the full path


def _sync(
    store: MirrorStore, cache: SignatureCache, target: Path, signer, verify: bool, say, only: str,
    scan: TreeScan, there: TreeScan | None = None,
) -> tuple[SyncResult, dict[str, SignedFile]]:
    """``scan``: the mirror's ``tree_files``; ``there``: the target's, if the quick check made it
    (under the same locks, nothing written since)."""
    from airsync.carry import manifest
    from airsync.carry.signatures import SIDECAR_MIN, make_manifest, tree_signatures

    result = SyncResult()
    sources = tree_signatures(store.root, cache, only, scan)
    if only and not any("/@v/" in rel for rel in sources):
        raise ConfigError(f"--only {only!r} selects no module in {store.root}; the medium was left as it was")

    staging = target / STAGING  # made, checked and locked by _lock_medium
    # The previous manifest tells what we wrote before. While files are written it stays
    # aside, so that the medium has no manifest (visibly incomplete) until the new one is
    # written; an interrupted sync leaves it aside, where the rerun finds it.
    previous: dict[str, tuple[int, str]] = {}
    since = 0.0  # when the previous manifest was made
    aside = staging / "previous-manifest"
    current = target / MANIFEST
    old_manifest = aside if _regular(aside) else current
    if _regular(old_manifest):
        try:
            old = manifest.open_manifest(_read_plain(old_manifest), signer.verifier, str(current))
            previous = {e.path: (e.size, e.sha256) for e in old.entries}
            since = datetime.strptime(old.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except AirsyncError as e:
            say(SyncEvent("note", f"previous manifest not used ({e}); comparing file contents instead"))

    if there is None:
        there = tree_files(target)
    if there.odd:
        raise SyncError("unexpected entries on the target, not followed: " + ", ".join(f"{p} ({w})" for p, w in there.odd))
    todo: list[SignedFile] = []
    for rel, sf in sources.items():
        st = there.files.get(rel)
        if st is not None and st.st_size == sf.size:
            # Touched after the last manifest (2 s of slack: FAT keeps even seconds): look inside.
            touched = st.st_mtime > since + 2
            if verify or rel not in previous or touched:
                if sha256_file(target / rel)[1] == sf.sha256:
                    result.unchanged += 1
                    continue
            elif previous[rel] == (sf.size, sf.sha256):
                result.unchanged += 1
                continue
        todo.append(sf)
    stale = [rel for rel in there.files if rel not in sources and rel in previous]
    result.unknown = sorted(rel for rel in there.files if rel not in sources and rel not in previous)

    # Parts an interrupted run left: those of files still to write resume (the room they take
    # is theirs already); any other is of no use any more.
    wanted = {_part_name(sf.rel): sf.size for sf in todo}
    staged = 0
    with os.scandir(staging) as it:
        for entry in it:
            if entry.name.endswith(".part") and entry.is_file(follow_symlinks=False):
                if entry.name in wanted:
                    staged += min(entry.stat(follow_symlinks=False).st_size, wanted[entry.name])
                else:
                    os.unlink(entry.path)

    # Check the target can take it before writing anything.
    need = sum(sf.size for sf in todo) - staged
    vfs = os.statvfs(target)
    free = vfs.f_bavail * vfs.f_frsize
    if need > free:
        raise SyncError(
            f"{target}: not enough room: the sync needs {need / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free"
        )
    if fstype(target) in ("vfat", "msdos", "fat", "fuse.fusefat", "fusefat"):
        big = [sf.rel for sf in todo if sf.size > FAT_MAX_FILE]
        if big:
            raise SyncError(f"{target}: FAT32 cannot hold files of 4 GiB or more: {', '.join(big)}")
    if _case_insensitive(staging):
        folded: dict[str, str] = {}
        for rel in sources:
            other = folded.setdefault(rel.casefold(), rel)
            if other != rel:
                raise SyncError(f"{target} ignores case in names, and {rel} and {other} would collide")

    # Sidecars (chunk signatures for peers that pull from the medium): beside every large file,
    # rewritten with it, removed with it. Unsigned hints: a pull checks what it assembles.
    want_sidecars = {sf.rel + SIDECAR_SUFFIX: sf for sf in sources.values() if sf.size >= SIDECAR_MIN}
    rewritten = {sf.rel for sf in todo}
    sidecars_todo = [
        side for side, sf in want_sidecars.items()
        if sf.rel in rewritten or side not in there.sidecars
        or there.sidecars[side].st_size != len(sf.encoded)
    ]
    # Only sidecars of files that are (or were) ours go; anyone else's *.airsig is left alone.
    def ours(side: str) -> bool:
        base = side.removesuffix(SIDECAR_SUFFIX)
        return base in sources or base in previous

    sidecars_stale = [side for side in there.sidecars if side not in want_sidecars and ours(side)]
    result.unknown = sorted([*result.unknown, *(side for side in there.sidecars if not ours(side))])

    if not todo and not stale and not sidecars_todo and not sidecars_stale and old_manifest == current and previous == {
        rel: (sf.size, sf.sha256) for rel, sf in sources.items()
    }:
        return result, sources  # the medium already is the mirror, and its manifest says so

    if current.exists():
        os.replace(current, aside)
        fsync_dir(target)
    flush = Flusher(target)
    batch: list[tuple[str, Path]] = []  # (relative path, its part in the staging area)
    pending = 0  # bytes written into the batch's parts

    def commit(announce: bool = True) -> list[str]:
        # The batch's bytes are made durable before any of its files is renamed into place,
        # so no file is ever visible on the medium before its bytes are on it.
        flush.files([part for _, part in batch])
        dirs: set[Path] = set()
        for rel, part in batch:
            final = target / rel
            if final.parent not in made:
                dirs.update(makedirs(final.parent))
                made.add(final.parent)
            os.replace(part, final)
            dirs.add(final.parent)
        flush.dirs(dirs)
        done = [rel for rel, _ in batch]
        batch.clear()
        for rel in done if announce else ():
            say(SyncEvent("file", rel))
        return done

    made: set[Path] = set()  # directories known to exist on the target
    checked: set[str] = set()  # parents found to be real directories (see _safe_parents)

    def copy(sf: SignedFile) -> tuple[SignedFile, Path, int]:
        _safe_parents(target, sf.rel, checked)
        part = staging / _part_name(sf.rel)
        kept, written = _copy_resumable(
            store.root / sf.rel, part, sf, lambda n: say(SyncEvent("bytes", bytes=n))
        )
        if written != sf.sha256:
            raise SyncError(f"{sf.rel}: changed in the mirror while it was copied; run the sync again")
        return sf, part, kept

    say(SyncEvent("plan", files=len(todo), bytes=sum(sf.size for sf in todo)))  # resumed bytes count as copied
    per_batch = BATCH_FILES if flush.local else 1  # FUSE, network file systems: see _copies
    with closing(_copies(copy, todo, flush.local)) as copies:
        for sf, part, kept in copies:
            batch.append((sf.rel, part))
            result.resumed_bytes += kept
            result.bytes_written += sf.size - kept
            pending += sf.size - kept
            if pending >= BATCH_BYTES or len(batch) >= per_batch:
                result.written += commit()
                pending = 0
    result.written += commit()
    for rel in stale:
        os.unlink(target / rel)
        result.removed.append(rel)
    for i, side in enumerate(sidecars_todo):
        _safe_parents(target, side)
        part = staging / f"sidecar-{i}.tmp"
        _write_staged(part, want_sidecars[side].encoded)
        batch.append((side, part))
    commit(announce=False)
    for side in sidecars_stale:
        os.unlink(target / side)
    flush.dirs({(target / rel).parent for rel in [*stale, *sidecars_stale]})

    m = manifest.number(make_manifest(store.root, sources), signer)
    doc = cache.sbom(m.entries, m.gosum, f"{signer.name}+{signer.key_hash:08x}/{m.sequence}", m.created)
    tmp = staging / "sbom.tmp"
    _write_staged(tmp, doc, fsync=True)
    os.replace(tmp, target / SBOM)
    m = replace(m, sbom=manifest.Part(SBOM, len(doc), hashlib.sha256(doc).hexdigest()))
    signed = manifest.sign_manifest(m, signer)
    tmp = staging / "manifest.tmp"
    _write_staged(tmp, signed, fsync=True)
    os.replace(tmp, current)
    fsync_dir(target)
    if aside.exists():
        aside.unlink()
    result.manifest_written = True
    return result, sources
