"""``airsync sync``: copy a mirror to a directory target (a USB medium, a mounted share), durably.

Only missing or changed files cross. What the target holds is known from its previous signed
manifest plus a stat check (``verify=True`` re-hashes the target's bytes instead); every source
file's size, sha256, xxh3_128, content-defined chunks and (for .zip and .mod) go.sum hash are
computed once and cached in the mirror's state database, keyed by size and mtime.

Before writing, the target is checked: free space for what must be written, the FAT32 4 GiB
file limit, case-insensitive name collisions, symlinks where directories must be. Each file is
written beside its final place in ``.airsync-partial/``, fsynced, renamed, and its directory
fsynced; a large file cut short by a pulled stick resumes from its last intact chunk. While a
sync runs the old manifest is set aside, so an interrupted sync is visibly incomplete; the new
manifest, signed, listing only complete files, is written last. ENOSPC, EIO and EROFS stop the
job with a clear error: nothing already on the medium is damaged.
"""

from __future__ import annotations

import errno
import hashlib
import os
from datetime import datetime, timezone
import socket
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from airsync import chunks, dirhash, manifest, modpath, modzip
from airsync.errors import AirsyncError
from airsync.medium import MANIFEST, STAGING, sha256_file, tree_files
from airsync.store import MirrorStore, fsync_dir, fsync_path, makedirs

FAT_MAX_FILE = (4 << 30) - 1


class SyncError(AirsyncError):
    """The target cannot take the sync, or failed under it."""


@dataclass(frozen=True)
class SourceFile:
    rel: str
    size: int
    sha256: str
    xxh3: str
    h1: str | None  # for .zip and .mod: the go.sum hash
    sig: chunks.FileSignature


@dataclass
class SyncResult:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    resumed_bytes: int = 0
    bytes_written: int = 0
    unknown: list[str] = field(default_factory=list)  # files on the target we did not put there


def _module_of(rel: str) -> tuple[modpath.ModuleVersion, str] | None:
    """(module version, ext) for a mirror's .zip or .mod file: the files with a go.sum hash."""
    try:
        mod = modpath.parse_proxy_file(rel)
    except AirsyncError:
        return None
    return mod if mod is not None and mod[1] in ("zip", "mod") else None


class SignatureCache:
    """Signatures of mirror files, computed once per (size, mtime) and kept in the state DB."""

    SCHEMA = """CREATE TABLE IF NOT EXISTS signatures (
        relpath TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, h1 TEXT, sig BLOB)"""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(self.SCHEMA)

    def close(self) -> None:
        self._db.close()

    def get(self, root: Path, rel: str, st: os.stat_result) -> SourceFile:
        row = self._db.execute("SELECT size, mtime_ns, h1, sig FROM signatures WHERE relpath = ?", (rel,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            sig = chunks.decode(row[3])
            return SourceFile(rel, sig.size, sig.sha256.hex(), sig.xxh3.hex(), row[2], sig)
        path = root / rel
        sig = chunks.signature_of_file(path)
        h1 = None
        mod = _module_of(rel)
        if mod is not None:
            mv, ext = mod
            h1 = modzip.check_zip(path, mv) if ext == "zip" else dirhash.hash_gomod(path.read_bytes())
        self._db.execute(
            "INSERT OR REPLACE INTO signatures VALUES (?, ?, ?, ?, ?)",
            (rel, st.st_size, st.st_mtime_ns, h1, chunks.encode(sig)),
        )
        return SourceFile(rel, sig.size, sig.sha256.hex(), sig.xxh3.hex(), h1, sig)


def _fstype(path: Path) -> str:
    """The file system type of the mount holding ``path`` (from /proc/mounts; '' if unknown)."""
    best, kind = "", ""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    mnt = parts[1].replace("\\040", " ")
                    if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                        best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def _case_insensitive(staging: Path) -> bool:
    probe = staging / "CaseProbe"
    probe.write_bytes(b"")
    try:
        return (staging / "caseprobe").exists()
    finally:
        probe.unlink()


def _copy_resumable(src: Path, part: Path, sf: SourceFile) -> tuple[int, str]:
    """Copy ``src`` into ``part``, keeping an intact prefix left by an interrupted run.

    Returns (bytes kept, sha256 of what the part now holds). The prefix is checked chunk by
    chunk against the source signature; the first chunk that differs (or is cut short) and
    everything after it is written again. The hash is taken of the bytes as they are written
    (reading them back would only read the page cache), so a source file that changed under
    the copy is caught without a second pass.
    """
    kept = 0
    digest = hashlib.sha256()
    fd = os.open(part, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        have = os.fstat(fd).st_size
        for c in sf.sig.chunks:
            if c.offset + c.length > have:
                break
            piece = os.pread(fd, c.length, c.offset)
            if xxhash.xxh3_128_digest(piece) != c.xxh3:
                break
            digest.update(piece)
            kept = c.offset + c.length
        os.ftruncate(fd, kept)
        with open(src, "rb") as f:
            f.seek(kept)
            pos = kept
            while block := f.read(1 << 20):
                os.pwrite(fd, block, pos)
                digest.update(block)
                pos += len(block)
        os.fsync(fd)
    finally:
        os.close(fd)
    return kept, digest.hexdigest()


def _safe_parents(target: Path, rel: str) -> None:
    """Refuse to write through a symlink or a non-directory on the target."""
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


def sync(
    mirror: Path,
    target: Path,
    signer,
    verify: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SyncResult:
    if not target.is_dir():
        raise SyncError(f"{target}: no such directory (mount the medium first)")
    store = MirrorStore(mirror)  # also keeps a mirror job from changing files under us
    cache = SignatureCache(store.work / "signatures.db")
    try:
        return _sync(store, cache, target, signer, verify, progress or (lambda _m: None))
    except OSError as e:
        # A pulled stick shows as EIO, ENOTCONN or even EPERM (a FUSE daemon gone), a full one
        # as ENOSPC, a FAT remounted read-only as EROFS: whatever it is, stop and say so.
        what = "the medium is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else e.strerror
        raise SyncError(
            f"{e.filename or target}: {what}; stopped. Files already on the medium are complete; "
            "after fixing the medium, run the sync again to finish"
        ) from None
    finally:
        cache.close()
        store.close()


def _sync(store: MirrorStore, cache: SignatureCache, target: Path, signer, verify: bool, say) -> SyncResult:
    result = SyncResult()
    scan = tree_files(store.root)
    sources = {rel: cache.get(store.root, rel, st) for rel, st in sorted(scan.files.items())}

    staging = target / STAGING
    staging.mkdir(exist_ok=True)
    # The previous manifest tells what we wrote before. While files are written it stays
    # aside, so that the medium has no manifest (visibly incomplete) until the new one is
    # written; an interrupted sync leaves it aside, where the rerun finds it.
    previous: dict[str, tuple[int, str]] = {}
    since = 0.0  # when the previous manifest was made
    aside = staging / "previous-manifest"
    current = target / MANIFEST
    old_manifest = aside if aside.exists() else current
    if old_manifest.exists():
        try:
            old = manifest.open_manifest(old_manifest.read_bytes(), signer.verifier, str(current))
            previous = {e.path: (e.size, e.sha256) for e in old.entries}
            since = datetime.strptime(old.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except AirsyncError as e:
            say(f"previous manifest not used ({e}); comparing file contents instead")

    there = tree_files(target)
    if there.odd:
        raise SyncError("unexpected entries on the target, not followed: " + ", ".join(f"{p} ({w})" for p, w in there.odd))
    todo: list[SourceFile] = []
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

    # Check the target can take it before writing anything.
    need = sum(sf.size for sf in todo)
    vfs = os.statvfs(target)
    free = vfs.f_bavail * vfs.f_frsize
    if need > free:
        raise SyncError(
            f"{target}: not enough room: the sync needs {need / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are free"
        )
    if _fstype(target) in ("vfat", "msdos", "fat", "fuse.fusefat", "fusefat"):
        big = [sf.rel for sf in todo if sf.size > FAT_MAX_FILE]
        if big:
            raise SyncError(f"{target}: FAT32 cannot hold files of 4 GiB or more: {', '.join(big)}")
    if _case_insensitive(staging):
        folded: dict[str, str] = {}
        for rel in sources:
            other = folded.setdefault(rel.casefold(), rel)
            if other != rel:
                raise SyncError(f"{target} ignores case in names, and {rel} and {other} would collide")

    if not todo and not stale and old_manifest == current and previous == {
        rel: (sf.size, sf.sha256) for rel, sf in sources.items()
    }:
        return result  # the medium already is the mirror, and its manifest says so

    if current.exists():
        os.replace(current, aside)
        fsync_dir(target)
    for sf in todo:
        _safe_parents(target, sf.rel)
        part = staging / f"{xxhash.xxh3_64_hexdigest(sf.rel.encode())}.part"
        kept, written = _copy_resumable(store.root / sf.rel, part, sf)
        if written != sf.sha256:
            raise SyncError(f"{sf.rel}: changed in the mirror while it was copied; run the sync again")
        final = target / sf.rel
        dirs = set(makedirs(final.parent))
        os.replace(part, final)
        for d in sorted(dirs | {final.parent}, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)
        result.written.append(sf.rel)
        result.resumed_bytes += kept
        result.bytes_written += sf.size - kept
        say(f"wrote {sf.rel}")
    for rel in stale:
        os.unlink(target / rel)
        result.removed.append(rel)

    gosum_lines = []
    for sf in sources.values():
        mod = _module_of(sf.rel)
        if mod is not None and sf.h1:
            mv, ext = mod
            gosum_lines.append(f"{mv.path} {mv.version}{'/go.mod' if ext == 'mod' else ''} {sf.h1}")
    m = manifest.Manifest(
        created=manifest.utc_timestamp(),
        source=f"{socket.gethostname()}:{store.root.resolve()}",
        entries=tuple(manifest.Entry(sf.rel, sf.size, sf.sha256, sf.xxh3) for sf in sources.values()),
        gosum=tuple(gosum_lines),
    )
    signed = manifest.sign_manifest(m, signer)
    tmp = staging / "manifest.tmp"
    tmp.write_bytes(signed)
    fsync_path(tmp)
    os.replace(tmp, current)
    fsync_dir(target)
    if aside.exists():
        aside.unlink()
    return result
