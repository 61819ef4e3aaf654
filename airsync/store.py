"""The mirror on disk: a GOPROXY tree plus airsync's private workspace.

Layout::

    MIRROR/<escaped module>/@v/{list,<v>.info,<v>.mod,<v>.zip}   what the go command reads
    MIRROR/<escaped module>/@latest                              the latest listed version's .info
    MIRROR/.airsync/lock                                         held by the one airsync using it
    MIRROR/.airsync/state.db                                     resume state (state.py)
    MIRROR/.airsync/partial/<key>.part                           downloads in progress
    MIRROR/.airsync/rejected/<flattened path>.<time>             bytes that failed verification

A module path element can never begin with a dot, so ``.airsync`` never collides with a module.
Downloads are staged inside the same file system as the tree, so publishing is one
``os.replace``: the file is fsynced first and the directory after, and a crash at any moment
leaves either the old state or the complete, verified file, never a partial one in the tree.
Directories created on the way are fsynced into their parents for the same reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import xxhash

from airsync.errors import AirsyncError
from airsync.goproxy import modpath, semver

WORKDIR = ".airsync"


class StoreError(AirsyncError):
    """The mirror directory cannot be used (not writable, not a directory, ...)."""


def fsync_path(path: Path, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_path(path, os.O_RDONLY | os.O_DIRECTORY)


def makedirs(path: Path) -> list[Path]:
    """mkdir -p; returns the directories whose entries changed (parents of new directories)."""
    missing: list[Path] = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    changed: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        changed.append(d.parent)
    return changed


def makedirs_durable(path: Path) -> None:
    """mkdir -p that fsyncs each new directory's parent, so the new entries survive a crash."""
    for d in makedirs(path):
        fsync_dir(d)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd`` (os.write may take only part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fill(fd: int, data: bytes, fsync: bool = False) -> None:
    """Write ``data`` to a freshly opened ``fd``, fsync it if asked, and close it."""
    try:
        write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def write_plain(path: Path, data: bytes, fsync: bool = False) -> None:
    """Create or truncate ``path`` with ``data`` (not atomic: publish by fsync and rename)."""
    fill(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), data, fsync)


def replace_durably(path: Path, data: bytes, mode: int = 0o644, tmp_suffix: str = ".tmp") -> None:
    """Make ``path`` hold ``data``, atomically and durably: written beside it under a hidden
    temporary name, fsynced, renamed over it, and its directory fsynced. A crash leaves the old
    file or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}{tmp_suffix}")
    fill(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), data, fsync=True)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def sha256_hex(path: Path) -> str:
    """The SHA-256 of the file at ``path`` (followed if a symlink; a medium's files are read
    without following, by ``carry.medium.sha256_file``)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StagedList(NamedTuple):
    """A module's ``@v/list`` written beside the tree, to be made durable and renamed over ``final``."""

    staged: Path
    final: Path
    text: str


def merged_list(text: str, versions: Iterable[str]) -> str | None:
    """The ``@v/list`` ``text`` with ``versions`` added, in semver order; None when all were there."""
    listed = {line.split()[0] for line in text.splitlines() if line.strip()}
    if listed.issuperset(versions):
        return None
    listed.update(versions)
    return "".join(v + "\n" for v in sorted(listed, key=semver.sort_key))


def latest_info(list_text: str, info_of: Callable[[str], bytes]) -> bytes | None:
    """What ``@latest`` holds for the ``@v/list`` ``list_text``: the ``.info`` (``info_of``) of
    the version the go command takes as latest (the highest release, else prerelease, else newest
    pseudo-version); None when the list has none, or that ``.info`` is missing (a version listed
    without its .info was never written by airsync, and is left alone)."""
    from airsync.goproxy import query  # with go.mod's parser: only the commands that publish need it

    version = query.latest_of_list(list_text)
    if version is None:
        return None
    try:
        return info_of(version)
    except FileNotFoundError:
        return None


class MirrorStore:
    remote = False  # objstore.mirror.ObjectMirrorStore offers the same methods over a bucket

    def __init__(self, root: Path, shared: bool = False) -> None:
        """Open the mirror at ``root``; ``shared``: only to read its files (a sync), which may
        happen beside other readers but never beside a job that publishes into it."""
        self.root = root
        self.work = root / WORKDIR
        self.partial_dir = self.work / "partial"
        self.rejected_dir = self.work / "rejected"
        try:
            for d in (self.partial_dir, self.rejected_dir):
                makedirs_durable(d)
        except OSError as e:
            raise StoreError(f"cannot use {root} as a mirror: {e.strerror}") from e
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"cannot use {root} as a mirror: not writable")
        # Two processes publishing into one mirror would race on @v/list and on resume state.
        self._lock = os.open(self.work / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._lock, 32, 0).decode(errors="replace").strip()
            os.close(self._lock)
            if shared:
                raise StoreError(f"{root} is being written by another airsync process (pid {holder or '?'})") from None
            # Readers leave no pid: the one in the file may be a writer long gone.
            who = f"pid {holder}" if holder.isdigit() and pid_alive(int(holder)) else "a sync reading it"
            raise StoreError(f"{root} is in use by another airsync process ({who})") from None
        if not shared:
            os.ftruncate(self._lock, 0)
            os.pwrite(self._lock, f"{os.getpid()}\n".encode(), 0)

    def make_flusher(self) -> Flusher:
        """What makes this mirror's written files and renames durable (see ``Flusher``)."""
        return Flusher(self.root)

    def close(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)  # releases the flock
            self._lock = -1

    def clean_partial(self, resumable: set[str]) -> int:
        """Remove leftovers of killed runs: staged lists, and partial files no resume record
        refers to (``resumable`` is the set of relpaths with one). Returns how many."""
        keep = {self.partial_path(r).name for r in resumable}
        removed = 0
        for entry in os.scandir(self.partial_dir):
            if entry.name not in keep and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed += 1
        return removed

    @property
    def state_path(self) -> Path:
        return self.work / "state.db"

    def is_published(self, relpath: str) -> bool:
        return (self.root / relpath).is_file()

    def partial_path(self, relpath: str) -> Path:
        # Hashed names keep partial files flat and free of any path syntax from upstream names.
        return self.partial_dir / f"{xxhash.xxh3_128_hexdigest(relpath.encode())}.part"

    def read_bytes(self, relpath: str) -> bytes:
        return (self.root / relpath).read_bytes()

    def stat(self, relpath: str) -> os.stat_result | None:
        """The published file's stat (None where there is no local file: a store)."""
        return os.lstat(self.root / relpath)

    @contextlib.contextmanager
    def local_copy(self, relpath: str):
        """A local path holding the published file's bytes while the ``with`` lasts."""
        yield self.root / relpath

    def read_tree(self, relpath: str) -> dict[str, bytes]:
        """Every file under the directory ``relpath``, by path relative to it."""
        base = self.root / relpath
        if not base.is_dir():
            return {}
        return {p.relative_to(base).as_posix(): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}

    def commit_list(self, staged: StagedList) -> set[Path]:
        """Publish a list staged by ``prepare_list`` (fsynced by the caller); the dir to sync."""
        os.replace(staged.staged, staged.final)
        return {staged.final.parent}

    def publish(self, partial: Path, relpath: str, replace: bool = False) -> set[Path]:
        """Move a verified, already fsynced partial file into the tree.

        The file's bytes are durable before the rename, so it is never visible half-written.
        The rename itself becomes durable when its directory is fsynced: that is left to
        ``sync_dirs`` over the returned directories, once for all files of a module version.
        A crash before that can only lose the entry, and a rerun then fetches the file again.
        ``replace`` says the file may replace different bytes (a rename always may).
        """
        final = self.root / relpath
        dirs = set(makedirs(final.parent))
        os.replace(partial, final)
        dirs.add(final.parent)
        return dirs

    @staticmethod
    def sync_dirs(dirs: set[Path]) -> None:
        # Deepest first, so that a parent is synced after the entries below it exist.
        for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
            fsync_dir(d)

    def reject(self, partial: Path, relpath: str) -> Path:
        """Keep bytes that failed verification for inspection, outside the tree."""
        # The flattened name is for people; the hash and nanosecond stamp keep every copy apart.
        stamp = time.strftime("%Y%m%dT%H%M%S")
        key = xxhash.xxh3_64_hexdigest(relpath.encode())
        dest = self.rejected_dir / f"{relpath.replace('/', '__')}.{key}.{stamp}.{time.time_ns() % 10**9:09d}"
        os.replace(partial, dest)
        return dest

    def prepare_list(self, list_relpath: str, *versions: str) -> StagedList | None:
        """Stage a module's ``@v/list`` with ``versions`` added (semver order).

        Returns the staged file for the caller to make durable and rename, or None when the
        versions are all listed already. Callers serialize per module.
        """
        path = self.root / list_relpath
        try:
            text = merged_list(path.read_text("utf-8"), versions)
        except FileNotFoundError:
            text = merged_list("", versions)
        if text is None:
            return None
        tmp = self.partial_dir / f"{xxhash.xxh3_64_hexdigest(list_relpath.encode())}.list.tmp"
        write_plain(tmp, text.encode())
        return StagedList(tmp, path, text)

    def stage_latest(
        self, module_path: str, list_text: str | None = None, infos: dict[str, bytes] | None = None
    ) -> tuple[Path, Path] | None:
        """Stage ``@latest`` as the ``.info`` of the version the go command would take as latest
        from ``@v/list`` (the highest release, else prerelease, else newest pseudo-version).

        ``list_text`` is the list about to be published (default: the one in the tree);
        ``infos`` the ``.info`` bytes of versions landing with it. Returns (staged file, final
        path) for the caller to make durable and rename, or None when ``@latest`` already is
        that (or there is no list, or no ``.info`` of the version). Callers serialize per module.
        """
        root = self.root
        if list_text is None:
            try:
                list_text = (root / modpath.list_file(module_path)).read_text("utf-8")
            except (FileNotFoundError, UnicodeDecodeError):
                return None

        def info_of(version: str) -> bytes:
            info = (infos or {}).get(version)
            if info is not None:
                return info
            return (root / modpath.proxy_file(modpath.ModuleVersion(module_path, version), "info")).read_bytes()

        info = latest_info(list_text, info_of)
        if info is None:
            return None
        final = root / modpath.latest_file(module_path)
        try:
            if final.read_bytes() == info:
                return None
        except FileNotFoundError:
            pass
        tmp = self.partial_dir / f"{xxhash.xxh3_64_hexdigest(str(final).encode())}.latest.tmp"
        write_plain(tmp, info)
        return tmp, final

    def update_latest(self, module_path: str) -> bool:
        """Make ``@latest`` follow ``@v/list`` (see ``stage_latest``) durably, on its own; False
        when it already did. Callers serialize per module."""
        return self.update_latest_many([module_path], self.make_flusher()) == 1

    def update_latest_many(self, module_paths: list[str], flusher: Flusher) -> int:
        """``update_latest`` for many modules with one flush for all their files and one for
        all their renames (an object store does them side by side). Returns how many changed."""
        staged = [st for path in module_paths if (st := self.stage_latest(path)) is not None]
        flusher.files([tmp for tmp, _ in staged])
        for tmp, final in staged:
            os.replace(tmp, final)
        flusher.dirs({final.parent for _, final in staged})
        return len(staged)

    def add_to_list(self, list_relpath: str, *versions: str) -> bool:
        """Add ``versions`` to ``@v/list`` durably on their own; False when all were listed."""
        staged = self.prepare_list(list_relpath, *versions)
        if staged is None:
            return False
        fsync_path(staged.staged)
        makedirs_durable(staged.final.parent)
        os.replace(staged.staged, staged.final)
        fsync_dir(staged.final.parent)
        return True


def fstype(path: Path) -> str:
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


#: File systems where syncfs(2) flushes data, metadata and the device cache of the whole file
#: system in one call. Elsewhere (FUSE, network file systems) every file and directory is
#: fsynced on its own.
SYNCFS_TYPES = frozenset({"ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "msdos", "exfat", "tmpfs"})


def _libc_syncfs():
    import ctypes  # only where files are flushed: a no-op sync never loads it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


class Flusher:
    """Makes written files and renames durable: by syncfs(2) where one call does the whole job,
    else by fsync of each file and directory.

    Thread-safe group commit: callers in several threads share syncfs calls. Each caller waits
    for one that *started* after its call (its writes happened before), starting one itself when
    none is running; so under load one syncfs makes many module versions durable at once, while
    a lone caller never waits for anything but its own flush.

    Renames a caller may leave for later (``dirs_later``: nothing it records depends on them
    surviving a power cut) ride on the next syncfs anyone starts, or on ``settle``, which the
    owner calls before it reports the work done.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.local = fstype(root) in SYNCFS_TYPES  # a kernel file system on a local device
        self._syncfs = _libc_syncfs() if self.local else None
        self._cond = threading.Condition()
        self._started = self._done = 0
        self._running = False
        self._owed: set[Path] = set()  # directories whose renames no flush has covered yet

    def _sync_all(self) -> None:
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if self._syncfs(fd) != 0:
                import ctypes  # loaded already by _libc_syncfs

                err = ctypes.get_errno()
                raise OSError(err, os.strerror(err), str(self.root))
        finally:
            os.close(fd)

    def _group_sync(self) -> None:
        with self._cond:
            target = self._started + 1
            while self._done < target:
                if self._running:
                    self._cond.wait()
                    continue
                self._running = True
                self._started += 1
                generation = self._started
                owed, self._owed = self._owed, set()  # this syncfs starts after their renames
                self._cond.release()
                failed = True
                try:
                    self._sync_all()
                    failed = False
                finally:
                    self._cond.acquire()
                    self._running = False
                    if failed:
                        self._owed |= owed
                    else:
                        self._done = generation
                    self._cond.notify_all()

    def files(self, paths: list[Path]) -> None:
        if not paths:
            return
        if self._syncfs is not None:
            self._group_sync()
        else:
            for p in paths:
                fsync_path(p)

    def dirs(self, dirs: set[Path]) -> None:
        if not dirs:
            return
        if self._syncfs is not None:
            self._group_sync()
        else:
            MirrorStore.sync_dirs(dirs)

    def dirs_later(self, dirs: set[Path]) -> None:
        """Renames in ``dirs`` made durable by the next flush, at the latest by ``settle``."""
        with self._cond:
            self._owed |= dirs

    def settle(self) -> None:
        """Every rename left for later is durable when this returns."""
        if self._syncfs is not None:
            with self._cond:
                # A syncfs running now may hold renames it took, and give them back if it fails.
                if not self._owed and not self._running:
                    return
            self._group_sync()  # one that starts after this call: it takes what is owed then
            return
        with self._cond:
            owed, self._owed = self._owed, set()
        try:
            MirrorStore.sync_dirs(owed)
        except BaseException:
            with self._cond:
                self._owed |= owed
            raise
